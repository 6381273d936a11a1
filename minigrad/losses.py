"""Losses: MSE, binary cross-entropy and softmax cross-entropy.

A loss is called on a batch, ``value = loss(pred, target)``, and returns the mean loss as a
Python float; ``loss.backward()`` then returns dL/dpred for that batch, with the shape and
dtype of ``pred``. The 1/m of the mean is part of that gradient, so layers never divide by
the batch size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_bool, check_ndim, check_same_shape
from minigrad.errors import ShapeError
from minigrad.layers._checks import as_array, real_array, refused
from minigrad.layers.activations import sigmoid

__all__ = ["MSE", "BinaryCrossEntropy", "CrossEntropy", "Loss"]


def _as_prediction(pred: ArrayLike, what: str) -> NDArray[np.floating]:
    """``pred`` as a float array (its own float dtype kept; integers and booleans become
    float64; complex, string and object arrays refused), non-empty."""
    if type(pred) is not np.ndarray or pred.dtype.kind != "f":
        pred = real_array(pred, None, f"{what} pred")
    if pred.size == 0:
        raise ValueError(f"{what} got an empty batch (pred has shape {pred.shape})")
    return pred


class Loss:
    """Base class of losses (PyTorch's criterions).

    Contract
    --------
    ``loss(pred, target) -> float``
        Validates the pair, returns the mean loss and caches what backward needs.
    ``loss.backward() -> ndarray``
        dL/dpred for the last call, same shape and dtype as that ``pred``.

    A new loss subclasses this and writes ``forward(pred, target)`` and ``backward()``.

    Shape: pred (batch, ...) and target -> float; backward -> an array of pred's shape.

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

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> float:
        return self.forward(pred, target)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        """Return the mean loss over the batch and cache what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(pred, target)")

    def backward(self) -> NDArray[np.floating]:
        """Return dL/dpred for the last forward call."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    def _not_called(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.backward() was called before the loss was computed, or "
            "after a call that failed: call loss(pred, target) first"
        )

    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of ``repr`` (default: none)."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class MSE(Loss):
    """Mean squared error over all elements: L = (1/N) sum (pred - target)^2.

    N = pred.size, as torch.nn.MSELoss(reduction="mean"). pred and target must have the same
    shape; a (m, 1) prediction is never broadcast against a (m,) target.

    The differences are taken in float64 against the target as given, so the value is exact
    even for a float32 prediction and a target beyond float32's range; the gradient is then
    rounded once to pred's dtype (to +-inf where it does not fit, without a warning, as
    PyTorch's float32 gradient would be).

    Shape: pred (batch, ...) and target of the same shape -> float.
    Backward: dL/dpred = 2 (pred - target) / N.

    >>> loss = MSE()
    >>> loss(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    2.5
    >>> loss.backward()
    array([[1.],
           [2.]])
    """

    def __init__(self) -> None:
        self._diff: NDArray[np.float64] | None = None
        self._dtype: np.dtype = np.dtype(np.float64)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        """L = (1/N) sum (pred - target)^2, caching pred - target (in float64)."""
        self._diff = None  # a failed call leaves nothing for backward
        pred = _as_prediction(pred, "MSE")
        target = real_array(target, None, "MSE target")
        check_same_shape(pred, target, "MSE")
        # In float64, where no difference or square of float32 numbers overflows; beyond
        # float64's range (1e308 against -1e308) the value is inf, as a float64 sum would be
        with np.errstate(over="ignore", invalid="ignore"):
            diff = np.subtract(pred, target, dtype=np.float64)
            value = float(np.vdot(diff, diff)) / diff.size
        self._diff, self._dtype = diff, pred.dtype
        return value

    def backward(self) -> NDArray[np.floating]:
        """dL/dpred = 2 (pred - target) / N, in pred's dtype."""
        diff = self._diff
        if diff is None:
            raise self._not_called()
        grad = np.empty(diff.shape, self._dtype)
        with np.errstate(over="ignore"):  # beyond pred's dtype the gradient is +-inf
            np.multiply(diff, 2.0 / diff.size, out=grad)
        return grad


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy, the lesson's logistic loss, averaged over all elements.

    With probabilities p (``from_logits=False``, after a Sigmoid layer):

        L = -(1/N) sum [t log p + (1 - t) log(1 - p)]

    p is clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon), so p = 0 or 1 gives a
    large but finite loss and gradient. With logits z (``from_logits=True``, no Sigmoid layer)
    the stable log-sigmoid form is used:

        L = (1/N) sum [max(z, 0) - z t + log(1 + e^-|z|)]

    which is exact for any z, like torch.nn.BCEWithLogitsLoss.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``pred`` holds logits rather than probabilities.

    Shape: pred (batch, ...) and target of the same shape, targets in [0, 1] -> float.
    Backward: probabilities: (p - t) / (p (1 - p) N); logits: (sigmoid(z) - t) / N. Chained
    through a Sigmoid layer the first gives the lesson's dZ = (A - Y) / m.

    >>> loss = BinaryCrossEntropy()
    >>> round(loss(np.array([[0.5]]), np.array([[1.0]])), 6)
    0.693147
    >>> loss.backward()
    array([[-2.]])
    """

    # Checked on assignment too: loss.from_logits = "False" is a TypeError, not logits mode
    from_logits = Checked(check_bool, "Whether pred holds logits rather than probabilities.")

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = from_logits
        self._pred: NDArray[np.floating] | None = None
        self._target: NDArray[np.floating] | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        """L = -(1/N) sum [t log p + (1 - t) log(1 - p)], with p = sigmoid(pred) for logits."""
        self._pred = self._target = None  # a failed call leaves nothing for backward
        pred = _as_prediction(pred, "BinaryCrossEntropy")
        target = real_array(target, None, "BinaryCrossEntropy target")
        check_same_shape(pred, target, "BinaryCrossEntropy")
        if not (target.min() >= 0 and target.max() <= 1):
            raise ValueError(
                "BinaryCrossEntropy targets must lie in [0, 1], got values from "
                f"{target.min()} to {target.max()}"
            )
        if target.dtype != pred.dtype:  # values in [0, 1]: the cast cannot overflow
            target = target.astype(pred.dtype)
        if self.from_logits:
            # max(z, 0) - z t + log(1 + e^-|z|) = -[t log s(z) + (1 - t) log(1 - s(z))]. An
            # infinite logit gives inf - inf = NaN (as in PyTorch), a divergence to report,
            # not a warning
            with np.errstate(invalid="ignore"):
                losses = np.maximum(pred, 0) - pred * target + np.log1p(np.exp(-np.abs(pred)))
        else:
            if not (pred.min() >= 0 and pred.max() <= 1):
                _check_probabilities(pred)
            eps = np.finfo(pred.dtype).eps
            pred = np.clip(pred, eps, 1 - eps)
            losses = -(target * np.log(pred) + (1 - target) * np.log1p(-pred))
        self._pred, self._target = pred, target
        return float(losses.sum(dtype=np.float64)) / losses.size

    def backward(self) -> NDArray[np.floating]:
        """dL/dpred = (p - t) / (p (1 - p) N), or (sigmoid(z) - t) / N for logits z."""
        if self._pred is None or self._target is None:
            raise self._not_called()
        p, t = self._pred, self._target
        if self.from_logits:
            grad = sigmoid(p)
            grad -= t
        else:
            grad = p - t
            grad /= p * (1 - p)
        grad *= 1.0 / p.size
        return grad

    def extra_repr(self) -> str:
        """``from_logits=...``, shown in the repr."""
        return f"from_logits={self.from_logits}"


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits, averaged over the batch.

    With logits z of shape (m, C) and softmax p_ij = exp(z_ij) / sum_k exp(z_ik):

        L = -(1/m) sum_i sum_j t_ij log p_ij,   log p_ij = z_ij - logsumexp(z_i)

    where the log-sum-exp subtracts each row's maximum first, so any finite logits give a
    finite loss. Targets are either integer class indices of shape (m,) (t is then one-hot)
    or probability rows of shape (m, C) (one-hot or soft labels, each row summing to 1).
    This is torch.nn.CrossEntropyLoss: do not put a Softmax layer before it.

    Shape: pred (m, C) logits; target (m,) integers in [0, C) or (m, C) rows -> float.
    Backward: dL/dz = (p - t) / m, computed from the softmax kept by forward; each row of
    it sums to zero.

    >>> loss = CrossEntropy()
    >>> round(loss(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1])), 6)
    0.126928
    >>> loss.backward().round(4)
    array([[-0.0596,  0.0596],
           [ 0.0596, -0.0596]])
    """

    def __init__(self) -> None:
        self._probs: NDArray[np.floating] | None = None
        self._target: NDArray | None = None
        self._rows: NDArray[np.intp] | None = None

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        """L = -(1/m) sum_ij t_ij log softmax(z)_ij, caching the softmax."""
        self._probs = None  # a failed call leaves nothing for backward
        logits = _as_prediction(pred, "CrossEntropy")
        check_ndim(logits, 2, "CrossEntropy pred", hint=" (batch, classes) of logits")
        target = self._check_target(logits, target)
        m = logits.shape[0]
        rows = self._rows
        if rows is None or rows.shape[0] != m:  # kept between calls: batches repeat their size
            rows = np.arange(m)
        # A gap beyond the dtype's range is -inf, whose exp is 0. An infinite logit makes its
        # row NaN (inf - inf), as in PyTorch: a divergence for fit to report, not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            row_max = np.maximum.reduce(logits, axis=1, keepdims=True)
            probs = logits - row_max  # each row's maximum becomes 0 ...
            np.exp(probs, out=probs)  # ... so every exp is <= 1 and each row holds an exp(0) = 1
            sums = np.add.reduce(probs, axis=1, keepdims=True)  # >= 1
            probs /= sums
            # -log p_ij = log(sum_i) + (max_i - z_ij): two terms >= 0, so the loss is >= 0. The
            # gap max_i - z_ij is taken in float64, where a gap between float32 logits cannot
            # overflow (float64 logits 1e308 and -1e308 can: inf, with exp 0 above).
            row_max = row_max.astype(np.float64)
            if target.ndim == 1:
                per_row = np.log(sums[:, 0]) + (row_max[:, 0] - logits[rows, target])
            else:
                # Classes of weight 0 are left out: their gap may be inf, and 0 * inf is NaN
                gaps = np.log(sums) + (row_max - logits)
                weighted = np.multiply(target, gaps, out=np.zeros(gaps.shape), where=target != 0)
                per_row = np.add.reduce(weighted, axis=1)
        self._probs, self._target, self._rows = probs, target, rows
        return float(np.add.reduce(per_row)) / m

    def backward(self) -> NDArray[np.floating]:
        """dL/dz = (softmax(z) - t) / m."""
        if self._probs is None or self._target is None:
            raise self._not_called()
        grad = self._probs.copy()
        if self._target.ndim == 1:
            grad[self._rows, self._target] -= 1
        else:
            grad -= self._target
        grad *= 1.0 / grad.shape[0]
        return grad

    @staticmethod
    def _check_target(logits: NDArray[np.floating], target: ArrayLike) -> NDArray:
        m, classes = logits.shape
        if not isinstance(target, np.ndarray):
            target = as_array(target, "CrossEntropy target")
        if target.ndim == 1:
            if target.shape[0] != m:
                raise ShapeError(
                    f"CrossEntropy: pred has {m} rows but target has {target.shape[0]} labels"
                )
            return _class_indices(target, classes)
        if target.shape == logits.shape:
            rows = real_array(target, None, "CrossEntropy target")
            if not (rows.min() >= 0 and rows.max() <= 1):
                raise ValueError(
                    "CrossEntropy probability targets must lie in [0, 1], got values from "
                    f"{rows.min()} to {rows.max()}"
                )
            if rows.dtype != logits.dtype:  # values in [0, 1]: the cast cannot overflow
                rows = rows.astype(logits.dtype)
            sums = rows.sum(axis=1)
            bad = np.flatnonzero(np.abs(sums - 1) > 1e-3)
            if bad.size:
                raise ValueError(
                    f"CrossEntropy probability targets must have rows summing to 1; row "
                    f"{bad[0]} sums to {sums[bad[0]]}"
                )
            return rows
        hint = ""
        if target.shape == (m, 1):
            hint = "; class indices go in shape (batch,): use target.ravel()"
        raise ShapeError(
            f"CrossEntropy: pred has shape {logits.shape}, so target must be class indices of "
            f"shape ({m},) or probability rows of shape {logits.shape}; got {target.shape}{hint}"
        )


