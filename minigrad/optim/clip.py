"""Gradient clipping: by the global norm of all gradients, or entry by entry."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from minigrad.optim.base import _parameter_list, real
from minigrad.parameter import Parameter

__all__ = ["clip_grad_norm", "clip_grad_value", "global_grad_norm"]


def global_grad_norm(params: Iterable[Parameter]) -> float:
    """sqrt(sum over every parameter of sum(grad ** 2)), accumulated in float64.

    The norm is finite whenever the true one is: when the sum of squares overflows float64
    (gradients beyond about 1e154) or underflows (below about 1e-154), it is computed again
    from the gradients divided by the largest magnitude among them, n = a ||g / a||. NaN in a
    gradient gives NaN, an infinite entry inf.

    >>> p = Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> global_grad_norm([p])
    5.0
    >>> q = Parameter(np.zeros(4)); q.grad[:] = 1e200  # squares overflow float64, the norm not
    >>> global_grad_norm([q])
    2e+200
    """
    params = _parameter_list(params, "global_grad_norm")
    total = 0.0
    with np.errstate(over="ignore"):  # an overflow to inf is answered below
        for p in params:
            # in float64: float32 squares overflow past 1.8e19 and vanish below 1e-23
            flat = p.grad.reshape(-1).astype(np.float64, copy=False)
            total += float(np.dot(flat, flat))
    if math.isnan(total) or _SMALLEST_EXACT < total < math.inf:
        return math.sqrt(total)
    return _scaled_norm(params)


#: Below this a sum of squares may hold squares that underflowed (float64 squares of
#: magnitudes below 1.5e-154 are subnormal or 0): such a sum is computed again, scaled
_SMALLEST_EXACT = 1e-280


def _scaled_norm(params: list[Parameter]) -> float:
    """The global norm as a ||g / a||, a the largest magnitude of any gradient entry: each
    scaled square is at most 1, so the sum neither overflows nor loses the small entries."""
    largest = 0.0
    for p in params:
        if p.grad.size:
            largest = max(largest, float(np.max(p.grad)), -float(np.min(p.grad)))
    if largest == 0.0 or not math.isfinite(largest):  # all zero, or an infinite entry
        return largest
    total = 0.0
    for p in params:
        flat = np.divide(p.grad.reshape(-1), largest, dtype=np.float64)
        total += float(np.dot(flat, flat))
    return largest * math.sqrt(total)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale every gradient in place so that their global norm is at most ``max_norm``.

    With n = :func:`global_grad_norm`, each gradient is multiplied by
    min(1, max_norm / (n + 1e-6)), as ``torch.nn.utils.clip_grad_norm_`` does, so the direction
    of the whole update is kept. A NaN or infinite norm leaves the gradients as they are
    (a :class:`~minigrad.callbacks.DivergenceGuard` reports the loss). Returns n, the norm
    before clipping. Call it between ``backward`` and ``optimizer.step()``.

    ``params`` is an iterable of distinct Parameters (a Parameter listed twice would count,
    and be scaled, twice); frozen ones (``requires_grad`` False), whose gradients are not
    computed, are left out of the norm and left as they are. ``max_norm`` is a real number
    > 0 (not a string, not a bool).

    >>> p = Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> clip_grad_norm([p], max_norm=1.0)
    5.0
    >>> p.grad.round(6)
    array([0.6, 0.8])
    """
    max_norm = real("max_norm", max_norm, above=0.0)
    params = [p for p in _parameter_list(params, "clip_grad_norm") if p.requires_grad]
    norm = global_grad_norm(params)
    scale = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and scale < 1.0:
        for p in params:
            if scale >= np.finfo(p.grad.dtype).tiny:
                p.grad *= p.grad.dtype.type(scale)
            else:  # a scale that is subnormal (or 0) in the gradient's dtype: g / n, then * max
                for operation, factor in ((np.divide, norm + 1e-6), (np.multiply, max_norm)):
                    operation(p.grad, factor, out=p.grad, dtype=np.float64, casting="same_kind")
    return norm


def clip_grad_value(params: Iterable[Parameter], clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place.

    ``torch.nn.utils.clip_grad_value_``'s semantics: each entry on its own, so unlike
    :func:`clip_grad_norm` the direction of the update may change. An infinite entry
    becomes +-clip_value; NaN stays NaN (as in torch; a
    :class:`~minigrad.callbacks.DivergenceGuard` or ``fit``'s SafeStep reports it). Frozen
    parameters (``requires_grad`` False) are left as they are. Call it between
    ``backward`` and ``optimizer.step()``.

    ``params`` is an iterable of distinct Parameters; ``clip_value`` a real number >= 0
    (not a string, not a bool).

    Shape: each gradient keeps its shape and dtype.

    >>> p = Parameter(np.zeros(3)); p.grad[:] = [0.5, -3.0, np.inf]
    >>> clip_grad_value([p], clip_value=1.0)
    >>> p.grad
    array([ 0.5, -1. ,  1. ])
    """
    clip_value = real("clip_value", clip_value, minimum=0.0)
    for p in _parameter_list(params, "clip_grad_value"):
        if p.requires_grad:
            with np.errstate(over="ignore"):  # beyond float16's range: inf, no clamp
                bound = p.grad.dtype.type(clip_value)
            np.clip(p.grad, -bound, bound, out=p.grad)
