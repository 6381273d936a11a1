"""The Loss base class, its reductions and the checks every loss shares."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, shown
from minigrad.errors import ShapeError
from minigrad.layers._checks import as_array, real_array
from minigrad.typing import FloatArray

__all__ = ["Loss"]

#: The reductions every loss takes, as torch.nn's losses do.
REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name: str, value: object, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """``value`` if it is one of the ``allowed`` reduction names, else TypeError/ValueError."""
    choices = ", ".join(repr(choice) for choice in allowed)
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {choices}, got {shown(value)} ({type(value).__name__})"
        )
    if value not in allowed:
        raise ValueError(f"{name} must be one of {choices}, got {shown(value)}")
    return value


class Loss:
    """Base class of losses (PyTorch's criterions).

    Contract
    --------
    ``loss(pred, target) -> float`` (or an array with ``reduction="none"``)
        Validates the pair, returns the loss reduced as ``reduction`` says and caches what
        backward needs.
    ``loss.backward(grad_output=None) -> ndarray``
        dL/dpred for the last call, same shape and dtype as that ``pred``.

    ``reduction`` is ``"mean"`` (the default: a Python float, the mean over the samples or
    elements, as each loss's docstring says), ``"sum"`` (a Python float) or ``"none"`` (a
    float64 array of the per-sample or per-element losses, the shape torch.nn gives).
    Values are computed in float64 whatever pred's dtype; gradients come in pred's dtype.

    ``backward(grad_output)`` takes the gradient flowing into the loss's output, as
    ``tensor.backward(gradient)`` in PyTorch: a number for "mean" and "sum" (default 1),
    an array of the output's shape for "none". Without it, backward with "none" returns
    the gradient of the sum of the per-sample losses (``grad_output`` of ones), what
    ``loss(pred, target).sum()`` would give in PyTorch.

    A new loss subclasses this and writes ``forward(pred, target)`` and ``backward()``;
    the built-in ones reduce with ``self._reduce(per_sample, divisor)`` and scale their
    gradient by ``self._upstream(grad_output)``.

    Shape: pred (batch, ...) and target -> float (or the per-sample shape for "none");
    backward -> an array of pred's shape.

    Examples
    --------
    A mean absolute error, L = (1/N) sum |pred - target|, dL/dpred = sign(pred - target) / N:

    >>> class L1(Loss):
    ...     def forward(self, pred, target):
    ...         self.diff = np.asarray(pred) - np.asarray(target)
    ...         return float(np.abs(self.diff).mean())
    ...     def backward(self):
    ...         return np.sign(self.diff) / self.diff.size
    >>> loss = L1()
    >>> loss(np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]])), loss.backward()
    (1.5, array([[ 0.5, -0.5]]))
    """

    reduction = Checked(
        check_reduction, 'How the per-sample losses are reduced: "mean", "sum" or "none".'
    )
    _reduction = "mean"  # for subclasses that never set one
    #: The reduction, the output's shape and the divisor of the mean, of the last call
    _reduced: tuple[str, tuple[int, ...], float] = ("mean", (), 1.0)

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        return self.forward(pred, target)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """Return the reduced loss over the batch and cache what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(pred, target)")

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """Return dL/dpred for the last forward call (times ``grad_output``, if given)."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    def _reduce(self, per: NDArray[np.float64], divisor: float) -> float | NDArray[np.float64]:
        """``per`` (float64 losses, one per sample or element) reduced by ``reduction``; the
        mean divides the sum by ``divisor`` (0 gives NaN, as in PyTorch)."""
        reduction = self.reduction
        if reduction == "none":
            self._reduced = ("none", per.shape, 1.0)
            return per
        return self._reduce_total(float(np.add.reduce(per, axis=None)), divisor)

    def _reduce_total(self, total: float, divisor: float) -> float:
        """The sum of the per-sample losses reduced by "sum" or "mean" (``total / divisor``)."""
        reduction = self.reduction
        if reduction == "sum":
            self._reduced = ("sum", (), 1.0)
            return total
        self._reduced = (reduction, (), float(divisor))
        return total / divisor if divisor else float("nan")

    def _upstream(self, grad_output: ArrayLike | None) -> float | NDArray[np.float64]:
        """The factor backward multiplies d(per-sample loss)/dpred by: a float (grad_output
        over the mean's divisor), or for "none" with a ``grad_output`` a float64 array of
        the output's shape."""
        reduction, shape, divisor = self._reduced
        if grad_output is None:
            scale = 1.0
        else:
            what = f"{type(self).__name__}.backward grad_output"
            grad_output = real_array(grad_output, None, what)
            if grad_output.shape != shape:
                expected = "a number" if shape == () else f"an array of shape {shape}"
                raise ShapeError(
                    f"{what} must be {expected} (the shape of the loss with "
                    f'reduction="{reduction}"), got shape {grad_output.shape}'
                )
            if shape != ():
                return grad_output.astype(np.float64, copy=False)
            scale = float(grad_output)
        if divisor == 1.0:
            return scale
        # A mean over nothing (every label ignored, or of weight 0) is NaN, and so is its
        # gradient where a row counts, as in PyTorch
        return scale / divisor if divisor else float("nan")

    def _not_called(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.backward() was called before the loss was computed, or "
            "after a call that failed: call loss(pred, target) first"
        )

    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of ``repr`` (default: the reduction,
        when it is not "mean")."""
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def as_prediction(pred: ArrayLike, what: str) -> FloatArray:
    """``pred`` as a float array (its own float dtype kept; integers and booleans become
    float64; complex, string and object arrays refused), non-empty."""
    if type(pred) is not np.ndarray or pred.dtype.kind != "f":
        pred = real_array(pred, None, f"{what} pred")
    if pred.size == 0:
        raise ValueError(f"{what} got an empty batch (pred has shape {pred.shape})")
    return pred


def in_dtype(grad: FloatArray, dtype: np.dtype) -> FloatArray:
    """``grad`` in ``dtype``, rounded once; +-inf where it does not fit, without a warning
    (as PyTorch's float32 gradient would be)."""
    if grad.dtype == dtype:
        return grad
    with np.errstate(over="ignore"):
        return grad.astype(dtype)


def check_weights(
    name: str, value: object, *, ndim: int | None = None
) -> NDArray[np.float64] | None:
    """``value`` (None, a number or an array of them) as a read-only float64 array of finite,
    non-negative numbers; TypeError or ValueError naming ``name``."""
    if value is None:
        return None
    array = as_array(value, name)
    if array.dtype.kind not in "iuf":
        given = f"dtype {array.dtype}" if array.ndim else f"{shown(value)} ({type(value).__name__})"
        raise TypeError(f"{name} must be None or an array of numbers >= 0, got {given}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array (one weight per class), got shape {array.shape}"
        )
    weights = np.array(array, dtype=np.float64)
    if weights.size and not (np.isfinite(weights).all() and weights.min() >= 0):
        bad = weights[~(np.isfinite(weights) & (weights >= 0))][0]
        raise ValueError(f"{name} must hold finite numbers >= 0, got {bad}")
    weights.flags.writeable = False
    return weights


def weights_repr(name: str, weights: NDArray[np.float64] | None) -> str:
    """``", name=[...]"`` for a repr (the values, or the shape for more than six), or ``""``."""
    if weights is None:
        return ""
    if weights.size <= 6:
        return f", {name}={np.round(weights, 4).tolist()!r}"
    return f", {name}=<array of shape {weights.shape}>"
