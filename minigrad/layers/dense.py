"""The fully connected (affine) layer."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import as_float_array, forward_not_called
from minigrad.errors import ShapeError
from minigrad.init import Initializer, get_initializer
from minigrad.layers.base import Layer
from minigrad.parameter import Parameter

__all__ = ["Dense"]


class Dense(Layer):
    """A fully connected layer: y = x W^T + b.

    Parameters
    ----------
    in_features, out_features : int
        Width of the input and of the output.
    bias : bool, default True
        Whether to learn the additive bias b.
    init : str or callable, default "xavier_uniform"
        How to draw W; see :mod:`minigrad.init` (``"he_normal"`` suits ReLU stacks).
        The bias starts at zero.
    rng : int, numpy.random.Generator or None
        Seed or generator for the initial weights (None: fresh entropy).
    dtype : numpy dtype, default float32
        dtype of the parameters, and so of the output and of every gradient.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        W, laid out as in PyTorch and the lesson's W^[l] of shape (n^[l], n^[l-1]).
    bias : Parameter of shape (out_features,), or None

    Shape
    -----
    x: (batch, in_features) -> y: (batch, out_features). Inputs of another dtype are
    converted to the layer's dtype.

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
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Dense {name} must be a positive integer, got {value!r}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"Dense dtype must be a floating-point type, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        generator = np.random.default_rng(rng)
        shape = (self.out_features, self.in_features)
        weight = np.asarray(get_initializer(init)(shape, generator, dtype))
        if weight.shape != shape:
            raise ValueError(
                f"Dense init returned an array of shape {weight.shape}, expected {shape}"
            )
        self.weight = Parameter(weight.astype(dtype, copy=False), name="weight")
        self.bias = (
            Parameter(np.zeros(self.out_features, dtype=dtype), name="bias") if bias else None
        )
        self._x: NDArray[np.floating] | None = None

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """y = x W^T + b for x of shape (batch, in_features)."""
        x = as_float_array(x, self.weight.dtype, "Dense input")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._input_error(x)
        self._x = x
        y = x @ self.weight.value.T
        if self.bias is not None:
            y += self.bias.value
        return y

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """Fill weight.grad and bias.grad; return dL/dx = g W of shape (batch, in_features)."""
        self.backward_parameters(grad_output)
        return grad_output @ self.weight.value

    def backward_parameters(self, grad_output: NDArray[np.floating]) -> None:
        """Fill weight.grad = g^T x and bias.grad = sum_i g_i, skipping dL/dx."""
        if self._x is None:
            raise forward_not_called(self)
        if grad_output.shape != (self._x.shape[0], self.out_features):
            raise ShapeError(
                f"{self!r}.backward expected grad_output of shape "
                f"{(self._x.shape[0], self.out_features)} (the forward output's), "
                f"got {grad_output.shape}"
            )
        np.matmul(grad_output.T, self._x, out=self.weight.grad)
        if self.bias is not None:
            np.add.reduce(grad_output, axis=0, out=self.bias.grad)

    def get_config(self) -> dict[str, Any]:
        """The widths, the bias flag and the dtype name: what :meth:`from_config` rebuilds."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": self.weight.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        """A Dense of the configured shape with zero weights, for a load to fill in.

        Zeros rather than a random init: NumPy takes zeroed memory from the system lazily,
        so even a file that claims an absurd width costs nothing before the load finds that
        its tensors do not match.
        """
        expected = {"in_features", "out_features", "bias", "dtype"}
        if set(config) != expected:
            raise ValueError(
                f"a Dense config has the keys {sorted(expected)}, got {sorted(config)}"
            )
        if not isinstance(config["bias"], bool):
            raise TypeError(f"Dense bias must be true or false, got {config['bias']!r}")
        if config["dtype"] not in ("float16", "float32", "float64"):
            raise ValueError(
                f"Dense dtype must be 'float16', 'float32' or 'float64', got {config['dtype']!r}"
            )
        return cls(**config, init=_zeros)

    def _input_error(self, x: NDArray) -> ShapeError:
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


def _zeros(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> NDArray:
    return np.zeros(shape, dtype)
