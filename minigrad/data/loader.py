"""DataLoader: mini-batches of a data set held in arrays."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DataLoader"]


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
    batch_size : int, default 32
    shuffle : bool, default True
    drop_last : bool, default False
        Drop the last batch when it is smaller than ``batch_size``.
    seed : int, numpy.random.Generator or None
        Seed or generator for the shuffling (None: fresh entropy).

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
        self.x = np.asarray(x)
        self.y = None if y is None else np.asarray(y)
        if self.x.ndim == 0:
            raise ValueError("DataLoader x must be an array of samples, got a scalar")
        if len(self.x) == 0:
            raise ValueError("DataLoader got an empty data set (x has 0 samples)")
        if self.y is not None and (self.y.ndim == 0 or len(self.y) != len(self.x)):
            given = "a scalar" if self.y.ndim == 0 else f"{len(self.y)} rows"
            raise ValueError(
                f"DataLoader x and y must have the same number of samples: x has "
                f"{len(self.x)} rows, y has {given}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an integer, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = np.random.default_rng(seed)

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
