"""Containers: layers made of layers. Sequential chains them, Residual adds a shortcut around
one, Concat joins the outputs of branches that share their input.

A container is a Layer, so containers nest, and gradient checks, optimizers, ``state_dict``,
``train()``/``eval()`` and model files treat a whole model like a single layer. They share
their conventions: ``backward(g)`` fills every parameter's ``.grad`` and returns dL/dx only
with ``input_grad=True`` (``backward_input``); an error raised in a child comes out with the
child's position added to it ("Sequential layer 2 (Dense) forward: ...", "Residual block
(Dense) forward: ...", "Concat branch 1 (Dense) backward: ..."); a backward after a forward in
evaluation mode is refused; and the repr shows the tree, with parameter counts.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from minigrad._validation import Checked, check_bool, check_integer, forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers._checks import in_dtype
from minigrad.layers.activations import Activation, Identity
from minigrad.layers.base import REPEATED_LAYER, TIED_PARAMETERS, Layer, stale_backward
from minigrad.parameter import Buffer, Parameter
from minigrad.typing import FloatArray

__all__ = ["Concat", "Residual", "Sequential"]

_SequentialT = TypeVar("_SequentialT", bound="Sequential")
_ConcatT = TypeVar("_ConcatT", bound="Concat")


class _Container(Layer):
    """What Sequential, Residual and Concat share: ``backward(g, input_grad=False)``, which
    returns dL/dx only when asked, and a repr that shows the tree with parameter counts."""

    if TYPE_CHECKING:  # a container passes its input on as it is, of any dtype, to its children

        def __call__(self, x: NDArray[Any]) -> FloatArray: ...

    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[False] = False) -> None: ...
    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[True]) -> FloatArray: ...
    @overload
    def backward(
        self, grad_output: FloatArray, *, input_grad: bool = False
    ) -> FloatArray | None: ...
    def backward(self, grad_output: FloatArray, *, input_grad: bool = False) -> FloatArray | None:
        """Fill every parameter's ``.grad``; return dL/dx only with ``input_grad=True``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """``backward(grad_output)``: fill every ``.grad``, skip dL/dx (what a container
        asks of its first child when its own caller did not ask for dL/dx)."""
        self.backward(grad_output, input_grad=False)

    def backward_input(self, grad_output: FloatArray) -> FloatArray:
        """``backward(grad_output, input_grad=True)``: fill every ``.grad`` and return dL/dx
        (what a container asks of a child whose dL/dx it needs)."""
        return self.backward(grad_output, input_grad=True)

    def _labelled(self) -> list[tuple[str, object]]:
        """``(label, child)`` for each child, as the repr shows them (anything put in by
        hand included: a repr never raises)."""
        raise NotImplementedError

    def _short(self) -> str:
        """The container in a few words, for one-line messages."""
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        extra = self.extra_repr()
        if extra:
            lines.extend(f"  {line}" for line in extra.split("\n"))
        for label, child in self._labelled():
            text = repr(child).replace("\n", "\n  ")
            if not isinstance(child, Layer):  # put there by hand: show it, say so
                lines.append(f"  ({label}): {_shortened(text)}  # not a Layer")
                continue
            # a container child prints its own total on its closing line
            count = 0 if isinstance(child, _Container) else _counted(child)
            suffix = f"  # {_parameters(count)}" if isinstance(count, int) and count else ""
            lines.append(f"  ({label}): {text}{suffix}")
        total = _counted(self)
        lines.append(f")  # {_parameters(total) if isinstance(total, int) else total}")
        return "\n".join(lines)


class Sequential(_Container):
    """Layers applied one after another: y = f_n(... f_2(f_1(x))).

    A Sequential is itself a Layer, so it nests, and gradient checks, optimizers and
    ``state_dict`` treat a whole model like a single layer.

    Parameters
    ----------
    *layers : Layer
        The layers in order (a single list or tuple of layers also works).

    Shape
    -----
    x, as the first layer takes it -> y, as the last layer gives it: (batch, in_features of
    the first layer) -> (batch, out_features of the last) for a stack of Dense layers;
    image-shaped (batch, channels, height, width) for a first layer that takes images.

    Notes
    -----
    ``forward`` runs the layers in order; ``backward`` runs them in reverse, feeding each
    the gradient the next one returned (the chain rule). It asks every layer but the first
    for its dL/dx (``backward_input``), and the first only when the caller asks for the
    model's dL/dx (``backward(g, input_grad=True)``); otherwise the first layer's
    ``backward_parameters`` fills its ``.grad`` and skips its dL/dx, the largest product
    of a training step at a wide input. A Sequential answers ``backward_input`` with its
    dL/dx, so one nested at any position works as a layer does.

    Widths are checked at construction where they are known: a layer with
    ``in_features`` (Dense, Normalization, a container that starts with one) must take the
    ``out_features`` of the last layer before it that sets a width, activations being seen
    through. A layer without a fixed width (a convolution, pooling, a flattening layer, a
    layer of your own without ``in_features``/``out_features``) breaks that chain instead:
    the layer after it is checked by its first forward pass, whose error names its position
    and class, as every error raised in a layer does. An unknown width is never an error at
    construction.

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
    y = x + body(x), whose backward is g + dL/dx of the body (:class:`Residual` is this
    layer, built in):

    >>> class MyResidual(Layer):
    ...     def __init__(self, body):
    ...         super().__init__()
    ...         self.body = body
    ...     def forward(self, x):
    ...         return x + self.body(x)
    ...     def backward(self, grad_output):  # body.backward_input(g) is the same
    ...         return grad_output + self.body.backward(grad_output, input_grad=True)
    >>> block = MyResidual(Sequential(Dense(2, 2, rng=0), Tanh()))
    >>> block(np.ones((3, 2))).shape, block.backward(np.ones((3, 2))).shape
    ((3, 2), (3, 2))
    """

    @overload
    def __init__(self, *layers: Layer) -> None: ...
    @overload
    def __init__(self, layers: Iterable[Layer], /) -> None: ...
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
            # a Layer, or anything that append refuses with a message; not an iterable of them
            self.append(layer)  # type: ignore[arg-type]

    def append(self: _SequentialT, layer: Layer) -> _SequentialT:
        """Add ``layer`` at the end, checking that it fits the layers before it.

        Refused: anything but a Layer instance (TypeError); a layer that is already in the
        model, holds a layer or parameter that is, or holds this Sequential (ValueError,
        naming both positions: see "Each object in one place" in
        :class:`~minigrad.layers.base.Layer`); a layer whose ``in_features`` differs from
        the width the stack ends with (ShapeError). The check costs time proportional to
        the new layer's size, so building a model of n layers takes O(n).
        """
        index = len(self.layers)
        given: object = layer  # checked for callers without a type checker
        if not isinstance(given, Layer):
            hint = ""
            if isinstance(given, type) and issubclass(given, Layer):
                hint = f"; pass an instance, {given.__name__}(), not the class"
            raise TypeError(
                f"Sequential layer {index} must be a minigrad Layer, "
                f"got {type(given).__name__}{hint}"
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
        in_features = _width(layer, "in_features")
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

    def _clash(self, places: Sequence[tuple[str, object]]) -> tuple[object, str, str] | None:
        """The first of ``places`` already in the tree: (object, new path, existing path)."""
        for path, item in places:
            existing = self._places.get(id(item))
            if existing is not None:
                return item, path, existing
        return None

    def _output_width(self) -> tuple[int | None, int]:
        """The known feature width at the end of the stack (None after a layer without a
        fixed width) and the layer that sets it."""
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
        return _width(layers[index], "out_features"), index

    @property
    def in_features(self) -> int | None:
        """The input width the first width-setting layer expects (None if unknown)."""
        for layer in self.layers:
            if not isinstance(layer, Activation):
                return _width(layer, "in_features")
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

    def forward(self, x: NDArray[Any]) -> FloatArray:
        """Run every layer's forward in order."""
        self._forward_training = self.training
        index = 0
        try:
            for index, layer in enumerate(self.layers):  # noqa: B007 (the handler reads index)
                x = layer.forward(x)
        except Exception as error:
            if not isinstance(self.layers[index], Layer):
                raise _not_a_layer(index, self.layers[index]) from error
            _in_child(error, f"Sequential layer {index}", self.layers[index], "forward")
            raise
        return x

    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[False] = False) -> None: ...
    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[True]) -> FloatArray: ...
    @overload
    def backward(
        self, grad_output: FloatArray, *, input_grad: bool = False
    ) -> FloatArray | None: ...
    def backward(self, grad_output: FloatArray, *, input_grad: bool = False) -> FloatArray | None:
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
        flag: object = input_grad  # checked for callers without a type checker
        if flag is not True and flag is not False:
            input_grad = check_bool("input_grad", flag)
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
            _in_child(error, f"Sequential layer {index}", layers[index], "backward")
            raise

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @overload
    def __getitem__(self, index: int) -> Layer: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...
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

    def _labelled(self) -> list[tuple[str, object]]:
        return [(str(index), layer) for index, layer in enumerate(self.layers)]

    def _short(self) -> str:
        return f"Sequential of {len(self.layers)} layers"


