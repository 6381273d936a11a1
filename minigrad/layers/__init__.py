"""Layers: the base class, Dense, the activations and Normalization."""

from minigrad.layers.activations import (
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.layers.base import Layer
from minigrad.layers.containers import Concat, Residual, Sequential
from minigrad.layers.dense import Dense
from minigrad.layers.normalization import Normalization

__all__ = [
    "ELU",
    "GELU",
    "Activation",
    "Concat",
    "Dense",
    "Identity",
    "Layer",
    "LeakyReLU",
    "LogSoftmax",
    "Normalization",
    "ReLU",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
]
