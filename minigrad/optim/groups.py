"""Param groups made for you: weight decay on the weights only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minigrad.layers.base import Layer
from minigrad.optim.base import _parameter_list, check_non_negative
from minigrad.parameter import Parameter

__all__ = ["weight_decay_groups"]


def weight_decay_groups(
    model: Layer | Iterable[Parameter], weight_decay: float
) -> list[dict[str, Any]]:
    """Two param groups: weight decay on the weights, none on biases and normalization.

    Decay pulls parameters towards 0. For the weight matrices and kernels (parameters of
    two dimensions or more: Dense's (out, in), Conv2d's (out, in, kh, kw), Embedding's
    table) that is the regularisation wanted; for a bias, or a BatchNorm/LayerNorm scale
    and shift (one dimension), it only pulls the layer's offset and gain towards 0 and
    hurts. So the first group holds every parameter with ``ndim >= 2`` with
    ``weight_decay``, the second every other one (1-d and 0-d) with 0.0, each in model
    order. Pass the result to any optimizer as its params; other hyperparameters come from
    the optimizer's arguments.

    Parameters
    ----------
    model : Layer or iterable of Parameter
    weight_decay : float >= 0
        The decay of the first group.

    Returns
    -------
    list of dict
        ``[{"params": weights, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0}]`` (a group may be empty).

    Examples
    --------
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(4, 8, rng=0), mg.LayerNorm(8), mg.Dense(8, 1, rng=1))
    >>> groups = weight_decay_groups(model, 0.01)
    >>> [[p.name for p in group["params"]] for group in groups]
    [['weight', 'weight'], ['bias', 'weight', 'bias', 'bias']]
    >>> optimizer = mg.AdamW(weight_decay_groups(model, 0.01), lr=1e-3)
    >>> [group["weight_decay"] for group in optimizer.param_groups]
    [0.01, 0.0]
    """
    weight_decay = check_non_negative("weight_decay", weight_decay)
    if isinstance(model, Layer):
        params = model.parameters()
    else:
        params = _parameter_list(model, "weight_decay_groups")
    return [
        {"params": [p for p in params if p.value.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.value.ndim < 2], "weight_decay": 0.0},
    ]
