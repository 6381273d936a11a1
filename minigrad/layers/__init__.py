"""Layers: the base class, Dense, the activations and Normalization."""

from minigrad.layers.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from minigrad.layers.base import Layer
from minigrad.layers.dense import Dense
from minigrad.layers.normalization import Normalization

__all__ = [
    "Activation",
    "Dense",
    "Layer",
    "LeakyReLU",
    "Normalization",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