class Residual(_Container):
    """A residual connection: y = block(x) + shortcut(x), the shortcut the identity by default.

    Parameters
    ----------
    block : Layer
        The residual branch f (often a Sequential).
    shortcut : Layer, optional
        The shortcut s; by default an :class:`~minigrad.Identity` (s(x) = x). Give a layer
        that maps the input to the block's output shape where the block changes it (a
        Dense projection, say).

    Attributes
    ----------
    block, shortcut : Layer
        The two children; ``state_dict()`` keys start with ``"block."`` and
        ``"shortcut."`` ("block.0.weight", "shortcut.weight"), as for a PyTorch module with
        attributes ``block`` and ``shortcut``.

    Shape
    -----
    x, as the block takes it -> y, of the block's output shape; the shortcut's output must
    have the same shape (a ShapeError naming both shapes otherwise).

    Notes
    -----
    Forward: y = f(x) + s(x). Backward, with g = dL/dy: each child gets g, which fills its
    parameters' ``.grad``, and dL/dx = (df/dx)^T g + (ds/dx)^T g (g + (df/dx)^T g for the
    identity shortcut).

    Like every container, ``backward(g)`` returns dL/dx only with ``input_grad=True``
    (``backward_input``, what a Sequential asks of a layer after its first); otherwise it
    asks each child only for its parameters' gradients (``backward_parameters``), so that a
    Residual first in a model, as a Sequential's first layer, skips the products that only
    dL/dx needs.

    Outputs of different dtypes (an identity shortcut passing float64 data beside a
    float32 block) are added in the dtype of the first that differs from the input's, the
    block's first: the model's precision, not the data's, as a Dense converts its input.
    dL/dx is added up the same way.

    Widths are checked at construction where they are known (``in_features`` and
    ``out_features``): the block's input and output widths for an identity shortcut, and
    the block's against the shortcut's otherwise. ``in_features`` and ``out_features`` are
    those of the block (or of the shortcut), so a Sequential checks its neighbours.

    Examples
    --------
    >>> from minigrad import Dense, ReLU, Sequential
    >>> block = Residual(Sequential(Dense(4, 4, rng=0), ReLU(), Dense(4, 4, rng=1)))
    >>> block
    Residual(
      (block): Sequential(
        (0): Dense(in_features=4, out_features=4, bias=True)  # 20 parameters
        (1): ReLU()
        (2): Dense(in_features=4, out_features=4, bias=True)  # 20 parameters
      )  # 40 parameters
      (shortcut): Identity()
    )  # 40 parameters
    >>> list(block.state_dict())
    ['block.0.weight', 'block.0.bias', 'block.2.weight', 'block.2.bias']
    >>> x = np.ones((3, 4), np.float32)
    >>> block(x).shape, block.backward(np.ones((3, 4))) is None
    ((3, 4), True)
    >>> block.backward(np.ones((3, 4)), input_grad=True).shape
    (3, 4)

    A projection shortcut where the block changes the width, inside a Sequential:

    >>> model = Sequential(
    ...     Dense(2, 4, rng=0),
    ...     Residual(Sequential(Dense(4, 8, rng=1), ReLU()), shortcut=Dense(4, 8, rng=2)),
    ...     Dense(8, 1, rng=3),
    ... )
    >>> model
    Sequential(
      (0): Dense(in_features=2, out_features=4, bias=True)  # 12 parameters
      (1): Residual(
        (block): Sequential(
          (0): Dense(in_features=4, out_features=8, bias=True)  # 40 parameters
          (1): ReLU()
        )  # 40 parameters
        (shortcut): Dense(in_features=4, out_features=8, bias=True)  # 40 parameters
      )  # 80 parameters
      (2): Dense(in_features=8, out_features=1, bias=True)  # 9 parameters
    )  # 101 parameters
    >>> [key for key in model.state_dict() if key.startswith("1.")]
    ['1.block.0.weight', '1.block.0.bias', '1.shortcut.weight', '1.shortcut.bias']
    >>> Residual(Dense(4, 8))  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    minigrad.errors.ShapeError: Residual block (Dense(in_features=4, out_features=8,
    bias=True)) maps 4 features to 8, but the identity shortcut keeps 4: the two are added;
    give a shortcut that maps 4 features to 8, such as shortcut=Dense(4, 8)
    """

    def __init__(self, block: Layer, shortcut: Layer | None = None) -> None:
        super().__init__()
        _check_child("Residual block", block)
        if shortcut is None:
            shortcut = Identity()
        else:
            _check_child("Residual shortcut", shortcut)
        self.block = block
        self.shortcut = shortcut
        _check_tree(self)
        self._check_widths()
        self._shape: tuple[int, ...] | None = None  # of the last forward's output
        self._input_dtype: np.dtype | None = None

    def _check_widths(self) -> None:
        block, shortcut = self.block, self.shortcut
        block_in, block_out = _width(block, "in_features"), _width(block, "out_features")
        if type(shortcut) is Identity:
            if block_in is not None and block_out is not None and block_in != block_out:
                raise ShapeError(
                    f"Residual block ({_short(block)}) maps {block_in} features to "
                    f"{block_out}, but the identity shortcut keeps {block_in}: the two are "
                    f"added; give a shortcut that maps {block_in} features to {block_out}, "
                    f"such as shortcut=Dense({block_in}, {block_out})"
                )
            return
        short_in, short_out = _width(shortcut, "in_features"), _width(shortcut, "out_features")
        if block_in is not None and short_in is not None and block_in != short_in:
            raise ShapeError(
                f"Residual block ({_short(block)}) expects {block_in} input features, but "
                f"the shortcut ({_short(shortcut)}) expects {short_in}: both take the input"
            )
        if block_out is not None and short_out is not None and block_out != short_out:
            raise ShapeError(
                f"Residual block ({_short(block)}) outputs {block_out} features, but the "
                f"shortcut ({_short(shortcut)}) outputs {short_out}: the two are added, so "
                "they must match"
            )

    @property
    def in_features(self) -> int | None:
        """The input width, if the block or the shortcut knows it (else None)."""
        known = _width(self.block, "in_features")
        if known is None:
            known = _width(self.shortcut, "in_features")
        if known is None and type(self.shortcut) is Identity:
            known = _width(self.block, "out_features")
        return known

    @property
    def out_features(self) -> int | None:
        """The output width, if the block or the shortcut knows it (else None)."""
        known = _width(self.block, "out_features")
        if known is None:
            known = _width(self.shortcut, "out_features")
        if known is None and type(self.shortcut) is Identity:
            known = _width(self.block, "in_features")
        return known

    def children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``("block", block)`` then ``("shortcut", shortcut)``.

        Raises TypeError for a child replaced by hand with something that is not a Layer.
        """
        for name in ("block", "shortcut"):
            child = getattr(self, name)
            if not isinstance(child, Layer):
                raise _replaced(f"Residual {name}", child)
            yield name, child

    def forward(self, x: NDArray[Any]) -> FloatArray:
        """y = block(x) + shortcut(x)."""
        self._forward_training = self.training
        self._shape = None  # a failed forward leaves nothing for backward
        out = _forward(self.block, x, "Residual block")
        short = _forward(self.shortcut, x, "Residual shortcut")
        if out.shape != short.shape:
            raise ShapeError(
                f"Residual block ({_short(self.block)}) outputs shape {out.shape}, but the "
                f"shortcut ({_short(self.shortcut)}) outputs {short.shape}: the two are "
                "added, so they must have the same shape (give a shortcut that maps the "
                "input to the block's output shape)"
            )
        input_dtype = getattr(x, "dtype", None)
        dtype = _common_dtype([out.dtype, short.dtype], input_dtype)
        out, short = (a if a.dtype == dtype else in_dtype(a, dtype) for a in (out, short))
        with np.errstate(over="ignore"):  # a sum beyond the dtype's range is inf, silently
            y = out + short  # a new array: either output may be a child's cache
        self._shape, self._input_dtype = y.shape, input_dtype
        return y

    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[False] = False) -> None: ...
    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[True]) -> FloatArray: ...
    @overload
    def backward(
        self, grad_output: FloatArray, *, input_grad: bool = False
    ) -> FloatArray | None: ...
    def backward(self, grad_output: FloatArray, *, input_grad: bool = False) -> FloatArray | None:
        """Give g to both children; return dL/dx = block's dL/dx + shortcut's dL/dx only
        with ``input_grad=True`` (see :class:`Sequential`'s ``backward``)."""
        grad_output, input_grad = _checked_backward(self, grad_output, input_grad)
        if not input_grad:
            _backward(self.block, grad_output, "Residual block", False)
            _backward(self.shortcut, grad_output, "Residual shortcut", False)
            return None
        grads = [
            _backward(self.block, grad_output, "Residual block", True),
            _backward(self.shortcut, grad_output, "Residual shortcut", True),
        ]
        return _summed(self, grads, ("the block", "the shortcut"))

    def _labelled(self) -> list[tuple[str, object]]:
        return [("block", self.block), ("shortcut", self.shortcut)]

    def _short(self) -> str:
        block = self.block
        return f"Residual around {_short(block) if isinstance(block, Layer) else '?'}"


class Concat(_Container):
    """Branches that each take the input, their outputs concatenated along ``dim``:
    y = [f_1(x), f_2(x), ..., f_k(x)], as ``torch.cat([f(x) for f in branches], dim)``.

    Parameters
    ----------
    *branches : Layer
        One or more layers (a single list or tuple of layers also works).
    dim : int, keyword-only, default 1
        The dimension to concatenate along, named as in ``torch.cat``: 1 is the features of
        (batch, features) and the channels of (batch, channels, height, width).

    Attributes
    ----------
    branches : list of Layer
        ``state_dict()`` keys start with ``"branches.<i>."`` ("branches.0.weight"), as for
        a PyTorch module that keeps its branches in an ``nn.ModuleList`` named
        ``branches``.

    Shape
    -----
    x, as every branch takes it -> y, the branches' outputs joined along ``dim``: they
    must agree in every other dimension (a ShapeError naming the branches and shapes
    otherwise). For Dense branches: (batch, in_features) -> (batch, sum of out_features).

    Notes
    -----
    Forward: y = concat_dim(f_1(x), ..., f_k(x)). Backward, with g = dL/dy: g is split
    along ``dim`` into the pieces g_i of each branch's output (views, not copies), each
    branch gets its piece, which fills its parameters' ``.grad``, and
    dL/dx = sum_i (df_i/dx)^T g_i.

    Like every container, ``backward(g)`` returns dL/dx only with ``input_grad=True``;
    otherwise each branch is asked only for its parameters' gradients.

    Outputs of different dtypes (a float32 branch beside an Identity branch passing
    float64 data through) are joined in the dtype of the first output whose dtype differs
    from the input's: the model's precision, not the data's, as a Dense converts its input.

    At construction, branches with a known ``in_features`` must agree on it (they all take
    the same input). ``out_features`` is the sum of the branches' for ``dim=1`` when every
    branch knows its own, so a Sequential checks the layer that follows.

    Examples
    --------
    >>> from minigrad import Dense, ReLU, Sequential
    >>> concat = Concat(Dense(3, 2, rng=0), Sequential(Dense(3, 4, rng=1), ReLU()))
    >>> concat
    Concat(
      dim=1
      (branches.0): Dense(in_features=3, out_features=2, bias=True)  # 8 parameters
      (branches.1): Sequential(
        (0): Dense(in_features=3, out_features=4, bias=True)  # 16 parameters
        (1): ReLU()
      )  # 16 parameters
    )  # 24 parameters
    >>> concat.out_features, list(concat.state_dict())[:3]
    (6, ['branches.0.weight', 'branches.0.bias', 'branches.1.0.weight'])
    >>> y = concat(np.ones((5, 3), np.float32))
    >>> y.shape, concat.backward(np.ones((5, 6)), input_grad=True).shape
    ((5, 6), (5, 3))
    """

    dim = Checked(
        partial(check_integer, minimum=-64, maximum=63),
        "The dimension the branches' outputs are concatenated along.",
    )

    @overload
    def __init__(self, *branches: Layer, dim: int = 1) -> None: ...
    @overload
    def __init__(self, branches: Iterable[Layer], /, *, dim: int = 1) -> None: ...
    def __init__(self, *branches: Layer | Iterable[Layer], dim: int = 1) -> None:
        super().__init__()
        if (
            len(branches) == 1
            and not isinstance(branches[0], Layer)
            and isinstance(branches[0], Iterable)
        ):
            branches = tuple(branches[0])
        if not branches:
            raise ValueError("Concat needs at least one branch, got none")
        for index, branch in enumerate(branches):
            _check_child(f"Concat branch {index}", branch)
        self.dim = dim
        # each a Layer, as _check_child made sure, which mypy cannot follow
        self.branches: list[Layer] = list(branches)  # type: ignore[arg-type]
        _check_tree(self)
        self._check_widths()
        self._shape: tuple[int, ...] | None = None  # of the last forward's output
        self._sizes: list[int] = []  # each branch's length along the axis
        self._axis = 0
        self._input_dtype: np.dtype | None = None

    def _check_widths(self) -> None:
        known = [
            (index, branch, _width(branch, "in_features"))
            for index, branch in enumerate(self.branches)
        ]
        known = [item for item in known if item[2] is not None]
        for index, branch, width in known[1:]:
            first, first_branch, first_width = known[0]
            if width != first_width:
                raise ShapeError(
                    f"Concat branch {index} ({_short(branch)}) expects {width} input "
                    f"features, but branch {first} ({_short(first_branch)}) expects "
                    f"{first_width}: every branch takes the same input"
                )

    @property
    def in_features(self) -> int | None:
        """The input width, if a branch knows it (else None)."""
        for branch in self.branches:
            width = _width(branch, "in_features")
            if width is not None:
                return width
        return None

    @property
    def out_features(self) -> int | None:
        """The sum of the branches' output widths for ``dim=1``, if every branch knows its
        own (else None)."""
        if self.dim != 1:
            return None
        widths = [_width(branch, "out_features") for branch in self.branches]
        # no None in widths here, which a membership test does not tell mypy
        return None if None in widths else sum(widths)  # type: ignore[arg-type]

    def children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``("branches.<i>", branch)`` for each branch in order.

        Raises TypeError for a branch put in by hand that is not a Layer.
        """
        for index, branch in enumerate(self.branches):
            if not isinstance(branch, Layer):
                raise _replaced(f"Concat branch {index}", branch)
            yield f"branches.{index}", branch

    def forward(self, x: NDArray[Any]) -> FloatArray:
        """y = the branches' outputs concatenated along ``dim``."""
        self._forward_training = self.training
        self._shape = None  # a failed forward leaves nothing for backward
        branches = self.branches
        outputs = [
            _forward(branch, x, f"Concat branch {index}") for index, branch in enumerate(branches)
        ]
        first, dim = outputs[0], self.dim
        if not -first.ndim <= dim < first.ndim:
            raise ShapeError(
                f"Concat(dim={dim}) needs outputs with a dimension {dim}, but branch 0 "
                f"({_short(branches[0])}) outputs shape {first.shape} ({first.ndim}-D)"
            )
        axis = dim % first.ndim
        rest = first.shape[:axis] + first.shape[axis + 1 :]
        for index, out in enumerate(outputs[1:], 1):
            if out.ndim != first.ndim or out.shape[:axis] + out.shape[axis + 1 :] != rest:
                raise ShapeError(
                    f"Concat branch {index} ({_short(branches[index])}) outputs shape "
                    f"{out.shape}, but branch 0 ({_short(branches[0])}) outputs "
                    f"{first.shape}: they are joined along dim {dim}, so they must agree in "
                    "every other dimension"
                )
        input_dtype = getattr(x, "dtype", None)
        dtype = _common_dtype([out.dtype for out in outputs], input_dtype)
        outputs = [out if out.dtype == dtype else in_dtype(out, dtype) for out in outputs]
        y = np.concatenate(outputs, axis=axis)
        self._sizes = [out.shape[axis] for out in outputs]
        self._axis, self._shape, self._input_dtype = axis, y.shape, input_dtype
        return y

    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[False] = False) -> None: ...
    @overload
    def backward(self, grad_output: FloatArray, *, input_grad: Literal[True]) -> FloatArray: ...
    @overload
    def backward(
        self, grad_output: FloatArray, *, input_grad: bool = False
    ) -> FloatArray | None: ...
    def backward(self, grad_output: FloatArray, *, input_grad: bool = False) -> FloatArray | None:
        """Split g along ``dim`` and give each branch its piece; return dL/dx, the sum of
        the branches' dL/dx, only with ``input_grad=True`` (see :class:`Sequential`'s
        ``backward``)."""
        grad_output, input_grad = _checked_backward(self, grad_output, input_grad)
        pieces = np.split(grad_output, np.cumsum(self._sizes)[:-1], axis=self._axis)
        grads = [
            _backward(branch, piece, f"Concat branch {index}", input_grad)
            for index, (branch, piece) in enumerate(zip(self.branches, pieces, strict=True))
        ]
        if not input_grad:
            return None
        # every branch returned its dL/dx, asked for with input_grad=True
        names = [f"branch {index}" for index in range(len(grads))]
        return _summed(self, grads, names)  # type: ignore[arg-type]

    def _labelled(self) -> list[tuple[str, object]]:
        return [(f"branches.{index}", branch) for index, branch in enumerate(self.branches)]

    def _short(self) -> str:
        return f"Concat of {len(self.branches)} branches along dim {self.dim}"

    def get_config(self) -> dict[str, Any]:
        """``{"dim": ...}``: the argument besides the branches, which model files describe
        on their own (see :func:`~minigrad.serialization.architecture.describe_layer`)."""
        return {"dim": self.dim}

    @classmethod
    def from_config(cls: type[_ConcatT], config: dict[str, Any]) -> _ConcatT:
        """``Concat(*config["branches"], dim=config["dim"])``: the :meth:`get_config`
        output with the branches, already built, under ``"branches"``."""
        if not isinstance(config, dict):
            raise TypeError(
                f"Concat.from_config takes a dict of constructor arguments, got "
                f"{type(config).__name__}"
            )
        unknown = set(config) - {"branches", "dim"}
        if unknown or "branches" not in config:
            raise ValueError(
                "a Concat config has the keys 'branches' (a list of layers) and 'dim', got "
                f"{sorted(map(str, config))}"
            )
        branches = config["branches"]
        if not isinstance(branches, (list, tuple)):
            raise TypeError(
                f"Concat.from_config: 'branches' must be a list of layers, got "
                f"{type(branches).__name__}"
            )
        return cls(*branches, **({"dim": config["dim"]} if "dim" in config else {}))

    def extra_repr(self) -> str:
        """``dim=...``, shown first in the repr."""
        return f"dim={self.dim}"


