"""Trainable parameters: a value and its gradient, kept together."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["Parameter"]


class Parameter:
    """A trainable array and the gradient of the loss with respect to it.

    Layers own their parameters as attributes (``self.weight = Parameter(...)``); the
    attribute name becomes the parameter's key in ``state_dict()``. Optimizers update
    ``value`` in place, so a layer and its optimizer always see the same array.

    Parameters
    ----------
    value : ndarray
        The initial value, a floating-point array. It is used as it is (no copy) when it is
        C-contiguous, else copied into a contiguous array.
    name : str, optional
        A label for messages and reprs; layers set it to the attribute name.

    Attributes
    ----------
    value : ndarray
        The parameter's current value.
    grad : ndarray
        dL/dvalue, same shape and dtype as ``value``, allocated once. A layer's ``backward``
        overwrites it (gradients do not accumulate across backward calls).

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.ones((2, 3), dtype=np.float32), name="weight")
    >>> p
    Parameter(name='weight', shape=(2, 3), dtype=float32)
    >>> p.grad.shape, p.grad.dtype
    ((2, 3), dtype('float32'))
    """

    __slots__ = ("grad", "name", "value")

    def __init__(self, value: NDArray[np.floating], name: str = "") -> None:
        value = np.asarray(value)
        if not value.flags.c_contiguous:
            value = np.ascontiguousarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(
                f"Parameter values must be floating point, got dtype {value.dtype}; "
                "convert with .astype(np.float32) or np.float64"
            )
        self.value: NDArray[np.floating] = value
        # np.zeros, not zeros_like: the system hands out zeroed pages lazily, so a gradient
        # costs no memory until backward first writes it
        self.grad: NDArray[np.floating] = np.zeros(value.shape, value.dtype)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value`` (and of ``grad``)."""
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``value`` (and of ``grad``)."""
        return self.value.dtype

    @property
    def size(self) -> int:
        """The number of scalar entries in ``value``."""
        return self.value.size

    def zero_grad(self) -> None:
        """Set the gradient to zero in place."""
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"
