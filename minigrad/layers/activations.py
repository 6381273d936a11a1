"""Activation layers: element-wise non-linearities (and Softmax, LogSoftmax), with no parameters.

Each keeps the shape and the dtype of a floating-point input (integers and booleans become
float64; complex numbers, strings and objects are refused with a TypeError naming the
dtype) and caches what backward needs (one array; two for GELU and SiLU). Backward returns
dL/dx in the dtype of the forward output: a gradient of another float dtype is converted
first (to +-inf where it does not fit, without a warning), so a float32 model's gradients
stay float32. The element-wise ones give a finite output and gradient, with no warning, for
any finite input however large.
"""

from __future__ import annotations

import math
import numbers
from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_integer, check_real, forward_not_called, shown
from minigrad.errors import ShapeError
from minigrad.layers._checks import bad_gradient, in_dtype, real_array
from minigrad.layers._special import erfc
from minigrad.layers.base import Layer, stale_backward
from minigrad.typing import FloatArray

__all__ = [
    "ELU",
    "GELU",
    "Activation",
    "Identity",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "sigmoid",
]


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

    #: what backward needs: the output, the input or a mask, by layer
    _cache: NDArray[Any] | None = None
    #: the dtype of the last forward output, which backward returns
    _dtype: np.dtype[np.floating[Any]] = np.dtype(np.float64)

    def _input(self, x: ArrayLike) -> FloatArray:
        """``x`` as a float array, and the mode and dtype recorded for backward."""
        self._forward_training = self.training
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            self._cache = None  # a failed forward leaves nothing for backward
            x = real_array(x, None, f"{type(self).__name__} input")
        self._dtype = x.dtype
        return x

    def _cached(self, grad_output: FloatArray) -> tuple[NDArray[Any], FloatArray]:
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


def sigmoid(z: ArrayLike) -> FloatArray:
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

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = tanh(x), caching y."""
        y = np.tanh(self._input(x))
        self._cache = y
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g (1 - y^2)."""
        y, grad_output = self._cached(grad_output)
        grad: FloatArray = np.multiply(y, y)
        np.subtract(1.0, grad, out=grad)
        grad *= grad_output
        return grad


