"""Sequential: the container that chains layers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad.errors import ShapeError
from minigrad.layers.activations import Activation
from minigrad.layers.base import Layer

__all__ = ["Sequential"]


class Sequential(Layer):
    """Layers applied one after another: y = f_n(... f_2(f_1(x))).

    A Sequential is itself a Layer, so it nests, and gradient checks, optimizers and
    ``state_dict`` treat a whole model like a single layer.

    Parameters
    ----------
    *layers : Layer
        The layers in order (a single list or tuple of layers also works).

    Shape
    -----
    (batch, in_features of the first layer) -> (batch, out_features of the last layer).

    Notes
    -----
    ``forward`` runs the layers in order; ``backward`` runs their ``backward`` in reverse,
    feeding each the gradient the next one returned (the chain rule). Adjacent Dense layers
    (possibly separated by activations) are checked for matching widths at construction.
    An error raised by a layer during forward or backward is re-raised with that layer's
    index and class, so a mismatch deep in a stack points at the right place.

    ``state_dict()`` keys are ``"<index>.<parameter>"`` ("0.weight", "0.bias", "2.weight",
    ...), exactly as torch.nn.Sequential keys the same stack.

    Examples
    --------
    >>> from minigrad import Dense, Tanh, Sigmoid
    >>> model = Sequential(Dense(2, 4, rng=0), Tanh(), Dense(4, 1, rng=1), Sigmoid())
    >>> model
    Sequential(
      (0): Dense(in_features=2, out_features=4, bias=True)  # 12 parameters
      (1): Tanh()
      (2): Dense(in_features=4, out_features=1, bias=True)  # 5 parameters
      (3): Sigmoid()
    )  # 17 parameters
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> model(np.zeros((3, 2))).shape
    (3, 1)
    """

    def __init__(self, *layers: Layer | Iterable[Layer]) -> None:
        super().__init__()
        if (
            len(layers) == 1
            and not isinstance(layers[0], Layer)
            and isinstance(layers[0], Iterable)
        ):
            layers = tuple(layers[0])
        self.layers: list[Layer] = []
        for layer in layers:
            self.append(layer)  # type: ignore[arg-type]

    def append(self, layer: Layer) -> Sequential:
        """Add ``layer`` at the end, checking that it fits the layers before it."""
        index = len(self.layers)
        if not isinstance(layer, Layer):
            hint = ""
            if isinstance(layer, type) and issubclass(layer, Layer):
                hint = f"; pass an instance, {layer.__name__}(), not the class"
            raise TypeError(
                f"Sequential layer {index} must be a minigrad Layer, "
                f"got {type(layer).__name__}{hint}"
            )
        for earlier, other in enumerate(self.layers):
            if other is layer:
                raise ValueError(
                    f"Sequential layer {index} is the same {type(layer).__name__} object as "
                    f"layer {earlier}; a layer caches its input for backward, so each position "
                    "needs its own instance"
                )
        width, source = self._output_width()
        in_features = getattr(layer, "in_features", None)
        if width is not None and in_features is not None and in_features != width:
            raise ShapeError(
                f"Sequential layer {index} ({layer!r}) expects {in_features} input features, "
                f"but layer {source} ({self.layers[source]!r}) outputs {width}"
            )
        self.layers.append(layer)
        return self

    def _output_width(self) -> tuple[int | None, int]:
        """The known feature width at the end of the stack and the layer that sets it."""
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            if isinstance(layer, Activation):
                continue  # shape-preserving: look further back
            return getattr(layer, "out_features", None), index
        return None, -1

    @property
    def in_features(self) -> int | None:
        """The input width the first width-setting layer expects (None if unknown)."""
        for layer in self.layers:
            if not isinstance(layer, Activation):
                return getattr(layer, "in_features", None)
        return None

    @property
    def out_features(self) -> int | None:
        """The output width of the stack (None if unknown)."""
        return self._output_width()[0]

    def children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``(str(index), layer)`` for each layer in order ("0", "1", ...)."""
        for index, layer in enumerate(self.layers):
            yield str(index), layer

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """Run every layer's forward in order."""
        index = 0
        try:
            for index, layer in enumerate(self.layers):  # noqa: B007 (the handler reads index)
                x = layer.forward(x)
        except Exception as error:
            raise _in_layer(error, index, self.layers[index], "forward") from error
        return x  # type: ignore[return-value]

    def backward(
        self, grad_output: NDArray[np.floating], *, input_grad: bool = True
    ) -> NDArray[np.floating] | None:
        """Run every layer's backward in reverse order, filling every parameter's ``.grad``.

        Returns dL/dx for the model's input, or None with ``input_grad=False``: training
        never needs the gradient with respect to the data, and skipping it saves the first
        layer's largest product (as PyTorch does for inputs without ``requires_grad``).
        """
        layers = self.layers
        if not layers:
            return grad_output
        index = len(layers) - 1
        try:
            while index > 0:
                grad_output = layers[index].backward(grad_output)
                index -= 1
            if input_grad:
                return layers[0].backward(grad_output)
            layers[0].backward_parameters(grad_output)
            return None
        except Exception as error:
            raise _in_layer(error, index, layers[index], "backward") from error

    def backward_parameters(self, grad_output: NDArray[np.floating]) -> None:
        """``backward(grad_output, input_grad=False)``: fill every ``.grad``, skip dL/dx."""
        self.backward(grad_output, input_grad=False)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Layer:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for index, layer in enumerate(self.layers):
            text = repr(layer).replace("\n", "\n  ")
            count = layer.num_parameters()
            suffix = (
                f"  # {count:,} parameters" if count and not isinstance(layer, Sequential) else ""
            )
            lines.append(f"  ({index}): {text}{suffix}")
        lines.append(f")  # {self.num_parameters():,} parameters")
        return "\n".join(lines)


def _in_layer(error: Exception, index: int, layer: Layer, method: str) -> Exception:
    """``error`` again, of the same class, with the failing layer's index and class in front
    of its message (the original stays attached as the cause)."""
    message = f"Sequential layer {index} ({type(layer).__name__}) {method}: {error}"
    try:
        return type(error)(message)
    except Exception:  # an exception class whose constructor takes other arguments
        return RuntimeError(message)
