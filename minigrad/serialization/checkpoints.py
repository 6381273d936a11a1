"""Checkpoints: everything needed to resume training exactly where it stopped.

A checkpoint is a safetensors file holding the model's parameters (under ``"model.<key>"``)
and the optimizer's buffers (``"optimizer.<parameter index>.<buffer>"``, e.g.
``"optimizer.0.m"``), with the rest in the metadata as JSON: the architecture, the optimizer's
class, hyperparameters, param groups (each group's parameter indices, hyperparameters and
initial lr; a checkpoint from before param groups has none and loads as one group) and step
counts, the number of epochs and steps done, the state of the
data loader's random generator, the states of the generators the model's layers own (Dropout's,
by path: see :meth:`~minigrad.Layer.named_generators`), and the history so far.

Resuming restores all of it, so that training k more epochs from a checkpoint gives the same
parameters, bit for bit, as training without the interruption::

    history = mg.fit(model, loss, optimizer, x, y, epochs=20, seed=0,
                     callbacks=[mg.ModelCheckpoint("run.safetensors")])
    # ... interrupted after epoch 7; later, with a model and optimizer built the same way:
    history = mg.fit(model, loss, optimizer, x, y, epochs=20,
                     resume_from="run.safetensors")     # runs epochs 8 to 20
"""

from __future__ import annotations

import json
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._files import error_text, listing, quoted, type_name
from minigrad._validation import check_integer
from minigrad.errors import ModelFileError
from minigrad.layers.base import Layer
from minigrad.optim.adam import Adam
from minigrad.optim.base import Optimizer
from minigrad.serialization.architecture import (
    describe_optimizer,
    group_specs,
    optimizer_class,
)
from minigrad.serialization.models import (
    check_finite_to_load,
    check_finite_to_save,
    check_model_and_path,
    model_from,
    model_metadata,
    parse_json,
)
from minigrad.serialization.safetensors_file import read_safetensors, write_safetensors

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

