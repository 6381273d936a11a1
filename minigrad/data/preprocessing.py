"""Preparing arrays for training: train/test split, standardisation, one-hot labels."""

from __future__ import annotations

import numbers
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import Setting, _given, _shortened, check_bool, check_integer
from minigrad.data.datasets import _gib, _physical_memory
from minigrad.data.loader import _generator, _samples
from minigrad.errors import ShapeError

__all__ = ["Standardizer", "one_hot", "train_test_split"]

_StandardizerT = TypeVar("_StandardizerT", bound="Standardizer")

#: one_hot infers the number of classes from the labels only up to this many (or as many
#: as there are labels, if more); beyond it one stray label would make an enormous array
MAX_INFERRED_CLASSES = 1024


def train_test_split(
    x: ArrayLike,
    y: ArrayLike,
    test_size: float | int = 0.2,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Split ``(x, y)`` into ``x_train, x_test, y_train, y_test``.

    ``test_size`` is a fraction in (0, 1) of the samples (a float: the count is rounded up,
    as scikit-learn does) or a number of samples (an integer, Python or NumPy); a bool or a
    string is refused. With ``shuffle=False`` the test set is the last rows.

    Shape: x (n, ...), y (n, ...) -> x_train (n - k, ...), x_test (k, ...), y_train, y_test
    likewise, with k = ceil(test_size * n) for a fraction.

    >>> x, y = np.arange(10), np.arange(10)
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, 0.3, shuffle=False)
    >>> x_test.tolist()
    [7, 8, 9]
    """
    x, y = _samples("x", x, "train_test_split"), _samples("y", y, "train_test_split")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y must have the same number of samples, got {n} and {len(y)}")
    shuffle = check_bool("shuffle", shuffle)
    rng = _generator(seed)  # checked even when unused, so that a wrong seed is never silent
    n_test = _test_count(test_size, n)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_size={_shortened(test_size)} leaves {max(0, min(n_test, n))} of {n} samples "
            "for testing; both sets need at least one"
        )
    order = rng.permutation(n) if shuffle else np.arange(n)
    train, test = order[: n - n_test], order[n - n_test :]
    return x[train], x[test], y[train], y[test]


def _test_count(test_size: object, n: int) -> int:
    """train_test_split's number of test samples for ``test_size`` (any object: checked)."""
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(
            "test_size must be a fraction in (0, 1) (a float) or a number of samples (an "
            f"integer), got {_given(test_size)}"
        )
    if isinstance(test_size, numbers.Integral):
        return int(test_size)
    fraction = float(test_size)
    if not 0.0 < fraction < 1.0:  # NaN too
        raise ValueError(f"a fractional test_size must lie in (0, 1), got {test_size!r}")
    return int(np.ceil(fraction * n))


