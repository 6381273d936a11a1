"""Layers: the base class, Dense, the activations and Normalization."""

from minigrad.layers.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from minigrad.layers.base import Layer
from minigrad.layers.conv import Conv1d, Conv2d
from minigrad.layers.dense import Dense
from minigrad.layers.flatten import Flatten
from minigrad.layers.normalization import Normalization
from minigrad.layers.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)

__all__ = [
    "Activation",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "Dense",
    "Flatten",
    "Layer",
    "LeakyReLU",
    "MaxPool1d",
    "MaxPool2d",
    "Normalization",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
