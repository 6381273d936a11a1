"""Dropout: zero random elements in training, scaling the rest so the expectation is kept."""

from __future__ import annotations

from functools import partial
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from minigrad._validation import Checked, Setting, check_real
from minigrad.init import generator
from minigrad.layers._checks import checked_config
from minigrad.layers.activations import Activation
from minigrad.typing import FloatArray

__all__ = ["Dropout"]

_DropoutT = TypeVar("_DropoutT", bound="Dropout")


def _generator(name: str, value: object) -> np.random.Generator:
    """A seed or a Generator as the Generator the layer draws its masks from."""
    # any object, checked and refused by generator with a message naming the setting
    return generator(value, f"Dropout {name}")  # type: ignore[arg-type]


class Dropout(Activation):
    """Inverted dropout: in training mode zero each element with probability p and scale the
    others by 1 / (1 - p); in evaluation mode the identity (Srivastava et al., 2014).

    The scaling keeps every element's expectation, E[y] = x, so nothing changes between
    training and evaluation. The masks come from a NumPy Generator the layer owns
    (``rng``), so a seed gives the same masks on every run; checkpoints save its state
    (it is not in ``state_dict()``: PyTorch's Dropout has no state, and a model file of a
    network with Dropout loads into the equivalent PyTorch model).

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        The probability of zeroing an element. p = 0 is the identity; p = 1 zeroes every
        element (no division by zero).
    rng : int, numpy.random.Generator or None
        Seed (an integer >= 0) or generator for the masks (None: fresh entropy). A
        Generator is used as it is, not copied.

    Attributes
    ----------
    p : float
        Checked when assigned, like the constructor's argument.
    rng : numpy.random.Generator
        Assigning a seed makes a new Generator from it.

    Shape
    -----
    x: any -> y of the same shape and float dtype (integers and booleans become float64;
    complex numbers, strings and objects are refused).

    Notes
    -----
    Forward in training mode, with k_i = 1 where u_i >= p for u_i uniform on [0, 1) (drawn
    in float32, steps of 2^-24), else 0::

        m_i = k_i / (1 - p),   y_i = m_i x_i

    Backward: dL/dx_i = m_i g_i, with the mask of the last forward. In evaluation mode
    (and for p = 0) y = x, the input itself, and dL/dx = g. As in PyTorch, an infinite
    element that is dropped becomes NaN (inf times 0).

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dropout(0.5, rng=5)
    >>> layer
    Dropout(p=0.5)
    >>> y = layer(np.ones((2, 4), np.float32))
    >>> y  # kept elements scaled by 1 / (1 - p) = 2
    array([[2., 2., 0., 2.],
           [0., 2., 2., 0.]], dtype=float32)
    >>> layer.backward(np.full_like(y, 3.0))  # the same mask
    array([[6., 6., 0., 6.],
           [0., 6., 6., 0.]], dtype=float32)
    >>> layer.eval()(np.ones((1, 4)))
    array([[1., 1., 1., 1.]])
    >>> layer.state_dict(), [path for path, _ in layer.named_generators()]
    ({}, ['rng'])
    """

    p = Checked(
        partial(check_real, minimum=0, maximum=1),
        "The probability of zeroing an element, in [0, 1].",
    )
    rng = Setting(_generator)

    def __init__(self, p: float = 0.5, *, rng: int | np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = p
        self.rng = rng

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = m x with a fresh mask m in training mode; y = x in evaluation mode."""
        x = self._input(x)
        p = self.p
        if not self.training or p == 0.0:
            self._cache = np.broadcast_to(np.ones((), x.dtype), x.shape)
            return x
        if p == 1.0:
            mask = np.broadcast_to(np.zeros((), x.dtype), x.shape)
        else:
            keep = self.rng.random(x.shape, dtype=np.float32) >= p
            mask = np.divide(keep, 1.0 - p, dtype=x.dtype)
        self._cache = mask
        with np.errstate(invalid="ignore"):  # a dropped inf is NaN, as in PyTorch
            return x * mask

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx = m g, with the last forward's mask (g itself times 1 in evaluation mode)."""
        mask, grad_output = self._cached(grad_output)
        with np.errstate(invalid="ignore"):
            grad: FloatArray = grad_output * mask
            return grad

    def get_config(self) -> dict[str, Any]:
        """``{"p": ...}``: the generator is not configuration (a loaded model draws afresh)."""
        return {"p": self.p}

    @classmethod
    def from_config(cls: type[_DropoutT], config: dict[str, Any]) -> _DropoutT:
        """A Dropout with the configured p and a freshly seeded generator."""
        return cls(**checked_config("Dropout", config, ("p",)))

    def extra_repr(self) -> str:
        """``p=...``, shown in the repr."""
        return f"p={self.p}"
