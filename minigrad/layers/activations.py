"""Activation layers: element-wise non-linearities (and Softmax), with no parameters.

Each keeps the shape and the dtype of a floating-point input (integers and booleans become
float64; complex numbers, strings and objects are refused with a TypeError naming the
dtype) and caches one array for backward. Backward returns dL/dx in the dtype of the
forward output: a gradient of another float dtype is converted first (to +-inf where it
does not fit, without a warning), so a float32 model's gradients stay float32.
"""

from __future__ import annotations

import math
import numbers
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_integer, check_real, forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers._checks import bad_gradient, in_dtype, real_array
from minigrad.layers.base import Layer, stale_backward

__all__ = ["Activation", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh", "sigmoid"]


class Activation(Layer):
    """Base class of parameter-free layers whose output has the shape of their input.

    ``Sequential`` relies on that shape-preserving property to check at construction that
    the Dense layers around an activation fit together.

    Shape: any -> same. Element-wise ones compute y = f(x) and dL/dx = g * f'(x).

    Examples
    --------
    >>> from minigrad import Dense, Sequential
    >>> [isinstance(layer, Activation) for layer in (Tanh(), ReLU(), Dense(2, 2))]
    [True, True, False]
    >>> Sequential(Dense(2, 3), ReLU(), Dense(3, 1)).out_features  # widths seen through ReLU
    1
    """

    _cache: NDArray | None = None
    #: the dtype of the last forward output, which backward returns
    _dtype: np.dtype = np.dtype(np.float64)

    def _input(self, x: ArrayLike) -> NDArray[np.floating]:
        """``x`` as a float array, and the mode and dtype recorded for backward."""
        self._forward_training = self.training
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            self._cache = None  # a failed forward leaves nothing for backward
            x = real_array(x, None, f"{type(self).__name__} input")
        self._dtype = x.dtype
        return x

    def _cached(self, grad_output: NDArray) -> tuple[NDArray, NDArray[np.floating]]:
        """The array forward cached and grad_output in the forward dtype, after checking
        that grad_output fits."""
        cache = self._cache
        if cache is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if cache is None else stale_backward(self)
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != cache.shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, cache.shape)
        dtype = grad_output.dtype
        if dtype is not self._dtype and dtype != self._dtype:  # identical objects: no compare
            grad_output = in_dtype(grad_output, self._dtype)
        return cache, grad_output


def sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """The logistic function 1 / (1 + e^-z), computed without overflow or warnings.

    e^-|z| lies in (0, 1], so no exponential overflows: sigma(z) = 1 / (1 + e^-|z|) for z >= 0
    and e^-|z| / (1 + e^-|z|) for z < 0, which keeps full relative precision in both tails.

    Shape: any -> same, a float array (float64 for integer or boolean z).

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    z = real_array(z, None, "sigmoid input")
    e = np.exp(-np.abs(z))
    numerator = np.where(z >= 0, 1.0, e)
    e += 1.0
    numerator /= e
    return numerator


class Tanh(Activation):
    """y = tanh(x).

    Shape: any -> same. Backward: dL/dx = g (1 - y^2), from the cached output y.

    >>> Tanh()(np.array([[0.0, 1.0]]))
    array([[0.        , 0.76159416]])
    """

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = tanh(x), caching y."""
        y = np.tanh(self._input(x))
        self._cache = y
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g (1 - y^2)."""
        y, grad_output = self._cached(grad_output)
        grad = np.multiply(y, y)
        np.subtract(1.0, grad, out=grad)
        grad *= grad_output
        return grad


class Sigmoid(Activation):
    """y = 1 / (1 + e^-x), stable for any |x| (see :func:`sigmoid`).

    Shape: any -> same. Backward: dL/dx = g y (1 - y), from the cached output y.

    >>> Sigmoid()(np.array([[-800.0, 0.0, 800.0]], dtype=np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = 1 / (1 + e^-x), caching y."""
        y = sigmoid(self._input(x))
        self._cache = y
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g y (1 - y)."""
        y, grad_output = self._cached(grad_output)
        grad = np.subtract(1.0, y)
        grad *= y
        grad *= grad_output
        return grad


class ReLU(Activation):
    """y = max(x, 0).

    Shape: any -> same. Backward: dL/dx = g where x > 0, else 0 (the subgradient 0 at x = 0,
    as in PyTorch). Caches a boolean mask, one byte per element.

    >>> ReLU()(np.array([[-1.0, 0.0, 2.0]]))
    array([[0., 0., 2.]])
    """

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = max(x, 0), caching the mask x > 0."""
        x = self._input(x)
        self._cache = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g where x > 0, else 0."""
        mask, grad_output = self._cached(grad_output)
        return np.multiply(grad_output, mask)


def _finite_slope(name: str, value: object) -> float:
    """LeakyReLU's negative_slope as a float: a real number (not a bool or a string), finite."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if abs(value) > 2**1023:  # float() would raise OverflowError
            raise ValueError(
                f"{name} must be finite, got an integer of {int(value).bit_length()} bits"
            )
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    return check_real(name, value)


class LeakyReLU(Activation):
    """y = x for x > 0, negative_slope * x otherwise.

    Shape: any -> same. Backward: dL/dx = g for x > 0, negative_slope * g otherwise (so
    negative_slope * g at x = 0, as in PyTorch).

    >>> LeakyReLU(0.1)(np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """

    # Checked on assignment too, so leaky.negative_slope = "x" fails where it is written
    negative_slope = Checked(_finite_slope, "The slope for x <= 0 (a finite real number).")

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def get_config(self) -> dict[str, Any]:
        """``{"negative_slope": ...}``, the argument that rebuilds this layer."""
        return {"negative_slope": self.negative_slope}

    def _scale(self, x: NDArray, mask: NDArray[np.bool_]) -> NDArray:
        return np.where(mask, x, x * self.negative_slope)

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = x where x > 0, else negative_slope * x, caching the mask x > 0."""
        x = self._input(x)
        self._cache = x > 0
        return self._scale(x, self._cache)

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g where x > 0, else negative_slope * g."""
        mask, grad_output = self._cached(grad_output)
        return self._scale(grad_output, mask)

    def extra_repr(self) -> str:
        """``negative_slope=...``, shown in the repr."""
        return f"negative_slope={self.negative_slope}"


class Softmax(Activation):
    """y_ij = exp(x_ij) / sum_k exp(x_ik), along ``axis`` (the last by default).

    The maximum is subtracted first, so large inputs do not overflow. For classification
    train on logits with :class:`~minigrad.losses.CrossEntropy`, which fuses softmax and
    log-loss stably; use this layer for probabilities at inference or inside a model.

    Shape: any -> same. Backward: dL/dx = y (g - sum_k g_k y_k), the Jacobian-vector product
    of softmax.

    >>> Softmax()(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    """

    axis = Checked(
        partial(check_integer, minimum=-64, maximum=63), "The axis to normalise over (an int)."
    )

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        """``{"axis": ...}``, the argument that rebuilds this layer."""
        return {"axis": self.axis}

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = exp(x - max) / sum exp(x - max) along ``axis``, caching y."""
        x = self._input(x)
        if not -x.ndim <= self.axis < x.ndim or x.shape[self.axis] == 0:
            self._cache = None
            raise self._shape_error(x)
        # An infinite input makes its row NaN (inf - inf), as in PyTorch; a gap beyond the
        # dtype's range is -inf, whose exp is 0. Neither is worth a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            y = x - x.max(axis=self.axis, keepdims=True)
            np.exp(y, out=y)
            y /= y.sum(axis=self.axis, keepdims=True)
        self._cache = y
        return y

    def _shape_error(self, x: NDArray) -> ShapeError:
        if not -x.ndim <= self.axis < x.ndim:
            return ShapeError(
                f"{self!r} needs an input with an axis {self.axis}, got shape {x.shape} "
                f"({x.ndim}-D)"
            )
        return ShapeError(
            f"{self!r} needs at least one entry along axis {self.axis} to normalise over, "
            f"got shape {x.shape}"
        )

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = y (g - sum_k g_k y_k) along ``axis``."""
        y, grad_output = self._cached(grad_output)
        grad = grad_output - (grad_output * y).sum(axis=self.axis, keepdims=True)
        grad *= y
        return grad

    def extra_repr(self) -> str:
        """``axis=...``, shown in the repr."""
        return f"axis={self.axis}"
