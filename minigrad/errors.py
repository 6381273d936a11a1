"""Exception classes raised by minigrad."""

from __future__ import annotations

__all__ = ["DivergenceError", "ModelFileError", "ShapeError"]


class ShapeError(ValueError):
    """An array's shape does not fit what a layer, loss or container expects.

    A subclass of ValueError, so ``except ValueError`` catches it too. The message names the
    expected and the given shape; a ``Sequential`` adds the index and class of the layer.
    """


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss.

    Raised by :class:`~minigrad.callbacks.DivergenceGuard` (which ``fit`` uses by default),
    with the epoch, the step and the learning rate in the message.
    """


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be loaded: it is not a well-formed minigrad file.

    Raised for truncated or corrupted files, files of another format (a pickle is never
    unpickled), tensors whose layout does not add up, metadata that names a layer or
    optimizer minigrad does not know, and tensors that do not fit the architecture. A
    subclass of ValueError; the message names the file and what is wrong with it.
    """
