"""Gradient accumulation for ``fit(accumulate=k)``: one optimizer step on the mean gradient
of k batches.

A layer's backward overwrites ``.grad``, so the batches' gradients are summed into a buffer
per parameter, allocated once in the dtype the optimizers keep their state in (float32 for
float32 and float16 parameters, float64 for float64 ones) and updated in place. The step's
gradient is the mean over the samples of its batches,

    g = sum_i (n_i / N) g_i,    N = sum_i n_i,

where g_i is batch i's gradient (of a loss averaged over its n_i samples). For such a loss
that is exactly the gradient of one batch of all N samples: k batches of b samples take the
step one batch of k b would. Only an epoch's last batch can be shorter than the others, and
it is weighted by its size. An epoch's last step takes the batches left over, fewer than k
when the number of batches is not a multiple of k, so that every sample counts in every epoch
and an epoch ends with nothing accumulated (checkpoints written at its end resume exactly).

The step's gradient norm is bounded by the largest of the batches' bounds, which SafeStep
uses to prove the step finite. Only while the sum of the bounds stays far below the dtype's
largest value: beyond that (gradients within a factor k of overflowing) the mean is measured,
and a sum that did overflow stops training as a divergence, before any step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.optim.base import state_dtype
from minigrad.optim.safe_step import HEADROOM
from minigrad.parameter import Parameter

GradBounds = Callable[[dict[int, float]], list[float]]


class GradientMean:
    """Sums ``params``' gradients over groups of ``every`` batches and writes their mean into
    ``.grad`` when a group is complete (``add`` then returns True).

    Between steps ``.grad`` holds the last batch's own gradient, as backward left it; after
    the step's batch, the mean the step uses.

    Examples
    --------
    >>> p = Parameter(np.zeros(2))
    >>> mean = GradientMean([p], every=2)
    >>> p.grad[:] = [1.0, 2.0]
    >>> mean.add(0, rows=4, grad_bounds=None, last=False)
    False
    >>> p.grad[:] = [3.0, 4.0]  # the next backward overwrites it
    >>> mean.add(1, rows=4, grad_bounds=None, last=False), p.grad
    (True, array([2., 3.]))
    """

    def __init__(self, params: list[Parameter], every: int) -> None:
        self.params = params
        self.every = every
        self.sums = [np.zeros(p.shape, state_dtype(p.dtype)) for p in params]
        self.limits = [float(np.finfo(s.dtype).max) / HEADROOM for s in self.sums]
        self.eps = [float(np.finfo(s.dtype).eps) for s in self.sums]
        self._rows: list[int] = []  # the rows of each batch in the current group
        self._bounds: list[GradBounds | None] = []
        self.grad_bounds: GradBounds | None = None

    def add(self, batch: int, rows: int, grad_bounds: GradBounds | None, last: bool) -> bool:
        """Take in batch ``batch``'s gradients (of ``rows`` samples; ``grad_bounds`` bounds
        their norms, as :meth:`GradientBounds.for_step` gives); whether the step is due,
        with ``.grad`` the mean and :attr:`grad_bounds` bounding it. ``last``: the epoch's
        last batch, which always ends a group."""
        first = batch % self.every == 0
        if first:
            self._rows.clear()
            self._bounds.clear()
        self._rows.append(rows)
        self._bounds.append(grad_bounds)
        due = last or (batch + 1) % self.every == 0
        if first and due:  # a group of one batch: its gradient is the mean
            self.grad_bounds = grad_bounds
            return True
        # Sums of the gradients weighted by n_i / n_0 (1 but for a short last batch): the
        # in-place scaling of .grad touches only the step's own batch, which becomes the mean
        weight = rows / self._rows[0]
        if weight != 1.0:
            for param in self.params:
                param.grad *= weight
        for param, total in zip(self.params, self.sums, strict=True):
            if first:
                np.copyto(total, param.grad)
            else:
                total += param.grad
            if due:
                np.divide(total, sum(self._rows) / self._rows[0], out=param.grad)
        if due:
            self.grad_bounds = self._mean_bounds()
        return due

    def _mean_bounds(self) -> GradBounds | None:
        """Bounds on the mean's norms from the batches' bounds: the mean of gradients each
        at most B_i is at most max_i B_i, and the sums are finite while sum_i w_i B_i stays
        below the dtype's limit (else the bound is inf, and SafeStep measures the mean)."""
        if any(bound is None for bound in self._bounds):
            return None
        parts: dict[int, list[Any]] = {}  # each function once: [function, its batches' weight]
        for bound, rows in zip(self._bounds, self._rows, strict=True):
            parts.setdefault(id(bound), [bound, 0.0])[1] += rows / self._rows[0]
        # rounding in a sum of k terms adds at most k eps of the sum of their norms
        slack = [1.0 + len(self._rows) * eps for eps in self.eps]
        limits = self.limits

        def grad_bounds(value_norms: dict[int, float]) -> list[float]:
            evaluated = [(bound(value_norms), weight) for bound, weight in parts.values()]
            result = []
            for index, (limit, rounding) in enumerate(zip(limits, slack, strict=True)):
                top = max(norms[index] for norms, _ in evaluated) * rounding
                total = sum(norms[index] * weight for norms, weight in evaluated) * rounding
                result.append(top if total <= limit else math.inf)  # NaN fails too
            return result

        keys = tuple(getattr(bound, "key", None) for bound in self._bounds)
        if None not in keys:  # the same batches' bounds again: SafeStep may reuse its proof
            # a function attribute, which SafeStep reads with getattr (no type declares it)
            grad_bounds.key = ("mean", *zip(keys, self._rows, strict=True))  # type: ignore[attr-defined]
        return grad_bounds