def _check_probabilities(pred: NDArray[np.floating]) -> None:
    """Raise unless every entry of ``pred`` that is not NaN lies in [0, 1].

    NaN passes and gives a NaN loss, as it does in MSE and CrossEntropy, so that a diverging
    model is reported as diverging rather than as a wrong input.
    """
    values = pred[~np.isnan(pred)]
    if values.size and not (values.min() >= 0 and values.max() <= 1):
        raise ValueError(
            "BinaryCrossEntropy expects probabilities in [0, 1], got values from "
            f"{values.min()} to {values.max()}; for raw scores use "
            "BinaryCrossEntropy(from_logits=True)"
        )


#: itemsize -> 2^(bits-1) = the number of non-negative values of the signed integer dtype
_SIGNED_LIMIT = {size: 1 << (8 * size - 1) for size in (1, 2, 4, 8)}
#: itemsize -> the unsigned integer dtype of that size, in native byte order
_UNSIGNED = {np.dtype(t).itemsize: np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)}


def _class_indices(labels: NDArray, classes: int) -> NDArray[np.intp]:
    """Validate class labels (integers, or floats with integer values) in [0, classes)."""
    kind = labels.dtype.kind
    if kind == "f":
        bad = np.flatnonzero(labels != np.round(labels))  # NaN included; inf fails below
        if bad.size:
            raise ValueError(
                f"CrossEntropy class labels must be integers, got {labels[bad[0]]} "
                f"at index {bad[0]}"
            )
        out_of_range = labels.min() < 0 or labels.max() >= classes
    elif kind == "i" and classes <= _SIGNED_LIMIT[labels.dtype.itemsize]:
        # Viewed as unsigned, a negative label becomes at least 2^(bits-1) >= classes: one
        # max() checks both ends
        dtype = labels.dtype
        unsigned = labels.view(
            _UNSIGNED[dtype.itemsize] if dtype.isnative else dtype.str.replace("i", "u")
        )
        out_of_range = np.maximum.reduce(unsigned) >= classes
    elif kind == "i":  # more classes than the dtype has positive values: only negatives fail
        out_of_range = np.minimum.reduce(labels) < 0
    elif kind == "u":
        out_of_range = np.maximum.reduce(labels) >= classes
    else:
        raise TypeError(f"CrossEntropy class labels must be integers, {refused(labels)}")
    if out_of_range:
        i = np.flatnonzero((labels < 0) | (labels >= classes))[0]
        raise ValueError(
            f"CrossEntropy class labels must lie in [0, {classes}) for {classes} classes, "
            f"got {labels[i]} at index {i}"
        )
    return labels.astype(np.intp, copy=False)
