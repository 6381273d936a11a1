"""Model files: ``save(model, path)`` and ``load(path)``, in the safetensors format.

The tensors are the model's ``state_dict()``, under the same keys as the equivalent
``torch.nn.Sequential`` ("0.weight", "0.bias", "2.weight", ...), so PyTorch reads a minigrad
file with ``safetensors.torch.load_file`` and minigrad reads a PyTorch one with
:func:`load_tensors`. The architecture travels in the file's metadata as JSON and is rebuilt
from the registry of layer classes (:mod:`minigrad.serialization.architecture`); no code in
a file is ever run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._files import check_path, error_text, listing, quoted, shortened
from minigrad.errors import ModelFileError
from minigrad.layers.base import Layer
from minigrad.serialization.architecture import build_layer, describe_layer
from minigrad.serialization.safetensors_file import read_safetensors, write_safetensors

__all__ = ["FORMAT_VERSION", "load", "load_tensors", "save"]

#: The version of minigrad's metadata layout; a file from a newer layout is refused.
FORMAT_VERSION = 1


def save(model: Layer, path: str | os.PathLike[str]) -> None:
    """Write ``model``'s architecture and parameters to ``path`` (a ``.safetensors`` file).

    The write is atomic: a temporary file beside ``path`` is written, flushed, fsynced and
    renamed over it, so an interrupted save leaves the previous file intact.

    Raises
    ------
    TypeError
        ``model`` is not a Layer or ``path`` is not a path (the arguments swapped, say).
    ValueError
        A layer's class is not registered (see :func:`minigrad.register_layer`) or could
        not be rebuilt from its config (the file could never be loaded), a parameter or
        buffer holds NaN or an infinity (a diverged model: a load would refuse it), or
        ``path`` is empty or names a device.
    IsADirectoryError, NotADirectoryError
        ``path`` is a folder (``"."``), or a parent of it is a file.
    ImportError
        The safetensors package is not installed.

    Notes
    -----
    Nothing is written when any of these is raised.

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.Tanh(), mg.Dense(3, 1, rng=1))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> mg.save(model, path)
    >>> copy = mg.load(path)
    >>> copy
    Sequential(
      (0): Dense(in_features=2, out_features=3, bias=True)  # 9 parameters
      (1): Tanh()
      (2): Dense(in_features=3, out_features=1, bias=True)  # 4 parameters
    )  # 13 parameters
    >>> bool((copy(np.ones((1, 2))) == model(np.ones((1, 2)))).all())
    True
    """
    check_model_and_path("save", model, path)
    metadata = model_metadata(model, "model")
    tensors = model.state_dict()
    check_finite_to_save(tensors, "parameter")
    write_safetensors(path, tensors, metadata)


def load(path: str | os.PathLike[str]) -> Layer:
    """The model saved at ``path`` by :func:`save`, rebuilt with its parameters.

    Safe for files from anywhere: loading reads JSON and raw float tensors, rebuilds layers
    only from registered classes, and never runs code from the file.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        Nothing at ``path``, or a folder.
    ModelFileError
        ``path`` is not a regular file (a named pipe, a device), the file is malformed, is
        not a minigrad model file (a checkpoint: use ``minigrad.load_checkpoint(path).model``;
        a PyTorch safetensors file has no architecture: load its tensors with
        :func:`load_tensors` into a model you build), names an unregistered layer, holds
        tensors that do not fit the architecture or that hold NaN or an infinity (the
        message names the tensor and the index), or values a layer refuses (its
        ``load_state_dict`` raised).
    ImportError
        The safetensors package is not installed (a valid file is never reported as
        broken for that).

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 1, rng=0), mg.Sigmoid())
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> mg.save(model, path)
    >>> copy = load(path)
    >>> copy[1], copy is model, bool((copy[0].weight.value == model[0].weight.value).all())
    (Sigmoid(), False, True)
    """
    tensors, metadata = read_safetensors(path)
    return model_from(tensors, metadata, "model", str(path))


def load_tensors(path: str | os.PathLike[str]) -> dict[str, NDArray[np.floating[Any] | np.int64]]:
    """The tensors of any safetensors file of float (and int64) tensors, by name (checked as
    in load).

    This is how weights from PyTorch (``safetensors.torch.save_file(torch_model.state_dict(),
    path)``) get into a minigrad model with the same structure:
    ``model.load_state_dict(minigrad.load_tensors(path))``.

    Shape: each tensor keeps the shape it was saved with (a Dense weight: (out, in)).

    Unlike :func:`load`, the values are handed back as they are, NaN and infinities
    included: a file from elsewhere may hold them on purpose (a mask of ``-inf``, say).

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> path = os.path.join(tempfile.mkdtemp(), "dense.safetensors")
    >>> mg.save(mg.Dense(2, 3, rng=0), path)
    >>> tensors = load_tensors(path)
    >>> {key: value.shape for key, value in sorted(tensors.items())}
    {'bias': (3,), 'weight': (3, 2)}
    >>> mg.Dense(2, 3).load_state_dict(tensors)  # into a layer of the same structure
    """
    return read_safetensors(path)[0]


# -- shared with checkpoints -------------------------------------------------------------------


def check_model_and_path(function: str, model: Any, path: Any) -> None:
    """TypeError unless ``model`` is a Layer and ``path`` a path, naming a swap if it is one."""
    if isinstance(path, Layer) and isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"{function} takes the model first and then the path: {function}(model, path); "
            f"got a {type(path).__name__} as path and {quoted(model)} as model"
        )
    if not isinstance(model, Layer):
        raise TypeError(
            f"{function}: model must be a minigrad Layer (a Sequential, say), got "
            f"{quoted(model)} ({type(model).__name__})"
        )
    check_path(path)


def model_metadata(model: Layer, kind: str) -> dict[str, str]:
    """The metadata strings that identify a minigrad file and describe ``model``."""
    from minigrad import __version__

    return {
        "minigrad.format": kind,
        "minigrad.format_version": str(FORMAT_VERSION),
        "minigrad.version": __version__,
        "minigrad.architecture": json.dumps(describe_layer(model)),
    }


def model_from(
    tensors: dict[str, NDArray[np.floating[Any] | np.int64]],
    metadata: dict[str, str],
    kind: str,
    where: str,
    prefix: str = "",
) -> Layer:
    """Rebuild the model described by ``metadata`` and load ``tensors`` (state_dict keys,
    stored in the file under ``prefix`` + key)."""
    found = metadata.get("minigrad.format")
    if found != kind:
        raise ModelFileError(f"{where}: not a minigrad {kind} file ({_format_hint(found)})")
    version = metadata.get("minigrad.format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{where}: file format version {quoted(version)}; this minigrad reads version "
            f"{FORMAT_VERSION}"
        )
    description = parse_json(metadata, "minigrad.architecture", where)
    model = build_layer(description, f"{where}: architecture")
    check_finite_to_load(tensors, where, prefix)
    load_parameters(model, tensors, where)
    return model


def non_finite(array: NDArray[Any]) -> str | None:
    """Where ``array`` first holds NaN or an infinity ("nan at index (1, 0)"), or None."""
    finite = np.isfinite(array)
    if finite.all():
        return None
    index = np.unravel_index(int(np.argmin(finite)), array.shape)
    return f"{array[index]} at index {tuple(int(i) for i in index)}"


def check_finite_to_save(tensors: dict[str, NDArray[Any]], what: str) -> None:
    """ValueError naming the first tensor that holds NaN or an infinity: a load refuses it."""
    for name, array in tensors.items():
        found = non_finite(array)
        if found is not None:
            raise ValueError(
                f"cannot save: {what} {quoted(name)} holds {found}; a file holds finite values "
                "only (loading refuses others), and this model diverged: save an earlier state"
            )


def check_finite_to_load(tensors: dict[str, NDArray[Any]], where: str, prefix: str = "") -> None:
    """ModelFileError naming the first tensor that holds NaN or an infinity. minigrad never
    writes one, and a model loaded with one would only compute NaN."""
    for name, array in tensors.items():
        found = non_finite(array)
        if found is not None:
            raise ModelFileError(
                f"{where}: tensor {quoted(prefix + name)} holds {found}; a minigrad file "
                "holds finite values only (this one is damaged or was written elsewhere)"
            )


def _format_hint(found: str | None) -> str:
    """What a file of another kind is, and the call that loads it."""
    if found == "checkpoint":
        return "it is a minigrad checkpoint file; its model is minigrad.load_checkpoint(path).model"
    if found == "model":
        return "it is a minigrad model file; load it with minigrad.load(path)"
    return (
        "no minigrad architecture in its metadata; for weights saved by PyTorch, build the "
        "model and call model.load_state_dict(minigrad.load_tensors(path))"
    )


def load_parameters(model: Layer, tensors: dict[str, Any], where: str) -> None:
    """``model.load_state_dict(tensors)``, with a mismatch reported as a ModelFileError."""
    try:
        model.load_state_dict(tensors)
    except Exception as error:  # a user layer may raise anything on tensors from a file
        raise ModelFileError(
            f"{where}: the tensors do not fit the architecture: {_misfit(model, tensors, error)}"
        ) from error


def _misfit(model: Layer, tensors: dict[str, Any], error: Exception) -> str:
    """Why the tensors do not fit: the keys that differ (a few of each) or the layer's own
    error, either way short (a file can hold any number of tensors)."""
    expected = [key for key, _ in model.named_parameters()]
    named_buffers = getattr(model, "named_buffers", None)
    if callable(named_buffers):
        expected += [key for key, _ in named_buffers()]
    known = set(expected)
    missing = [key for key in expected if key not in tensors]
    unexpected = [key for key in tensors if key not in known]
    if missing or unexpected:
        return f"missing keys {listing(missing)}, unexpected keys {listing(unexpected)}"
    return error_text(error)


def parse_json(metadata: dict[str, str], key: str, where: str) -> Any:
    """The JSON value stored under ``key`` in the metadata, or ModelFileError."""
    if key not in metadata:
        raise ModelFileError(f"{where}: the metadata has no {key!r} entry")
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError) as error:
        raise ModelFileError(
            f"{where}: {key} is not valid JSON ({shortened(str(error))})"
        ) from None
