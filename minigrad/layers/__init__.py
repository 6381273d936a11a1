"""Layers: the base class, Dense, and the activations."""

from minigrad.layers.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from minigrad.layers.base import Layer
from minigrad.layers.dense import Dense

__all__ = ["Activation", "Dense", "Layer", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"]
