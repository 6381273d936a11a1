"""Architectures as JSON: describing a model, and rebuilding it from a registry of classes.

A model file stores its architecture as a JSON description::

    {"class": "Sequential", "layers": [
        {"class": "Dense", "config": {"in_features": 2, "out_features": 8, "bias": true,
                                      "dtype": "float32"}},
        {"class": "Tanh", "config": {}}]}

Containers describe their children in place: a Sequential its ``"layers"``, a Residual its
``"block"`` and ``"shortcut"``, a Concat its ``"branches"`` beside its ``"config"``
(``{"dim": 1}``); they nest up to :data:`MAX_DEPTH` deep.

and :func:`build_layer` turns it back into layers by looking each ``"class"`` up in a table
of registered classes. Nothing else is ever done with a name from a file: it is not imported,
evaluated or used as an attribute path, so a file can only ask for layers that the program
has registered. minigrad's own layers and optimizers are registered; a user-defined layer or
optimizer registers itself with :func:`register_layer` / :func:`register_optimizer`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from minigrad._files import error_text, listing, quoted, shortened, type_name
from minigrad.errors import ModelFileError
from minigrad.layers import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Layer,
    LayerNorm,
    LeakyReLU,
    MaxPool1d,
    MaxPool2d,
    Normalization,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from minigrad.layers.activations import ELU, GELU, Identity, LogSoftmax, SiLU, Softplus
from minigrad.layers.containers import Concat, Residual, Sequential
from minigrad.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Momentum,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
)

__all__ = [
    "build_layer",
    "describe_layer",
    "describe_optimizer",
    "optimizer_class",
    "register_layer",
    "register_optimizer",
]

#: Nesting deeper than this is not a model anyone builds; refusing it keeps recursion bounded.
MAX_DEPTH = 32

LayerClass = TypeVar("LayerClass", bound=type[Layer])
OptimizerClass = TypeVar("OptimizerClass", bound=type[Optimizer])
_Class = TypeVar("_Class", bound=type)

#: minigrad's own layers, by the name a file gives; containers are rebuilt from their
#: descriptions' children (see build_layer) and registered so that no other class takes
#: their names
_LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        *(Dense, Tanh, Sigmoid, ReLU, LeakyReLU, Softmax, Normalization),
        *(GELU, SiLU, ELU, Softplus, LogSoftmax, Identity),
        *(BatchNorm1d, BatchNorm2d, LayerNorm, Dropout, Embedding),
        *(Residual, Concat),
        *(Conv1d, Conv2d, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d),
        *(AdaptiveAvgPool1d, AdaptiveAvgPool2d, Flatten),
    )
}
_OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls
    for cls in (SGD, Momentum, Adam, AdamW, RMSprop, Adagrad, Adadelta, NAdam, Adamax, RAdam)
}
#: minigrad's own classes, whose configs are known to rebuild them: a save checks the others
_OWN = frozenset([*_LAYERS.values(), *_OPTIMIZERS.values()])


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


def _register(table: dict[str, Any], cls: _Class, base: type, kind: str) -> _Class:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"register_{kind} takes a subclass of {base.__name__}, got {quoted(cls)}")
    taken = table.get(cls.__name__)
    if taken is not None and taken is not cls:
        raise ValueError(
            f"another {kind} class is already registered as {quoted(cls.__name__)} "
            f"({shortened(f'{taken.__module__}.{taken.__qualname__}', 200)}); rename one of them"
        )
    table[cls.__name__] = cls
    return cls


def describe_layer(layer: Layer) -> dict[str, Any]:
    """The JSON description of ``layer`` (a container describes its children in place: a
    Sequential its layers in order, a Residual its block and shortcut, a Concat its branches).

    Whatever is described can be loaded back: a user-defined layer is rebuilt here from its
    config, as a load would rebuild it, and given its current state, so that a layer that
    cannot be rebuilt is refused now, when it is saved, not when the file is loaded.

    Raises
    ------
    ValueError
        A layer's class is not registered; it cannot be rebuilt from its config (no
        ``get_config`` for a constructor that takes arguments, say) or then does not take
        its own state; it holds sub-layers without being a Sequential, Residual or Concat
        (its structure could not be rebuilt from a config); or the containers nest deeper
        than a load accepts. The message names the layer's position (``layer 2.0`` inside
        a nested Sequential, ``layer 1.block.0`` inside a Residual).
    TypeError
        A layer's ``get_config()`` holds something that is not a JSON value.

    Examples
    --------
    >>> from minigrad import Dense, Tanh
    >>> describe_layer(Sequential(Dense(2, 3), Tanh()))  # doctest: +NORMALIZE_WHITESPACE
    {'class': 'Sequential', 'layers': [{'class': 'Dense', 'config': {'in_features': 2,
     'out_features': 3, 'bias': True, 'dtype': 'float32'}}, {'class': 'Tanh', 'config': {}}]}
    >>> describe_layer(Residual(Tanh()))  # doctest: +NORMALIZE_WHITESPACE
    {'class': 'Residual', 'block': {'class': 'Tanh', 'config': {}},
     'shortcut': {'class': 'Identity', 'config': {}}}
    >>> describe_layer(Concat(Tanh(), Identity(), dim=-1))  # doctest: +NORMALIZE_WHITESPACE
    {'class': 'Concat', 'config': {'dim': -1}, 'branches': [{'class': 'Tanh', 'config': {}},
     {'class': 'Identity', 'config': {}}]}
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"describe_layer takes a minigrad Layer, got {type(layer).__name__}")
    return _describe(layer, "", 0)