#: Random generators a checkpoint may restore, by the name NumPy gives their state.
BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM)
}


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : Layer
        Rebuilt from the saved architecture, with the saved parameters and buffers, and its
        layers' generators (Dropout's) in their saved states.
    optimizer : Optimizer
        The saved optimizer class, on ``model.parameters()``, with its hyperparameters,
        buffers and step counts restored.
    epoch : int
        Epochs completed when the checkpoint was written.
    step : int
        Optimizer steps completed.
    rng_state : dict or None
        The data loader's generator state (``Generator.bit_generator.state``).
    history : dict of lists
        The per-epoch numbers so far, as ``fit``'s History holds them.

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 1, rng=0))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> mg.save_checkpoint(path, model, mg.Adam(model.parameters(), lr=0.01), epoch=3, step=12)
    >>> checkpoint = load_checkpoint(path)
    >>> fresh = mg.Sequential(mg.Dense(2, 1, rng=5))
    >>> checkpoint.restore(fresh, mg.Adam(fresh.parameters()))  # weights, moments and lr
    >>> bool((fresh[0].weight.value == model[0].weight.value).all()), checkpoint.epoch
    (True, 3)
    """

    model: Layer
    optimizer: Optimizer
    epoch: int = 0
    step: int = 0
    rng_state: dict[str, Any] | None = None
    history: dict[str, list[float]] = field(default_factory=dict)

    def restore(self, model: Layer, optimizer: Optimizer) -> None:
        """Copy the saved parameters, buffers and optimizer state into ``model`` and
        ``optimizer``, and the states of the saved model's layer generators into
        ``model``'s (in place: the same Generator objects, now in the saved states).

        They must have the saved structure: the same parameter names and shapes, generators
        at the same paths and of the same kinds (a PCG64 cannot take a PCG64DXSM state),
        and an optimizer of the saved class. Nothing is written unless everything fits.
        """
        if not isinstance(model, Layer) or not isinstance(optimizer, Optimizer):
            raise TypeError(
                "restore(model, optimizer) takes a minigrad Layer and an Optimizer, got "
                f"{type_name(model)} and {type_name(optimizer)}"
            )
        if type(optimizer) is not type(self.optimizer):
            raise ValueError(
                f"the checkpoint holds {type_name(self.optimizer)} state; cannot restore "
                f"it into {type_name(optimizer)}"
            )
        parameters = model.state_dict()
        if list(parameters) != list(self.model.state_dict()):
            raise ValueError(
                f"the checkpoint's model has parameters {listing(self.model.state_dict())}; "
                f"this model has {listing(parameters)}"
            )
        generators = _matching_generators(self.model, model)
        saved = self.optimizer.state_dict()
        model.load_state_dict(self.model.state_dict())
        try:
            optimizer.load_state_dict(saved)
        except ValueError:
            model.load_state_dict(parameters)  # leave the model as it was
            raise
        for target, source in generators:
            target.bit_generator.state = source.bit_generator.state

    def generator(self) -> np.random.Generator | None:
        """A new Generator in the saved state (None if none was saved)."""
        return None if self.rng_state is None else _generator(self.rng_state, "rng_state")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Layer,
    optimizer: Optimizer,
    *,
    epoch: int = 0,
    step: int = 0,
    rng: np.random.Generator | None = None,
    history: dict[str, list[float]] | None = None,
) -> None:
    """Write a checkpoint of training to ``path``, atomically (as :func:`minigrad.save`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (``.safetensors``); missing parent folders are created.
    model, optimizer
        The optimizer must be built on ``model.parameters()``: each once, in that order,
        or in param groups in any order (the file lists them in the optimizer's order).
    epoch, step : int
        Epochs and optimizer steps completed (integers >= 0, NumPy integers too).
    rng : Generator or None
        The data loader's generator (``loader.rng``); its state is saved so that a resumed
        run shuffles exactly as the uninterrupted one would have. The model's own
        generators (Dropout's) are always saved, by path.
    history : History or None
        A dict of lists of numbers (``fit``'s History).

    Raises
    ------
    TypeError
        An argument of the wrong type (the arguments out of order, say), named, or an
        optimizer state that is neither an array nor an integer count.
    ValueError
        The optimizer is not on the model's parameters, a count is negative, the path is
        empty or names a device, or the generator (or one a layer owns: the message names
        its path) is not PCG64/PCG64DXSM. Also what
        ``load_checkpoint`` would refuse: a layer or optimizer class that is not registered
        or cannot be rebuilt from its config, and parameters, buffers or optimizer state
        holding NaN or an infinity (the message names the tensor).
    IsADirectoryError, NotADirectoryError
        ``path`` is a folder, or a parent of it is a file.

    Notes
    -----
    Nothing is written when any of these is raised.

    Examples
    --------
    The file holds the parameters under ``model.<key>`` and each parameter's optimizer
    buffers under ``optimizer.<index>.<name>``, each with the parameter's shape:

    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 1, rng=0))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> save_checkpoint(path, model, mg.Adam(model.parameters()), epoch=1, step=4)
    >>> {key: value.shape for key, value in sorted(mg.load_tensors(path).items())}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'model.0.bias': (1,), 'model.0.weight': (1, 2), 'optimizer.0.m': (1, 2),
     'optimizer.0.v': (1, 2), 'optimizer.1.m': (1,), 'optimizer.1.v': (1,)}
    """
    _check_checkpoint_arguments(path, model, optimizer)
    epoch = check_integer("epoch", epoch, minimum=0)
    step = check_integer("step", step, minimum=0)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (the data loader's loader.rng) or None, got "
            f"{type(rng).__name__}"
        )
    history = _checked_history(history)
    key_of = {id(p): key for key, p in model.named_parameters()}
    if sorted(key_of) != sorted(id(p) for p in optimizer.params):
        raise ValueError(
            "save_checkpoint needs an optimizer built on model.parameters() (every parameter "
            "of the model, once; in param groups, in any order)"
        )
    keys = [key_of[id(p)] for p in optimizer.params]  # in the optimizer's order
    metadata = model_metadata(model, "checkpoint")  # refuses what a load could not rebuild
    generators = _layer_generator_states(model)
    tensors = {f"model.{key}": p.value for key, p in model.named_parameters()}
    tensors.update((f"model.{key}", b.value) for key, b in model.named_buffers())
    counts: list[dict[str, int]] = []
    for index, state in enumerate(optimizer.state_dict()["state"]):
        counts.append({})
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                tensors[f"optimizer.{index}.{name}"] = value
            elif not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral):
                counts[-1][name] = int(value)
            else:  # int() would truncate it, and the resumed run would differ
                raise TypeError(
                    f"cannot save a checkpoint of {type_name(optimizer)}: the state "
                    f"{quoted(name)} of parameter {index} is {quoted(value)} "
                    f"({type_name(value)}); checkpoints hold arrays and integer counts"
                )
    described = describe_optimizer(optimizer)
    check_finite_to_save(tensors, "tensor")
    metadata.update(
        {
            "minigrad.optimizer": json.dumps(
                {
                    **described,
                    "counts": counts,
                    "parameters": keys,
                }
            ),
            "minigrad.progress": json.dumps({"epoch": epoch, "step": step}),
            "minigrad.rng": json.dumps(None if rng is None else _generator_state(rng)),
            "minigrad.generators": json.dumps(generators),
            "minigrad.history": json.dumps(history),
        }
    )
    write_safetensors(path, tensors, metadata)


def _check_checkpoint_arguments(path: Any, model: Any, optimizer: Any) -> None:
    """TypeError for arguments of the wrong types, saying the order when they are mixed up."""
    path_like = (str, os.PathLike)
    if (
        isinstance(path, (Layer, Optimizer))
        or isinstance(model, Optimizer)
        or isinstance(optimizer, Layer)
        or (
            (isinstance(model, path_like) or isinstance(optimizer, path_like))
            and not isinstance(path, path_like)
        )
    ):
        kinds = ", ".join(type(value).__name__ for value in (path, model, optimizer))
        raise TypeError(
            "save_checkpoint takes (path, model, optimizer) in that order: a file path, "
            f"a minigrad Layer and its Optimizer; got ({kinds})"
        )
    check_model_and_path("save_checkpoint", model, path)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"save_checkpoint: optimizer must be a minigrad Optimizer, got "
            f"{quoted(optimizer)} ({type(optimizer).__name__})"
        )


def _checked_history(history: Any) -> dict[str, list[float]]:
    """``history`` as a dict of lists of floats (JSON-ready), or TypeError."""
    if history is None:
        return {}
    if not isinstance(history, dict):
        raise TypeError(
            f"history must be a dict of lists of numbers (fit's History) or None, got "
            f"{type(history).__name__}"
        )
    checked = {}
    for name, values in history.items():
        if not isinstance(name, str) or not isinstance(values, (list, tuple)):
            raise TypeError(
                f"history maps names to lists of numbers, got {quoted(name)}: "
                f"{type(values).__name__}"
            )
        if not all(
            isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            for value in values
        ):
            raise TypeError(f"history[{quoted(name)}] must hold numbers, got {listing(values)}")
        try:
            checked[name] = [float(value) for value in values]  # NumPy floats too
        except OverflowError:
            raise ValueError(
                f"history[{quoted(name)}] holds a number beyond the float range"
            ) from None
    return checked


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (or ``ModelCheckpoint``).

    As safe as :func:`minigrad.load`; every part is checked, and a problem is a
    ModelFileError naming it (a model file is refused with a pointer to ``minigrad.load``):
    parameters and optimizer buffers must be finite, and Adam's second moments ``v`` not
    negative (the message names the tensor and the index). Without the safetensors
    package: ImportError, before the file is opened.

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 1, rng=0))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> mg.save_checkpoint(path, model, mg.SGD(model.parameters(), lr=0.1), epoch=2, step=8,
    ...                    history={"loss": [0.7, 0.5]})
    >>> checkpoint = load_checkpoint(path)
    >>> checkpoint.optimizer, checkpoint.epoch, checkpoint.step, checkpoint.history
    (SGD(lr=0.1, weight_decay=0.0), 2, 8, {'loss': [0.7, 0.5]})
    """
    where = str(path)
    tensors, metadata = read_safetensors(path)
    model_tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    buffers = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    model = model_from(model_tensors, metadata, "checkpoint", where, prefix="model.")
    stray = sorted(set(tensors) - {f"model.{k}" for k in model_tensors} - set(buffers))
    if stray:
        raise ModelFileError(f"{where}: unexpected tensors {listing(stray)} in a checkpoint")
    optimizer = _optimizer_from(
        model, parse_json(metadata, "minigrad.optimizer", where), buffers, where
    )
    progress = parse_json(metadata, "minigrad.progress", where)
    if not (
        isinstance(progress, dict)
        and set(progress) == {"epoch", "step"}
        and all(type(v) is int and v >= 0 for v in progress.values())
    ):
        raise ModelFileError(f"{where}: minigrad.progress must hold counts 'epoch' and 'step'")
    rng_state = parse_json(metadata, "minigrad.rng", where)
    if rng_state is not None:
        _generator(rng_state, f"{where}: minigrad.rng")  # checked now, not at resume time
    _restore_layer_generators(model, metadata, where)
    history = parse_json(metadata, "minigrad.history", where)
    try:
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise TypeError(history)
        history = {name: [_number(v) for v in values] for name, values in history.items()}
    except (TypeError, OverflowError):
        raise ModelFileError(
            f"{where}: minigrad.history must map names to lists of numbers"
        ) from None
    return Checkpoint(
        model=model,
        optimizer=optimizer,
        epoch=progress["epoch"],
        step=progress["step"],
        rng_state=rng_state,
        history=history,
    )


def _optimizer_from(
    model: Layer, saved: Any, buffers: dict[str, NDArray[Any]], where: str
) -> Optimizer:
    what = f"{where}: minigrad.optimizer"
    required = {"class", "hyperparameters", "counts", "parameters"}
    # param_groups: since param groups; a checkpoint from before has one group
    if not isinstance(saved, dict) or not required <= set(saved) <= required | {"param_groups"}:
        raise ModelFileError(
            f"{what} must hold class, hyperparameters, counts and parameters (and param_groups)"
        )
    cls = optimizer_class(saved["class"], what)
    by_key = dict(model.named_parameters())
    keys = list(by_key)
    names = saved["parameters"]
    # the optimizer's order: the model's, or with param groups any other
    if not (
        isinstance(names, list)
        and all(isinstance(name, str) for name in names)
        and (names == keys or ("param_groups" in saved and sorted(names) == sorted(keys)))
    ):
        raise ModelFileError(
            f"{what}: its parameters "
            f"{listing(names) if isinstance(names, list) else quoted(names)} are not the "
            f"model's {listing(keys)}"
        )
    hyperparameters, counts = saved["hyperparameters"], saved["counts"]
    if not isinstance(hyperparameters, dict) or not isinstance(counts, list):
        raise ModelFileError(f"{what}: hyperparameters must be an object, counts a list")
    if len(counts) != len(keys) or not all(isinstance(c, dict) for c in counts):
        raise ModelFileError(f"{what}: counts must hold one object per parameter")
    groups = saved.get("param_groups")
    params: Any = [by_key[name] for name in names]
    if groups is not None:
        indices = [
            group.get("params") if isinstance(group, dict) else None
            for group in (groups if isinstance(groups, list) else [None])
        ]
        flat = [i for group in indices if isinstance(group, list) for i in group]
        if not (
            all(isinstance(group, list) for group in indices)
            and all(type(i) is int for i in flat)
            and sorted(flat) == list(range(len(keys)))
        ):
            raise ModelFileError(
                f"{what}: param_groups must be a list of objects whose 'params' lists hold "
                f"each parameter index from 0 to {len(keys) - 1} once"
            )
        params = group_specs(params, groups)
    try:
        optimizer = cls(params, **hyperparameters)
    except Exception as error:  # a user optimizer may raise anything on hostile values
        raise ModelFileError(f"{what}: cannot build {cls.__name__}: {error_text(error)}") from error
    if not isinstance(optimizer, Optimizer):  # pragma: no cover - a class whose __new__ lies
        raise ModelFileError(f"{what}: {cls.__name__}(...) did not build an Optimizer")
    check_finite_to_load(buffers, where)
    if issubclass(cls, Adam):  # second moments are averages of squares
        for name, array in buffers.items():
            if name.endswith(".v") and (array < 0).any():
                first = np.unravel_index(int(np.argmax(array < 0)), array.shape)
                raise ModelFileError(
                    f"{where}: tensor {quoted(name)} holds {array[first]} at index "
                    f"{tuple(int(i) for i in first)}; {cls.__name__}'s second moments "
                    "(averages of squared gradients) cannot be negative"
                )
    states = [dict(c) for c in counts]
    for name, array in buffers.items():
        parts = name.split(".", 2)  # "optimizer", parameter index, buffer name
        index, buffer = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if not (re.fullmatch("0|[1-9][0-9]*", index) and int(index) < len(states) and buffer):
            raise ModelFileError(f"{where}: unexpected optimizer tensor {quoted(name)}")
        states[int(index)][buffer] = array
    try:
        state_dict = {"hyperparameters": hyperparameters, "state": states}
        if groups is not None:
            state_dict["param_groups"] = groups
        optimizer.load_state_dict(state_dict)
    except Exception as error:  # a user optimizer may raise anything on a hostile state
        raise ModelFileError(
            f"{what}: the saved state does not fit {cls.__name__}: {error_text(error)}"
        ) from error
    return optimizer


def _number(value: Any) -> float:
    """``value`` as a float if it is a JSON number (not a bool, not beyond float range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _layer_generator_states(model: Layer) -> dict[str, Mapping[str, Any]]:
    """The state of every generator the model's layers own, by path, for the metadata."""
    states = {}
    for path, generator in model.named_generators():
        try:
            states[path] = _generator_state(generator)
        except ValueError as error:
            raise ValueError(
                f"cannot save a checkpoint: the generator at {path!r} (a layer's) cannot be "
                f"saved: {error}"
            ) from None
    return states


def _restore_layer_generators(model: Layer, metadata: dict[str, str], where: str) -> None:
    """Put the generators of ``model`` (rebuilt from the file) in the saved states.

    A checkpoint from before layers had generators has no entry: its model has none."""
    what = f"{where}: minigrad.generators"
    saved: Any = {}
    if "minigrad.generators" in metadata:
        saved = parse_json(metadata, "minigrad.generators", where)
    if not isinstance(saved, dict):
        raise ModelFileError(f"{what} must map layer paths to generator states")
    paths = [path for path, _ in model.named_generators()]
    if sorted(saved) != sorted(paths):
        raise ModelFileError(
            f"{what} holds the states of generators at {listing(sorted(saved))}, but the "
            f"architecture's layers own generators at {listing(paths)}"
        )
    for path, generator in model.named_generators():
        restored = _generator(saved[path], f"{what}[{quoted(path)}]")
        if type(restored.bit_generator) is not type(generator.bit_generator):
            raise ModelFileError(
                f"{what}[{quoted(path)}] is a {type(restored.bit_generator).__name__} state, "
                f"but the rebuilt layer draws from {type(generator.bit_generator).__name__}"
            )
        generator.bit_generator.state = restored.bit_generator.state


def _matching_generators(
    saved: Layer, model: Layer
) -> list[tuple[np.random.Generator, np.random.Generator]]:
    """``(model's generator, saved model's generator)`` pairs by path, or ValueError when the
    paths or the kinds of generator differ (nothing is written then)."""
    sources = dict(saved.named_generators())
    targets = list(model.named_generators())
    if [path for path, _ in targets] != list(sources):
        raise ValueError(
            f"the checkpoint's model has layers with random generators at "
            f"{listing(list(sources))}; this model has them at "
            f"{listing([path for path, _ in targets])}: build the model as the checkpointed "
            "one was built"
        )
    for path, target in targets:
        kind, saved_kind = type(target.bit_generator), type(sources[path].bit_generator)
        if kind is not saved_kind:
            raise ValueError(
                f"the checkpoint saved a {saved_kind.__name__} state for the generator at "
                f"{path!r}, but this model's draws from {kind.__name__}; give that layer a "
                f"{saved_kind.__name__} generator"
            )
    return [(target, sources[path]) for path, target in targets]


def _generator_state(rng: np.random.Generator) -> Mapping[str, Any]:
    state = rng.bit_generator.state
    if state.get("bit_generator") not in BIT_GENERATORS:
        raise ValueError(
            f"checkpoints save the state of {sorted(BIT_GENERATORS)} generators (NumPy's "
            f"default_rng is PCG64); got {state.get('bit_generator')}"
        )
    return state


def _generator(state: Any, where: str) -> np.random.Generator:
    """A Generator restored to ``state``, after checking every field of it.

    Only PCG64 and PCG64DXSM are accepted: their whole state is four integers, each checked
    against its range here, so nothing out of range ever reaches NumPy's C code.
    """
    name = state.get("bit_generator") if isinstance(state, dict) else None
    cls = BIT_GENERATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(
            f"{where}: a generator state names its bit generator, one of "
            f"{sorted(BIT_GENERATORS)}; got {quoted(name)}"
        )
    fields = {"bit_generator", "state", "has_uint32", "uinteger"}
    if set(state) != fields:
        raise ModelFileError(f"{where}: a generator state has the keys {sorted(fields)}")
    inner = state["state"]
    ranges = [
        (inner.get("state") if isinstance(inner, dict) else None, 2**128),
        (inner.get("inc") if isinstance(inner, dict) else None, 2**128),
        (state["has_uint32"], 2),
        (state["uinteger"], 2**32),
    ]
    if not (isinstance(inner, dict) and set(inner) == {"state", "inc"}) or not all(
        type(value) is int and 0 <= value < limit for value, limit in ranges
    ):
        raise ModelFileError(
            f"{where}: a {name} state is {{'state': {{'state', 'inc'}} (integers below 2**128), "
            "'has_uint32' (0 or 1), 'uinteger' (below 2**32)}"
        )
    bit_generator = cls()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:  # pragma: no cover
        raise ModelFileError(f"{where}: not a valid {name} state ({error!r})") from None
    return np.random.Generator(bit_generator)
