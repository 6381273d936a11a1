"""Containers: layers made of layers. Sequential chains them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_bool
from minigrad.errors import ShapeError
from minigrad.layers.activations import Activation
from minigrad.layers.base import REPEATED_LAYER, TIED_PARAMETERS, Layer, stale_backward
from minigrad.parameter import Buffer, Parameter

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
    ``forward`` runs the layers in order; ``backward`` runs them in reverse, feeding each
    the gradient the next one returned (the chain rule). It asks every layer but the first
    for its dL/dx (``backward_input``), and the first only when the caller asks for the
    model's dL/dx (``backward(g, input_grad=True)``); otherwise the first layer's
    ``backward_parameters`` fills its ``.grad`` and skips its dL/dx, the largest product
    of a training step at a wide input. A Sequential answers ``backward_input`` with its
    dL/dx, so one nested at any position works as a layer does.

    Adjacent layers with known widths (Dense, Normalization, possibly separated by
    activations) are checked for matching widths at construction.

    Each layer object may appear once in the whole tree, nested Sequentials included, and
    so may each Parameter (no tied weights): ``append`` refuses a layer that breaks this,
    naming both positions, and the tree walk behind ``parameters()`` and ``state_dict()``
    refuses what was changed afterwards (see :class:`~minigrad.layers.base.Layer`).
    Building a model of n layers takes O(n) time.

    An error raised by a layer during forward or backward propagates as the same exception
    object (same class, arguments and attributes; KeyboardInterrupt untouched) with the
    layer's index and class added: in front of the message for the plain built-in classes
    and ShapeError ("Sequential layer 2 (Dense) forward: ..."), as a note for any other
    class. A mismatch deep in a stack so points at the right place.

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

    ``backward`` fills every parameter's ``.grad`` and returns dL/dx only when asked:

    >>> g = np.ones((3, 1))
    >>> model.backward(g) is None
    True
    >>> model.backward(g, input_grad=True).shape
    (3, 2)

    A layer of your own that holds a Sequential asks it for dL/dx, here a residual block
    y = x + body(x), whose backward is g + dL/dx of the body:

    >>> class Residual(Layer):
    ...     def __init__(self, body):
    ...         super().__init__()
    ...         self.body = body
    ...     def forward(self, x):
    ...         return x + self.body(x)
    ...     def backward(self, grad_output):  # body.backward_input(g) is the same
    ...         return grad_output + self.body.backward(grad_output, input_grad=True)
    >>> block = Residual(Sequential(Dense(2, 2, rng=0), Tanh()))
    >>> block(np.ones((3, 2))).shape, block.backward(np.ones((3, 2))).shape
    ((3, 2), (3, 2))
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
        # Where each Layer, Parameter and Buffer of the tree is (id -> path), so that append
        # checks a new layer against the whole tree in time proportional to the new layer's
        # size: building a model stays linear in its number of layers. It is a cache: a hit
        # is confirmed against the actual tree before anything is refused, and what append
        # cannot see (an inner Sequential changed later) the tree walk of parameters() and
        # state_dict() still refuses.
        self._places: dict[int, str] = {id(self): ""}
        # The last layer that sets a width (not an Activation) and its index, valid while
        # the list has the recorded length and last layer (that is, changed only by append)
        self._width_source: dict[str, Any] = {"length": 0, "last": None, "index": -1}
        for layer in layers:
            self.append(layer)  # type: ignore[arg-type]

    def append(self, layer: Layer) -> Sequential:
        """Add ``layer`` at the end, checking that it fits the layers before it.

        Refused: anything but a Layer instance (TypeError); a layer that is already in the
        model, holds a layer or parameter that is, or holds this Sequential (ValueError,
        naming both positions: see "Each object in one place" in
        :class:`~minigrad.layers.base.Layer`); a layer whose ``in_features`` differs from
        the width the stack ends with (ShapeError). The check costs time proportional to
        the new layer's size, so building a model of n layers takes O(n).
        """
        index = len(self.layers)
        if not isinstance(layer, Layer):
            hint = ""
            if isinstance(layer, type) and issubclass(layer, Layer):
                hint = f"; pass an instance, {layer.__name__}(), not the class"
            raise TypeError(
                f"Sequential layer {index} must be a minigrad Layer, "
                f"got {type(layer).__name__}{hint}"
            )
        try:
            places = list(layer._tree(str(index)))
        except ValueError as error:  # the new layer repeats something inside itself
            raise ValueError(
                f"Sequential layer {index} ({type(layer).__name__}): {error}"
            ) from None
        if self._clash(places) is not None:
            # Confirm against the actual tree: the cache may hold a layer since removed from
            # .layers by hand, or the id of an object that no longer exists
            self._places = {id(item): path for path, item in self._tree()}
            clash = self._clash(places)
            if clash is not None:
                raise ValueError(_clash_message(index, layer, *clash))
        width, source = self._output_width()
        in_features = getattr(layer, "in_features", None)
        if width is not None and in_features is not None and in_features != width:
            raise ShapeError(
                f"Sequential layer {index} ({_short(layer)}) expects {in_features} input "
                f"features, but layer {source} ({_short(self.layers[source])}) outputs {width}"
            )
        self.layers.append(layer)
        self._places.update((id(item), path) for path, item in places)
        if not isinstance(layer, Activation):
            source = index
        self._width_source = {"length": index + 1, "last": layer, "index": source}
        return self

    def _clash(self, places: list[tuple[str, object]]) -> tuple[object, str, str] | None:
        """The first of ``places`` already in the tree: (object, new path, existing path)."""
        for path, item in places:
            existing = self._places.get(id(item))
            if existing is not None:
                return item, path, existing
        return None

    def _output_width(self) -> tuple[int | None, int]:
        """The known feature width at the end of the stack and the layer that sets it."""
        layers, cache = self.layers, self._width_source
        if cache["length"] == len(layers) and (not layers or layers[-1] is cache["last"]):
            index = cache["index"]
        else:  # .layers was changed by hand: look back past the shape-preserving layers
            index = next(
                (
                    i
                    for i in range(len(layers) - 1, -1, -1)
                    if not isinstance(layers[i], Activation)
                ),
                -1,
            )
        if index < 0:
            return None, -1
        return getattr(layers[index], "out_features", None), index

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
        """Yield ``(str(index), layer)`` for each layer in order ("0", "1", ...).

        Raises TypeError for an item of ``.layers`` that is not a Layer (put there by hand:
        ``append`` refuses it), so the tree walk behind ``parameters()`` and
        ``state_dict()`` names it rather than failing on a missing attribute.
        """
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise _not_a_layer(index, layer)
            yield str(index), layer

    def forward(self, x: ArrayLike) -> NDArray[np.floating]:
        """Run every layer's forward in order."""
        self._forward_training = self.training
        index = 0
        try:
            for index, layer in enumerate(self.layers):  # noqa: B007 (the handler reads index)
                x = layer.forward(x)
        except Exception as error:
            if not isinstance(self.layers[index], Layer):
                raise _not_a_layer(index, self.layers[index]) from error
            _in_layer(error, index, self.layers[index], "forward")
            raise
        return x  # type: ignore[return-value]

    def backward(
        self, grad_output: NDArray[np.floating], *, input_grad: bool = False
    ) -> NDArray[np.floating] | None:
        """Run the layers' backward in reverse order, filling every parameter's ``.grad``.

        Returns None, or with ``input_grad=True`` dL/dx for the model's input, of the last
        forward input's shape. A training step never needs the gradient with respect to
        the data, so by default the first layer skips it (``backward_parameters``; for a
        Dense the product g W, the largest product of the step at a wide input), as PyTorch
        computes no gradient for an input that does not require one. Ask for it for
        saliency maps, adversarial examples or a Sequential inside a layer of your own
        (or call :meth:`backward_input`). Every other layer is asked for its dL/dx
        (``backward_input``), which the layer before it needs.

        Raises RuntimeError when the model is in training mode but its last forward ran in
        evaluation mode (``mg.predict`` or ``mg.evaluate`` between the loss and backward):
        the layers' caches then hold that pass's values, not the loss's batch's.

        Examples
        --------
        >>> from minigrad import Dense, Tanh
        >>> model = Sequential(Dense(4, 3, rng=0), Tanh(), Dense(3, 2, rng=1))
        >>> x, g = np.ones((5, 4), np.float32), np.ones((5, 2), np.float32)
        >>> _ = model(x)
        >>> model.backward(g) is None, model[0].weight.grad.shape
        (True, (3, 4))
        >>> model.backward(g, input_grad=True).shape
        (5, 4)
        """
        if self.training and not self._forward_training:
            raise stale_backward(self)
        if not isinstance(grad_output, np.ndarray):
            raise TypeError(
                "Sequential.backward takes the gradient as a NumPy array (what "
                f"loss.backward() returns), got {type(grad_output).__name__}"
            )
        if input_grad is not True and input_grad is not False:
            input_grad = check_bool("input_grad", input_grad)
        layers = self.layers
        if not layers:
            return grad_output if input_grad else None
        index = len(layers) - 1
        try:
            while index > 0:
                grad_output = layers[index].backward_input(grad_output)
                index -= 1
            if input_grad:
                return layers[0].backward_input(grad_output)
            layers[0].backward_parameters(grad_output)
            return None
        except Exception as error:
            if not isinstance(layers[index], Layer):
                raise _not_a_layer(index, layers[index]) from error
            _in_layer(error, index, layers[index], "backward")
            raise

    def backward_parameters(self, grad_output: NDArray[np.floating]) -> None:
        """``backward(grad_output)``: fill every ``.grad``, skip dL/dx (what a container
        asks of a Sequential at its first position)."""
        self.backward(grad_output, input_grad=False)

    def backward_input(self, grad_output: NDArray[np.floating]) -> NDArray[np.floating]:
        """``backward(grad_output, input_grad=True)``: fill every ``.grad`` and return dL/dx
        (what a container asks of a Sequential after its first position)."""
        return self.backward(grad_output, input_grad=True)  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Layer:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"Sequential indices are integers or slices, got {type(index).__name__}"
            )
        if not -len(self.layers) <= index < len(self.layers):
            raise IndexError(
                f"Sequential index {index} is out of range for {len(self.layers)} layers"
            )
        return self.layers[index]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for index, layer in enumerate(self.layers):
            text = repr(layer).replace("\n", "\n  ")
            if not isinstance(layer, Layer):  # put in .layers by hand: show it, say so
                lines.append(f"  ({index}): {_shortened(text)}  # not a Layer")
                continue
            count = 0 if isinstance(layer, Sequential) else _counted(layer)
            suffix = f"  # {_parameters(count)}" if isinstance(count, int) and count else ""
            lines.append(f"  ({index}): {text}{suffix}")
        total = _counted(self)
        lines.append(f")  # {_parameters(total) if isinstance(total, int) else total}")
        return "\n".join(lines)


