"""Weight initialisers: He (Kaiming) and Xavier (Glorot), normal and uniform.

Every initialiser has the signature ``init(shape, rng, dtype) -> ndarray`` with
``shape = (fan_out, fan_in)`` for a Dense weight and ``(out_channels, in_channels / groups,
*kernel_size)`` for a convolution's, and draws from the NumPy Generator it is given (or one
made from a seed, see :func:`generator`), so results are reproducible. The built-in ones
check their arguments: ``shape`` is a tuple of two or more integers >= 1 (Python or NumPy),
``dtype`` float16, float32 or float64 (None, integer, complex, bool and object dtypes are a
TypeError); a shape whose float64 draw cannot fit in memory is a MemoryError naming it,
raised before drawing.

The fans of a weight of more than two dimensions count the kernel's taps, as
``torch.nn.init`` computes them: with ``receptive = prod(shape[2:])`` (kh * kw for a 2-d
convolution),

    fan_in = shape[1] * receptive = in_channels / groups * kh * kw
    fan_out = shape[0] * receptive = out_channels * kh * kw

so fan_in is the number of inputs each output sums. (For a grouped convolution each input
feeds only out_channels / groups channels; like PyTorch, fan_out is read from the shape alone,
which does not hold the number of groups.)

==================  ==========================================  ================================
name                distribution                                suits
==================  ==========================================  ================================
``he_normal``       N(0, 2 / fan_in)                            ReLU, LeakyReLU
``he_uniform``      U(-a, a), a = sqrt(6 / fan_in)              ReLU, LeakyReLU
``xavier_normal``   N(0, 2 / (fan_in + fan_out))                tanh, sigmoid, linear
``xavier_uniform``  U(-a, a), a = sqrt(6 / (fan_in + fan_out))  tanh, sigmoid, linear (default)
==================  ==========================================  ================================

``"he"`` and ``"kaiming"`` are aliases of ``"he_normal"``; ``"xavier"`` and ``"glorot"`` of
``"xavier_uniform"`` (Keras's default); ``"glorot_normal"`` / ``"glorot_uniform"`` and
``"kaiming_normal"`` / ``"kaiming_uniform"`` also work.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from minigrad._validation import check_allocation, check_float_dtype, shown
from minigrad.typing import FloatArray

__all__ = [
    "Initializer",
    "generator",
    "get_initializer",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
]

Initializer = Callable[[tuple[int, ...], np.random.Generator, np.dtype], FloatArray]


def _checked(
    name: str, shape: object, dtype: DTypeLike
) -> tuple[tuple[int, ...], int, int, np.dtype[np.floating[Any]]]:
    """``shape`` as a tuple of Python ints >= 1 (at least two), its fans (fan_in, fan_out)
    and ``dtype`` as float16, float32 or float64, or a TypeError / ValueError naming the
    initialiser; MemoryError before a draw that cannot fit (the values are drawn in
    float64, then cast)."""
    expected = (
        f"{name} expects a weight shape (fan_out, fan_in), or (out_channels, in_channels "
        "/ groups, *kernel_size) for a convolution, of positive widths"
    )
    if not isinstance(shape, tuple) or len(shape) < 2:
        error = TypeError if not isinstance(shape, tuple) else ValueError
        raise error(f"{expected}, got {shown(shape)}")
    for index, width in enumerate(shape):
        if isinstance(width, (bool, np.bool_)) or not isinstance(width, numbers.Integral):
            raise TypeError(
                f"{expected}, got {shown(shape)}: shape[{index}] is {shown(width)} "
                f"({type(width).__name__}), not an integer"
            )
        if width < 1:
            raise ValueError(f"{expected}, got {shown(shape)}")
    sizes = tuple(int(width) for width in shape)
    dtype = check_float_dtype(f"{name} dtype", dtype)
    check_allocation(f"{name}{sizes} is too large: its float64 draw", sizes, np.float64)
    receptive = math.prod(sizes[2:])
    return sizes, sizes[1] * receptive, sizes[0] * receptive, dtype


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike) -> FloatArray:
    """N(0, std^2) with std = sqrt(2 / fan_in) (He et al., 2015).

    Shape: ``shape`` = (fan_out, fan_in) or (out_channels, in_channels / groups,
    ``*kernel_size``) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = he_normal((256, 512), np.random.default_rng(0), np.float32)
    >>> w.shape, w.dtype, round(float(w.std() / np.sqrt(2 / 512)), 2)  # std / sqrt(2 / fan_in)
    ((256, 512), dtype('float32'), 1.0)
    """
    shape, fan_in, _, dtype = _checked("he_normal", shape, dtype)
    rng = generator(rng)
    std: np.float64 = np.sqrt(2.0 / fan_in)  # NumPy's stubs type the ufunc's result as Any
    return (rng.standard_normal(shape) * std).astype(dtype)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike) -> FloatArray:
    """U(-a, a) with a = sqrt(6 / fan_in), the same variance as he_normal.

    Shape: ``shape`` = (fan_out, fan_in) or (out_channels, in_channels / groups,
    ``*kernel_size``) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = he_uniform((256, 512), np.random.default_rng(0), np.float32)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 512)), round(float(w.std() / np.sqrt(2 / 512)), 2)
    (True, 1.0)

    A Conv2d(32, 64, kernel_size=3) weight: fan_in = 32 * 3 * 3 inputs per output.

    >>> w = he_uniform((64, 32, 3, 3), np.random.default_rng(0), np.float32)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 288)), round(float(w.std() / np.sqrt(2 / 288)), 2)
    (True, 1.0)
    """
    shape, fan_in, _, dtype = _checked("he_uniform", shape, dtype)
    bound = np.sqrt(6.0 / fan_in)
    return generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike) -> FloatArray:
    """N(0, std^2) with std = sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio, 2010).

    Shape: ``shape`` = (fan_out, fan_in) or (out_channels, in_channels / groups,
    ``*kernel_size``) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = xavier_normal((256, 512), np.random.default_rng(0), np.float64)
    >>> w.dtype, round(float(w.std() / np.sqrt(2 / (512 + 256))), 2)
    (dtype('float64'), 1.0)
    """
    shape, fan_in, fan_out, dtype = _checked("xavier_normal", shape, dtype)
    rng = generator(rng)
    scale: np.float64 = np.sqrt(2.0 / (fan_in + fan_out))  # the stubs say Any
    return (rng.standard_normal(shape) * scale).astype(dtype)


def xavier_uniform(
    shape: tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike
) -> FloatArray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), the same variance as xavier_normal.

    Shape: ``shape`` = (fan_out, fan_in) or (out_channels, in_channels / groups,
    ``*kernel_size``) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = xavier_uniform((256, 512), np.random.default_rng(0), np.float32)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 768)), round(float(w.std() / np.sqrt(2 / 768)), 2)
    (True, 1.0)
    """
    shape, fan_in, fan_out, dtype = _checked("xavier_uniform", shape, dtype)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


