"""Optimizers: SGD, Momentum, Adam and AdamW, and their update rules as functions."""

from minigrad.optim.adam import Adam, AdamW, adam_update
from minigrad.optim.base import Optimizer
from minigrad.optim.momentum import Momentum, momentum_update
from minigrad.optim.sgd import SGD, sgd_update

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Momentum",
    "Optimizer",
    "adam_update",
    "momentum_update",
    "sgd_update",
]
