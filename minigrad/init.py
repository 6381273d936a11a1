"""Weight initialisers: He (Kaiming) and Xavier (Glorot), normal and uniform.

Every initialiser has the signature ``init(shape, rng, dtype) -> ndarray`` with
``shape = (fan_out, fan_in)`` for a Dense weight, and draws from the NumPy Generator it is
given, so results are reproducible from a seed.

=================  ======================================  ==================================
name               distribution                            suits
=================  ======================================  ==================================
``he_normal``      N(0, 2 / fan_in)                        ReLU, LeakyReLU
``he_uniform``     U(-a, a), a = sqrt(6 / fan_in)          ReLU, LeakyReLU
``xavier_normal``  N(0, 2 / (fan_in + fan_out))            tanh, sigmoid, linear
``xavier_uniform`` U(-a, a), a = sqrt(6 / (fan_in + fan_out))  tanh, sigmoid, linear (default)
=================  ======================================  ==================================

``"he"`` and ``"kaiming"`` are aliases of ``"he_normal"``; ``"xavier"`` and ``"glorot"`` of
``"xavier_uniform"`` (Keras's default); ``"glorot_normal"`` / ``"glorot_uniform"`` and
``"kaiming_normal"`` / ``"kaiming_uniform"`` also work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Initializer",
    "get_initializer",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
]

Initializer = Callable[[tuple[int, ...], np.random.Generator, np.dtype], NDArray[np.floating]]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (fan_out, fan_in)."""
    if len(shape) != 2:
        raise ValueError(f"initialisers expect a 2-D weight shape (fan_out, fan_in), got {shape}")
    fan_out, fan_in = shape
    return fan_in, fan_out


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> NDArray:
    """N(0, std^2) with std = sqrt(2 / fan_in) (He et al., 2015).

    Shape: ``shape`` = (fan_out, fan_in) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = he_normal((256, 512), np.random.default_rng(0), np.float32)
    >>> w.shape, w.dtype, round(float(w.std() / np.sqrt(2 / 512)), 2)  # std / sqrt(2 / fan_in)
    ((256, 512), dtype('float32'), 1.0)
    """
    fan_in, _ = _fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> NDArray:
    """U(-a, a) with a = sqrt(6 / fan_in), the same variance as he_normal.

    Shape: ``shape`` = (fan_out, fan_in) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = he_uniform((256, 512), np.random.default_rng(0), np.float32)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 512)), round(float(w.std() / np.sqrt(2 / 512)), 2)
    (True, 1.0)
    """
    fan_in, _ = _fans(shape)
    bound = np.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> NDArray:
    """N(0, std^2) with std = sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio, 2010).

    Shape: ``shape`` = (fan_out, fan_in) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = xavier_normal((256, 512), np.random.default_rng(0), np.float64)
    >>> w.dtype, round(float(w.std() / np.sqrt(2 / (512 + 256))), 2)
    (dtype('float64'), 1.0)
    """
    fan_in, fan_out = _fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> NDArray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), the same variance as xavier_normal.

    Shape: ``shape`` = (fan_out, fan_in) -> an array of that shape and ``dtype``.

    Examples
    --------
    >>> w = xavier_uniform((256, 512), np.random.default_rng(0), np.float32)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 768)), round(float(w.std() / np.sqrt(2 / 768)), 2)
    (True, 1.0)
    """
    fan_in, fan_out = _fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


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
    if callable(init):
        return init
    try:
        return _BY_NAME[init.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown init {init!r}; expected one of {sorted(_BY_NAME)} "
            "or a callable init(shape, rng, dtype)"
        ) from None
