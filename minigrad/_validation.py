"""Checks at the public boundary, with messages that say what was expected and what was given."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad.errors import ShapeError


def as_float_array(x: ArrayLike, dtype: np.dtype, what: str) -> NDArray[np.floating]:
    """``x`` as an array of ``dtype`` (no copy when it already is one)."""
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} must be a numeric array, got {type(x).__name__}: {error}"
        ) from None


def check_ndim(x: NDArray, ndim: int, what: str, hint: str = "") -> None:
    """Raise ShapeError unless ``x`` has ``ndim`` dimensions."""
    if x.ndim != ndim:
        raise ShapeError(
            f"{what} expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}" + hint
        )


def check_same_shape(pred: NDArray, target: NDArray, what: str) -> None:
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
        f"{type(owner).__name__}.backward() was called before forward(): "
        "run a forward pass on a batch first"
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
        number = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    bounds = [
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


def _given(value: object) -> str:
    """``value`` and its type, for a message: ``'False' (str)``."""
    return f"{_shortened(value)} ({type(value).__name__})"


def _shortened(value: object) -> str:
    """``repr(value)``, cut to 80 characters."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**70 else "a huge integer"
    return text if len(text) <= 80 else text[:77] + "..."


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}"