class Sigmoid(Activation):
    """y = 1 / (1 + e^-x), stable for any |x| (see :func:`sigmoid`).

    Shape: any -> same. Backward: dL/dx = g y (1 - y), from the cached output y.

    >>> Sigmoid()(np.array([[-800.0, 0.0, 800.0]], dtype=np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = 1 / (1 + e^-x), caching y."""
        y = sigmoid(self._input(x))
        self._cache = y
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g y (1 - y)."""
        y, grad_output = self._cached(grad_output)
        grad: FloatArray = np.subtract(1.0, y)
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

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = max(x, 0), caching the mask x > 0."""
        x = self._input(x)
        self._cache = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g where x > 0, else 0."""
        mask, grad_output = self._cached(grad_output)
        grad: FloatArray = np.multiply(grad_output, mask)
        return grad


def _finite_slope(name: str, value: object) -> float:
    """LeakyReLU's negative_slope as a float: a real number (not a bool or a string), finite."""
    if not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral):
        if abs(int(value)) > 2**1023:  # float() would raise OverflowError
            raise ValueError(
                f"{name} must be finite, got an integer of {int(value).bit_length()} bits"
            )
    if not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real):
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

    def _scale(self, x: FloatArray, mask: NDArray[np.bool_]) -> FloatArray:
        return np.where(mask, x, x * self.negative_slope)

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x where x > 0, else negative_slope * x, caching the mask x > 0."""
        x = self._input(x)
        self._cache = x > 0
        return self._scale(x, self._cache)

    def backward(self, grad_output: FloatArray) -> FloatArray:
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

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = exp(x - max) / sum exp(x - max) along ``axis``, caching y."""
        x = self._input(x)
        if not -x.ndim <= self.axis < x.ndim or x.shape[self.axis] == 0:
            self._cache = None
            raise self._shape_error(x)
        # An infinite input makes its row NaN (inf - inf), as in PyTorch; a gap beyond the
        # dtype's range is -inf, whose exp is 0. Neither is worth a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            y: FloatArray = x - x.max(axis=self.axis, keepdims=True)
            np.exp(y, out=y)
            y /= y.sum(axis=self.axis, keepdims=True)
        self._cache = y
        return y

    def _shape_error(self, x: FloatArray) -> ShapeError:
        if not -x.ndim <= self.axis < x.ndim:
            return ShapeError(
                f"{self!r} needs an input with an axis {self.axis}, got shape {x.shape} "
                f"({x.ndim}-D)"
            )
        return ShapeError(
            f"{self!r} needs at least one entry along axis {self.axis} to normalise over, "
            f"got shape {x.shape}"
        )

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = y (g - sum_k g_k y_k) along ``axis``."""
        y, grad_output = self._cached(grad_output)
        grad: FloatArray = grad_output - (grad_output * y).sum(axis=self.axis, keepdims=True)
        grad *= y
        return grad

    def extra_repr(self) -> str:
        """``axis=...``, shown in the repr."""
        return f"axis={self.axis}"


class Identity(Activation):
    """y = x: a placeholder layer, as ``torch.nn.Identity`` (which it maps to in state dicts,
    having no parameters), and the default shortcut of :class:`~minigrad.Residual`.

    The input is checked and converted like any activation's (integers become float64) and
    returned without a copy; backward returns the gradient, in the forward's dtype.

    Shape: any -> same. Backward: dL/dx = g.

    Examples
    --------
    >>> x = np.array([[1.0, -2.0]], dtype=np.float32)
    >>> layer = Identity()
    >>> layer(x) is x, layer.backward(np.ones((1, 2)))
    (True, array([[1., 1.]], dtype=float32))
    """

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x (kept for backward's shape check, not copied)."""
        x = self._input(x)
        self._cache = x
        return x

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g, in the dtype of the forward output."""
        _, grad_output = self._cached(grad_output)
        return grad_output


#: Beyond +-40, Phi(x) is exactly 0 or 1 and x phi(x) is 0 in every float dtype, as are the
#: tanh form's gate and its slope: GELU evaluates its gate at x clipped to this range
_GELU_LIMIT = 40.0
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_SQRT_2_OVER_PI = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _approximation(name: str, value: object) -> str:
    """GELU's ``approximate``: the string "none" or "tanh"."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be 'none' or 'tanh', got {shown(value)} ({type(value).__name__})"
        )
    if value not in ("none", "tanh"):
        raise ValueError(f"{name} must be 'none' or 'tanh', got {shown(value)}")
    return value


