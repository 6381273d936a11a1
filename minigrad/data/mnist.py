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
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["load_mnist", "read_idx"]

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_SPLITS = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path) -> NDArray:
    """The array stored in an IDX file (gzip-compressed when the name ends in ``.gz``).

    Raises ValueError when the magic number, the type code or the size does not match the
    header, naming the file and what was found.

    Shape: the d sizes in the header, e.g. (n, 28, 28) for MNIST images, (n,) for labels;
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
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: it must start with two zero bytes, got {data[:2]!r}"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(
            f"{path}: unknown IDX value type 0x{code:02X}; expected one of "
            + ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: the header promises {ndim} sizes but the file ends first")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: header shape {shape} of {dtype.name} needs {expected} bytes of values, "
            f"the file holds {len(data) - header}"
        )
    values = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no {stem} or {stem}.gz in {directory}")


def load_mnist(
    directory: str | Path, split: str = "train", *, flatten: bool = True, scale: bool = True
) -> tuple[NDArray, NDArray[np.int64]]:
    """Images and labels of one MNIST split from the standard IDX files in ``directory``.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (split "train") or
    the ``t10k-`` files (split "test"), each raw or gzip-compressed.

    Returns
    -------
    x : float32 array (n, 784) in [0, 1]; (n, 28, 28) when ``flatten=False``; the raw
        uint8 pixels when ``scale=False``
    y : int64 array (n,) of digits 0-9

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
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    prefix = _SPLITS[split]
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"MNIST {split} files in {directory} do not fit together: images {images.shape}, "
            f"labels {labels.shape}; expected (n, rows, cols) and (n,)"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"MNIST labels must be digits 0-9, got {labels.min()} to {labels.max()}")
    pixels = int(np.prod(images.shape[1:]))
    x: NDArray = images.reshape(len(images), pixels) if flatten else images
    if scale:
        x = x.astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)