def _check_child(position: str, layer: object) -> None:
    """TypeError unless ``layer`` is a Layer instance, naming its position."""
    if not isinstance(layer, Layer):
        hint = ""
        if isinstance(layer, type) and issubclass(layer, Layer):
            hint = f"; pass an instance, {layer.__name__}(), not the class"
        raise TypeError(f"{position} must be a minigrad Layer, got {type(layer).__name__}{hint}")


def _check_tree(container: Layer) -> None:
    """ValueError if a Layer, Parameter or Buffer appears twice in ``container``'s tree."""
    try:
        for _ in container._tree():
            pass
    except ValueError as error:
        raise ValueError(f"{type(container).__name__}: {error}") from None


def _replaced(position: str, item: object) -> TypeError:
    """The error for a child replaced by hand with something that is not a Layer."""
    return TypeError(
        f"{position} is {_shortened(repr(item))} ({type(item).__name__}), not a minigrad "
        "Layer: it was replaced by hand; build a new container instead, which checks it"
    )


def _forward(layer: Layer, x: NDArray[Any], position: str) -> FloatArray:
    """``layer.forward(x)``, an error from it re-raised with ``position`` added; TypeError
    for an output that is not a NumPy array."""
    try:
        out = layer.forward(x)
    except Exception as error:
        if not isinstance(layer, Layer):
            raise _replaced(position, layer) from error
        _in_child(error, position, layer, "forward")
        raise
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"{position} ({type(layer).__name__}) forward returned {type(out).__name__}, "
            "not a NumPy array"
        )
    return out


