"""Layers, one family per module.

- :mod:`~minigrad.layers.base`: ``Layer``, the contract every layer follows.
- :mod:`~minigrad.layers.dense`: ``Dense``; :mod:`~minigrad.layers.embedding`: ``Embedding``.
- :mod:`~minigrad.layers.activations`: ReLU, LeakyReLU, Tanh, Sigmoid, Softmax, LogSoftmax,
  GELU, SiLU, ELU, Softplus, Identity.
- :mod:`~minigrad.layers.conv`: ``Conv1d``, ``Conv2d``; :mod:`~minigrad.layers.pooling`:
  max, average and adaptive average pooling; :mod:`~minigrad.layers.flatten`: ``Flatten``.
- :mod:`~minigrad.layers.normalization`: ``Normalization`` (fixed statistics), ``LayerNorm``;
  :mod:`~minigrad.layers.batchnorm`: ``BatchNorm1d``, ``BatchNorm2d``.
- :mod:`~minigrad.layers.dropout`: ``Dropout``.
- :mod:`~minigrad.layers.containers`: ``Sequential``, ``Residual``, ``Concat``.

Shared mechanisms live in private modules: sliding-window geometry and im2col in
``_windows``, the scratch memory convolutions reuse in ``_workspace`` (freed with
:func:`free_workspace`), argument checks in ``_checks``.
"""

from minigrad.layers._workspace import free_workspace
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
    "free_workspace",
]