class GELU(Activation):
    """The Gaussian error linear unit: y = x Phi(x), Phi the standard normal CDF.

    Parameters
    ----------
    approximate : {"none", "tanh"}, default "none"
        "none": the exact form, Phi(x) = (1 + erf(x / sqrt 2)) / 2. "tanh": PyTorch's tanh
        approximation, Phi(x) ~ (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3).

    Shape
    -----
    any -> same.

    Notes
    -----
    Exact form: y = x Phi(x) and dL/dx = g (Phi(x) + x phi(x)), with phi(x) = exp(-x^2 / 2)
    / sqrt(2 pi). Phi is computed as erfc(-x / sqrt 2) / 2 (a vectorised fdlibm erfc), which
    keeps full relative precision in the negative tail, where 1 + erf(x / sqrt 2) is 0.

    Tanh form: y = x s and dL/dx = g (s + 2 x s (1 - s) u'(x)), with s = (1 + tanh(u)) / 2,
    written as the logistic function of 2u (the same number, without the cancellation of
    1 + tanh(u) for negative x), and u'(x) = sqrt(2 / pi) (1 + 3 * 0.044715 x^2).

    Beyond |x| = 40 the gate is exactly 0 or 1, so it is evaluated at x clipped to
    [-40, 40]: x^3 never overflows, and y and dL/dx take their limits (x or 0, and 1 or 0)
    for any input, infinities included (where PyTorch gives NaN for -inf).

    Examples
    --------
    >>> x = np.array([[-3.0, 0.0, 1.0]])
    >>> GELU()(x)
    array([[-0.00404969,  0.        ,  0.84134475]])
    >>> GELU(approximate="tanh")(x)
    array([[-0.00363739,  0.        ,  0.84119199]])
    >>> layer = GELU()
    >>> layer(np.array([[-1e30, 1e30]], dtype=np.float32)), layer.backward(np.ones((1, 2)))
    (array([[-0.e+00,  1.e+30]], dtype=float32), array([[0., 1.]], dtype=float32))
    """

    # Checked on assignment too, so gelu.approximate = "exact" fails where it is written
    approximate = Checked(_approximation, 'The form of Phi: "none" (exact) or "tanh".')

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        super().__init__()
        self.approximate = approximate
        self._x: FloatArray | None = None

    def get_config(self) -> dict[str, Any]:
        """``{"approximate": ...}``, the argument that rebuilds this layer."""
        return {"approximate": self.approximate}

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x Phi(x), caching x clipped to [-40, 40] and Phi(x)."""
        x = self._input(x)
        clipped = np.clip(x, -_GELU_LIMIT, _GELU_LIMIT)
        if self.approximate == "none":
            gate = erfc(clipped * -_SQRT_HALF)
            gate *= 0.5
        else:
            # (1 + tanh(u)) / 2 = sigmoid(2u), with 2u = 2 sqrt(2/pi) x (1 + 0.044715 x^2)
            two_u = np.multiply(clipped, clipped)
            two_u *= _GELU_CUBIC
            two_u += 1.0
            two_u *= clipped
            two_u *= _TWO_SQRT_2_OVER_PI
            gate = sigmoid(two_u)
        y = np.maximum(x, -_GELU_LIMIT)  # -inf * 0 would be NaN; the limit is 0
        y *= gate
        self._x, self._cache = clipped, gate
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g (Phi(x) + x phi(x)), or the tanh form's derivative."""
        gate, grad_output = self._cached(grad_output)
        x = self._x
        assert x is not None  # set with the cache, which _cached found
        if self.approximate == "none":
            grad = np.multiply(x, x)
            grad *= -0.5
            np.exp(grad, out=grad)
            grad *= _INV_SQRT_2PI
        else:  # 2 s (1 - s) u'(x)
            grad = np.multiply(x, x)
            grad *= 3.0 * _GELU_CUBIC
            grad += 1.0
            grad *= _TWO_SQRT_2_OVER_PI
            grad *= gate
            grad *= 1.0 - gate
        grad *= x
        grad += gate
        grad *= grad_output
        return grad

    def extra_repr(self) -> str:
        """``approximate='none'``, shown in the repr."""
        return f"approximate={self.approximate!r}"


#: Beyond +-1000 the logistic function is exactly 0 or 1 in every float dtype
_SILU_LIMIT = 1000.0


class SiLU(Activation):
    """The sigmoid linear unit (swish): y = x sigmoid(x).

    Shape
    -----
    any -> same.

    Notes
    -----
    Forward: y = x s with s = sigmoid(x) = 1 / (1 + e^-x), computed without overflow (see
    :func:`sigmoid`). Backward: dL/dx = g s (1 + x (1 - s)), as PyTorch computes it. Both
    take their limits for any input, infinities included (y = 0 and dL/dx = 0 at -inf,
    where PyTorch gives NaN; y = x and dL/dx = g at +inf).

    Examples
    --------
    >>> layer = SiLU()
    >>> layer(np.array([[-1.0, 0.0, 2.0]]))
    array([[-0.26894142,  0.        ,  1.76159416]])
    >>> layer.backward(np.ones((1, 3)))
    array([[0.07232949, 0.5       , 1.09078425]])
    """

    def __init__(self) -> None:
        super().__init__()
        self._x: FloatArray | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x sigmoid(x), caching x and sigmoid(x)."""
        x = self._input(x)
        s = sigmoid(x)
        y = np.maximum(x, -_SILU_LIMIT)  # -inf * 0 would be NaN; the limit is 0
        y *= s
        self._x, self._cache = x, s
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g s (1 + x (1 - s))."""
        s, grad_output = self._cached(grad_output)
        x = self._x
        assert x is not None  # set with the cache, which _cached found
        grad: FloatArray = np.subtract(1.0, s)
        # x clipped: where 1 - s or s is exactly 0, an infinite x would make 0 * inf
        grad *= np.clip(x, -_SILU_LIMIT, _SILU_LIMIT)
        grad += 1.0
        grad *= s
        grad *= grad_output
        return grad


