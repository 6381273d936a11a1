"""Divergences between distributions: KLDivLoss."""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_bool, check_same_shape
from minigrad.layers._checks import real_array
from minigrad.losses.base import Loss, as_prediction, check_reduction, in_dtype
from minigrad.typing import FloatArray

__all__ = ["KLDivLoss"]


class KLDivLoss(Loss):
    """Kullback-Leibler divergence of log-probabilities from a target distribution
    (torch.nn.KLDivLoss).

    The input x holds log-probabilities log q (a LogSoftmax layer's output); the target is
    the distribution p, or log p with ``log_target=True``. Element by element

        l = p (log p - x)

    with 0 where p = 0 (0 log 0 = 0, whatever x is). Summed over a row, l is KL(p || q).

    Reductions, as in PyTorch: "batchmean" divides the sum by the batch size (pred.shape[0])
    and gives the mathematical KL divergence averaged over the samples; "mean", the
    default, divides by the number of *elements*, N = pred.size, which is that divided by
    the number of classes. PyTorch keeps "mean" for compatibility and warns about it;
    minigrad computes the same number without a warning, and recommends "batchmean".

    Parameters
    ----------
    log_target : bool, default False
        Whether the target holds log p rather than p.
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        "none" returns the element-wise l, of pred's shape.

    Shape: pred (batch, ...) log-probabilities and target of the same shape (p >= 0, or
    log p) -> float ("none": pred's shape).
    Backward: dL/dx = -p / N (N = pred.size for "mean", pred.shape[0] for "batchmean").

    Examples
    --------
    >>> loss = KLDivLoss(reduction="batchmean")
    >>> x = np.log(np.array([[0.5, 0.5]]))
    >>> round(loss(x, np.array([[0.25, 0.75]])), 6)  # 0.25 log 0.5 + 0.75 log 1.5
    0.130812
    >>> loss.backward()
    array([[-0.25, -0.75]])
    """

    reduction = Checked(
        functools.partial(check_reduction, allowed=("mean", "batchmean", "sum", "none")),
        'How the element-wise losses are reduced: "mean", "batchmean", "sum" or "none".',
    )
    log_target = Checked(check_bool, "Whether the target holds log-probabilities.")

    def __init__(
        self,
        reduction: Literal["mean", "sum", "none", "batchmean"] = "mean",
        log_target: bool = False,
    ) -> None:
        self.reduction = reduction
        self.log_target = log_target
        self._probs: NDArray[np.float64] | None = None
        self._dtype: np.dtype = np.dtype(np.float64)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = sum p (log p - x) / divisor, caching p."""
        self._probs = None  # a failed call leaves nothing for backward
        x = as_prediction(pred, "KLDivLoss")
        target = real_array(target, None, "KLDivLoss target")
        check_same_shape(x, target, "KLDivLoss")
        target = target.astype(np.float64, copy=False)
        if self.log_target:
            if np.isnan(target).any() or (target == np.inf).any():
                raise ValueError(
                    "KLDivLoss log_target=True takes log-probabilities, got NaN or +inf"
                )
        elif not target.min() >= 0:  # NaN fails too
            raise ValueError(
                f"KLDivLoss targets must be probabilities >= 0, got {np.nanmin(target)}"
                if not np.isnan(target).all()
                else "KLDivLoss targets must be probabilities >= 0, got NaN"
            )
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.log_target:
                probs, log_probs = np.exp(target), target
            else:
                probs, log_probs = target, np.log(target)
            losses = np.multiply(
                probs, log_probs - x, out=np.zeros(x.shape), where=probs != 0
            )  # p = 0: 0 log 0 = 0, and x = -inf there is no NaN
            divisor = x.shape[0] if self.reduction == "batchmean" else x.size
            value = self._reduce(losses, divisor)
        self._probs, self._dtype = probs, x.dtype
        return value

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dx = -p times the reduction's factor, in pred's dtype."""
        if self._probs is None:
            raise self._not_called()
        scale = self._upstream(grad_output)
        with np.errstate(over="ignore", invalid="ignore"):
            return in_dtype(-self._probs * scale, self._dtype)

    def extra_repr(self) -> str:
        """The reduction and ``log_target``, when they are not the defaults."""
        options = Loss.extra_repr(self)
        if self.log_target:
            options += (", " if options else "") + "log_target=True"
        return options
