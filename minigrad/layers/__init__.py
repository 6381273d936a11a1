"""Layers: the base class, Dense, the activations and Normalization."""

from minigrad.layers.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from minigrad.layers.base import Layer
from minigrad.layers.batchnorm import BatchNorm1d, BatchNorm2d
from minigrad.layers.dense import Dense
from minigrad.layers.dropout import Dropout
from minigrad.layers.embedding import Embedding
from minigrad.layers.normalization import LayerNorm, Normalization

__all__ = [
    "Activation",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dense",
    "Dropout",
    "Embedding",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Normalization",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
