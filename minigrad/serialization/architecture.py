"""Architectures as JSON: describing a model, and rebuilding it from a registry of classes.

A model file stores its architecture as a JSON description::

    {"class": "Sequential", "layers": [
        {"class": "Dense", "config": {"in_features": 2, "out_features": 8, "bias": true,
                                      "dtype": "float32"}},
        {"class": "Tanh", "config": {}}]}

and :func:`build_layer` turns it back into layers by looking each ``"class"`` up in a table
of registered classes. Nothing else is ever done with a name from a file: it is not imported,
evaluated or used as an attribute path, so a file can only ask for layers that the program
has registered. minigrad's own layers and optimizers are registered; a user-defined layer or
optimizer registers itself with :func:`register_layer` / :func:`register_optimizer`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from minigrad._files import error_text, listing, quoted
from minigrad.errors import ModelFileError
from minigrad.layers import (
    Dense,
    Layer,
    LeakyReLU,
    Normalization,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from minigrad.optim import SGD, Adam, AdamW, Momentum, Optimizer
from minigrad.sequential import Sequential

__all__ = [
    "build_layer",
    "describe_layer",
    "optimizer_class",
    "register_layer",
    "register_optimizer",
]

#: Nesting deeper than this is not a model anyone builds; refusing it keeps recursion bounded.
MAX_DEPTH = 32

LayerClass = TypeVar("LayerClass", bound=type[Layer])
OptimizerClass = TypeVar("OptimizerClass", bound=type[Optimizer])

_LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, Tanh, Sigmoid, ReLU, LeakyReLU, Softmax, Normalization)
}
_OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (SGD, Momentum, Adam, AdamW)
}


def register_layer(cls: LayerClass) -> LayerClass:
    """Allow files to name the Layer subclass ``cls`` (usable as a class decorator).

    The class is registered under its ``__name__``; it must rebuild from ``get_config()``
    through ``from_config``. Registering a different class under a name that is taken is
    an error, so a registration cannot silently replace one of minigrad's layers.

    >>> import minigrad as mg
    >>> @mg.register_layer
    ... class Square(mg.Layer):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, grad_output):
    ...         return 2 * self.x * grad_output
    """
    return _register(_LAYERS, cls, Layer, "layer")


def register_optimizer(cls: OptimizerClass) -> OptimizerClass:
    """Allow checkpoints to name the Optimizer subclass ``cls`` (as :func:`register_layer`).

    It is rebuilt as ``cls(params, **hyperparameters)``, then its state is loaded.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import minigrad as mg
    >>> @mg.register_optimizer
    ... class SignSGD(mg.SGD):  # p <- p - lr sign(g), with SGD's hyperparameters
    ...     def _update(self, value, grad, state, work):
    ...         value -= self.lr * np.sign(grad)
    >>> model = mg.Dense(2, 1, rng=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> mg.save_checkpoint(path, model, SignSGD(model.parameters(), lr=0.1))
    >>> mg.load_checkpoint(path).optimizer
    SignSGD(lr=0.1, weight_decay=0.0)
    """
    return _register(_OPTIMIZERS, cls, Optimizer, "optimizer")


def _register(table: dict[str, Any], cls: Any, base: type, kind: str) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"register_{kind} takes a subclass of {base.__name__}, got {quoted(cls)}")
    taken = table.get(cls.__name__)
    if taken is not None and taken is not cls:
        raise ValueError(
            f"another {kind} class is already registered as {cls.__name__!r} "
            f"({taken.__module__}.{taken.__qualname__}); rename one of them"
        )
    table[cls.__name__] = cls
    return cls


def describe_layer(layer: Layer) -> dict[str, Any]:
    """The JSON description of ``layer`` (a Sequential describes its layers in order).

    Raises
    ------
    ValueError
        A layer's class is not registered, or it holds sub-layers without being a
        Sequential (its structure could not be rebuilt from a config).

    Examples
    --------
    >>> from minigrad import Dense, Tanh
    >>> describe_layer(Sequential(Dense(2, 3), Tanh()))  # doctest: +NORMALIZE_WHITESPACE
    {'class': 'Sequential', 'layers': [{'class': 'Dense', 'config': {'in_features': 2,
     'out_features': 3, 'bias': True, 'dtype': 'float32'}}, {'class': 'Tanh', 'config': {}}]}
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"describe_layer takes a minigrad Layer, got {type(layer).__name__}")
    if type(layer) is Sequential:
        return {"class": "Sequential", "layers": [describe_layer(child) for child in layer]}
    name = type(layer).__name__
    if _LAYERS.get(name) is not type(layer):
        raise ValueError(
            f"cannot save a {name}: its class is not registered; decorate it with "
            "@minigrad.register_layer (and give it get_config if its constructor takes "
            "arguments)"
        )
    if any(True for _ in layer.children()):
        raise ValueError(
            f"cannot save a {name}: it holds sub-layers, and only Sequential containers are "
            "rebuilt from files; build the model as a Sequential"
        )
    return {"class": name, "config": layer.get_config()}


