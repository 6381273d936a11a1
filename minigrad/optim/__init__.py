"""Optimizers: SGD, Momentum, Adam and AdamW, their update rules as functions, param groups."""

from minigrad.optim.adam import Adam, AdamW, adam_update
from minigrad.optim.base import GroupsDifferError, Optimizer, ParamGroup
from minigrad.optim.clip import clip_grad_norm, global_grad_norm
from minigrad.optim.groups import weight_decay_groups
from minigrad.optim.momentum import Momentum, momentum_update
from minigrad.optim.safe_step import SafeStep
from minigrad.optim.sgd import SGD, sgd_update

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "GroupsDifferError",
    "Momentum",
    "Optimizer",
    "ParamGroup",
    "SafeStep",
    "adam_update",
    "clip_grad_norm",
    "global_grad_norm",
    "momentum_update",
    "sgd_update",
    "weight_decay_groups",
]
