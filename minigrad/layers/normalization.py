"""Normalization, which standardises each feature with statistics that belong to the model, and
LayerNorm, which standardises each sample over its trailing axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import (
    Checked,
    check_allocation,
    check_bool,
    check_real,
    forward_not_called,
)
from minigrad.errors import ShapeError
from minigrad.layers._checks import (
    bad_gradient,
    checked_config,
    in_dtype,
    layer_width,
    listed,
    parameter_dtype,
    real_array,
    shown,
)
from minigrad.layers._moments import (
    standardize,
    standardized_input_gradient,
    sum_of_products,
)
from minigrad.layers.base import Layer, stale_backward
from minigrad.parameter import Buffer, Parameter
from minigrad.typing import FloatArray

__all__ = ["LayerNorm", "Normalization"]

_NormalizationT = TypeVar("_NormalizationT", bound="Normalization")
_LayerNormT = TypeVar("_LayerNormT", bound="LayerNorm")

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

    def _statistic(self, name: str, value: ArrayLike) -> FloatArray:
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

    def _check_fits(self, name: str, array: FloatArray) -> None:
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

    def adapt(self: _NormalizationT, x: ArrayLike) -> _NormalizationT:
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

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = (x - mean) / std for x of shape (batch, num_features)."""
        mean: FloatArray
        std: FloatArray
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

    def backward(self, grad_output: FloatArray) -> FloatArray:
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
            std: FloatArray = self.std.value
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
    def from_config(cls: type[_NormalizationT], config: dict[str, Any]) -> _NormalizationT:
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

    def _check_loaded(self, arrays: dict[str, NDArray[Any]], prefix: str) -> None:
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


def _check_finite(x: FloatArray, sums: NDArray[np.float64]) -> None:
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


def _normalized_shape(value: object) -> tuple[int, ...]:
    """LayerNorm's normalized_shape as a tuple of sizes >= 1: an int, or a tuple or list of
    them (not a string, not a float, not a bool); TypeError or ValueError otherwise."""
    what = "LayerNorm normalized_shape"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{what} must hold at least one size, got {shown(value)}")
        if len(value) > 32:
            raise ValueError(f"{what} may hold at most 32 sizes, got {len(value)}")
        return tuple(layer_width(f"{what}[{index}]", size) for index, size in enumerate(value))
    try:
        return (layer_width(what, value),)
    except TypeError:
        raise TypeError(
            f"{what} must be a positive integer or a tuple of them (the sizes of the trailing "
            f"axes), got {shown(value)} ({type(value).__name__})"
        ) from None


