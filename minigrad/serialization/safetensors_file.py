"""Reading and writing safetensors files, checked so that untrusted files are safe to open.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then the raw
tensor bytes. The JSON maps each tensor name to ``{"dtype", "shape", "data_offsets"}`` (offsets
into the data section) and may hold ``"__metadata__"``, a flat dict of strings. Nothing in
the format can run code: there is no pickle, and names in the file are only ever looked up in
tables, never imported.

:func:`read_safetensors` reads the 8-byte length and the header first (only from a regular
file: a named pipe or a device is refused before a byte is read) and checks the whole header
itself, before any tensor is read: the length fits in the file, the JSON is an object of
well-formed entries, every dtype is one minigrad uses (a float type, or int64 for counts such
as batch norm's ``num_batches_tracked``), each byte count matches its shape, and the tensors
tile the data section exactly (no gaps, no overlaps, nothing past the end). Only then does it
read the rest and hand the bytes to the ``safetensors`` package, which checks them again.
Any failure is a :class:`~minigrad.errors.ModelFileError` naming the file and what is wrong;
messages quote at most the first characters of a value from the file.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._files import (
    check_path,
    open_regular,
    quoted,
    read_exactly,
    reading,
    shortened,
    write_atomically,
)
from minigrad.errors import ModelFileError

__all__ = ["read_safetensors", "require_safetensors", "write_safetensors"]

#: safetensors dtype codes minigrad reads and writes, with their NumPy types: parameters are
#: floats, and a buffer may be an int64 count (batch norm's num_batches_tracked)
DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "I64": np.dtype(np.int64),
}
#: The safetensors package refuses headers above 100 MB; so do we, before reading one.
MAX_HEADER_BYTES = 100_000_000
#: More dimensions than any minigrad tensor has: a shape longer than this is not ours.
MAX_NDIM = 8


INSTALL_HINT = "pip install 'minigrad-nn[files]' (or pip install safetensors)"


def require_safetensors() -> None:
    """Raise ImportError, with the install command, unless the safetensors package is there.

    Model files, checkpoints and ``ModelCheckpoint`` need it; checking first means that a
    valid file is never reported as a broken one because the reader is missing.

    Examples
    --------
    >>> require_safetensors()  # installed: nothing happens
    """
    _safetensors_numpy()


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError as error:
        raise ImportError(
            f"model files and checkpoints need the safetensors package: {INSTALL_HINT}"
        ) from error
    return safetensors.numpy


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: dict[str, NDArray[Any]],
    metadata: dict[str, str],
) -> None:
    """Write ``tensors`` and string ``metadata`` to ``path`` atomically.

    The bytes are built in memory by ``safetensors.numpy.save`` and written through a
    temporary file in the same folder, flushed, fsynced and renamed over ``path``: a crash
    or an exception mid-write leaves any previous file at ``path`` intact (see
    :func:`minigrad._files.write_atomically` for the file's mode and the leftovers of a
    killed save).

    Shape: any tensor shapes (float16, float32, float64 or int64), kept as they are.

    Raises
    ------
    ImportError
        The safetensors package is not installed.
    TypeError
        A tensor is not a NumPy array of a type minigrad writes (float16, float32, float64,
        int64), a name or a metadata entry is not a string, or ``path`` is not a path.
    ValueError
        What :func:`read_safetensors` would refuse: a tensor of more than ``MAX_NDIM``
        dimensions, or a header (names and metadata) above ``MAX_HEADER_BYTES``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tensors.safetensors")
    >>> write_safetensors(path, {"w": np.eye(2, dtype=np.float32)}, {"note": "identity"})
    >>> read_safetensors(path)
    ({'w': array([[1., 0.],
           [0., 1.]], dtype=float32)}, {'note': 'identity'})
    >>> write_safetensors(path, {"labels": np.arange(3, dtype=np.int32)}, {})
    Traceback (most recent call last):
        ...
    TypeError: tensor 'labels' has dtype int32; model files hold float16, float32, float64 or int64
    """
    safetensors_numpy = _safetensors_numpy()
    check_path(path)
    if not isinstance(tensors, dict) or not isinstance(metadata, dict):
        raise TypeError(
            f"write_safetensors takes a dict of tensors and a dict of metadata strings, got "
            f"{type(tensors).__name__} and {type(metadata).__name__}"
        )
    for name, array in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {quoted(name)}")
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"tensor {quoted(name)} must be a NumPy array, got {type(array).__name__}"
            )
        if array.dtype not in DTYPES.values():
            raise TypeError(
                f"tensor {quoted(name)} has dtype {array.dtype}; model files hold float16, "
                "float32, float64 or int64"
            )
        if array.ndim > MAX_NDIM:  # the reader refuses it: the file could never be loaded
            raise ValueError(
                f"tensor {quoted(name)} has {array.ndim} dimensions; model files hold tensors "
                f"of at most {MAX_NDIM}"
            )
    for key, value in metadata.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            raise TypeError(f"metadata maps strings to strings, got {quoted(key)}: {quoted(value)}")
    # asarray, not ascontiguousarray, which would turn a 0-d count into shape (1,)
    contiguous = {name: np.asarray(array, order="C") for name, array in tensors.items()}
    content = safetensors_numpy.save(contiguous, metadata=metadata)
    header_length = int.from_bytes(content[:8], "little")
    if header_length > MAX_HEADER_BYTES:  # the reader refuses it: the file could never be loaded
        raise ValueError(
            f"the file's header (tensor names and metadata: the architecture, a checkpoint's "
            f"history) would take {header_length} bytes; files are read with headers of at "
            f"most {MAX_HEADER_BYTES}"
        )
    write_atomically(path, content)


def read_safetensors(
    path: str | os.PathLike[str],
) -> tuple[dict[str, NDArray[np.floating[Any] | np.int64]], dict[str, str]]:
    """The tensors (writable arrays) and the metadata of the safetensors file at ``path``.

    The 8-byte length and the header are read and checked first; the rest of the file is
    read only when the header accounts for every byte of it, so a file that is not a model
    (or a link to a device) is refused after reading at most the header.

    Raises
    ------
    ImportError
        The safetensors package is not installed (checked before the file is opened).
    FileNotFoundError
        No file at ``path``.
    IsADirectoryError
        ``path`` is a folder.
    ModelFileError
        ``path`` is not a regular file (a named pipe, a device), or the file is not a
        well-formed safetensors file of float (or int64) tensors (every check is listed in
        the module docstring).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tensors.safetensors")
    >>> write_safetensors(path, {"b": np.zeros(3), "w": np.ones((3, 2))}, {"kind": "demo"})
    >>> tensors, metadata = read_safetensors(path)
    >>> {name: (array.shape, array.dtype.name) for name, array in sorted(tensors.items())}
    {'b': ((3,), 'float64'), 'w': ((3, 2), 'float64')}
    >>> metadata, tensors["w"].flags.writeable
    ({'kind': 'demo'}, True)
    """
    safetensors_numpy = _safetensors_numpy()
    file, size = open_regular(path, "path", ModelFileError)
    where = f"{path}"
    with file, reading(path):
        header_length = _header_length(
            read_exactly(file, min(size, 8), where, ModelFileError), size, where
        )
        header = read_exactly(file, header_length, where, ModelFileError)
        entries, metadata = _parse_header(header, size - 8 - header_length, where)
        # the header accounts for every byte: the whole file is read once, as the package needs
        file.seek(0)
        content = file.read(size + 1)
    if len(content) != size or content[8 : 8 + header_length] != header:
        raise ModelFileError(f"{where}: the file changed while it was being read")
    try:
        loaded = safetensors_numpy.load(content)
    except Exception as error:  # the package's own checks; ours should have caught it first
        raise ModelFileError(
            f"{where}: not a valid safetensors file ({shortened(str(error))})"
        ) from error
    if set(loaded) != set(entries):  # pragma: no cover - guards against a package change
        raise ModelFileError(f"{where}: the tensors read differ from the header's")
    tensors = {}
    for name, array in loaded.items():
        dtype, shape = entries[name]
        if array.dtype != dtype or array.shape != shape:  # pragma: no cover - as above
            raise ModelFileError(f"{where}: tensor {quoted(name)} was read with a different layout")
        tensors[name] = np.array(array, dtype=dtype, order="C")  # a writable copy
    return tensors, metadata


def _header_length(start: bytes, size: int, where: str) -> int:
    """The header length the first 8 bytes give, checked against the file's ``size``."""
    if size < 8:
        raise ModelFileError(
            f"{where}: not a safetensors file: {size} bytes, shorter than the 8-byte header length"
        )
    header_length = int.from_bytes(start, "little")
    available = size - 8
    if header_length > min(available, MAX_HEADER_BYTES):
        raise ModelFileError(
            f"{where}: not a safetensors file (or a truncated one): the header length field "
            f"says {header_length} bytes, but "
            + (
                f"only {available} follow it"
                if header_length > available
                else f"headers are limited to {MAX_HEADER_BYTES} bytes"
            )
        )
    return header_length


