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

    >>> p = Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> global_grad_norm([p])
    5.0
    """
    total = 0.0
    for p in _parameter_list(params, "global_grad_norm"):
        # in float64: float32 squares overflow past 1.8e19 and vanish below 1e-23
        flat = p.grad.reshape(-1).astype(np.float64, copy=False)
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale every gradient in place so that their global norm is at most ``max_norm``.

    With n = :func:`global_grad_norm`, each gradient is multiplied by
    min(1, max_norm / (n + 1e-6)), as torch.nn.utils.clip_grad_norm_ does, so the direction
    of the whole update is kept. A NaN or infinite norm leaves the gradients as they are
    (a :class:`~minigrad.callbacks.DivergenceGuard` reports the loss). Returns n, the norm
    before clipping. Call it between ``backward`` and ``optimizer.step()``.

    ``params`` is an iterable of distinct Parameters (a Parameter listed twice would count,
    and be scaled, twice); ``max_norm`` a real number > 0 (not a string, not a bool).

    >>> p = Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> clip_grad_norm([p], max_norm=1.0)
    5.0
    >>> p.grad.round(6)
    array([0.6, 0.8])
    """
    max_norm = real("max_norm", max_norm, above=0.0)
    params = _parameter_list(params, "clip_grad_norm")
    norm = global_grad_norm(params)
    scale = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and scale < 1.0:
        for p in params:
            p.grad *= p.grad.dtype.type(scale)
    return norm