@overload
def _backward(
    layer: Layer, grad_output: FloatArray, position: str, input_grad: Literal[True]
) -> FloatArray: ...
@overload
def _backward(
    layer: Layer, grad_output: FloatArray, position: str, input_grad: bool
) -> FloatArray | None: ...
def _backward(
    layer: Layer, grad_output: FloatArray, position: str, input_grad: bool
) -> FloatArray | None:
    """``layer.backward_input(g)`` (or ``backward_parameters``), an error from it re-raised
    with ``position`` added."""
    try:
        if input_grad:
            return layer.backward_input(grad_output)
        layer.backward_parameters(grad_output)
        return None
    except Exception as error:
        if not isinstance(layer, Layer):
            raise _replaced(position, layer) from error
        _in_child(error, position, layer, "backward")
        raise


def _checked_backward(
    container: Residual | Concat, grad_output: object, input_grad: object
) -> tuple[FloatArray, bool]:
    """``grad_output`` and ``input_grad`` after the checks every container's backward makes:
    a forward in training mode was the last, and g is a float array of its output's shape."""
    if container.training and not container._forward_training:
        raise stale_backward(container)
    shape = container._shape
    if shape is None:
        raise forward_not_called(container)
    name = type(container).__name__
    if not isinstance(grad_output, np.ndarray):
        raise TypeError(
            f"{name}.backward takes the gradient as a NumPy array (what loss.backward() "
            f"returns), got {type(grad_output).__name__}"
        )
    if grad_output.dtype.kind != "f":
        raise TypeError(
            f"{name}.backward takes a floating-point gradient, got dtype {grad_output.dtype}"
        )
    if grad_output.shape != shape:
        raise ShapeError(
            f"{name}.backward expected grad_output of shape {shape} (the forward output's), "
            f"got {grad_output.shape}"
        )
    if input_grad is not True and input_grad is not False:
        input_grad = check_bool("input_grad", input_grad)
    return grad_output, input_grad


def _common_dtype(dtypes: list[np.dtype], input_dtype: np.dtype | None) -> np.dtype:
    """The dtype to join arrays of ``dtypes`` in: theirs when they agree, else the first
    that differs from the input's (a path through layers with parameters sets the model's
    precision; a path that passed the input through keeps the data's)."""
    first = dtypes[0]
    if all(dtype == first for dtype in dtypes[1:]):
        return first
    return next((dtype for dtype in dtypes if dtype != input_dtype), first)


def _summed(
    container: Residual | Concat, grads: list[FloatArray], names: Iterable[str]
) -> FloatArray:
    """The children's dL/dx added up, after checking that they have one shape, in the
    dtype chosen as the forward's was."""
    names = list(names)
    first = grads[0]
    for grad, name in zip(grads[1:], names[1:], strict=True):
        if not isinstance(grad, np.ndarray) or grad.shape != first.shape:
            raise ShapeError(
                f"{type(container).__name__}.backward: {name} returned dL/dx of shape "
                f"{np.shape(grad)}, but {names[0]} returned {first.shape}; each child's dL/dx "
                "must have the input's shape"
            )
    if len(grads) == 1:
        return first
    dtype = _common_dtype([grad.dtype for grad in grads], container._input_dtype)
    grads = [grad if grad.dtype == dtype else in_dtype(grad, dtype) for grad in grads]
    with np.errstate(over="ignore"):  # a sum beyond the dtype's range is inf, silently
        total = grads[0] + grads[1]  # a new array: a child's dL/dx may be g itself
        for grad in grads[2:]:
            total += grad
    return total


