"""The fully connected (affine) layer."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from minigrad._validation import check_allocation, check_bool, forward_not_called
from minigrad.errors import ShapeError
from minigrad.init import Initializer, generator, get_initializer
from minigrad.layers._checks import (
    bad_gradient,
    checked_config,
    in_dtype,
    layer_width,
    parameter_dtype,
    real_array,
    shown,
)
from minigrad.layers.base import Layer, stale_backward
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["Dense"]

_DenseT = TypeVar("_DenseT", bound="Dense")


class Dense(Layer):
    """A fully connected layer: y = x W^T + b.

    Parameters
    ----------
    in_features, out_features : int
        Width of the input and of the output.
    bias : bool, default True
        Whether to learn the additive bias b (a bool: the string "False" is refused).
    init : str or callable, default "xavier_uniform"
        How to draw W; see :mod:`minigrad.init` (``"he_normal"`` suits ReLU stacks).
        The bias starts at zero.
    rng : int, numpy.random.Generator or None
        Seed (an integer >= 0) or generator for the initial weights (None: fresh entropy).
    dtype : float16, float32 or float64, default float32
        dtype of the parameters, and so of the output and of every gradient (dL/dx
        included, whatever the dtype of grad_output). None is refused (NumPy would read it
        as float64).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        W, laid out as in PyTorch and the lesson's W^[l] of shape (n^[l], n^[l-1]).
    bias : Parameter of shape (out_features,), or None

    Shape
    -----
    x: (batch, in_features) -> y: (batch, out_features). Floating-point inputs of another
    precision, integers and booleans are converted to the layer's dtype (values beyond its
    range become +-inf, as a cast makes them); complex numbers, strings and object arrays
    are refused with a TypeError naming the dtype (NumPy would drop the imaginary part,
    parse the strings and turn None into NaN). backward takes a floating-point grad_output
    of the forward output's shape, converted to the layer's dtype the same way.

    Notes
    -----
    With g = dL/dy of shape (batch, out_features), backward computes

        dL/dW = g^T x          (out_features, in_features)
        dL/db = sum_i g_i      (out_features,)
        dL/dx = g W            (batch, in_features)

    which are the lesson's dW = dZ A^T and db = sum(dZ) transposed to batch-first. The
    1/m of the lesson lives in the loss, whose gradient already carries it.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense(3, 2, rng=0)
    >>> layer
    Dense(in_features=3, out_features=2, bias=True)
    >>> y = layer(np.ones((4, 3)))
    >>> y.shape, y.dtype
    ((4, 2), dtype('float32'))
    >>> dx = layer.backward(np.ones_like(y))
    >>> dx.shape, layer.weight.grad.shape
    ((4, 3), (2, 3))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        init: str | Initializer = "xavier_uniform",
        rng: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = layer_width("Dense in_features", in_features)
        self.out_features = layer_width("Dense out_features", out_features)
        bias = check_bool("Dense bias", bias)
        dtype = parameter_dtype("Dense", dtype)
        shape = (self.out_features, self.in_features)
        what = f"Dense({self.in_features}, {self.out_features}) is too large: its weight"
        check_allocation(what, shape, dtype)
        init = get_initializer(init)
        try:
            weight = np.asarray(init(shape, generator(rng, "Dense rng"), dtype))
        except MemoryError as error:  # the init's draw, or memory that is not free now
            raise MemoryError(
                f"Dense({self.in_features}, {self.out_features}): its weight of shape {shape} "
                f"could not be allocated: {error}"
            ) from error
        if weight.shape != shape:
            raise ValueError(
                f"Dense init returned an array of shape {weight.shape}, expected {shape}"
            )
        if weight.dtype.kind not in "fiu":
            raise TypeError(f"Dense init returned an array of dtype {weight.dtype}, not numbers")
        weight = weight.astype(dtype, copy=False)
        # A user's initialiser is checked; the built-in ones cannot produce NaN, and a load's
        # zeros must stay untouched (lazily allocated) until the file's tensors arrive
        if callable(init) and init is not _zeros and not np.isfinite(weight).all():
            raise ValueError("Dense init returned NaN or infinite weights")
        self.weight = Parameter(weight, name="weight")
        self.bias = (
            Parameter(np.zeros(self.out_features, dtype=dtype), name="bias") if bias else None
        )
        self._x: FloatArray | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x W^T + b for x of shape (batch, in_features)."""
        try:  # free unless it fails (a weight replaced by a plain array)
            weight = self.weight.value
            bias = None if self.bias is None else self.bias.value
        except AttributeError:
            self._x = None
            raise _not_parameters(self) from None
        if type(x) is not np.ndarray or x.dtype != weight.dtype:
            self._x = None  # a failed forward leaves nothing for backward
            x = real_array(x, weight.dtype, "Dense input")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            self._x = None
            raise self._input_error(x)
        self._x = x
        self._forward_training = self.training
        y: FloatArray = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """Fill weight.grad and bias.grad; return dL/dx = g W of shape (batch, in_features)."""
        self.backward_parameters(grad_output)  # checks grad_output
        weight = self.weight.value
        dtype = grad_output.dtype
        if dtype is not weight.dtype and dtype != weight.dtype:
            grad_output = in_dtype(grad_output, weight.dtype)
        return grad_output @ weight

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """Fill weight.grad = g^T x and bias.grad = sum_i g_i, skipping dL/dx."""
        x = self._x
        if x is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if x is None else stale_backward(self)
        shape = (len(x), self.out_features)
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, shape)
        dtype = grad_output.dtype
        if dtype is not x.dtype and dtype != x.dtype:  # identical dtype objects: no compare
            grad_output = in_dtype(grad_output, x.dtype)
        # Both products write every entry, so a pending zero_grad's fill is skipped. The
        # methods are looked up before either is called: a parameter replaced by a plain
        # array fails there, with neither gradient touched
        try:  # free unless it fails
            # a frozen parameter's gradient is not computed (its .grad is left as it was)
            weight_grad = self.weight.grad_to_overwrite if self.weight.requires_grad else None
            bias_grad = (
                self.bias.grad_to_overwrite
                if self.bias is not None and self.bias.requires_grad
                else None
            )
        except AttributeError:
            raise _not_parameters(self) from None
        if weight_grad is not None:
            np.matmul(grad_output.T, x, out=weight_grad())
        if bias_grad is not None:
            np.add.reduce(grad_output, axis=0, out=bias_grad())

    def get_config(self) -> dict[str, Any]:
        """The widths, the bias flag and the dtype name: what :meth:`from_config` rebuilds."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": self.weight.dtype.name,
        }

    @classmethod
    def from_config(cls: type[_DenseT], config: dict[str, Any]) -> _DenseT:
        """A Dense of the configured shape with zero weights, for a load to fill in.

        Zeros rather than a random init: NumPy takes zeroed memory from the system lazily,
        so even a file that claims an absurd width costs nothing before the load finds that
        its tensors do not match.
        """
        config = checked_config("Dense", config, ("in_features", "out_features", "bias", "dtype"))
        if not isinstance(config["bias"], bool):
            raise TypeError(f"Dense bias must be true or false, got {shown(config['bias'])}")
        return cls(**config, init=_zeros)

    def _input_error(self, x: FloatArray) -> ShapeError:
        if x.ndim != 2:
            hint = "; for one sample use x[None, :]" if x.ndim == 1 else ""
            return ShapeError(
                f"{self!r} expected a 2-D array (batch, {self.in_features}), got {x.ndim}-D "
                f"with shape {x.shape}{hint}"
            )
        return ShapeError(
            f"{self!r} expected input of shape (batch, {self.in_features}), "
            f"got {x.shape}: {x.shape[1]} features instead of {self.in_features}"
        )

    def extra_repr(self) -> str:
        """``in_features=..., out_features=..., bias=...``, shown in the repr."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def _not_parameters(layer: Dense) -> TypeError:
    """The error for a weight or bias that is no longer a Parameter (assigned an array)."""
    for name in ("weight", "bias"):
        value = getattr(layer, name, None)
        if not isinstance(value, Parameter) and not (name == "bias" and value is None):
            return TypeError(
                f"Dense.{name} must be a Parameter{' or None' if name == 'bias' else ''}, got "
                f"{type(value).__name__}: to set its values, write into the parameter "
                f"(layer.{name}.value[...] = array) instead of replacing it"
            )
    return TypeError("Dense.weight and Dense.bias must be Parameters")


def _zeros(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype[Any]) -> FloatArray:
    return np.zeros(shape, dtype)
