"""Standardising over some axes, shared by BatchNorm (over the batch and the positions of each
channel) and LayerNorm (over the trailing axes of each sample): the mean and the biased
variance, computed without overflow, and the gradient through them."""

from __future__ import annotations

import math
from typing import Any, Literal, TypedDict, cast

import numpy as np
from numpy.typing import NDArray

from minigrad.typing import FloatArray


class _Ignored(TypedDict):
    over: Literal["ignore"]
    under: Literal["ignore"]
    invalid: Literal["ignore"]
    divide: Literal["ignore"]


#: every floating-point warning NumPy can give, silenced where overflow is an expected answer
_QUIET: _Ignored = {"over": "ignore", "under": "ignore", "invalid": "ignore", "divide": "ignore"}


def sum_of_products(a: NDArray[Any], b: NDArray[Any], axes: tuple[int, ...]) -> NDArray[np.float64]:
    """sum(a * b) over ``axes`` (kept as length-1 axes), accumulated in float64 without a
    float64 copy of either array: einsum casts them in small blocks."""
    ndim = a.ndim
    kept = [axis for axis in range(ndim) if axis not in axes]
    total = np.einsum(a, list(range(ndim)), b, list(range(ndim)), kept, dtype=np.float64)
    return np.expand_dims(total, axes)


def standardize(
    x: FloatArray, axes: tuple[int, ...], eps: float
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """xhat = (x - mean) / sqrt(var + eps) over ``axes``, with mean and the biased variance
    var = mean((x - mean)^2) of each group.

    Returns xhat in x's dtype, and mean, var and inv_std = 1 / sqrt(var + eps) in float64,
    each with the reduced axes kept (length 1). Two passes: the mean, accumulated in
    float64, then the squared deviations from it, summed in float64 (a float32 square of
    1e30 would overflow). Values so large that x - mean overflows x's dtype (or its square
    float64) take a slower exact path, scaled by each group's largest magnitude. Inputs
    holding NaN or infinities give NaN, without a warning.
    """
    count = math.prod(x.shape[axis] for axis in axes)
    with np.errstate(**_QUIET):
        # keepdims=True gives an array; the stubs say "float64 or an array"
        mean = cast(NDArray[np.float64], np.mean(x, axis=axes, dtype=np.float64, keepdims=True))
        xhat = np.subtract(x, mean.astype(x.dtype))
        var = sum_of_products(xhat, xhat, axes) / count
        if not np.isfinite(var).all():
            return _standardize_scaled(x, axes, eps, count)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat *= inv_std.astype(x.dtype)
    return xhat, mean, var, inv_std


def _standardize_scaled(
    x: FloatArray, axes: tuple[int, ...], eps: float, count: int
) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`standardize` in float64 on x / s, s the largest |x| of each group, where every
    deviation is at most 2: (x - m) / sqrt(v + eps) = (x/s - m/s) / sqrt(v/s^2 + eps/s^2)."""
    scaled = x.astype(np.float64)
    scale = np.max(np.abs(scaled), axis=axes, keepdims=True)
    scale[~(scale > 0)] = 1.0  # an all-zero group (or NaN): nothing to scale
    scaled /= scale
    mean = np.mean(scaled, axis=axes, keepdims=True)
    scaled -= mean
    var = sum_of_products(scaled, scaled, axes) / count
    inv_std = 1.0 / np.sqrt(var + eps / (scale * scale))
    scaled *= inv_std
    return scaled.astype(x.dtype), mean * scale, var * (scale * scale), inv_std / scale


def standardized_input_gradient(
    g: FloatArray,
    xhat: FloatArray,
    scale: FloatArray,
    sum_g: NDArray[np.float64],
    sum_gx: NDArray[np.float64],
    count: int,
) -> FloatArray:
    """dL/dx = scale (g - sum(g) / n - xhat sum(g xhat) / n) for xhat standardised over
    groups of n = ``count`` values, the full derivative through the mean and the variance.

    ``sum_g`` and ``sum_gx`` are the group sums (reduced axes kept), ``scale`` is
    inv_std (times the per-channel weight for BatchNorm) in x's dtype; the result is in
    xhat's dtype.
    """
    dtype = xhat.dtype
    with np.errstate(over="ignore"):  # a float64 sum beyond float16 becomes inf, as a cast does
        grad = xhat * (sum_gx / -count).astype(dtype)
        grad += g
        grad -= (sum_g / count).astype(dtype)
        grad *= scale
    return grad
