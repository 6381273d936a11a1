"""Checks at the public boundary, with messages that say what was expected and what was given."""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import DTypeLike, NDArray

from minigrad.errors import ShapeError


def check_ndim(x: NDArray[Any], ndim: int, what: str, hint: str = "") -> None:
    """Raise ShapeError unless ``x`` has ``ndim`` dimensions."""
    if x.ndim != ndim:
        raise ShapeError(
            f"{what} expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}" + hint
        )


def check_same_shape(pred: NDArray[Any], target: NDArray[Any], what: str) -> None:
    """Raise ShapeError unless ``pred`` and ``target`` have exactly the same shape."""
    if pred.shape != target.shape:
        hint = ""
        if _squeezed(pred.shape) == _squeezed(target.shape):  # differ only by length-1 axes
            hint = f"; reshape the target with target.reshape{pred.shape}"
        elif pred.shape == target.shape[::-1]:
            hint = "; the target looks transposed (target.T)"
        raise ShapeError(
            f"{what}: pred has shape {pred.shape} but target has shape {target.shape}; "
            f"they must match exactly (minigrad never broadcasts a loss){hint}"
        )


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def forward_not_called(owner: object) -> RuntimeError:
    """The error for ``backward()`` before ``forward()``."""
    return RuntimeError(
        f"{type(owner).__name__}.backward() was called before forward(), or after a forward "
        "pass that failed: run a forward pass on a batch first"
    )


# -- hyperparameters and flags ------------------------------------------------------------------
# Python and NumPy coerce freely: bool("False") is True, float(True) is 1.0 and float("3") is
# 3.0. Arguments are checked for their type instead, so such a mistake fails where it is made.


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool if it is one (Python or NumPy), else TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {_given(value)}")