def _describe(layer: Layer, position: str, depth: int) -> dict[str, Any]:
    name = type(layer).__name__
    what = f"layer {position} ({type_name(layer)})" if position else f"a {type_name(layer)}"
    if depth > MAX_DEPTH:
        raise ValueError(
            f"cannot save {what}: containers nested more than {MAX_DEPTH} deep, "
            "which a load refuses; flatten the model"
        )
    prefix = f"{position}." if position else ""
    if type(layer) is Sequential:
        return {
            "class": "Sequential",
            "layers": [
                _describe(child, f"{prefix}{index}", depth + 1) for index, child in enumerate(layer)
            ],
        }
    if type(layer) is Residual:
        return {
            "class": "Residual",
            "block": _describe(layer.block, f"{prefix}block", depth + 1),
            "shortcut": _describe(layer.shortcut, f"{prefix}shortcut", depth + 1),
        }
    if type(layer) is Concat:
        return {
            "class": "Concat",
            "config": layer.get_config(),
            "branches": [
                _describe(branch, f"{prefix}branches.{index}", depth + 1)
                for index, branch in enumerate(layer.branches)
            ],
        }
    if _LAYERS.get(name) is not type(layer):
        raise ValueError(
            f"cannot save {what}: its class is not registered; decorate it with "
            "@minigrad.register_layer (and give it get_config if its constructor takes "
            "arguments)"
        )
    if any(True for _ in layer.children()):
        raise ValueError(
            f"cannot save {what}: it holds sub-layers, and only Sequential, Residual and "
            "Concat containers are rebuilt from files; build the model from those"
        )
    config = layer.get_config()
    if type(layer) not in _OWN:
        _check_rebuilds(layer, config, what)
    return {"class": name, "config": config}


def _check_rebuilds(layer: Layer, config: Any, what: str) -> None:
    """Rebuild a user-defined ``layer`` as a load would (from its config through JSON) and
    give it the layer's state; a failure now is a file that could never be loaded."""
    name = type_name(layer)
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"cannot save {what}: get_config() must return JSON values (numbers, strings, "
            f"lists, dicts), got {quoted(config)}: {error_text(error)}"
        ) from error
    try:
        rebuilt = type(layer).from_config(json.loads(text))
        if not isinstance(rebuilt, Layer):
            raise TypeError(f"from_config returned {type(rebuilt).__name__}, not a Layer")
    except Exception as error:  # a user layer may raise anything
        raise ValueError(
            f"cannot save {what}: loading the file would fail, since {name}.from_config("
            f"{quoted(config)}) does not rebuild it: {error_text(error)}; give {name} a "
            "get_config() that returns its constructor's arguments"
        ) from error
    try:
        rebuilt.load_state_dict(layer.state_dict())
    except Exception as error:
        raise ValueError(
            f"cannot save {what}: loading the file would fail, since the {name} that "
            f"from_config({quoted(config)}) builds refuses this one's state: "
            f"{error_text(error)} (a get_config() that leaves out an argument that shapes "
            "the layer does this)"
        ) from error


