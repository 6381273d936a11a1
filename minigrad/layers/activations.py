"""Activation layers: element-wise non-linearities (and Softmax), with no parameters.

Each keeps the shape and the dtype of its input and caches one array for backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers.base import Layer

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

    def _cached(self, grad_output: NDArray) -> NDArray:
        """The array forward cached, after checking that grad_output fits it."""
        if self._cache is None:
            raise forward_not_called(self)
        if grad_output.shape != self._cache.shape:
            raise ShapeError(
                f"{self!r}.backward expected grad_output of shape {self._cache.shape} "
                f"(the forward output's), got {grad_output.shape}"
            )
        return self._cache


def sigmoid(z: ArrayLike) -> NDArray[np.floating]:
    """The logistic function 1 / (1 + e^-z), computed without overflow or warnings.

    e^-|z| lies in (0, 1], so no exponential overflows: sigma(z) = 1 / (1 + e^-|z|) for z >= 0
    and e^-|z| / (1 + e^-|z|) for z < 0, which keeps full relative precision in both tails.

    Shape: any -> same, a float array.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    z = np.asarray(z)
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
        y = np.tanh(x)
        self._cache = y
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g (1 - y^2)."""
        y = self._cached(grad_output)
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
        y = sigmoid(x)
        self._cache = y
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g y (1 - y)."""
        y = self._cached(grad_output)
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
        x = np.asarray(x)
        self._cache = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g where x > 0, else 0."""
        return np.multiply(grad_output, self._cached(grad_output))


class LeakyReLU(Activation):
    """y = x for x > 0, negative_slope * x otherwise.

    Shape: any -> same. Backward: dL/dx = g for x > 0, negative_slope * g otherwise (so
    negative_slope * g at x = 0, as in PyTorch).

    >>> LeakyReLU(0.1)(np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        if not np.isfinite(self.negative_slope):
            raise ValueError(f"LeakyReLU negative_slope must be finite, got {negative_slope}")

    def get_config(self) -> dict[str, Any]:
        """``{"negative_slope": ...}``, the argument that rebuilds this layer."""
        return {"negative_slope": self.negative_slope}

    def _scale(self, x: NDArray, mask: NDArray[np.bool_]) -> NDArray:
        return np.where(mask, x, x * self.negative_slope)

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = x where x > 0, else negative_slope * x, caching the mask x > 0."""
        x = np.asarray(x)
        self._cache = x > 0
        return self._scale(x, self._cache)

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = g where x > 0, else negative_slope * g."""
        return self._scale(grad_output, self._cached(grad_output))

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

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def get_config(self) -> dict[str, Any]:
        """``{"axis": ...}``, the argument that rebuilds this layer."""
        return {"axis": self.axis}

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = exp(x - max) / sum exp(x - max) along ``axis``, caching y."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        y = x - x.max(axis=self.axis, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        self._cache = y
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """dL/dx = y (g - sum_k g_k y_k) along ``axis``."""
        y = self._cached(grad_output)
        grad = grad_output - (grad_output * y).sum(axis=self.axis, keepdims=True)
        grad *= y
        return grad

    def extra_repr(self) -> str:
        """``axis=...``, shown in the repr."""
        return f"axis={self.axis}"
