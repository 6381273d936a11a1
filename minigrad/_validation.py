"""Checks at the public boundary, with messages that say what was expected and what was given."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad.errors import ShapeError


def as_float_array(x: ArrayLike, dtype: np.dtype, what: str) -> NDArray[np.floating]:
    """``x`` as an array of ``dtype`` (no copy when it already is one)."""
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} must be a numeric array, got {type(x).__name__}: {error}"
        ) from None


def check_ndim(x: NDArray, ndim: int, what: str, hint: str = "") -> None:
    """Raise ShapeError unless ``x`` has ``ndim`` dimensions."""
    if x.ndim != ndim:
        raise ShapeError(
            f"{what} expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}" + hint
        )


def check_same_shape(pred: NDArray, target: NDArray, what: str) -> None:
    """Raise ShapeError unless ``pred`` and ``target`` have exactly the same shape."""
    if pred.shape != target.shape:
        hint = ""
        if _squeezed(pred.shape) == _squeezed(target.shape):  # differ only by length-1 axes
            hint = f"; reshape the target with target.reshape{pred.shape}"
        elif pred.shape == target.shape[::-1]:
            hint = "; the target looks transposed (target.T)"
        raise ShapeError(
            f"{what}: pred has shape {pred.shape} but target has shape {target.shape}; "
            f"they must match exactly (minigrad never broadcasts a loss){hint}"
        )


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def forward_not_called(owner: object) -> RuntimeError:
    """The error for ``backward()`` before ``forward()``."""
    return RuntimeError(
        f"{type(owner).__name__}.backward() was called before forward(): "
        "run a forward pass on a batch first"
    )