class LayerNorm(Layer):
    """Layer normalization: standardise each sample over its trailing axes, as in PyTorch.

    y = (x - mu) / sqrt(var + eps) * w + b, with mu and var the mean and (biased) variance
    of each sample's values over the last ``len(normalized_shape)`` axes (Ba et al., 2016).
    Unlike batch normalization nothing depends on the other samples of the batch, so
    training and evaluation modes compute the same thing and there are no running
    statistics.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The sizes of the trailing axes to normalise over: ``LayerNorm(d)`` for
        (batch, d) or (batch, length, d) inputs, ``LayerNorm((C, H, W))`` for a whole image.
    eps : float > 0, default 1e-5
        Added to the variance, so a constant sample gives xhat = 0 rather than 0 / 0.
    elementwise_affine : bool, default True
        Learn the weight w (ones) and bias b (zeros), of shape ``normalized_shape``, applied
        element by element.
    bias : bool, default True
        With ``elementwise_affine``, learn b too.
    dtype : float16, float32 or float64, default float32
        dtype of the parameters, the output and every gradient; inputs are converted to it.

    Attributes
    ----------
    normalized_shape : tuple of int
    weight, bias : Parameter of shape ``normalized_shape``, or None
        ``state_dict()`` keys ``weight`` and ``bias``, as PyTorch's.

    Shape
    -----
    x: ``(*, *normalized_shape)`` -> y of the same shape; the leading axes (the batch, a
    sequence) are any. Floating-point inputs of another precision, integers and booleans
    are converted to the layer's dtype; complex numbers, strings and objects are refused.

    Notes
    -----
    Forward, for each sample over its M = prod(normalized_shape) values x_j::

        mu = (1/M) sum_j x_j,   var = (1/M) sum_j (x_j - mu)^2
        xhat_j = (x_j - mu) / sqrt(var + eps),   y_j = w_j xhat_j + b_j

    Backward, with g = dL/dy, h_j = w_j g_j and the sums over the sample's M values::

        dL/dw = sum over samples of g xhat,   dL/db = sum over samples of g
        dL/dx_j = 1 / (M sqrt(var + eps)) (M h_j - sum_k h_k - xhat_j sum_k h_k xhat_k)

    the full derivative through the sample's mean and variance. The statistics are
    accumulated in float64 in two passes (the mean, then the squared deviations), so
    float32 values near 1e30 normalise without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> norm = LayerNorm(3)
    >>> norm
    LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> x = np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]])
    >>> norm(x).round(3)  # each row standardised on its own
    array([[-1.225,  0.   ,  1.225],
           [-0.707, -0.707,  1.414]], dtype=float32)
    >>> dx = norm.backward(np.ones((2, 3), np.float32))  # shifting all of a row: no change
    >>> bool(np.allclose(dx, 0.0, atol=1e-6)), norm.weight.grad.shape
    (True, (3,))
    >>> list(LayerNorm((4, 5)).state_dict().items())[0][1].shape
    (4, 5)
    """

    eps = Checked(
        partial(check_real, above=0), "Added to the variance: 1/sqrt(var + eps), eps > 0."
    )

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self._build(normalized_shape, eps, elementwise_affine, bias, dtype, True)

    def _build(
        self,
        normalized_shape: int | Sequence[int],
        eps: float,
        elementwise_affine: bool,
        bias: bool,
        dtype: DTypeLike,
        filled: bool,
    ) -> None:
        """Check the arguments and make the parameters; ``filled=False`` leaves the weight
        at zero (memory untouched) for a load to fill, as ``Dense.from_config`` does."""
        self.normalized_shape = shape = _normalized_shape(normalized_shape)
        self.eps = eps
        affine = check_bool("LayerNorm elementwise_affine", elementwise_affine)
        bias = check_bool("LayerNorm bias", bias)
        dtype = parameter_dtype("LayerNorm", dtype)
        check_allocation(
            f"LayerNorm({shape}) is too large: its weight and bias", (2, *shape), dtype
        )
        ones = np.ones if filled else np.zeros
        self.weight = Parameter(ones(shape, dtype), name="weight") if affine else None
        self.bias = Parameter(np.zeros(shape, dtype), name="bias") if affine and bias else None
        self._dtype = dtype
        # What backward needs: xhat and 1 / sqrt(var + eps) per sample (float64, axes kept)
        self._xhat: FloatArray | None = None
        self._inv_std: NDArray[np.float64] | None = None

    @property
    def elementwise_affine(self) -> bool:
        """Whether the layer has a learnable weight (and bias)."""
        return self.weight is not None

    @property
    def in_features(self) -> int | None:
        """The input width for a single normalised axis (Sequential checks its neighbours
        with it); None for several."""
        return self.normalized_shape[0] if len(self.normalized_shape) == 1 else None

    @property
    def out_features(self) -> int | None:
        """The output width, as ``in_features``."""
        return self.in_features

    def forward(self, x: ArrayLike) -> FloatArray:
        """Standardise each sample over the trailing axes, then y = xhat w + b."""
        dtype = self._dtype
        if type(x) is not np.ndarray or x.dtype != dtype:
            self._xhat = None  # a failed forward leaves nothing for backward
            x = real_array(x, dtype, "LayerNorm input")
        shape = self.normalized_shape
        if x.shape[max(0, x.ndim - len(shape)) :] != shape:
            self._xhat = None
            sizes = ", ".join(map(str, shape))
            raise ShapeError(
                f"{self._short()} expected an input whose last {len(shape)} axes are {shape}, "
                f"shape (*, {sizes}), got shape {x.shape}"
            )
        axes = tuple(range(x.ndim - len(shape), x.ndim))
        xhat, _, _, inv_std = standardize(x, axes, self.eps)
        self._xhat, self._inv_std = xhat, inv_std
        self._forward_training = self.training
        if self.weight is None:
            return xhat
        with np.errstate(over="ignore", invalid="ignore"):
            y = xhat * self.weight.value
            if self.bias is not None:
                y += self.bias.value
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """Fill weight.grad and bias.grad; return dL/dx, through each sample's statistics."""
        g = self._parameter_gradients(grad_output)
        xhat, inv_std = self._xhat, self._inv_std
        assert xhat is not None and inv_std is not None
        if self.weight is not None:
            g = g * self.weight.value
        axes = tuple(range(xhat.ndim - len(self.normalized_shape), xhat.ndim))
        # keepdims=True gives an array; the stubs say "float64 or an array"
        sum_g = cast(NDArray[np.float64], np.sum(g, axis=axes, dtype=np.float64, keepdims=True))
        sum_gx = sum_of_products(g, xhat, axes)
        count = math.prod(self.normalized_shape)
        with np.errstate(over="ignore"):
            scale = inv_std.astype(xhat.dtype)
        return standardized_input_gradient(g, xhat, scale, sum_g, sum_gx, count)

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """Fill weight.grad = sum(g xhat) and bias.grad = sum(g) over the leading axes,
        skipping dL/dx."""
        self._parameter_gradients(grad_output)

    def _parameter_gradients(self, grad_output: FloatArray) -> FloatArray:
        """grad_output checked and in the layer's dtype, after filling the parameters'
        gradients from it."""
        xhat = self._xhat
        if xhat is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if xhat is None else stale_backward(self)
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != xhat.shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, xhat.shape)
        g = grad_output
        if g.dtype is not xhat.dtype and g.dtype != xhat.dtype:
            g = in_dtype(g, xhat.dtype)
        leading = tuple(range(xhat.ndim - len(self.normalized_shape)))
        with np.errstate(over="ignore"):  # a float64 sum beyond the dtype becomes inf
            # a frozen parameter's gradient is not computed (its .grad is left as it was)
            if self.weight is not None and self.weight.requires_grad:
                total = sum_of_products(g, xhat, leading)
                self.weight.grad_to_overwrite()[...] = total.reshape(self.normalized_shape)
            if self.bias is not None and self.bias.requires_grad:
                self.bias.grad_to_overwrite()[...] = np.sum(g, axis=leading, dtype=np.float64)
        return g

    def _short(self) -> str:
        return f"LayerNorm({self.normalized_shape})"

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (the shape as a list, the dtype as its name)."""
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self.bias is not None,
            "dtype": self._dtype.name,
        }

    @classmethod
    def from_config(cls: type[_LayerNormT], config: dict[str, Any]) -> _LayerNormT:
        """A LayerNorm of the configured shape, its weight left at zero (memory untouched)
        for a load to fill in."""
        keys = ("normalized_shape", "eps", "elementwise_affine", "bias", "dtype")
        config = checked_config("LayerNorm", config, keys)
        layer = cls.__new__(cls)
        Layer.__init__(layer)
        layer._build(**config, filled=False)
        return layer

    def extra_repr(self) -> str:
        """PyTorch's: ``normalized_shape, eps=..., elementwise_affine=..., bias=...``."""
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )
