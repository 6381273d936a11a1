"""The Layer base class: the contract every layer, container and user-defined layer follows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_bool
from minigrad.parameter import Buffer, Parameter
from minigrad.typing import FloatArray

#: The class of the layer a method returns itself from (``model.eval()`` is still a Sequential)
_LayerT = TypeVar("_LayerT", bound="Layer")

__all__ = ["Layer"]

#: why a Parameter may appear only once in a model, for the messages that refuse a tie
TIED_PARAMETERS = (
    "tied parameters are not supported: backward overwrites .grad, so a shared parameter "
    "would keep only its last use's gradient. To tie weights, write one layer that uses "
    "the parameter twice and adds up both gradients"
)
#: why a Layer object may appear only once in a model
REPEATED_LAYER = "a layer caches its input for backward, so each position needs its own instance"


class Layer:
    """Base class of every layer.

    A layer maps a batch to a batch in ``forward`` and maps the gradient of the loss with
    respect to its output back to the gradient with respect to its input in ``backward``:

        y = f(x);   dL/dx = (dy/dx)^T g,   dL/dtheta = (dy/dtheta)^T g,   with g = dL/dy

    Writing a new layer means subclassing and writing those two methods (see Examples).

    Parameters and buffers are found by structure: any attribute holding a
    :class:`~minigrad.Parameter` is one of the layer's trainable parameters, any attribute
    holding a :class:`~minigrad.Buffer` one of its buffers (saved, never trained), both
    named after the attribute; any attribute holding a Layer contributes its own under
    ``"<attribute>.<name>"``. ``state_dict()`` keys follow from these names, as in PyTorch.

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
        never required, but it exists, costs nothing and is always safe to call.)
        A container is the exception: ``Sequential.backward(g)`` returns dL/dx only when
        asked (``input_grad=True``), as PyTorch computes no gradient for an input that
        does not require one.
    ``backward_parameters(grad_output)``
        Fills the parameters' ``.grad`` like backward and returns nothing: what a container
        asks of its **first** layer when its own caller did not ask for dL/dx (a training
        step never needs the gradient with respect to the data). The default runs
        ``backward`` and drops the result.
    ``backward_input(grad_output)``
        Fills the parameters' ``.grad`` and returns dL/dx: what a container asks of every
        layer that is not its first, and of its first when its own caller asked. The
        default is ``backward(grad_output)``; a container returns its dL/dx here even
        though its ``backward`` does not by default. A layer of your own that holds a
        Sequential gets dL/dx from it with ``body.backward(g, input_grad=True)`` or
        ``body.backward_input(g)`` (see :class:`~minigrad.Sequential`).
    ``backward`` belongs to the **last** forward
        What backward uses is what the last forward cached. Run the forward, the loss and
        backward in that order, with no other forward pass in between: a forward on other
        data (``model(x2)``) replaces the cache, and backward then returns that batch's
        gradients (a batch of another size makes backward raise a ShapeError; one of the
        same size cannot be told apart). The built-in layers and Sequential catch the
        common case: a forward in evaluation mode between a training-mode forward and
        backward (``mg.predict`` or ``mg.evaluate`` called after the loss) makes backward
        raise a RuntimeError. A forward and backward both in evaluation mode (saliency maps
        of a model in eval mode) is fine. Layers of your own inside a Sequential are
        covered by the Sequential's check.
    Each object in one place
        A Layer object may appear only once in a model, and so may a Parameter or Buffer.
        A layer caches its input, so the same layer at two positions would compute one
        position's gradient from the other's input; and backward overwrites ``.grad``, so
        a Parameter shared by two layers (tied weights) would keep only its last use's
        gradient. ``named_layers``, ``named_parameters``, ``parameters``, ``state_dict``
        (and so optimizers built from ``model.parameters()``, ``fit`` and saving) raise a
        ValueError naming both places, and ``Sequential.append`` refuses such a layer at
        once. To tie weights, write one layer that holds the parameter and uses it twice,
        adding up both uses' gradients in its backward.
    ``train()`` / ``eval()``
        Set the ``training`` flag, here and in every sub-layer, for layers whose forward
        differs between the two (dropout, batch norm).
    Random generators
        A layer that draws random numbers as it runs (Dropout's masks) keeps its own
        ``numpy.random.Generator`` as an attribute, and it is found by structure too:
        :meth:`named_generators` lists every Generator attribute of the tree by its path
        (``"2.rng"``). They are not part of ``state_dict()`` (PyTorch's Dropout has no
        state, and model files stay loadable into the equivalent PyTorch model), but
        checkpoints save and restore their states, so that a resumed ``fit`` draws the
        same masks as an uninterrupted one, and ``check_gradients`` rewinds them before
        every forward pass, so that each pass draws the same ones. A layer of your own
        that keeps its generator in an attribute takes part in both.

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

    A Parameter shared by two layers is refused wherever the model's parameters are read:

    >>> from minigrad import Dense, Sequential
    >>> first, second = Dense(2, 2), Dense(2, 2)
    >>> second.weight = first.weight
    >>> Sequential(first, second)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    ValueError: Sequential layer 1 (Dense) would share the Parameter at '1.weight' with
    '0.weight': tied parameters are not supported: ...
    """

    # Checked on assignment: layer.training = "False" is a TypeError, not training mode
    training = Checked(check_bool, "Whether the layer is in training mode: train(), eval().")
    # Class-level defaults, so that a user layer that forgets super().__init__() still works
    _training: bool = True
    #: the mode the last forward ran in; built-in layers and Sequential set it in forward
    _forward_training: bool = True

    def __init__(self) -> None:
        self.training = True

    # -- the two methods a layer writes -------------------------------------------------

    def forward(self, x: FloatArray) -> FloatArray:
        """Compute the layer's output for the batch ``x`` and cache what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, grad_output: FloatArray) -> FloatArray | None:
        """Return dL/dx given dL/dy, and overwrite each parameter's ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(grad_output)")

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """Fill the parameters' ``.grad`` like backward, without returning dL/dx.

        ``Sequential.backward(g)`` (``input_grad=False``, the default) calls this on its
        first layer, where nothing needs the gradient with respect to the data. The default
        runs ``backward`` and drops the result; a layer overrides it when dL/dx costs work
        of its own (Dense skips the product g W, half of its backward's matrix work).
        """
        self.backward(grad_output)

    def backward_input(self, grad_output: FloatArray) -> FloatArray:
        """Fill the parameters' ``.grad`` and return dL/dx, of the last forward input's shape.

        What a container asks of a layer that is not its first (or of its first when its
        own caller asked for dL/dx). The default returns ``self.backward(grad_output)``,
        which is dL/dx for every leaf layer; a container whose ``backward`` returns dL/dx
        only when asked overrides it (``Sequential.backward_input(g)`` is
        ``backward(g, input_grad=True)``).
        """
        # A leaf layer's backward returns dL/dx; the containers, whose backward returns None
        # unless asked, override this, and Embedding (None: indices have no gradient) can
        # only be a model's first layer, which is asked for dL/dx only by an explicit request
        return self.backward(grad_output)  # type: ignore[return-value]

    def __call__(self, x: FloatArray) -> FloatArray:
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

    def _tree(self, root: str = "") -> Iterator[tuple[str, Layer | Parameter | Buffer]]:
        """``(path, object)`` for this layer (at ``root``), each of its Parameters and
        Buffers, then each sub-layer's the same way, depth first; ValueError for any object
        met twice (a repeated layer, a tied parameter, a layer inside itself).

        Iterative rather than recursive, so that a deep or cyclic structure cannot exhaust
        the stack before the repeat is found.
        """
        seen: dict[int, str] = {}
        stack: list[tuple[str, Layer]] = [(root, self)]
        while stack:
            path, layer = stack.pop()
            _first_place(seen, layer, path)
            yield path, layer
            prefix = f"{path}." if path else ""
            for name, value in layer._attributes():
                if isinstance(value, (Parameter, Buffer)):
                    _first_place(seen, value, prefix + name)
                    yield prefix + name, value
            children = [(prefix + name, child) for name, child in layer.children()]
            stack.extend(reversed(children))

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """Yield ``(path, layer)`` for this layer (path ``""``) and every sub-layer, depth
        first: ``("", model)``, ``("0", model[0])``, ``("1", inner)``, ``("1.0", inner[0])``.

        Raises ValueError when a Layer object appears twice (see "Each object in one place"
        in the class notes). ``prefix`` is put in front of every path.
        """
        for path, item in self._tree():
            if isinstance(item, Layer):
                yield prefix + path, item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(key, parameter)`` pairs: this layer's own first, then each sub-layer's.

        Keys are dotted paths such as ``"weight"`` or ``"0.weight"``, with ``prefix`` in
        front. Raises ValueError when a Parameter (a tie) or a Layer appears twice.
        """
        for key, item in self._tree():
            if isinstance(item, Parameter):
                yield prefix + key, item

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Buffer]]:
        """Yield ``(key, buffer)`` pairs in the order of :meth:`named_parameters`."""
        for key, item in self._tree():
            if isinstance(item, Buffer):
                yield prefix + key, item

    def named_generators(self, prefix: str = "") -> Iterator[tuple[str, np.random.Generator]]:
        """Yield ``(path, generator)`` for every ``numpy.random.Generator`` that this layer or
        a sub-layer holds as an attribute, in the order of :meth:`named_layers`.

        Paths are the layer's path and the attribute's name (``"2.rng"``, or ``"rng"`` for
        this layer's own), with ``prefix`` in front. These are the generators whose states
        checkpoints save and restore and ``check_gradients`` rewinds (see "Random
        generators" in the class notes). A generator shared by two layers is listed under
        each path. Raises ValueError when a Layer appears twice, as :meth:`named_layers`.

        Examples
        --------
        A layer of your own that draws noise at every forward pass keeps its generator in
        an attribute, which is all it takes:

        >>> from minigrad import Dense, Sequential
        >>> class Noise(Layer):  # y = x + 0.1 z, z ~ N(0, 1)
        ...     def __init__(self, seed):
        ...         super().__init__()
        ...         self.rng = np.random.default_rng(seed)
        ...     def forward(self, x):
        ...         return x + 0.1 * self.rng.standard_normal(np.shape(x))
        ...     def backward(self, grad_output):
        ...         return grad_output
        >>> model = Sequential(Dense(2, 2), Noise(seed=0), Dense(2, 1))
        >>> [path for path, _ in model.named_generators()]
        ['1.rng']
        """
        for path, layer in self.named_layers():
            dotted = f"{path}." if path else ""
            for name, value in layer._attributes():
                if isinstance(value, np.random.Generator):
                    yield prefix + dotted + name, value

    def parameters(self) -> list[Parameter]:
        """All trainable parameters of this layer and its sub-layers, in a fixed order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, for free: it marks them as zero.

        The next backward overwrites them without writing the zeros first; anything else
        that reads ``.grad`` (a backward of your own that adds into it, clipping, an
        optimizer step) sees zeros. Never required: backward overwrites ``.grad``.
        """
        for p in self.parameters():
            p.zero_grad()

    def train(self: _LayerT, mode: bool = True) -> _LayerT:
        """Put this layer and its sub-layers in training mode (``mode=False``: evaluation)."""
        mode = check_bool("mode", mode)
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self: _LayerT) -> _LayerT:
        """Put this layer and its sub-layers in evaluation mode."""
        return self.train(False)

    def freeze(self: _LayerT) -> _LayerT:
        """Freeze every parameter of this layer and its sub-layers (``requires_grad =
        False``); returns the layer.

        A frozen parameter is not trained: backward skips its gradient's product (its
        ``.grad`` is left as it was, not computed), optimizers neither update it nor keep
        state for it, and gradient clipping ignores it. dL/dx still flows through a frozen
        layer, so the layers before it train as usual. As in PyTorch, ``requires_grad`` is
        not saved (``state_dict()`` and files hold values): freeze again after loading.

        Examples
        --------
        Fine-tune the head only:

        >>> import minigrad as mg
        >>> model = mg.Sequential(mg.Dense(4, 8, rng=0), mg.ReLU(), mg.Dense(8, 2, rng=1))
        >>> body = model[0].freeze()
        >>> [p.requires_grad for p in model.parameters()]
        [False, False, True, True]
        >>> model.unfreeze() is model
        True
        """
        return self._set_requires_grad(False)

    def unfreeze(self: _LayerT) -> _LayerT:
        """Make every parameter of this layer and its sub-layers trainable again
        (``requires_grad = True``); returns the layer (see :meth:`freeze`).

        >>> import minigrad as mg
        >>> layer = mg.Dense(2, 1).freeze().unfreeze()
        >>> layer.weight.requires_grad
        True
        """
        return self._set_requires_grad(True)

    def _set_requires_grad(self: _LayerT, flag: bool) -> _LayerT:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    # -- state --------------------------------------------------------------------------

    def _named_arrays(self) -> dict[str, Parameter | Buffer]:
        return {key: item for key, item in self._tree() if not isinstance(item, Layer)}

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """A copy of every parameter and buffer value, keyed by its dotted name.

        The arrays are copies, so the dict is a snapshot that later training does not change.
        """
        return {key: item.value.copy() for key, item in self._named_arrays().items()}

    def load_state_dict(self, state: Mapping[str, ArrayLike]) -> None:
        """Copy values from ``state`` into this layer's parameters and buffers, in place.

        Every key must be present, with no extra keys, and every array must have the
        parameter's (or buffer's) shape and dtype; then each layer of the tree checks the
        values meant for it (``_check_loaded``: Normalization refuses a std that is not
        positive, for one). Everything is checked before anything is written, so a failed
        load leaves the layer unchanged. Optimizers keep working after a load because the
        parameter arrays are the same objects.

        Raises
        ------
        TypeError
            ``state`` is not a mapping (a dict) of arrays.
        ValueError
            Keys are missing or unexpected (both are listed in the message, the first ten
            of each), a shape or dtype differs from the parameter's, or a layer refuses its
            values (the message names the key).
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict takes a dict of arrays keyed like state_dict(), "
                f"got {type(state).__name__}"
            )
        tree = list(self._tree())
        own = {key: item for key, item in tree if not isinstance(item, Layer)}
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing keys {_listed(missing)}, unexpected keys {_listed(unexpected)}"
            )
        arrays: dict[str, NDArray[Any]] = {}
        for key, item in own.items():
            what = "parameter" if isinstance(item, Parameter) else "buffer"
            try:
                array = np.asarray(state[key])
            except (TypeError, ValueError) as error:
                raise TypeError(f"state_dict[{key!r}] is not an array: {error}") from None
            if array.shape != item.shape:
                raise ValueError(
                    f"state_dict[{key!r}] has shape {array.shape}, "
                    f"but the {what} has shape {item.shape}"
                )
            if array.dtype != item.dtype:
                raise ValueError(
                    f"state_dict[{key!r}] has dtype {array.dtype}, "
                    f"but the {what} has dtype {item.dtype}; cast it with .astype({item.dtype})"
                )
            arrays[key] = array
        _check_loaded(tree, arrays)
        for key, item in own.items():
            np.copyto(item.value, arrays[key])

    def _check_loaded(self, arrays: dict[str, NDArray[Any]], prefix: str) -> None:
        """Raise ValueError if values about to be loaded into this layer are unusable.

        ``arrays`` maps this layer's own parameter and buffer names (``"std"``) to the
        arrays, already of the right shape and dtype; the message should name the key as
        ``prefix + name``. Called by ``load_state_dict`` on every layer of the tree before
        anything is written. The default accepts any values.
        """

    # -- configuration (for model files) ------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer, as JSON values (default: none).

        ``minigrad.save`` stores them in the file's metadata and ``minigrad.load`` calls
        :meth:`from_config` with them; the parameter and buffer values travel as tensors,
        so the config holds only what shapes the layer (widths, flags, slopes). A layer
        whose constructor takes arguments overrides this.
        """
        return {}

    @classmethod
    def from_config(cls: type[_LayerT], config: dict[str, Any]) -> _LayerT:
        """Build a layer from :meth:`get_config` output; its parameters are loaded after."""
        if not isinstance(config, dict):
            raise TypeError(
                f"{cls.__name__}.from_config takes a dict of constructor arguments, "
                f"got {type(config).__name__}"
            )
        return cls(**config)

    # -- printing -----------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The hyperparameters shown inside the parentheses of ``repr``."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _check_loaded(
    tree: list[tuple[str, Layer | Parameter | Buffer]],
    arrays: dict[str, NDArray[Any]],
) -> None:
    """Let each layer of ``tree`` (from ``_tree``) check the arrays meant for its own
    parameters and buffers, which ``_tree`` lists right after the layer itself."""
    owner: Layer | None = None
    prefix, own = "", {}
    for key, item in [*tree, ("", None)]:  # a sentinel, to finish the last layer
        if isinstance(item, (Parameter, Buffer)):
            own[key[len(prefix) :]] = arrays[key]
            continue
        if owner is not None and own and type(owner)._check_loaded is not Layer._check_loaded:
            owner._check_loaded(own, prefix)
        if isinstance(item, Layer):
            owner, prefix, own = item, f"{key}." if key else "", {}


def _first_place(seen: dict[int, str], item: Layer | Parameter | Buffer, path: str) -> None:
    """Record where ``item`` is; ValueError if it was already met at another path."""
    first = seen.get(id(item))
    if first is not None:
        raise ValueError(repeated(item, first, path))
    seen[id(item)] = path


def repeated(item: Layer | Parameter | Buffer, first: str, second: str) -> str:
    """The message for ``item`` found at two paths of one model."""
    kind = type(item).__name__
    if isinstance(item, Parameter):
        return f"the same Parameter is at '{first}' and at '{second}': {TIED_PARAMETERS}"
    if isinstance(item, Buffer):
        return (
            f"the same Buffer is at '{first}' and at '{second}': each layer needs its own "
            "buffers (give the second one a copy)"
        )
    if first == "":
        return f"the {kind} at '{second}' is the model itself: a layer cannot contain itself"
    return f"the same {kind} object is at '{first}' and at '{second}': {REPEATED_LAYER}"


def stale_backward(layer: Layer) -> RuntimeError:
    """The error for a backward after a forward that ran in evaluation mode."""
    return RuntimeError(
        f"{type(layer).__name__}.backward(): the last forward pass ran in evaluation mode "
        "(for example mg.predict or mg.evaluate, called between the loss and backward), so "
        "the values backward needs are from that pass, not from the batch the loss saw. "
        "Run the forward pass and the loss again before backward, or call predict and "
        "evaluate after backward (or after the optimizer step)"
    )


def _listed(keys: list[str], limit: int = 10) -> str:
    """``keys`` for a message, the first ``limit`` of them and how many more."""
    shown = [k if not isinstance(k, str) or len(k) <= 80 else k[:77] + "..." for k in keys[:limit]]
    if len(keys) <= limit:
        return repr(shown)
    return f"{shown!r} and {len(keys) - limit} more"
