"""MNIST and other data sets in the IDX format, read with NumPy alone.

IDX (http://yann.lecun.com/exdb/mnist/) is a header followed by raw big-endian values:

    bytes 0-1  zero
    byte  2    the value type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
               0x0E float64
    byte  3    the number of dimensions d
    then d big-endian uint32 sizes, then prod(sizes) values.

Files may be gzip-compressed (``.gz``). Nothing in a file is ever executed: the bytes are
checked against the header and viewed as an array.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._files import Readable, check_path, open_regular, quoted, read_exactly, reading
from minigrad._validation import check_bool

__all__ = ["load_mnist", "read_idx"]

_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_SPLITS = {"train": "train", "test": "t10k"}
#: Dimensions every NumPy version supports (NumPy 1 stops at 32, NumPy 2 at 64); an IDX
#: file of data holds a handful.
_MAX_NDIM = 32
#: Bytes read past a compressed file's declared size, to say by how much it is too long.
_EXCESS_READ = 4096
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike[str]) -> NDArray[Any]:
    """The array stored in an IDX file (gzip-compressed when the name ends in ``.gz``).

    The header is read and checked first. A plain file must then be exactly as long as the
    header says; a compressed one is decompressed as a stream, never beyond the declared
    size and a few bytes (which tell that it holds too much), so a small file that
    decompresses to gigabytes costs no more than its header claims.

    Raises
    ------
    ValueError
        The magic number, the type code or the size does not match the header, the gzip
        stream is corrupt or truncated, or ``path`` is a named pipe or a device: the message
        names the file and what was found.
    FileNotFoundError, IsADirectoryError
        Nothing at ``path``, or a folder.

    Shape
    -----
    The d sizes in the header, e.g. (n, 28, 28) for MNIST images, (n,) for labels;
    the dtype is the header's, in native byte order.

    Examples
    --------
    A 1-D file of three uint8 values (type 0x08, one dimension of size 3):

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as file:
    ...     _ = file.write(bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    file, size = open_regular(path, "path", ValueError)
    where = str(path)
    with file, reading(path):
        if Path(path).suffix != ".gz":
            return _read_idx(file, size, where)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _read_idx(stream, None, where)
        except EOFError as error:
            raise ValueError(
                f"{where}: the gzip stream is truncated (the file ends before its end marker)"
            ) from error
        except (gzip.BadGzipFile, zlib.error) as error:
            raise ValueError(f"{where}: not a valid gzip file ({error})") from error


def _read_idx(stream: Readable, size: int | None, where: str) -> NDArray[Any]:
    """The array in ``stream``: ``size`` bytes long if known (a plain file), else a
    decompressing stream of unknown length."""
    start = stream.read(4)
    if len(start) < 4 or start[0] != 0 or start[1] != 0:
        raise ValueError(
            f"{where} is not an IDX file: it must start with two zero bytes, got {start[:2]!r}"
        )
    code, ndim = start[2], start[3]
    if code not in _IDX_TYPES:
        raise ValueError(
            f"{where}: unknown IDX value type 0x{code:02X}; expected one of "
            + ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        )
    if ndim > _MAX_NDIM:
        raise ValueError(
            f"{where}: the IDX header declares {ndim} dimensions; arrays have at most "
            f"{_MAX_NDIM} here"
        )
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(f"{where}: the header promises {ndim} sizes but the file ends first")
    shape = tuple(int.from_bytes(sizes[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = _IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    # NumPy refuses a shape whose sizes multiply past its index range even with a size 0
    if math.prod(max(n, 1) for n in shape) * dtype.itemsize > np.iinfo(np.intp).max:
        raise ValueError(
            f"{where}: header shape {shape} of {dtype.name} is too large for an array "
            "(the product of its sizes passes NumPy's limit)"
        )
    problem = f"{where}: header shape {shape} of {dtype.name} needs {expected} bytes of values"
    if size is not None:
        holds = size - 4 - 4 * ndim
        if holds != expected:
            raise ValueError(f"{problem}, the file holds {holds}")
        data = bytearray(read_exactly(stream, expected, where, ValueError))
    else:
        data = bytearray()
        while len(data) < expected + _EXCESS_READ:
            chunk = stream.read(min(_CHUNK, expected + _EXCESS_READ - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) != expected:
            more = len(data) == expected + _EXCESS_READ and stream.read(1)
            raise ValueError(f"{problem}, the file holds {'more than ' if more else ''}{len(data)}")
    values = np.frombuffer(data, dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def _find(directory: Path, stem: str) -> Path:
    """The file of ``stem`` in ``directory``: the first name that exists (whatever it is; a
    name that is not a regular file is refused by :func:`read_idx`, with its kind)."""
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if os.path.lexists(directory / name):
            return directory / name
    raise FileNotFoundError(f"no {stem} or {stem}.gz in {directory}")


def load_mnist(
    directory: str | os.PathLike[str],
    split: str = "train",
    *,
    flatten: bool = True,
    scale: bool = True,
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Images and labels of one MNIST split from the standard IDX files in ``directory``.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (split "train") or
    the ``t10k-`` files (split "test"), each raw or gzip-compressed.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder holding the files.
    split : {"train", "test"}
    flatten : bool
        Images as rows of rows*cols pixels rather than (rows, cols) arrays.
    scale : bool
        Return float32 images: uint8 pixels (MNIST's type) divided by 255 into [0, 1];
        images stored as another IDX type (int8, int16, int32, float32, float64) are
        converted to float32 as they are, since their range is not known to be 0-255.

    Returns
    -------
    x : float32 array (n, 784) in [0, 1]; (n, 28, 28) when ``flatten=False``; the raw
        pixels, of the file's type, when ``scale=False``
    y : int64 array (n,) of digits 0-9

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``directory`` or one of the two files is missing, or ``directory`` is a file.
    ValueError
        The files are malformed (see :func:`read_idx`), do not fit together, or hold labels
        that are not integers 0-9.

    Examples
    --------
    Two blank 28x28 test images labelled 3 and 7, written as IDX files and read back:

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> images = bytes([0, 0, 8, 3]) + np.array([2, 28, 28], ">u4").tobytes() + bytes(2 * 784)
    >>> labels = bytes([0, 0, 8, 1]) + np.array([2], ">u4").tobytes() + bytes([3, 7])
    >>> _ = (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    >>> _ = (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    >>> x, y = load_mnist(folder, "test")
    >>> x.shape, x.dtype, float(x.max()), y.tolist()
    ((2, 784), dtype('float32'), 0.0, [3, 7])
    """
    directory = check_path(directory, "directory")
    if not isinstance(split, str):
        raise TypeError(f"split must be 'train' or 'test', got {type(split).__name__}")
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {quoted(split)}")
    flatten, scale = check_bool("flatten", flatten), check_bool("scale", scale)
    if not directory.is_dir():
        if directory.exists():
            raise NotADirectoryError(f"MNIST folder {directory} is a file, not a folder")
        raise FileNotFoundError(f"MNIST folder {directory} does not exist")
    prefix = _SPLITS[split]
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    images = read_idx(images_path)
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"MNIST {split} files do not fit together: images {images.shape}, labels "
            f"{labels.shape}; expected (n, rows, cols) and (n,) (images from {images_path}, "
            f"labels from {labels_path})"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{labels_path}: MNIST labels must be stored as integers, got {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = int(np.argmax((labels < 0) | (labels > 9)))
        raise ValueError(
            f"{labels_path}: MNIST labels must be digits 0-9, got {labels.min()} to "
            f"{labels.max()} (the first that is not, {labels[bad]}, at index {bad})"
        )
    pixels = math.prod(images.shape[1:])
    x: NDArray[Any] = images.reshape(len(images), pixels) if flatten else images
    if scale:
        x = x.astype(np.float32)
        if images.dtype == np.uint8:  # only 0-255 pixels have a known range to divide by
            x /= np.float32(255.0)
    return x, labels.astype(np.int64)
