"""DataLoader: mini-batches of a data set held in arrays."""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import _given, check_bool, check_integer
from minigrad.errors import ShapeError

__all__ = ["DataLoader"]


def _samples(name: str, data: ArrayLike, what: str) -> NDArray:
    """``data`` as an array with a first (sample) axis; ShapeError naming it for a scalar or
    ragged nested lists."""
    try:
        array = np.asarray(data)
    except ValueError as error:  # ragged: rows of different lengths
        raise ShapeError(f"{what}: {name} is not a rectangular array: {error}") from None
    if array.ndim == 0:
        raise ShapeError(
            f"{what}: {name} must be an array of samples, got a scalar: {_given(data)}"
        )
    return array


def _generator(seed: object, name: str = "seed") -> np.random.Generator:
    """A Generator from ``seed``: an integer >= 0 (Python or NumPy), a Generator (used as it
    is), a SeedSequence or BitGenerator, or None (fresh entropy). Anything else, a bool or a
    float included, is a TypeError naming ``name``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        hint = " (use np.random.default_rng)" if isinstance(seed, np.random.RandomState) else ""
        raise TypeError(
            f"{name} must be an integer >= 0, a numpy.random.Generator or None, got "
            f"{_given(seed)}{hint}"
        )
    return np.random.default_rng(check_integer(name, seed, minimum=0))


class DataLoader:
    """Iterate over mini-batches ``(x_batch, y_batch)`` of arrays held in memory.

    Each ``for`` loop over the loader is one epoch. With ``shuffle=True`` every epoch draws a
    new order from the loader's own generator, so a given ``seed`` gives the same batches in
    the same order on every run. Only the batches are gathered (``x[indices]``); the data set
    itself is never copied. Without shuffling the batches are views of the arrays.

    Parameters
    ----------
    x : array, shape (n, ...)
        Inputs, one sample per row.
    y : array, shape (n, ...), or None
        Targets with the same number of rows; None for unlabelled data (then the loader
        yields ``x_batch`` alone).
    batch_size : int >= 1 (Python or NumPy), default 32
    shuffle : bool, default True
    drop_last : bool, default False
        Drop the last batch when it is smaller than ``batch_size``.
    seed : int >= 0, numpy.random.Generator or None
        Seed or generator for the shuffling (None: fresh entropy).

    Flags must be True or False (the string "False" is refused, not read as True) and
    counts integers (not floats, not bools): a TypeError names the argument.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> loader = DataLoader(x, y, batch_size=2, shuffle=False)
    >>> len(loader), [yb.tolist() for _, yb in loader]
    (3, [[0, 1], [2, 3], [4]])
    """

    def __init__(
        self,
        x: ArrayLike,
        y: ArrayLike | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.x = _samples("x", x, "DataLoader")
        self.y = None if y is None else _samples("y", y, "DataLoader")
        if len(self.x) == 0:
            raise ValueError("DataLoader got an empty data set (x has 0 samples)")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(
                f"DataLoader x and y must have the same number of samples: x has "
                f"{len(self.x)} rows, y has {len(self.y)} rows"
            )
        self.batch_size = check_integer("batch_size", batch_size, minimum=1)
        self.shuffle = check_bool("shuffle", shuffle)
        self.drop_last = check_bool("drop_last", drop_last)
        self.rng = _generator(seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[NDArray, NDArray] | NDArray]:
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else None
        for batch in range(len(self)):
            start, stop = batch * self.batch_size, min((batch + 1) * self.batch_size, n)
            rows: slice | NDArray[np.intp] = (
                slice(start, stop) if order is None else order[start:stop]
            )
            if self.y is None:
                yield self.x[rows]
            else:
                yield self.x[rows], self.y[rows]

    def __repr__(self) -> str:
        return (
            f"DataLoader(samples={len(self.x)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
