"""Data: mini-batch loading, built-in data sets, MNIST files and preprocessing."""

from minigrad.data.datasets import (
    load_digits,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
)
from minigrad.data.loader import DataLoader
from minigrad.data.mnist import load_mnist, read_idx
from minigrad.data.preprocessing import Standardizer, one_hot, train_test_split

__all__ = [
    "DataLoader",
    "Standardizer",
    "load_digits",
    "load_mnist",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_spirals",
    "make_xor",
    "one_hot",
    "read_idx",
    "train_test_split",
]