def describe_optimizer(optimizer: Optimizer) -> dict[str, Any]:
    """The class name, hyperparameters and param groups a checkpoint stores for
    ``optimizer``.

    ``"hyperparameters"`` are the constructor's (``optimizer.defaults``); ``"param_groups"``
    gives each group's parameters (as indices into ``optimizer.params``), hyperparameters
    and initial lr, as in its ``state_dict()``. A load rebuilds the optimizer as
    ``cls([{"params": ...} per group], **hyperparameters)``, then loads its state, groups
    included. A user-defined optimizer is rebuilt here the same way, so that one that
    cannot be rebuilt is refused when a checkpoint is saved, not when it is loaded.

    Raises
    ------
    ValueError
        The optimizer's class is not registered (see :func:`register_optimizer`), or it
        cannot be rebuilt from its hyperparameters and state.
    TypeError
        A hyperparameter is not a JSON value.

    Examples
    --------
    >>> import minigrad as mg
    >>> describe_optimizer(mg.Adam(mg.Dense(2, 1).parameters(), lr=0.01))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'class': 'Adam', 'hyperparameters': {'lr': 0.01, 'betas': [0.9, 0.999], 'eps': 1e-08,
     'weight_decay': 0.0}, 'param_groups': [{'params': [0, 1], 'lr': 0.01,
     'betas': [0.9, 0.999], 'eps': 1e-08, 'weight_decay': 0.0, 'initial_lr': 0.01}]}
    >>> class Mine(mg.SGD):
    ...     pass
    >>> describe_optimizer(Mine(mg.Dense(2, 1).parameters()))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: cannot save a checkpoint of a Mine optimizer: its class is not registered, ...
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"describe_optimizer takes a minigrad Optimizer, got {type(optimizer).__name__}"
        )
    cls = type(optimizer)
    what = f"a checkpoint of a {type_name(cls)} optimizer"
    if _OPTIMIZERS.get(cls.__name__) is not cls:
        raise ValueError(
            f"cannot save {what}: its class is not registered, so load_checkpoint could not "
            "rebuild it; decorate it with @minigrad.register_optimizer"
        )
    saved = optimizer.state_dict()
    described = {"hyperparameters": saved["hyperparameters"], "param_groups": saved["param_groups"]}
    try:
        described = json.loads(json.dumps(described))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"cannot save {what}: its hyperparameters must be JSON values, got "
            f"{quoted(described)}: {error_text(error)}"
        ) from error
    hyperparameters = described["hyperparameters"]
    if cls not in _OWN:
        try:
            rebuilt = cls(
                group_specs(optimizer.params, described["param_groups"]), **hyperparameters
            )
            rebuilt.load_state_dict({**saved, **described})
        except Exception as error:  # a user optimizer may raise anything
            raise ValueError(
                f"cannot save {what}: loading it would fail, since {type_name(cls)}(params, "
                f"**{quoted(hyperparameters)}) does not rebuild it: {error_text(error)}"
            ) from error
    return {"class": cls.__name__, **described}


def group_specs(
    params: list[Any], param_groups: list[dict[str, Any]]
) -> list[Any] | list[dict[str, Any]]:
    """What an optimizer is rebuilt on: ``params`` itself for one group holding them all in
    order, else one ``{"params": [...]}`` per group, from the groups' parameter indices
    (checked by the caller). The groups' hyperparameters come with the state loaded next.

    >>> group_specs(["a", "b", "c"], [{"params": [0, 2]}, {"params": [1]}])
    [{'params': ['a', 'c']}, {'params': ['b']}]
    """
    if len(param_groups) == 1 and param_groups[0]["params"] == list(range(len(params))):
        return list(params)
    return [{"params": [params[i] for i in group["params"]]} for group in param_groups]


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
    >>> build_layer(describe_layer(Residual(Tanh()))).block
    Tanh()
    >>> build_layer({"class": "os.system", "config": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.errors.ModelFileError: architecture names the layer class 'os.system', which is ...
    """
    if depth > MAX_DEPTH:
        raise ModelFileError(f"{where}: containers nested more than {MAX_DEPTH} deep")
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
    if name in ("Residual", "Concat"):
        return _build_container(description, name, where, depth)
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


def _build_container(description: dict[str, Any], name: str, where: str, depth: int) -> Layer:
    """A Residual or Concat from its description: its children built first, then it."""
    config: dict[str, Any] | None
    if name == "Residual":
        if set(description) != {"class", "block", "shortcut"}:
            raise ModelFileError(
                f"{where}: a Residual is described by 'class', 'block' and 'shortcut'"
            )
        config = {
            key: build_layer(description[key], f"{where}.{key}", depth + 1)
            for key in ("block", "shortcut")
        }
    else:
        config, branches = description.get("config"), description.get("branches")
        if (
            set(description) != {"class", "config", "branches"}
            or not isinstance(config, dict)
            or not isinstance(branches, list)
        ):
            raise ModelFileError(
                f"{where}: a Concat is described by 'class', a 'config' object and a "
                "'branches' list"
            )
        if "branches" in config:
            raise ModelFileError(f"{where}.config: the branches belong in 'branches'")
        built = [
            build_layer(item, f"{where}.branches[{index}]", depth + 1)
            for index, item in enumerate(branches)
        ]
        config = {**config, "branches": built}
    try:
        return _LAYERS[name].from_config(config)
    except Exception as error:  # children whose widths do not fit, a bad dim, no branches
        raise ModelFileError(f"{where}: cannot build {name}: {error_text(error)}") from error


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
