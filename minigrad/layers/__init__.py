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
from minigrad.layers.conv import Conv1d, Conv2d
from minigrad.layers.dense import Dense
from minigrad.layers.dropout import Dropout
from minigrad.layers.embedding import Embedding
from minigrad.layers.flatten import Flatten
from minigrad.layers.normalization import LayerNorm, Normalization
from minigrad.layers.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)

__all__ = [
    "ELU",
    "GELU",
    "Activation",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "LogSoftmax",
    "MaxPool1d",
    "MaxPool2d",
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
