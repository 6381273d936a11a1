"""The Layer base class: the contract every layer, container and user-defined layer follows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad.parameter import Parameter

__all__ = ["Layer"]


class Layer:
    """Base class of every layer.

    A layer maps a batch to a batch in ``forward`` and maps the gradient of the loss with
    respect to its output back to the gradient with respect to its input in ``backward``:

        y = f(x);   dL/dx = (dy/dx)^T g,   dL/dtheta = (dy/dtheta)^T g,   with g = dL/dy

    Writing a new layer means subclassing and writing those two methods (see Examples).

    Parameters are found by structure: any attribute holding a :class:`Parameter` is one of
    the layer's parameters (named after the attribute), and any attribute holding a Layer
    contributes its parameters under ``"<attribute>.<name>"``. ``state_dict()`` keys follow
    from these names, as in PyTorch.

    Contract
    --------
    ``forward(x)``
        Returns the output; caches whatever ``backward`` needs (and nothing more).
    ``backward(grad_output)``
        ``grad_output`` has the shape of the last forward output. Returns dL/dx with the
        shape of the last forward input, and **overwrites** ``.grad`` of each parameter with
        dL/dparameter for that batch. Gradients do not accumulate: calling forward and
        backward twice gives the same gradients, not double. (PyTorch accumulates into
        ``.grad`` until ``zero_grad()``; minigrad's layers overwrite, so ``zero_grad()`` is
        never required, but it exists and is always safe to call.)
    ``train()`` / ``eval()``
        Set the ``training`` flag, here and in every sub-layer, for layers whose forward
        differs between the two (dropout, batch norm).

    Shape
    -----
    x: (batch, ...) -> y: (batch, ...), as the subclass defines; ``backward`` maps a
    gradient of y's shape to one of x's shape.

    Examples
    --------
    >>> class Square(Layer):
    ...     def forward(self, x):
    ...         self.x = x  # cache what backward needs
    ...         return x * x
    ...     def backward(self, grad_output):
    ...         return 2 * self.x * grad_output
    >>> layer = Square()
    >>> layer(np.array([[1.0, -3.0]])), layer.backward(np.ones((1, 2)))
    (array([[1., 9.]]), array([[ 2., -6.]]))
    >>> layer.parameters(), layer.eval().training
    ([], False)
    """

    training: bool

    def __init__(self) -> None:
        self.training = True

    # -- the two methods a layer writes -------------------------------------------------

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Compute the layer's output for the batch ``x`` and cache what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """Return dL/dx given dL/dy, and overwrite each parameter's ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(grad_output)")

    def backward_parameters(self, grad_output: NDArray[np.floating]) -> None:
        """Fill the parameters' ``.grad`` like backward, without returning dL/dx.

        ``Sequential.backward(g, input_grad=False)`` calls this on its first layer, where
        nothing needs the gradient with respect to the data. The default runs ``backward``
        and drops the result; a layer overrides it when dL/dx costs work of its own (Dense
        skips the product g W, a third of its backward).
        """
        self.backward(grad_output)

    def __call__(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        return self.forward(x)

    # -- structure ----------------------------------------------------------------------

    def _attributes(self) -> Iterator[tuple[str, object]]:
        """``(name, value)`` for every attribute, with lists and tuples opened up as
        ``("name.0", item)``, ``("name.1", item)``, ..."""
        for name, value in vars(self).items():
            if isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    yield f"{name}.{index}", item
            else:
                yield name, value

    def children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``(name, layer)`` for each direct sub-layer, in attribute order.

        Sub-layers are attributes holding a Layer, or lists and tuples of Layers
        (named ``"blocks.0"``, ``"blocks.1"``, ...).
        """
        for name, value in self._attributes():
            if isinstance(value, Layer):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(key, parameter)`` pairs: this layer's own first, then each sub-layer's.

        Keys are dotted paths such as ``"weight"`` or ``"0.weight"``.
        """
        for name, value in self._attributes():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        """All trainable parameters of this layer and its sub-layers, in a fixed order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (never required: backward overwrites)."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Layer:
        """Put this layer and its sub-layers in training mode (``mode=False``: evaluation)."""
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Layer:
        """Put this layer and its sub-layers in evaluation mode."""
        return self.train(False)

    # -- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, NDArray[np.floating]]:
        """A copy of every parameter value, keyed by its dotted name.

        The arrays are copies, so the dict is a snapshot that later training does not change.
        """
        return {key: p.value.copy() for key, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, NDArray[np.floating]]) -> None:
        """Copy values from ``state`` into this layer's parameters, in place.

        Every key must be present, with no extra keys, and every array must have the
        parameter's shape and dtype. Everything is checked before anything is written, so a
        failed load leaves the layer unchanged. Optimizers keep working after a load because
        the parameter arrays are the same objects.

        Raises
        ------
        ValueError
            Keys are missing or unexpected (both lists are in the message), or a shape or
            dtype differs from the parameter's.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for key, p in own.items():
            array = np.asarray(state[key])
            if array.shape != p.shape:
                raise ValueError(
                    f"state_dict[{key!r}] has shape {array.shape}, "
                    f"but the parameter has shape {p.shape}"
                )
            if array.dtype != p.dtype:
                raise ValueError(
                    f"state_dict[{key!r}] has dtype {array.dtype}, "
                    f"but the parameter has dtype {p.dtype}; cast it with .astype({p.dtype})"
                )
        for key, p in own.items():
            np.copyto(p.value, state[key])

    # -- configuration (for model files) ------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer, as JSON values (default: none).

        ``minigrad.save`` stores them in the file's metadata and ``minigrad.load`` calls
        :meth:`from_config` with them; the parameter values travel as tensors, so the config
        holds only what shapes the layer (widths, flags, slopes). A layer whose constructor
        takes arguments overrides this.
        """
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Build a layer from :meth:`get_config` output; its parameters are loaded after."""
        return cls(**config)

    # -- printing -----------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The hyperparameters shown inside the parentheses of ``repr``."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