class ELU(Activation):
    """The exponential linear unit: y = x for x > 0, alpha (e^x - 1) otherwise.

    Parameters
    ----------
    alpha : float, default 1.0
        The value y approaches as x -> -inf (a finite real number, as in PyTorch).

    Shape
    -----
    any -> same.

    Notes
    -----
    Forward: y = x where x > 0, alpha expm1(x) elsewhere, computed as
    max(x, 0) + alpha expm1(min(x, 0)): the same numbers without a branch per entry (expm1
    keeps the precision of e^x - 1 near 0, and e^x never overflows). Backward: dL/dx = g
    where x > 0, g alpha e^x elsewhere (so alpha g at x = 0, as in PyTorch).

    Examples
    --------
    >>> layer = ELU(alpha=0.5)
    >>> layer
    ELU(alpha=0.5)
    >>> layer(np.array([[-1e30, -1.0, 2.0]]))
    array([[-0.5       , -0.31606028,  2.        ]])
    >>> layer.backward(np.ones((1, 3)))
    array([[0.        , 0.18393972, 1.        ]])
    """

    # Checked on assignment too, so elu.alpha = "1" fails where it is written
    alpha = Checked(check_real, "The scale of the negative part (a finite real number).")

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def get_config(self) -> dict[str, Any]:
        """``{"alpha": ...}``, the argument that rebuilds this layer."""
        return {"alpha": self.alpha}

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x where x > 0, else alpha expm1(x), caching x."""
        x = self._input(x)
        y = np.minimum(x, 0)
        np.expm1(y, out=y)
        y *= self.alpha
        y += np.maximum(x, 0)  # adds 0 where x <= 0, and x to alpha expm1(0) = 0 elsewhere
        self._cache = x
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g where x > 0, else g alpha e^x."""
        x, grad_output = self._cached(grad_output)
        # m + (1 - m) alpha e^min(x, 0) with m = [x > 0]: 1 or alpha e^x exactly, without
        # np.where, which costs several times more on the random signs of a layer's input
        positive = (x > 0).astype(x.dtype)
        grad: FloatArray = np.minimum(x, 0)
        np.exp(grad, out=grad)
        grad *= self.alpha
        grad *= 1.0 - positive
        grad += positive
        grad *= grad_output
        return grad

    def extra_repr(self) -> str:
        """``alpha=...``, shown in the repr."""
        return f"alpha={self.alpha}"


class Softplus(Activation):
    """A smooth ReLU: y = log(1 + e^(beta x)) / beta, and y = x where beta x > threshold.

    Parameters
    ----------
    beta : float, default 1.0
        The sharpness (a finite number > 0): the larger, the closer to max(x, 0).
    threshold : float, default 20.0
        Where beta x exceeds it, y = x exactly (a finite real number), as in PyTorch: there
        the two differ by less than e^-threshold / beta.

    Shape
    -----
    any -> same.

    Notes
    -----
    Forward: y = (max(z, 0) + log1p(e^-|z|)) / beta with z = beta x, the same number as
    log(1 + e^z) / beta without overflow for any z; y = x where z > threshold.
    Backward: dL/dx = g sigmoid(z), and g where z > threshold.

    Examples
    --------
    >>> layer = Softplus(beta=2.0)
    >>> layer
    Softplus(beta=2.0, threshold=20.0)
    >>> layer(np.array([[-1.0, 0.0, 30.0]]))
    array([[ 0.06346401,  0.34657359, 30.        ]])
    >>> layer.backward(np.ones((1, 3)))
    array([[0.11920292, 0.5       , 1.        ]])
    """

    # Checked on assignment too, so softplus.beta = 0 fails where it is written
    beta = Checked(partial(check_real, above=0), "The sharpness (a finite number > 0).")
    threshold = Checked(check_real, "Above it, beta x gives y = x (a finite real number).")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def get_config(self) -> dict[str, Any]:
        """``{"beta": ..., "threshold": ...}``, the arguments that rebuild this layer."""
        return {"beta": self.beta, "threshold": self.threshold}

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = log(1 + e^(beta x)) / beta, or x where beta x > threshold, caching beta x."""
        x = self._input(x)
        beta = self.beta
        z = x if beta == 1.0 else _times(x, beta)
        # a tiny beta makes log(2) / beta overflow to inf, the value it rounds to
        with np.errstate(over="ignore"):
            y = np.abs(z)
            np.negative(y, out=y)
            np.exp(y, out=y)
            np.log1p(y, out=y)
            y += np.maximum(z, 0)
            if beta != 1.0:
                y /= beta
        if y.dtype != x.dtype:
            y = in_dtype(y, x.dtype)
        np.copyto(y, x, where=z > self.threshold)
        self._cache = z
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g sigmoid(beta x), or g where beta x > threshold."""
        z, grad_output = self._cached(grad_output)
        grad = sigmoid(z)
        if grad.dtype != self._dtype:
            grad = in_dtype(grad, self._dtype)
        np.copyto(grad, 1.0, where=z > self.threshold)
        grad *= grad_output
        return grad

    def extra_repr(self) -> str:
        """``beta=..., threshold=...``, shown in the repr."""
        return f"beta={self.beta}, threshold={self.threshold}"


