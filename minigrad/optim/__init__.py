"""Optimizers (SGD, Momentum, Adam, AdamW, RMSprop, Adagrad, Adadelta, NAdam, Adamax, RAdam),
their update rules as functions, param groups and gradient clipping."""

from minigrad.optim.adam import Adam, AdamW, adam_update
from minigrad.optim.adam_variants import (
    Adamax,
    NAdam,
    RAdam,
    adamax_update,
    nadam_update,
    radam_update,
)
from minigrad.optim.adaptive import (
    Adadelta,
    Adagrad,
    RMSprop,
    adadelta_update,
    adagrad_update,
    rmsprop_update,
)
from minigrad.optim.base import GroupsDifferError, Optimizer, ParamGroup
from minigrad.optim.clip import clip_grad_norm, clip_grad_value, global_grad_norm
from minigrad.optim.groups import weight_decay_groups
from minigrad.optim.momentum import Momentum, momentum_update
from minigrad.optim.safe_step import SafeStep
from minigrad.optim.sgd import SGD, sgd_update

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "GroupsDifferError",
    "Momentum",
    "NAdam",
    "Optimizer",
    "ParamGroup",
    "RAdam",
    "RMSprop",
    "SafeStep",
    "adadelta_update",
    "adagrad_update",
    "adam_update",
    "adamax_update",
    "clip_grad_norm",
    "clip_grad_value",
    "global_grad_norm",
    "momentum_update",
    "nadam_update",
    "radam_update",
    "rmsprop_update",
    "sgd_update",
    "weight_decay_groups",
]
