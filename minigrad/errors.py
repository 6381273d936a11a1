"""Exception classes raised by minigrad."""

from __future__ import annotations

__all__ = ["DistributedError", "DivergenceError", "ModelFileError", "ShapeError"]


class ShapeError(ValueError):
    """An array's shape does not fit what a layer, loss or container expects.

    A subclass of ValueError, so ``except ValueError`` catches it too. The message names the
    expected and the given shape; a ``Sequential`` adds the index and class of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Dense
    >>> Dense(3, 2)(np.ones((4, 5)))  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    minigrad.errors.ShapeError: Dense(in_features=3, out_features=2, bias=True) expected input
    of shape (batch, 3), got (4, 5): 5 features instead of 3
    """


class DivergenceError(FloatingPointError):
    """Training diverged: a loss, an output, a gradient or a step became NaN or infinite.

    Raised by ``fit`` (with the epoch, the step and the learning rate in the message) before
    the step that would have made a parameter non-finite, so the model keeps its last finite
    parameters; also by :class:`~minigrad.optim.SafeStep` and
    :class:`~minigrad.callbacks.DivergenceGuard`. A subclass of FloatingPointError.

    Examples
    --------
    Gradient descent on (w x - 3 x)^2 with a learning rate far too large overshoots further
    at every step, until the next step would overflow float32:

    >>> import numpy as np
    >>> import minigrad as mg
    >>> model, x = mg.Dense(1, 1, rng=0), np.array([[1.0], [2.0]])
    >>> mg.fit(model, mg.MSE(), mg.SGD(model.parameters(), lr=100.0), x, 3 * x, epochs=50,
    ...        progress=False)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    minigrad.errors.DivergenceError: training diverged at epoch 14, batch 1 (step 13): the step
    would make parameter 'weight' non-finite ...; try 10
    >>> bool(np.isfinite(model.weight.value).all())  # the parameters from before that step
    True
    """


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be loaded: it is not a well-formed minigrad file.

    Raised for truncated or corrupted files, files of another format (a pickle is never
    unpickled), tensors whose layout does not add up, metadata that names a layer or
    optimizer minigrad does not know, and tensors that do not fit the architecture. A
    subclass of ValueError; the message names the file and what is wrong with it.

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"abc")
    >>> mg.load(path)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    minigrad.errors.ModelFileError: /.../model.safetensors: not a safetensors file: 3 bytes,
    shorter than the 8-byte header length
    """


class DistributedError(RuntimeError):
    """Another rank of a distributed ``fit`` failed, so this rank stopped too.

    Raised on every rank but the failing one (which raises its own exception), at the same
    step, with the failing rank's number and message; see :mod:`minigrad.distributed`.

    >>> raise DistributedError("rank 1 of 2 failed, so every rank stopped: ValueError: bad")
    Traceback (most recent call last):
        ...
    minigrad.errors.DistributedError: rank 1 of 2 failed, so every rank stopped: ValueError: bad
    """
