"""Regression losses: MSE, L1Loss, HuberLoss and SmoothL1Loss, element by element.

Each compares pred with a target of the same shape through d = pred - target, taken in
float64 (so a float32 prediction against any target gives the exact value), and is
torch.nn's loss of the same name (MSELoss, L1Loss, HuberLoss, SmoothL1Loss).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_real, check_same_shape
from minigrad.layers._checks import real_array
from minigrad.losses.base import Loss, as_prediction
from minigrad.typing import FloatArray, Reduction

__all__ = ["MSE", "HuberLoss", "L1Loss", "SmoothL1Loss"]


class _Elementwise(Loss):
    """A loss l(d) of each element's difference d = pred - target: ``_losses(d)`` gives
    l(d), ``_slopes(d)`` gives l'(d); reductions over all N elements."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        self.reduction = reduction
        self._diff: NDArray[np.float64] | None = None
        self._dtype: np.dtype = np.dtype(np.float64)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """The losses of pred - target (in float64), reduced; caches the differences."""
        self._diff = None  # a failed call leaves nothing for backward
        name = type(self).__name__
        pred = as_prediction(pred, name)
        target = real_array(target, None, f"{name} target")
        check_same_shape(pred, target, name)
        # In float64, where no difference of float32 numbers overflows; beyond float64's
        # range (1e308 against -1e308) the loss is inf, as a float64 sum would be
        with np.errstate(over="ignore", invalid="ignore"):
            diff = np.subtract(pred, target, dtype=np.float64)
            value = self._reduce_differences(diff)
        self._diff, self._dtype = diff, pred.dtype
        return value

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dpred = l'(pred - target) times the reduction's factor, in pred's dtype."""
        diff = self._diff
        if diff is None:
            raise self._not_called()
        scale = self._upstream(grad_output)
        grad = np.empty(diff.shape, self._dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond pred's dtype: +-inf
            self._gradient(diff, scale, grad)
        return grad

    def _reduce_differences(self, diff: NDArray[np.float64]) -> float | NDArray[np.float64]:
        return self._reduce(self._losses(diff), diff.size)

    def _gradient(
        self, diff: NDArray[np.float64], scale: float | NDArray[np.float64], out: FloatArray
    ) -> None:
        """out = l'(diff) * scale, rounded once to out's dtype."""
        np.multiply(self._slopes(diff), scale, out=out)

    def _losses(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError

    def _slopes(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError


class MSE(_Elementwise):
    """Mean squared error over all elements: L = (1/N) sum (pred - target)^2.

    N = pred.size, as torch.nn.MSELoss(reduction="mean"). pred and target must have the same
    shape; a (m, 1) prediction is never broadcast against a (m,) target.

    The differences are taken in float64 against the target as given, so the value is exact
    even for a float32 prediction and a target beyond float32's range; the gradient is then
    rounded once to pred's dtype (to +-inf where it does not fit, without a warning, as
    PyTorch's float32 gradient would be).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
        "sum" gives sum (pred - target)^2; "none" the array of squares, of pred's shape.

    Shape: pred (batch, ...) and target of the same shape -> float ("none": pred's shape).
    Backward: dL/dpred = 2 (pred - target) / N ("sum" and "none": without the 1/N).

    >>> loss = MSE()
    >>> loss(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    2.5
    >>> loss.backward()
    array([[1.],
           [2.]])
    """

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = (1/N) sum (pred - target)^2, caching pred - target (in float64)."""
        return super().forward(pred, target)

    def _reduce_differences(self, diff: NDArray[np.float64]) -> float | NDArray[np.float64]:
        if self.reduction == "none":
            return self._reduce(np.square(diff), diff.size)
        return self._reduce_total(float(np.vdot(diff, diff)), diff.size)  # one BLAS pass

    def _gradient(
        self, diff: NDArray[np.float64], scale: float | NDArray[np.float64], out: FloatArray
    ) -> None:
        np.multiply(diff, 2.0 * scale, out=out)

    def _losses(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.square(diff)

    def _slopes(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        return 2.0 * diff


class L1Loss(_Elementwise):
    """Mean absolute error over all elements: L = (1/N) sum |pred - target|.

    torch.nn.L1Loss: N = pred.size, pred and target of the same shape, differences in
    float64. The gradient at pred == target is 0 (sign(0) = 0), as in PyTorch.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"

    Shape: pred (batch, ...) and target of the same shape -> float ("none": pred's shape).
    Backward: dL/dpred = sign(pred - target) / N.

    Examples
    --------
    >>> loss = L1Loss()
    >>> loss(np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]]))
    1.5
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    >>> L1Loss(reduction="none")(np.array([1.0, -1.0]), np.array([0.0, 1.0]))
    array([1., 2.])
    """

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = (1/N) sum |pred - target|, caching pred - target (in float64)."""
        return super().forward(pred, target)

    def _losses(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.abs(diff)

    def _slopes(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.sign(diff)


_positive = functools.partial(check_real, above=0.0)
_non_negative = functools.partial(check_real, minimum=0.0)


class HuberLoss(_Elementwise):
    """Huber loss: quadratic for small differences, linear beyond ``delta``.

    With d = pred - target, element by element (torch.nn.HuberLoss):

        l(d) = d^2 / 2                  if |d| < delta
               delta (|d| - delta / 2)  otherwise

    and L = (1/N) sum l(d). The two pieces meet with the same value and slope at
    |d| = delta, so l is smooth enough for gradient descent and grows only linearly for
    outliers. ``HuberLoss(delta)`` is ``delta * SmoothL1Loss(beta=delta)``.

    Parameters
    ----------
    delta : float, default 1.0
        Where the loss turns linear; a finite number > 0.
    reduction : {"mean", "sum", "none"}, default "mean"

    Shape: pred (batch, ...) and target of the same shape -> float ("none": pred's shape).
    Backward: dL/dpred = clip(d, -delta, delta) / N.

    Examples
    --------
    >>> loss = HuberLoss(delta=1.0)
    >>> loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]))  # (0.125 + 2.5) / 2
    1.3125
    >>> loss.backward()
    array([0.25, 0.5 ])
    """

    delta = Checked(_positive, "Where the loss turns from quadratic to linear (> 0).")

    def __init__(self, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        self.delta = delta
        super().__init__(reduction)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = (1/N) sum l(pred - target), caching pred - target (in float64)."""
        return super().forward(pred, target)

    def _losses(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        delta, size = self.delta, np.abs(diff)
        return np.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))

    def _slopes(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.clip(diff, -self.delta, self.delta)

    def extra_repr(self) -> str:
        """``delta=...`` (and the reduction when it is not "mean"), shown in the repr."""
        return ", ".join(filter(None, [f"delta={self.delta}", super().extra_repr()]))


class SmoothL1Loss(_Elementwise):
    """Smooth L1 loss: quadratic below ``beta``, the L1 loss shifted by beta/2 beyond.

    With d = pred - target, element by element (torch.nn.SmoothL1Loss, Fast R-CNN's box
    regression loss):

        l(d) = d^2 / (2 beta)    if |d| < beta
               |d| - beta / 2    otherwise

    and L = (1/N) sum l(d). ``beta=0`` is the L1 loss. Its slope never exceeds 1, whatever
    beta; HuberLoss(delta) is delta times SmoothL1Loss(beta=delta).

    Parameters
    ----------
    beta : float, default 1.0
        Where the loss turns linear; a finite number >= 0.
    reduction : {"mean", "sum", "none"}, default "mean"

    Shape: pred (batch, ...) and target of the same shape -> float ("none": pred's shape).
    Backward: dL/dpred = clip(d / beta, -1, 1) / N (sign(d) / N for beta = 0).

    Examples
    --------
    >>> loss = SmoothL1Loss(beta=1.0)
    >>> loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]))  # (0.125 + 2.5) / 2
    1.3125
    >>> loss.backward()
    array([0.25, 0.5 ])
    """

    beta = Checked(_non_negative, "Where the loss turns from quadratic to linear (>= 0).")

    def __init__(self, beta: float = 1.0, reduction: Reduction = "mean") -> None:
        self.beta = beta
        super().__init__(reduction)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = (1/N) sum l(pred - target), caching pred - target (in float64)."""
        return super().forward(pred, target)

    def _losses(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        beta, size = self.beta, np.abs(diff)
        if beta == 0:
            return size
        losses: NDArray[np.float64] = np.where(
            size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta
        )
        return losses

    def _slopes(self, diff: NDArray[np.float64]) -> NDArray[np.float64]:
        beta = self.beta
        if beta == 0:
            return np.sign(diff)
        slopes: NDArray[np.float64] = np.clip(diff / beta, -1.0, 1.0)
        return slopes

    def extra_repr(self) -> str:
        """``beta=...`` (and the reduction when it is not "mean"), shown in the repr."""
        return ", ".join(filter(None, [f"beta={self.beta}", super().extra_repr()]))