class Standardizer:
    """Per-feature standardisation z = (x - mean) / std, with mean and std from training data.

    Fit on the training set only, then transform every set with the same statistics.
    Features with zero spread are left centred but unscaled (their std counts as 1).
    ``fit`` refuses NaN and infinite values (one would make its whole column NaN), naming
    the first one's row and column; ``transform`` passes them through.

    Shape: x (n, features) -> the same shape, in x's float dtype (float32 for integer or
    bool input); ``inverse_transform`` likewise.

    ``mean`` and ``std`` (float64 arrays of shape (features,), None before ``fit``) may also
    be set directly, for statistics computed elsewhere: each assignment is checked (a 1-D
    array of finite real numbers, std > 0, or None) and kept as a float64 copy.

    >>> scaler = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> scaler.transform(np.array([[1.0, 6.0]]))
    array([[0., 1.]])
    >>> scaler.inverse_transform(np.array([[0, 1]]))  # integers give float32
    array([[1., 6.]], dtype=float32)
    """

    mean = Setting(lambda name, value: _statistic(name, value, positive=False))
    std = Setting(lambda name, value: _statistic(name, value, positive=True))

    def __init__(self) -> None:
        self.mean = None
        self.std = None

    def fit(self: _StandardizerT, x: ArrayLike) -> _StandardizerT:
        """Learn mean and std per feature from x of shape (n, features); return self.

        Raises TypeError for data that is not real numbers (strings, complex, objects),
        ShapeError unless x is a non-empty matrix, ValueError for NaN or infinite values
        (naming the first one's row and column) or a spread beyond float64's range.
        """
        x = _real_array(x, "Standardizer.fit")
        if x.ndim != 2 or len(x) == 0:
            raise ShapeError(
                f"Standardizer.fit expects a non-empty (n, features) array, got shape {x.shape}"
            )
        data = x.astype(np.float64)
        bad = ~np.isfinite(data)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"Standardizer.fit: x holds {data[row, column]} at row {row}, column {column} "
                f"({int(bad.sum())} non-finite values in all); fill or drop them first"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            mean = data.mean(axis=0)
            std = data.std(axis=0)
        spread = ~(np.isfinite(mean) & np.isfinite(std))
        if spread.any():
            column = int(np.flatnonzero(spread)[0])
            raise ValueError(
                f"Standardizer.fit: column {column}'s mean or spread overflows float64 (values "
                f"up to {np.abs(data[:, column]).max():g}); rescale it first"
            )
        self.mean = mean
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: ArrayLike) -> NDArray[np.floating]:
        """z = (x - mean) / std, in x's float dtype (float32 for integer input)."""
        x, mean, std = self._checked(x, "transform")
        return ((x - mean) / std).astype(_float_dtype(x))

    def fit_transform(self, x: ArrayLike) -> NDArray[np.floating]:
        """``fit(x)``, then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, z: ArrayLike) -> NDArray[np.floating]:
        """x = z * std + mean, the inverse of :meth:`transform`, in z's float dtype (float32
        for integer input: truncating to integers would lose the fractions)."""
        z, mean, std = self._checked(z, "inverse_transform")
        return (z * std + mean).astype(_float_dtype(z))

    def _checked(
        self, x: ArrayLike, method: str
    ) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.float64]]:
        """``x`` as an array of real numbers of shape (n, fitted features), with the fitted
        mean and std; or raised."""
        mean, std = self.mean, self.std
        if mean is None or std is None:
            raise RuntimeError(f"Standardizer.{method}() before fit(): fit it on the training data")
        if mean.shape != std.shape:  # set one by one, to different widths
            raise ShapeError(
                f"Standardizer.{method}: mean has shape {mean.shape} but std has shape "
                f"{std.shape}; set both for the same features"
            )
        x = _real_array(x, f"Standardizer.{method}")
        features = mean.shape[0]
        if x.ndim != 2 or x.shape[1] != features:
            given = f"{x.shape[1]} features" if x.ndim == 2 else f"a {x.ndim}-D array"
            hint = "; one sample is x.reshape(1, -1)" if x.shape == (features,) else ""
            raise ShapeError(
                f"Standardizer.{method}: it was fitted on {features} features, got shape "
                f"{x.shape} ({given}){hint}"
            )
        return x, mean, std

    def __repr__(self) -> str:
        fitted = "unfitted" if self.mean is None else f"features={self.mean.shape[0]}"
        return f"Standardizer({fitted})"


def _statistic(name: str, value: object, *, positive: bool) -> NDArray[np.float64] | None:
    """A Standardizer's ``mean`` or ``std`` as a float64 copy: None, or a 1-D array of finite
    real numbers (> 0 for std, which divides). TypeError, ShapeError or ValueError naming
    ``name`` else."""
    if value is None:
        return None
    array = _real_array(value, f"Standardizer.{name}")
    if array.ndim != 1:
        raise ShapeError(
            f"Standardizer.{name} must be a 1-D array with one value per feature, got shape "
            f"{array.shape}"
        )
    array = array.astype(np.float64)  # a copy: the caller's array may change later
    bad = ~np.isfinite(array) | ((array <= 0) if positive else False)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        expected = "finite numbers > 0" if positive else "finite numbers"
        raise ValueError(
            f"Standardizer.{name} must hold {expected}, got {array[index]} at index {index}"
        )
    return array


def _real_array(x: object, what: str) -> NDArray[Any]:
    """``x`` as an array of booleans, integers or floats; TypeError naming the dtype else."""
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise TypeError(f"{what} expects an array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} expects real numbers (bool, integer or float), got dtype {array.dtype}"
        )
    return array


def _float_dtype(x: NDArray[Any]) -> np.dtype[Any]:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)


def one_hot(
    labels: ArrayLike, classes: int | None = None, dtype: DTypeLike = np.float32
) -> NDArray[Any]:
    """Rows of zeros with a one at each label: (n,) integers in [0, classes) -> (n, classes).

    ``classes`` (an integer >= 0, Python or NumPy) is the number of columns. When it is
    None it is inferred as max(labels) + 1, but only up to max(n, 1024): a larger maximum is
    far more likely a stray label than a class, and would allocate n x (max + 1) entries, so
    it is refused and ``classes`` must be given. ``dtype`` is any NumPy numeric dtype.

    Raises TypeError for labels that are not integers and for a ``classes`` or ``dtype`` of
    the wrong type, ShapeError for labels that are not 1-D, ValueError for a label outside
    [0, classes), and MemoryError (naming the size, before allocating) when the result would
    not fit in this machine's memory.

    >>> one_hot([0, 2], classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    try:
        labels = np.asarray(labels)
    except ValueError:  # ragged nested lists: NumPy's "inhomogeneous shape"
        raise ShapeError(
            "one_hot expects a 1-D array of integer labels, got nested lists of different lengths"
        ) from None
    if labels.ndim != 1:
        raise ShapeError(
            "one_hot expects a 1-D array of integer labels, got "
            f"{labels.dtype} of shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            "one_hot expects a 1-D array of integer labels, got "
            f"{labels.dtype} of shape {labels.shape}"
        )
    if not labels.size:
        labels = labels.astype(np.intp)  # [] is float64: no label, nothing to check
    dtype = _numeric_dtype(dtype)
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, -1)
    if classes is None:
        limit = max(len(labels), MAX_INFERRED_CLASSES)
        if high + 1 > limit:
            raise ValueError(
                f"one_hot: the largest label is {high}, so inferring the classes would make "
                f"{high + 1} columns for {len(labels)} labels; pass classes= explicitly (or "
                "check the labels for a stray value)"
            )
        classes = high + 1
    else:
        classes = check_integer("classes", classes, minimum=0)
    if labels.size and (low < 0 or high >= classes):
        raise ValueError(
            f"one_hot labels must lie in [0, {_shortened(classes)}), got {low} to {high}"
        )
    size = len(labels) * classes * dtype.itemsize
    message = (
        f"one_hot: {len(labels)} labels x {_shortened(classes)} classes of {dtype} need "
        f"{_gib(size)}"
    )
    memory = _physical_memory()
    if memory is not None and size > memory:
        raise MemoryError(f"{message}, more than this machine's {_gib(memory)}")
    try:
        out = np.zeros((len(labels), classes), dtype=dtype)
    except (MemoryError, ValueError) as error:  # ValueError: beyond NumPy's largest array
        raise MemoryError(f"{message}, which cannot be allocated") from error
    out[np.arange(len(labels)), labels] = 1
    return out


def _numeric_dtype(dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a NumPy bool, integer or float dtype; TypeError naming it otherwise (None
    included, which NumPy would read as float64)."""
    try:
        result = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):  # ValueError: NumPy's repr of an integer of 4300+ digits
        result = None
    if result is None or result.kind not in "biuf":
        raise TypeError(
            f"one_hot dtype must be a NumPy bool, integer or float dtype, got {_given(dtype)}"
        )
    return result