def check_integer(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an int if it is a Python or NumPy integer (not a bool) in range.

    TypeError for another type, ValueError for a value outside [minimum, maximum].
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_given(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {_range(minimum, maximum)}, got {_shortened(value)}")
    return value


def check_real(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    finite: bool = True,
) -> float:
    """``value`` as a float if it is a real number (Python or NumPy, not a bool or a string).

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones; NaN is
    always refused and infinities unless ``finite=False``. TypeError for another type,
    ValueError for a value out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_given(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        # a numbers.Real compares with 0, which typeshed's Real does not declare
        number = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    bounds: list[tuple[float | None, Callable[[float, float], bool], str]] = [
        (minimum, lambda v, b: v >= b, ">="),
        (maximum, lambda v, b: v <= b, "<="),
        (above, lambda v, b: v > b, ">"),
        (below, lambda v, b: v < b, "<"),
    ]
    ok = number == number and (not finite or abs(number) != float("inf"))
    ok = ok and all(bound is None or test(number, bound) for bound, test, _ in bounds)
    if not ok:
        parts = [f"{sign} {bound:g}" for bound, _, sign in bounds if bound is not None]
        what = ("a finite number" if finite else "a number") + (
            " " + " and ".join(parts) if parts else ""
        )
        raise ValueError(f"{name} must be {what}, got {_shortened(value)}")
    return number


def check_float_dtype(name: str, dtype: object) -> np.dtype[np.floating[Any]]:
    """``dtype`` as float16, float32 or float64, the dtypes of parameters (what model files
    and optimizers take); TypeError naming ``name`` for anything else.

    None is refused (NumPy would read it as float64), as are integer, complex, bool and
    object dtypes and float128.
    """
    allowed = "a floating-point type: float16, float32 or float64 (np.float32 is usual)"
    if dtype is None:
        raise TypeError(f"{name} must be {allowed}, got None")
    try:
        # any object may be given (refused below): np.dtype's overloads take only dtype-likes
        resolved: np.dtype[Any] = np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {allowed}, got {_given(dtype)}") from None
    if resolved.name not in ("float16", "float32", "float64"):
        raise TypeError(f"{name} must be {allowed}, got {resolved}")
    return resolved


def shown(value: object) -> str:
    """``repr(value)``, at most 80 characters (a hostile value must not fill a message)."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python converts to text
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 80 else text[:77] + "..."


def _given(value: object) -> str:
    """``value`` and its type, for a message: ``'False' (str)``."""
    return f"{_shortened(value)} ({type(value).__name__})"


def _shortened(value: object) -> str:
    """``repr(value)``, cut to 80 characters."""
    if isinstance(value, int) and abs(value) >= 10**70:
        return "a huge integer"
    try:
        text = repr(value)
    except ValueError:  # a container of integers beyond Python's 4300-digit repr limit
        return f"a {type(value).__name__} holding a huge integer"
    return text if len(text) <= 80 else text[:77] + "..."


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}"


# -- attributes checked on assignment -------------------------------------------------------


class Checked(property):
    """A data attribute whose every assignment passes through ``check``.

    ``check(name, value) -> value`` is one of the checks above (or any function of that
    form, such as ``functools.partial(check_real, minimum=0)``): it returns the value to
    store and raises TypeError or ValueError naming ``name``, which is
    ``"<class name> <attribute>"`` (``"BinaryCrossEntropy from_logits"``). So a constructor
    that assigns ``self.flag = flag`` and a later ``obj.flag = "False"`` are checked alike.

    The value is stored on the instance under ``_<attribute>``; a class attribute of that
    name gives the default for instances that never assign one. Reading is a property
    whose getter is ``operator.attrgetter``, all in C: some 25 ns more than a plain
    attribute, so a flag read once per forward pass costs nothing measurable (a Python
    ``__get__`` would cost 100 ns). Only assignments run Python code.

    Examples
    --------
    >>> class Loss:
    ...     from_logits = Checked(check_bool, "Whether predictions are logits.")
    ...     def __init__(self, from_logits=False):
    ...         self.from_logits = from_logits
    >>> loss = Loss()
    >>> loss.from_logits = np.bool_(True)
    >>> loss.from_logits
    True
    >>> loss.from_logits = "False"
    Traceback (most recent call last):
        ...
    TypeError: Loss from_logits must be True or False, got 'False' (str)
    """

    def __init__(self, check: Callable[[str, Any], Any], doc: str | None = None) -> None:
        super().__init__(doc=doc)
        self.check = check
        self._doc = doc

    def __set_name__(self, owner: type, name: str) -> None:
        private = "_" + name
        check = self.check

        def checked_set(obj: object, value: object) -> None:
            setattr(obj, private, check(f"{type(obj).__name__} {name}", value))

        # The getter and the setter need the attribute's name, known only now: property
        # takes them at initialisation, so initialise it again with them
        property.__init__(self, operator.attrgetter(private), checked_set, None, self._doc)
        self.__doc__ = self._doc


# -- sizes checked before allocating ---------------------------------------------------------


def check_allocation(what: str, shape: tuple[int, ...], dtype: DTypeLike) -> None:
    """MemoryError naming ``what`` and the size, unless an array of ``shape`` and ``dtype``
    can exist: within NumPy's largest array and this machine's physical memory.

    Call it before allocating an array whose size comes from an argument, so that a stray
    value (a label of 10^6, a width of 10^12) is reported in the caller's terms rather
    than as NumPy's "Unable to allocate 7.28 TiB" or "array is too big".

    Examples
    --------
    >>> check_allocation("a (3, 3) matrix", (3, 3), np.int64)
    >>> check_allocation("a (10^12, 10^12) matrix", (10**12, 10**12), np.int64)
    ... # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    MemoryError: a (10^12, 10^12) matrix would hold 1e+24 values of int64 (7.28e+12 TiB),
    more than any array can hold
    """
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    size = count * dtype.itemsize
    message = f"{what} would hold {_count(count)} values of {dtype} ({_bytes(size)})"
    if size > np.iinfo(np.intp).max:
        raise MemoryError(f"{message}, more than any array can hold")
    memory = physical_memory()
    if memory is not None and size > memory:
        raise MemoryError(f"{message}, more than this machine's {_bytes(memory)} of memory")


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def _count(count: int) -> str:
    return f"{count:,}" if count < 10**9 else f"{float(count):.3g}"


def _bytes(size: int) -> str:
    """``size`` in the largest binary unit that keeps it >= 1 (beyond float range too)."""
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << power:
            try:
                return f"{size / 2**power:.3g} {unit}"
            except OverflowError:
                return f"2^{size.bit_length() - 1 - power} {unit}"
    return f"{size} bytes"


_Kept = TypeVar("_Kept")


class Setting(Generic[_Kept]):
    """A setting checked on every assignment, in ``__init__`` and after, and kept under its
    own name in the instance's ``__dict__``, so that ``vars()`` (which reprs of settings
    objects read) and copies see a plain attribute: for schedules, data loaders and the
    like, read once per epoch or call. (Attributes read in every forward pass use
    :class:`Checked`, whose reads cost less.)

    ``check(name, value) -> value`` gets the attribute's name and returns the value to keep
    or raises.

    Examples
    --------
    >>> class Decay:
    ...     every = Setting(lambda name, value: check_integer(name, value, minimum=1))
    ...     def __init__(self, every):
    ...         self.every = every
    >>> decay = Decay(np.int64(10))
    >>> vars(decay), decay.every
    ({'every': 10}, 10)
    >>> decay.every = 0
    Traceback (most recent call last):
        ...
    ValueError: every must be >= 1, got 0
    """

    def __init__(self, check: Callable[[str, Any], _Kept]) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Setting[_Kept]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _Kept: ...

    def __get__(self, instance: object, owner: type | None = None) -> Setting[_Kept] | _Kept:
        if instance is None:
            return self
        try:
            value: _Kept = instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(f"{type(instance).__name__} has no {self.name} yet") from None
        return value

    # any value may be assigned: ``check`` refuses what does not fit, naming the setting
    def __set__(self, instance: object, value: object) -> None:
        instance.__dict__[self.name] = self.check(self.name, value)
