"""Gradient clipping by the global norm of all gradients."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from minigrad.optim.base import _parameter_list, real
from minigrad.parameter import Parameter

__all__ = ["clip_grad_norm", "global_grad_norm"]


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
    min(1, max_norm / (n + 1e-6)), as torch.nn.utils.clip_grad_norm_ does, so the direction
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
