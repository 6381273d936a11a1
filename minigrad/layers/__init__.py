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
from minigrad.layers.batchnorm import BatchNorm1d, BatchNorm2d
from minigrad.layers.containers import Concat, Residual, Sequential
from minigrad.layers.dense import Dense
from minigrad.layers.dropout import Dropout
from minigrad.layers.embedding import Embedding
from minigrad.layers.normalization import LayerNorm, Normalization

__all__ = [
    "ELU",
    "GELU",
    "Activation",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Dense",
    "Dropout",
    "Embedding",
    "Identity",
    "Layer",
    "LayerNorm",
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
