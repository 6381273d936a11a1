"""Preparing arrays for training: train/test split, standardisation, one-hot labels."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["Standardizer", "one_hot", "train_test_split"]


def train_test_split(
    x: ArrayLike,
    y: ArrayLike,
    test_size: float | int = 0.2,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Split ``(x, y)`` into ``x_train, x_test, y_train, y_test``.

    ``test_size`` is a fraction in (0, 1) of the samples (rounded up, as scikit-learn does)
    or a number of samples. With ``shuffle=False`` the test set is the last rows.

    Shape: x (n, ...), y (n, ...) -> x_train (n - k, ...), x_test (k, ...), y_train, y_test
    likewise, with k = ceil(test_size * n) for a fraction.

    >>> x, y = np.arange(10), np.arange(10)
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, 0.3, shuffle=False)
    >>> x_test.tolist()
    [7, 8, 9]
    """
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y must have the same number of samples, got {n} and {len(y)}")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"a fractional test_size must lie in (0, 1), got {test_size}")
        n_test = int(np.ceil(test_size * n))
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_size={test_size!r} leaves {n_test} of {n} samples for testing; "
            "both sets need at least one"
        )
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    train, test = order[: n - n_test], order[n - n_test :]
    return x[train], x[test], y[train], y[test]


class Standardizer:
    """Per-feature standardisation z = (x - mean) / std, with mean and std from training data.

    Fit on the training set only, then transform every set with the same statistics.
    Features with zero spread are left centred but unscaled (their std counts as 1).

    Shape: x (n, features) -> same shape and dtype.

    >>> scaler = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> scaler.transform(np.array([[1.0, 6.0]]))
    array([[0., 1.]])
    >>> scaler.inverse_transform(np.array([[0.0, 1.0]]))
    array([[1., 6.]])
    """

    def __init__(self) -> None:
        self.mean: NDArray | None = None
        self.std: NDArray | None = None

    def fit(self, x: ArrayLike) -> Standardizer:
        """Learn mean and std per feature from x of shape (n, features); return self."""
        x = np.asarray(x)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                f"Standardizer.fit expects a non-empty (n, features) array, got shape {x.shape}"
            )
        data = x.astype(np.float64)
        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: ArrayLike) -> NDArray[np.floating]:
        """z = (x - mean) / std, in x's float dtype (float32 for integer input)."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer.transform() before fit(): fit it on the training data")
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"Standardizer was fitted on {self.mean.shape[0]} features, got shape {x.shape}"
            )
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
        return ((x - self.mean) / self.std).astype(dtype)

    def fit_transform(self, x: ArrayLike) -> NDArray[np.floating]:
        """``fit(x)``, then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, z: ArrayLike) -> NDArray[np.floating]:
        """x = z * std + mean, the inverse of :meth:`transform`, in z's dtype."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer.inverse_transform() before fit()")
        z = np.asarray(z)
        return (z * self.std + self.mean).astype(z.dtype)

    def __repr__(self) -> str:
        fitted = "unfitted" if self.mean is None else f"features={self.mean.shape[0]}"
        return f"Standardizer({fitted})"


def one_hot(
    labels: ArrayLike, classes: int | None = None, dtype: DTypeLike = np.float32
) -> NDArray:
    """Rows of zeros with a one at each label: (n,) integers in [0, classes) -> (n, classes).

    >>> one_hot([0, 2], classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "one_hot expects a 1-D array of integer labels, got "
            f"{labels.dtype} of shape {labels.shape}"
        )
    if classes is None:
        classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"one_hot labels must lie in [0, {classes}), got {labels.min()} to {labels.max()}"
        )
    out = np.zeros((len(labels), classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out