def build_layer(description: Any, where: str = "architecture", depth: int = 0) -> Layer:
    """Rebuild a layer from :func:`describe_layer` output taken from a file.

    Every part of ``description`` is checked; a problem is a ModelFileError naming the
    position (``architecture.layers[2]``) and what was expected there. Only the structure
    is rebuilt (a Dense starts with zero weights); the parameters are loaded afterwards.

    Examples
    --------
    >>> layer = build_layer({"class": "LeakyReLU", "config": {"negative_slope": 0.1}})
    >>> layer, build_layer({"class": "Sequential", "layers": [describe_layer(layer)]})[0]
    (LeakyReLU(negative_slope=0.1), LeakyReLU(negative_slope=0.1))
    >>> build_layer({"class": "os.system", "config": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.errors.ModelFileError: architecture names the layer class 'os.system', which is ...
    """
    if depth > MAX_DEPTH:
        raise ModelFileError(f"{where}: Sequential containers nested more than {MAX_DEPTH} deep")
    if not isinstance(description, dict) or not isinstance(description.get("class"), str):
        raise ModelFileError(f"{where} must be an object with a string 'class'")
    name = description["class"]
    if name == "Sequential":
        layers = description.get("layers")
        if set(description) != {"class", "layers"} or not isinstance(layers, list):
            raise ModelFileError(
                f"{where}: a Sequential is described by 'class' and a 'layers' list"
            )
        built = [
            build_layer(item, f"{where}.layers[{index}]", depth + 1)
            for index, item in enumerate(layers)
        ]
        try:
            return Sequential(built)
        except Exception as error:  # layers whose widths do not chain, or a user layer's error
            raise ModelFileError(f"{where}: {error_text(error)}") from error
    cls = _LAYERS.get(name)
    if cls is None:
        raise ModelFileError(
            f"{where} names the layer class {quoted(name)}, which is not registered; known: "
            f"{listing(sorted(_LAYERS), limit=20)} (a user-defined layer must be registered "
            "with minigrad.register_layer before loading)"
        )
    config = description.get("config")
    if set(description) != {"class", "config"} or not isinstance(config, dict):
        raise ModelFileError(f"{where}: a {name} is described by 'class' and a 'config' object")
    try:
        layer = cls.from_config(config)
    except Exception as error:  # a user layer's from_config may raise anything on a hostile config
        raise ModelFileError(
            f"{where}: cannot build {name} from {quoted(config)}: {error_text(error)}"
        ) from error
    if not isinstance(layer, Layer):
        raise ModelFileError(
            f"{where}: {name}.from_config returned {type(layer).__name__}, not a Layer"
        )
    return layer


def optimizer_class(name: Any, where: str = "optimizer") -> type[Optimizer]:
    """The registered optimizer class called ``name``, or ModelFileError.

    Examples
    --------
    >>> optimizer_class("Adam")
    <class 'minigrad.optim.adam.Adam'>
    >>> optimizer_class("Lion")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.errors.ModelFileError: optimizer names the optimizer class 'Lion', which is not ...
    """
    cls = _OPTIMIZERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(
            f"{where} names the optimizer class {quoted(name)}, which is not registered; "
            f"known: {listing(sorted(_OPTIMIZERS), limit=20)} (a user-defined optimizer must "
            "be registered with minigrad.register_optimizer before loading)"
        )
    return cls
