"""DataLoader: mini-batches of a data set held in arrays."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Setting, _given, _shortened, check_bool, check_integer
from minigrad.errors import ShapeError

__all__ = ["DataLoader"]


def _samples(name: str, data: ArrayLike, what: str) -> NDArray[Any]:
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
    counts integers (not floats, not bools): a TypeError names the argument. The same
    checks apply when ``batch_size``, ``shuffle``, ``drop_last`` or ``rng`` (a seed or a
    Generator, as ``seed``) are set later; ``x`` and ``y`` cannot be replaced (build a new
    loader), so that they always have the same number of samples.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> loader = DataLoader(x, y, batch_size=2, shuffle=False)
    >>> len(loader), [yb.tolist() for _, yb in loader]
    (3, [[0, 1], [2, 3], [4]])
    """

    batch_size = Setting(lambda name, value: check_integer(name, value, minimum=1))
    shuffle = Setting(check_bool)
    drop_last = Setting(check_bool)
    rng = Setting(lambda name, value: _generator(value, name))

    def __init__(
        self,
        x: ArrayLike,
        y: ArrayLike | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self._x = _samples("x", x, "DataLoader")
        self._y = None if y is None else _samples("y", y, "DataLoader")
        if len(self._x) == 0:
            raise ValueError("DataLoader got an empty data set (x has 0 samples)")
        if self._y is not None and len(self._y) != len(self._x):
            raise ValueError(
                f"DataLoader x and y must have the same number of samples: x has "
                f"{len(self._x)} rows, y has {len(self._y)} rows"
            )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = _generator(seed)  # checked under its own name; a Generator passes again

    @property
    def x(self) -> NDArray[Any]:
        """The inputs, shape (n, ...)."""
        return self._x

    @x.setter
    def x(self, value: object) -> None:
        _refuse_new_data("x")

    @property
    def y(self) -> NDArray[Any] | None:
        """The targets, shape (n, ...), or None."""
        return self._y

    @y.setter
    def y(self, value: object) -> None:
        _refuse_new_data("y")

    def __len__(self) -> int:
        """Batches per epoch."""
        n, size = len(self._x), self.batch_size
        return n // size if self.drop_last else -(-n // size)

    def __iter__(self) -> Iterator[tuple[NDArray[Any], NDArray[Any]] | NDArray[Any]]:
        x, y, n, size = self._x, self._y, len(self._x), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else None
        for batch in range(len(self)):
            start, stop = batch * size, min((batch + 1) * size, n)
            rows: slice | NDArray[np.intp] = (
                slice(start, stop) if order is None else order[start:stop]
            )
            if y is None:
                yield x[rows]
            else:
                yield x[rows], y[rows]

    def __repr__(self) -> str:
        return (
            f"DataLoader(samples={len(self._x)}, batch_size={_shortened(self.batch_size)}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )


def _refuse_new_data(name: str) -> None:
    raise AttributeError(
        f"DataLoader.{name} cannot be replaced (x and y must keep the same number of "
        "samples); build a new DataLoader(x, y, ...) for other data"
    )
