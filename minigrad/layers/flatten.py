"""Flatten: join a range of axes into one, as between convolutional and dense layers."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from minigrad._validation import check_integer, forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers._checks import bad_gradient, checked_config, in_dtype, real_array
from minigrad.layers.base import Layer, stale_backward
from minigrad.typing import FloatArray

__all__ = ["Flatten"]

_FlattenT = TypeVar("_FlattenT", bound="Flatten")

#: axes are counted within NumPy's limit on dimensions (64 since NumPy 2, 32 before)
_MAX_AXIS = 63


class Flatten(Layer):
    """Join the axes start_dim..end_dim into one, as ``torch.nn.Flatten``.

    The usual place is between the convolutional part of a network and its Dense layers:
    (batch, channels, height, width) -> (batch, channels * height * width).

    Parameters
    ----------
    start_dim : int, default 1
        The first axis to join (negative: counted from the end). The default keeps the
        batch axis.
    end_dim : int, default -1
        The last axis to join, included (negative: counted from the end).

    Shape
    -----
    x: (d_0, ..., d_{s-1}, d_s, ..., d_e, d_{e+1}, ...) -> y: (d_0, ..., d_{s-1},
    d_s * ... * d_e, d_{e+1}, ...) with s = start_dim and e = end_dim. The input needs the
    axes start_dim and end_dim, with start_dim not after end_dim once both are counted
    from the front (a ShapeError otherwise).

    Notes
    -----
    Forward is a reshape, a view of the input when it is contiguous (no copy); backward
    reshapes g = dL/dy back: dL/dx = reshape(g, shape of x). Integer and boolean inputs
    become float64, as for the activations; backward returns the forward output's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> flatten = Flatten()
    >>> flatten
    Flatten(start_dim=1, end_dim=-1)
    >>> y = flatten(np.ones((2, 16, 5, 5), dtype=np.float32))
    >>> y.shape, y.dtype
    ((2, 400), dtype('float32'))
    >>> flatten.backward(np.ones_like(y)).shape
    (2, 16, 5, 5)
    >>> Flatten(0, 1)(np.ones((2, 3, 4))).shape
    (6, 4)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = check_integer(
            "Flatten start_dim", start_dim, minimum=-_MAX_AXIS - 1, maximum=_MAX_AXIS
        )
        self.end_dim = check_integer(
            "Flatten end_dim", end_dim, minimum=-_MAX_AXIS - 1, maximum=_MAX_AXIS
        )
        if (self.start_dim < 0) == (self.end_dim < 0) and self.start_dim > self.end_dim:
            raise ValueError(
                f"Flatten start_dim ({self.start_dim}) must not come after end_dim ({self.end_dim})"
            )
        #: the last forward's input shape and output dtype; None before it or after a failure
        self._cache: tuple[tuple[int, ...], tuple[int, ...], np.dtype] | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = x with the axes start_dim..end_dim joined."""
        self._cache = None  # a failed forward leaves nothing for backward
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            x = real_array(x, None, "Flatten input")
        ndim = x.ndim
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= start < ndim and 0 <= end < ndim):
            raise ShapeError(
                f"{self!r} needs an input with axes {self.start_dim} and {self.end_dim}, got "
                f"shape {x.shape} ({ndim}-D)"
            )
        if start > end:
            raise ShapeError(
                f"{self!r}: on input of shape {x.shape} ({ndim}-D) start_dim is axis {start}, "
                f"after end_dim, axis {end}"
            )
        shape = (*x.shape[:start], math.prod(x.shape[start : end + 1]), *x.shape[end + 1 :])
        self._cache = (x.shape, shape, x.dtype)
        self._forward_training = self.training
        return x.reshape(shape)

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = g reshaped to the input's shape."""
        cache = self._cache
        if cache is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if cache is None else stale_backward(self)
        x_shape, shape, dtype = cache
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, shape)
        if grad_output.dtype != dtype:
            grad_output = in_dtype(grad_output, dtype)
        return grad_output.reshape(x_shape)

    def get_config(self) -> dict[str, Any]:
        """``{"start_dim": ..., "end_dim": ...}``, the arguments that rebuild this layer."""
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    @classmethod
    def from_config(cls: type[_FlattenT], config: dict[str, Any]) -> _FlattenT:
        """The Flatten :meth:`get_config` describes (its values are checked as arguments)."""
        config = checked_config("Flatten", config, ("start_dim", "end_dim"))
        return cls(**config)

    def extra_repr(self) -> str:
        """``start_dim=..., end_dim=...``, as PyTorch shows them."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