def _not_a_layer(index: int, item: object) -> TypeError:
    """The error for an item of ``Sequential.layers`` that is not a Layer."""
    return TypeError(
        f"Sequential layer {index} is {_shortened(repr(item))} ({type(item).__name__}), not a "
        "minigrad Layer: it was put into .layers by hand; add layers with append(), which "
        "checks them"
    )


def _width(layer: object, name: str) -> int | None:
    """``layer.in_features`` or ``out_features`` if it is a known width (an integer), else
    None: a layer without a fixed width (a convolution, a flattening layer) or one that
    does not say."""
    value = getattr(layer, name, None)
    if not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral):
        return int(value)
    return None


def _shortened(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _short(layer: Layer) -> str:
    """A layer's repr for a message: one line, a container summarised, at most 120 characters."""
    if isinstance(layer, _Container):
        text = layer._short()
    else:
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


def _in_child(error: Exception, position: str, layer: Layer, method: str) -> None:
    """Add the failing child's position (``"Sequential layer 2"``, ``"Residual block"``) and
    class to ``error`` itself, which is then re-raised.

    The exception keeps its class, its arguments' meaning and its attributes. For the plain
    built-in classes (and ShapeError) the position goes in front of the message, so that
    ``str(error)`` shows it; for any other class it is added as a note
    (``error.add_note``, which tracebacks print on Python 3.11+; on 3.10 it is kept in
    ``error.__notes__``).
    """
    where = f"{position} ({type(layer).__name__}) {method}"
    args = error.args
    if type(error) in _PLAIN and len(args) == 1 and isinstance(args[0], str):
        error.args = (f"{where}: {args[0]}",)
        return
    note = f"raised in {where}"
    try:
        if hasattr(error, "add_note"):
            error.add_note(note)
        else:  # Python 3.10
            # __notes__ is in the stubs from Python 3.11 only
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception class that takes no attributes
        pass