_BY_NAME: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he": he_normal,
    "kaiming": he_normal,
    "kaiming_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "glorot_normal": xavier_normal,
    "glorot_uniform": xavier_uniform,
}


def get_initializer(init: str | Initializer) -> Initializer:
    """Look an initialiser up by name, or return ``init`` itself when it is callable.

    Names are case-insensitive and include the aliases in the module docstring.

    Examples
    --------
    >>> get_initializer("kaiming") is he_normal, get_initializer("Glorot") is xavier_uniform
    (True, True)
    >>> get_initializer("zeros")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown init 'zeros'; expected one of [...] or a callable init(shape, rng, dtype)
    """
    if isinstance(init, type):
        raise TypeError(
            f"init must be a name or a function init(shape, rng, dtype), got the class "
            f"{init.__name__}"
        )
    if callable(init):
        return init
    if not isinstance(init, str):
        raise TypeError(
            f"init must be a name or a function init(shape, rng, dtype), got {type(init).__name__}"
        )
    try:
        return _BY_NAME[init.lower()]
    except KeyError:
        shown = init if len(init) <= 40 else init[:37] + "..."
        raise ValueError(
            f"unknown init {shown!r}; expected one of {sorted(_BY_NAME)} "
            "or a callable init(shape, rng, dtype)"
        ) from None


def generator(
    rng: int
    | np.integer[Any]
    | np.random.Generator
    | np.random.BitGenerator
    | np.random.SeedSequence
    | None,
    what: str = "rng",
) -> np.random.Generator:
    """A NumPy Generator from a seed, a Generator or None, as ``np.random.default_rng`` makes
    it, with the argument checked first.

    ``rng`` may be None (fresh entropy), an integer >= 0 (Python or NumPy), a Generator
    (used as it is), a SeedSequence or a BitGenerator. A bool, a float or a string is a
    TypeError naming ``what``, rather than a seed NumPy would take or reject in its own words.

    Examples
    --------
    >>> generator(0).integers(10, size=3), generator(np.int64(0)).integers(10, size=3)
    (array([8, 6, 5]), array([8, 6, 5]))
    >>> generator(True, "Dense rng")
    Traceback (most recent call last):
        ...
    TypeError: Dense rng must be None, an integer seed >= 0 or a numpy Generator, got True (bool)
    """
    if rng is None or isinstance(
        rng, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)
    ):
        return np.random.default_rng(rng)
    expected = "None, an integer seed >= 0 or a numpy Generator"
    given: object = rng  # checked as any object: a bool is an int too, a float may come
    if isinstance(given, (bool, np.bool_)) or not isinstance(given, numbers.Integral):
        text = repr(rng) if len(repr(rng)) <= 80 else repr(rng)[:77] + "..."
        raise TypeError(f"{what} must be {expected}, got {text} ({type(rng).__name__})")
    if rng < 0:
        raise ValueError(f"{what} must be {expected}, got {rng}")
    return np.random.default_rng(int(rng))