def _parse_header(
    header_bytes: bytes, data_length: int, where: str
) -> tuple[dict[str, tuple[np.dtype, tuple[int, ...]]], dict[str, str]]:
    """Check a header against the ``data_length`` bytes after it; the tensors' (dtype, shape)
    and the metadata."""
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ModelFileError(
            f"{where}: the safetensors header is not valid JSON ({shortened(str(error))})"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(
            f"{where}: the safetensors header must be a JSON object, got {type(header).__name__}"
        )
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelFileError(f"{where}: __metadata__ must map strings to strings")
    entries: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        dtype, shape, begin, end = _parse_entry(name, entry, where)
        if end > data_length:
            raise ModelFileError(
                f"{where}: tensor {quoted(name)} ends at byte {end} of the data, which has only "
                f"{data_length} bytes (a truncated file?)"
            )
        entries[name] = (dtype, shape)
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else "leaves a gap"
            raise ModelFileError(
                f"{where}: tensor {quoted(name)} starts at data byte {begin}, which {problem} "
                f"(expected {position})"
            )
        position = end
    if position != data_length:
        raise ModelFileError(
            f"{where}: the tensors cover {position} bytes of data, but {data_length} follow "
            "the header"
        )
    return entries, metadata


def _parse_entry(name: str, entry: Any, where: str) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFileError(
            f"{where}: tensor {quoted(name)} must be described by dtype, shape and data_offsets"
        )
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise ModelFileError(
            f"{where}: tensor {quoted(name)} has dtype {quoted(code)}; minigrad reads "
            f"{sorted(DTYPES)}"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise ModelFileError(
            f"{where}: tensor {quoted(name)} has shape {quoted(shape)}; expected a list of at most "
            f"{MAX_NDIM} non-negative integers"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(n) is int for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise ModelFileError(
            f"{where}: tensor {quoted(name)} has data_offsets {quoted(offsets)}; expected "
            "[begin, end] with 0 <= begin <= end"
        )
    dtype = DTYPES[code]
    begin, end = offsets
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    if end - begin != expected:
        raise ModelFileError(
            f"{where}: tensor {quoted(name)} of shape {tuple(shape)} and dtype {code} needs "
            f"{expected} bytes, but its offsets span {end - begin}"
        )
    return dtype, tuple(shape), begin, end