def _not_a_layer(index: int, item: object) -> TypeError:
    """The error for an item of ``Sequential.layers`` that is not a Layer."""
    return TypeError(
        f"Sequential layer {index} is {_shortened(repr(item))} ({type(item).__name__}), not a "
        "minigrad Layer: it was put into .layers by hand; add layers with append(), which "
        "checks them"
    )


def _shortened(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _short(layer: Layer) -> str:
    """A layer's repr for a message: one line, a container summarised, at most 120 characters."""
    if isinstance(layer, Sequential):
        return f"Sequential of {len(layer)} layers"
    text = repr(layer).replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


def _counted(layer: Layer) -> int | str:
    """``layer.num_parameters()``, or why the tree cannot be counted (a repr never raises
    for a model changed by hand into one that other methods refuse)."""
    try:
        return layer.num_parameters()
    except (TypeError, ValueError) as error:
        return f"parameters not counted: {_shortened(str(error))}"


def _parameters(count: int) -> str:
    """``"1 parameter"``, ``"1,024 parameters"``."""
    return f"{count:,} parameter" + ("" if count == 1 else "s")


def _clash_message(index: int, layer: Layer, item: object, path: str, existing: str) -> str:
    """Why layer ``index`` cannot join: ``item``, at ``path`` in it, is already at ``existing``."""
    name = type(layer).__name__
    kind = type(item).__name__
    if existing == "":
        return (
            f"Sequential layer {index} ({name}) contains this Sequential itself"
            + ("" if path == str(index) else f" at '{path}'")
            + ": a layer cannot contain itself"
        )
    if isinstance(item, Parameter):
        return (
            f"Sequential layer {index} ({name}) would share the Parameter at '{path}' "
            f"with '{existing}': {TIED_PARAMETERS}"
        )
    if isinstance(item, Buffer):
        return (
            f"Sequential layer {index} ({name}) would share the Buffer at '{path}' with "
            f"'{existing}': each layer needs its own buffers (give the new one a copy)"
        )
    if path == str(index) and "." not in existing:
        return (
            f"Sequential layer {index} is the same {kind} object as layer {existing}; "
            f"{REPEATED_LAYER}"
        )
    return (
        f"Sequential layer {index} ({name}) holds at '{path}' the same {kind} object as "
        f"at '{existing}'; {REPEATED_LAYER}"
    )


#: Exception classes whose message may be rewritten to start with the layer's position: the
#: constructor takes one message and the class carries nothing else. Any other exception
#: (a user's own class, OSError with errno and filename, KeyError, ...) is left exactly as
#: it is and gets the position as a note.
_PLAIN = frozenset(
    {
        Exception,
        ArithmeticError,
        FloatingPointError,
        IndexError,
        NotImplementedError,
        OverflowError,
        RuntimeError,
        ShapeError,
        TypeError,
        ValueError,
        ZeroDivisionError,
    }
)


def _in_layer(error: Exception, index: int, layer: Layer, method: str) -> None:
    """Add the failing layer's index and class to ``error`` itself, which is then re-raised.

    The exception keeps its class, its arguments' meaning and its attributes. For the plain
    built-in classes (and ShapeError) the position goes in front of the message, so that
    ``str(error)`` shows it; for any other class it is added as a note
    (``error.add_note``, which tracebacks print on Python 3.11+; on 3.10 it is kept in
    ``error.__notes__``).
    """
    where = f"Sequential layer {index} ({type(layer).__name__}) {method}"
    args = error.args
    if type(error) in _PLAIN and len(args) == 1 and isinstance(args[0], str):
        error.args = (f"{where}: {args[0]}",)
        return
    note = f"raised in {where}"
    try:
        if hasattr(error, "add_note"):
            error.add_note(note)
        else:  # Python 3.10
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception class that takes no attributes
        pass
