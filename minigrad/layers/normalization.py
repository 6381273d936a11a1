"""Normalization: standardise each feature with statistics that belong to the model."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import check_allocation, forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers._checks import (
    bad_gradient,
    in_dtype,
    layer_width,
    listed,
    parameter_dtype,
    real_array,
    shown,
)
from minigrad.layers.base import Layer, stale_backward
from minigrad.parameter import Buffer

__all__ = ["Normalization"]

#: rows per chunk of adapt's float64 passes: about 8 MiB of float64 at a time
_CHUNK_VALUES = 1 << 20


class Normalization(Layer):
    """Standardise each feature: y = (x - mean) / std, with the statistics kept in the model.

    Put it first in a model trained on standardised data, so that the model takes raw
    inputs and its statistics are saved with it (they are :class:`~minigrad.Buffer` s:
    in ``state_dict()`` and model files, never trained), as Keras's ``Normalization``
    layer does. Learn the statistics with :meth:`adapt` or give them to the constructor;
    until then the layer is the identity (mean 0, std 1).

    Parameters
    ----------
    num_features : int
        The width of the input (and of the output).
    mean, std : array-like of shape (num_features,), optional
        Statistics to use instead of learning them: finite, and std > 0.
    dtype : float16, float32 or float64, default float32
        dtype of the statistics and of the output; inputs are converted to it.

    Attributes
    ----------
    mean, std : Buffer of shape (num_features,)
        The statistics, saved with the model.

    Shape
    -----
    x: (batch, num_features) -> y: (batch, num_features). Floating-point inputs of another
    precision, integers and booleans are converted to the layer's dtype (values beyond its
    range become +-inf, as a cast makes them); complex numbers, strings and object arrays
    are refused. backward returns dL/dx in the layer's dtype.

    Notes
    -----
    Forward: y = (x - mu) / sigma, per feature. Backward: dL/dx = g / sigma (the statistics
    are constants: no parameter, nothing to train).

    ``adapt(x)`` sets mu = (1/n) sum_i x_i and sigma = sqrt((1/n) sum_i (x_i - mu)^2) per
    feature (the population standard deviation, as Keras and scikit-learn's StandardScaler
    use), accumulated in float64 in two passes. A feature whose spread is within float64
    rounding of zero (a constant column) gets sigma = 1, so it becomes x - mu instead of a
    division by zero.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> norm = Normalization(2).adapt(x)
    >>> norm.mean.value, norm.std.value
    (array([ 2., 20.], dtype=float32), array([ 1., 10.], dtype=float32))
    >>> norm(x)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> list(norm.state_dict()), norm.parameters()
    (['mean', 'std'], [])
    >>> from minigrad import Dense, Sequential
    >>> model = Sequential(norm, Dense(2, 1, rng=0))  # takes raw inputs
    >>> list(model.state_dict())
    ['0.mean', '0.std', '1.weight', '1.bias']
    """

    def __init__(
        self,
        num_features: int,
        *,
        mean: ArrayLike | None = None,
        std: ArrayLike | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.num_features = layer_width("Normalization num_features", num_features)
        dtype = parameter_dtype("Normalization", dtype)
        check_allocation(
            f"Normalization({self.num_features}) is too large: its mean and std",
            (2, self.num_features),
            dtype,
        )
        self.mean = Buffer(np.zeros(self.num_features, dtype), name="mean")
        self.std = Buffer(np.ones(self.num_features, dtype), name="std")
        if mean is not None:
            self.mean.value[...] = self._statistic("mean", mean)
        if std is not None:
            self.std.value[...] = self._statistic("std", std)
        self._batch: int | None = None

    @property
    def in_features(self) -> int:
        """The input width, ``num_features`` (Sequential checks its neighbours with it)."""
        return self.num_features

    @property
    def out_features(self) -> int:
        """The output width, ``num_features``."""
        return self.num_features

    def _statistic(self, name: str, value: ArrayLike) -> NDArray[np.floating]:
        """A given mean or std, checked: shape (num_features,), finite in the layer's dtype,
        and std > 0."""
        what = f"Normalization {name}"
        array = real_array(value, np.float64, what)
        if array.shape != (self.num_features,):
            raise ShapeError(
                f"{what} must have shape ({self.num_features},), one value per feature, "
                f"got {array.shape}"
            )
        self._check_fits(name, array)
        if name == "std" and not (array > 0).all():
            column = int(np.argmax(~(array > 0)))
            raise ValueError(f"{what} must be > 0, got {array[column]} for feature {column}")
        return array

    def _check_fits(self, name: str, array: NDArray[np.float64]) -> None:
        """ValueError unless every value of ``array`` is finite once in the layer's dtype."""
        dtype = self.mean.dtype
        with np.errstate(over="ignore"):
            cast = array.astype(dtype)
        bad = ~np.isfinite(cast) | ((cast == 0) & (array != 0) if name == "std" else False)
        if bad.any():
            column = int(np.argmax(bad))
            raise ValueError(
                f"Normalization {name} of feature {column} is {array[column]:g}, which is not "
                f"a finite {'positive ' if name == 'std' else ''}number in {dtype}"
                + ("; use dtype=np.float64" if np.isfinite(array[column]) else "")
            )

    def adapt(self, x: ArrayLike) -> Normalization:
        """Learn the mean and std of each feature of ``x``; return the layer itself.

        mu = (1/n) sum_i x_i and sigma = sqrt((1/n) sum_i (x_i - mu)^2), in float64, chunk
        by chunk (no float64 copy of the whole data); sigma = 1 for a feature of zero spread.

        Shape: x (n, num_features), n >= 1.

        Raises
        ------
        ValueError
            ``x`` holds NaN or infinite values (the message names the first feature and
            row), is empty, or a statistic does not fit the layer's dtype.
        ShapeError
            ``x`` is not (n, num_features).
        TypeError
            ``x`` is not an array of real numbers.

        Examples
        --------
        >>> norm = Normalization(2).adapt([[0.0, 5.0], [2.0, 5.0]])  # feature 1 is constant
        >>> norm.mean.value, norm.std.value
        (array([1., 5.], dtype=float32), array([1., 1.], dtype=float32))
        >>> Normalization(2).adapt([[0.0, 1.0], [np.nan, 2.0]])
        Traceback (most recent call last):
            ...
        ValueError: Normalization.adapt: x holds NaN in feature (column) 0, first at row 1
        """
        x = real_array(x, None, "Normalization.adapt x")
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"Normalization.adapt expected x of shape (n, {self.num_features}), got {x.shape}"
            )
        n = len(x)
        if n == 0:
            raise ValueError("Normalization.adapt needs at least one sample, got 0 rows")
        rows = max(1, _CHUNK_VALUES // self.num_features)
        chunks = [x[start : start + rows] for start in range(0, n, rows)]
        total = np.zeros(self.num_features)
        squares = np.zeros(self.num_features)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, by feature
            for chunk in chunks:
                total += chunk.sum(axis=0, dtype=np.float64)
            _check_finite(x, total)
            mean = total / n
            for chunk in chunks:
                deviation = chunk.astype(np.float64) - mean
                squares += np.einsum("ij,ij->j", deviation, deviation)
        _check_finite(x, squares)
        variance = squares / n
        # Below this bound a variance is float64 rounding of a constant column (the bound
        # scikit-learn's StandardScaler uses to find constant features)
        eps = np.finfo(np.float64).eps
        with np.errstate(over="ignore"):  # a bound beyond float64 is inf: within rounding
            constant = variance <= n * eps * variance + (n * mean * eps) ** 2
        std = np.where(constant, 1.0, np.sqrt(variance))
        self._check_fits("mean", mean)
        self._check_fits("std", std)
        self.mean.value[...] = mean
        self.std.value[...] = std
        return self

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = (x - mean) / std for x of shape (batch, num_features)."""
        try:  # free unless it fails (a statistic replaced by a plain array)
            mean, std = self.mean.value, self.std.value
        except AttributeError:
            self._batch = None
            raise _not_buffers(self) from None
        if type(x) is not np.ndarray or x.dtype != mean.dtype:
            self._batch = None  # a failed forward leaves nothing for backward
            x = real_array(x, mean.dtype, "Normalization input")
        if x.ndim != 2 or x.shape[1] != self.num_features:
            self._batch = None
            raise ShapeError(
                f"{self!r} expected input of shape (batch, {self.num_features}), got {x.shape}"
            )
        self._batch = len(x)
        self._forward_training = self.training
        y = x - mean
        y /= std
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g / std, of shape (batch, num_features)."""
        batch = self._batch
        if batch is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if batch is None else stale_backward(self)
        shape = (batch, self.num_features)
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, shape)
        try:
            std = self.std.value
        except AttributeError:
            raise _not_buffers(self) from None
        dtype = grad_output.dtype
        if dtype is not std.dtype and dtype != std.dtype:
            grad_output = in_dtype(grad_output, std.dtype)
        return grad_output / std

    def get_config(self) -> dict[str, Any]:
        """The width and the dtype name; the statistics travel as tensors (buffers)."""
        return {"num_features": self.num_features, "dtype": self.mean.dtype.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Normalization:
        """A Normalization of the configured width and dtype, its statistics to be loaded."""
        expected = {"num_features", "dtype"}
        if not isinstance(config, dict):
            raise TypeError(f"a Normalization config is a dict, got {type(config).__name__}")
        if set(config) != expected:
            raise ValueError(
                f"a Normalization config has the keys {sorted(expected)}, got {listed(config)}"
            )
        if config["dtype"] not in ("float16", "float32", "float64"):
            raise ValueError(
                "Normalization dtype must be 'float16', 'float32' or 'float64', "
                f"got {shown(config['dtype'])}"
            )
        return cls(**config)

    def _check_loaded(self, arrays: dict[str, NDArray[np.floating]], prefix: str) -> None:
        """Refuse statistics that forward cannot use: a mean that is not finite, a std that
        is not finite and positive (from a damaged or hand-edited model file)."""
        for name in ("mean", "std"):
            values = arrays[name]
            bad = ~np.isfinite(values) if name == "mean" else ~(np.isfinite(values) & (values > 0))
            if bad.any():
                feature = int(np.argmax(bad))
                raise ValueError(
                    f"state_dict[{prefix + name!r}] holds {values[feature]} for feature "
                    f"{feature}: a Normalization {name} must be finite"
                    + (" and > 0" if name == "std" else "")
                )

    def extra_repr(self) -> str:
        """``num_features=...``, shown in the repr."""
        return f"num_features={self.num_features}"


def _not_buffers(layer: Normalization) -> TypeError:
    """The error for a mean or std that is no longer a Buffer (assigned an array)."""
    for name in ("mean", "std"):
        value = getattr(layer, name, None)
        if not isinstance(value, Buffer):
            return TypeError(
                f"Normalization.{name} must be a Buffer, got {type(value).__name__}: to set "
                f"the statistics, write into the buffer (layer.{name}.value[...] = array), "
                "call adapt(x) or pass them to the constructor"
            )
    return TypeError("Normalization.mean and Normalization.std must be Buffers")


def _check_finite(x: NDArray, sums: NDArray[np.float64]) -> None:
    """ValueError naming the first feature whose float64 sum is not finite, and why."""
    bad = ~np.isfinite(sums)
    if not bad.any():
        return
    column = int(np.argmax(bad))
    values = x[:, column]
    nan, infinite = np.isnan(values), np.isinf(values)
    if nan.any() or infinite.any():
        kind = "NaN" if nan.any() else "infinite values"
        row = int(np.argmax(nan if nan.any() else infinite))
        raise ValueError(
            f"Normalization.adapt: x holds {kind} in feature (column) {column}, first at row {row}"
        )
    raise ValueError(
        f"Normalization.adapt: the values of feature (column) {column} are too large to "
        "average in float64"
    )