def _times(x: FloatArray, beta: float) -> FloatArray:
    """beta x, computed in float64 where beta lies outside the normal range of x's dtype (a
    beta of 1e10 is inf in float16, and 0 * inf is NaN); beyond the range it is +-inf."""
    info = np.finfo(x.dtype)
    if not float(info.tiny) <= beta <= float(info.max):
        x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return x * beta


class LogSoftmax(Activation):
    """y_ij = x_ij - log sum_k exp(x_ik), along ``dim``: the logarithm of :class:`Softmax`.

    Parameters
    ----------
    dim : int, default -1
        The dimension to normalise over, named as in PyTorch (Softmax calls it ``axis``).
        PyTorch's default, None, picks a dimension from the input's number of dimensions
        and is deprecated there; the last one is the usual choice (the classes of a batch
        of logits).

    Shape
    -----
    any -> same, with at least one entry along ``dim``.

    Notes
    -----
    Forward: y = x - m - log sum_k exp(x_k - m) with m = max_k x_k, so nothing overflows;
    an entry more than the dtype's range below the maximum is -inf, as in PyTorch, and a
    row holding an infinity is NaN (inf - inf). Backward: dL/dx = g - exp(y) sum_k g_k,
    from the cached output y (exp(y) is the softmax).

    Examples
    --------
    >>> layer = LogSoftmax(dim=1)
    >>> layer
    LogSoftmax(dim=1)
    >>> layer(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    array([[-6.93147181e-01, -6.93147181e-01],
           [ 0.00000000e+00, -1.00000000e+03]])
    >>> layer.backward(np.array([[1.0, 0.0], [0.0, 1.0]]))
    array([[ 0.5, -0.5],
           [-1. ,  1. ]])
    """

    dim = Checked(
        partial(check_integer, minimum=-64, maximum=63), "The dimension to normalise over."
    )

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def get_config(self) -> dict[str, Any]:
        """``{"dim": ...}``, the argument that rebuilds this layer."""
        return {"dim": self.dim}

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x - max - log sum exp(x - max) along ``dim``, caching y."""
        x = self._input(x)
        dim = self.dim
        if not -x.ndim <= dim < x.ndim or x.shape[dim] == 0:
            self._cache = None
            raise self._shape_error(x)
        # An infinite input makes its row NaN (inf - inf), as in PyTorch; a gap beyond the
        # dtype's range is -inf. Neither is worth a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            y: FloatArray = x - x.max(axis=dim, keepdims=True)
            y -= np.log(np.exp(y).sum(axis=dim, keepdims=True))
        self._cache = y
        return y

    def _shape_error(self, x: FloatArray) -> ShapeError:
        if not -x.ndim <= self.dim < x.ndim:
            return ShapeError(
                f"{self!r} needs an input with a dimension {self.dim}, got shape {x.shape} "
                f"({x.ndim}-D)"
            )
        return ShapeError(
            f"{self!r} needs at least one entry along dimension {self.dim} to normalise "
            f"over, got shape {x.shape}"
        )

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g - exp(y) sum_k g_k along ``dim``."""
        y, grad_output = self._cached(grad_output)
        grad: FloatArray = np.exp(y)
        grad *= grad_output.sum(axis=self.dim, keepdims=True)
        np.subtract(grad_output, grad, out=grad)
        return grad

    def extra_repr(self) -> str:
        """``dim=...``, shown in the repr."""
        return f"dim={self.dim}"
