"""Classification losses: binary and softmax cross-entropy, negative log-likelihood and the
multiclass hinge loss, with torch.nn's options (class weights, ignore_index, label
smoothing, pos_weight) and reductions."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import (
    Checked,
    check_bool,
    check_integer,
    check_ndim,
    check_real,
    check_same_shape,
)
from minigrad.errors import ShapeError
from minigrad.layers._checks import as_array, real_array, refused
from minigrad.layers.activations import sigmoid
from minigrad.losses.base import Loss, as_prediction, check_weights, in_dtype, weights_repr
from minigrad.typing import FloatArray, Reduction

__all__ = ["BinaryCrossEntropy", "CrossEntropy", "MultiMarginLoss", "NLLLoss"]

_class_weights = functools.partial(check_weights, ndim=1)
_QUIET = contextlib.nullcontext()
_ignore_index = functools.partial(check_integer, minimum=-(2**63), maximum=2**63 - 1)
_smoothing = functools.partial(check_real, minimum=0.0, maximum=1.0)


def _broadcast_weights(weights: NDArray[np.float64], shape: tuple[int, ...], what: str) -> None:
    """ShapeError unless ``weights`` broadcast to ``shape`` (the prediction's) unchanged."""
    try:
        fits = np.broadcast_shapes(weights.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{what} of shape {weights.shape} must broadcast to pred's shape {shape} "
            "(as in PyTorch: trailing axes line up)"
        )


def _per_class(weights: NDArray[np.float64] | None, classes: int, what: str) -> None:
    """ShapeError unless ``weights`` (one per class) has ``classes`` entries."""
    if weights is not None and weights.shape[0] != classes:
        raise ShapeError(
            f"{what} weight has {weights.shape[0]} entries (one per class) but pred has "
            f"{classes} classes"
        )


#: CrossEntropy's backward terms for class indices: s (m,), the smoothing row (C,) or None,
#: the kept rows (m,), the labels (m,) and a at the labels (m,)
_LabelTerms = tuple[
    NDArray[np.float64],
    NDArray[np.float64] | None,
    NDArray[np.bool_],
    NDArray[np.intp],
    NDArray[np.float64],
]
#: and for probability rows: s (m,) and a (m, C)
_RowTerms = tuple[NDArray[np.float64], NDArray[np.float64]]


def _weighted(coefficients: NDArray[Any], values: NDArray[Any]) -> NDArray[np.float64]:
    """coefficients * values in float64 (broadcast), 0 where the coefficient is 0 (whose
    value may be inf: 0 * inf would be NaN)."""
    shape = np.broadcast_shapes(coefficients.shape, values.shape)
    product: NDArray[np.float64] = np.multiply(
        coefficients, values, out=np.zeros(shape), where=coefficients != 0
    )
    return product


def _weighted_sum(
    coefficients: NDArray[Any], values: NDArray[Any], axis: int
) -> NDArray[np.float64]:
    """sum(coefficients * values) along ``axis``, leaving out terms of coefficient 0."""
    total: NDArray[np.float64] = np.add.reduce(_weighted(coefficients, values), axis=axis)
    return total


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy, the lesson's logistic loss, averaged over all elements.

    With probabilities p (``from_logits=False``, after a Sigmoid layer; torch.nn.BCELoss):

        l = -w [t log p + (1 - t) log(1 - p)],   L = (1/N) sum l

    p is clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon), so p = 0 or 1 gives a
    large but finite loss and gradient. With logits z (``from_logits=True``, no Sigmoid layer;
    torch.nn.BCEWithLogitsLoss) the stable log-sigmoid form is used:

        l = w [pos_weight t softplus(-z) + (1 - t) softplus(z)],
        softplus(z) = log(1 + e^z) = max(z, 0) + log(1 + e^-|z|)

    which is exact for any finite z (with w = pos_weight = 1 it is max(z, 0) - z t +
    log(1 + e^-|z|)).

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``pred`` holds logits rather than probabilities.
    weight : array, optional
        Weights w >= 0 of the elements, broadcast to pred's shape as PyTorch does (a (C,)
        array weighs the columns). The mean still divides by N, the number of elements.
    pos_weight : array, optional
        The weight of the positive term, broadcast to pred's shape (one per column for
        (batch, C) outputs: pos_weight > 1 raises recall). Logits only (from_logits=True),
        as in PyTorch, where only BCEWithLogitsLoss takes it.
    reduction : {"mean", "sum", "none"}, default "mean"

    Shape: pred (batch, ...) and target of the same shape, targets in [0, 1] -> float
    ("none": pred's shape).
    Backward: probabilities: w (p - t) / (p (1 - p) N); logits: w [(1 + (pos_weight - 1) t)
    sigmoid(z) - pos_weight t] / N, which is w (sigmoid(z) - t) / N without pos_weight.
    Chained through a Sigmoid layer the first gives the lesson's dZ = (A - Y) / m.

    Examples
    --------
    >>> loss = BinaryCrossEntropy()
    >>> round(loss(np.array([[0.5]]), np.array([[1.0]])), 6)
    0.693147
    >>> loss.backward()
    array([[-2.]])
    >>> loss = BinaryCrossEntropy(from_logits=True, pos_weight=[3.0], reduction="none")
    >>> loss(np.array([[0.0], [0.0]]), np.array([[1.0], [0.0]])).round(6)  # 3 log 2, log 2
    array([[2.079442],
           [0.693147]])
    """

    # Checked on assignment too: loss.from_logits = "False" is a TypeError, not logits mode
    from_logits = Checked(check_bool, "Whether pred holds logits rather than probabilities.")
    weight = Checked(check_weights, "Weights of the elements (broadcast to pred), or None.")
    pos_weight = Checked(check_weights, "The weight of the positive term (logits only), or None.")

    def __init__(
        self,
        from_logits: bool = False,
        *,
        weight: ArrayLike | None = None,
        pos_weight: ArrayLike | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        self.from_logits = from_logits
        self.weight = weight
        self.pos_weight = pos_weight
        self.reduction = reduction
        self._check_pos_weight()
        self._pred: FloatArray | None = None
        self._target: FloatArray | None = None
        self._weights: tuple[NDArray[np.float64] | None, NDArray[np.float64] | None] = (None, None)

    def _silenced(self) -> bool:
        """Whether a step may overflow or meet inf - inf (logits, weights, a reduction other
        than the mean): errstate costs a microsecond, so the plain BCE on probabilities,
        which cannot, goes without."""
        return self.from_logits or self.weight is not None or self.reduction != "mean"

    def _check_pos_weight(self) -> None:
        if self.pos_weight is not None and not self.from_logits:
            raise ValueError(
                "BinaryCrossEntropy pos_weight needs from_logits=True (PyTorch's "
                "BCEWithLogitsLoss takes it, BCELoss does not): train on logits, or drop "
                "pos_weight"
            )

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = -(1/N) sum w [t log p + (1 - t) log(1 - p)], p = sigmoid(pred) for logits."""
        self._pred = self._target = None  # a failed call leaves nothing for backward
        self._check_pos_weight()
        pred = as_prediction(pred, "BinaryCrossEntropy")
        target = real_array(target, None, "BinaryCrossEntropy target")
        check_same_shape(pred, target, "BinaryCrossEntropy")
        weight, pos_weight = self.weight, self.pos_weight
        for name, weights in (("weight", weight), ("pos_weight", pos_weight)):
            if weights is not None:
                _broadcast_weights(weights, pred.shape, f"BinaryCrossEntropy {name}")
        if not (target.min() >= 0 and target.max() <= 1):
            raise ValueError(
                "BinaryCrossEntropy targets must lie in [0, 1], got values from "
                f"{target.min()} to {target.max()}"
            )
        if target.dtype != pred.dtype:  # values in [0, 1]: the cast cannot overflow
            target = target.astype(pred.dtype)
        # An infinite logit gives inf - inf = NaN (as in PyTorch), a divergence to report,
        # not a warning
        with np.errstate(over="ignore", invalid="ignore") if self._silenced() else _QUIET:
            if self.from_logits and pos_weight is None:
                # max(z, 0) - z t + log(1 + e^-|z|) = -[t log s(z) + (1 - t) log(1 - s(z))]
                losses = np.maximum(pred, 0) - pred * target + np.log1p(np.exp(-np.abs(pred)))
            elif self.from_logits:
                tail = np.log1p(np.exp(-np.abs(pred)))
                positive = np.maximum(-pred, 0) + tail  # softplus(-z) = -log sigmoid(z)
                negative = np.maximum(pred, 0) + tail  # softplus(z) = -log(1 - sigmoid(z))
                losses = (1 - target) * negative + (pos_weight * target) * positive
            else:
                if not (pred.min() >= 0 and pred.max() <= 1):
                    _check_probabilities(pred)
                eps = np.finfo(pred.dtype).eps
                pred = np.clip(pred, eps, 1 - eps)
                losses = -(target * np.log(pred) + (1 - target) * np.log1p(-pred))
            if weight is not None:
                losses = _weighted(weight, losses)
            value = self._reduce(losses.astype(np.float64, copy=False), losses.size)
        self._pred, self._target, self._weights = pred, target, (weight, pos_weight)
        return value

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dpred = w (p - t) / (p (1 - p) N), or w (sigmoid(z) - t) / N for logits z."""
        if self._pred is None or self._target is None:
            raise self._not_called()
        p, t = self._pred, self._target
        weight, pos_weight = self._weights
        scale = self._upstream(grad_output)
        with np.errstate(over="ignore", invalid="ignore") if self._silenced() else _QUIET:
            if self.from_logits:
                grad = sigmoid(p)
                if pos_weight is None:
                    grad -= t
                else:  # (1 + (pw - 1) t) s - pw t, rounded once to pred's dtype
                    scaled = pos_weight * t
                    grad = in_dtype((1 - t + scaled) * grad - scaled, p.dtype)
            else:
                grad = p - t
                grad /= p * (1 - p)
            if weight is not None:
                grad *= weight
            grad *= scale
        return grad

    def extra_repr(self) -> str:
        """``from_logits=...`` and the options that are set, shown in the repr."""
        options = f"from_logits={self.from_logits}"
        options += weights_repr("weight", self.weight) + weights_repr("pos_weight", self.pos_weight)
        reduction = Loss.extra_repr(self)
        return options + (", " + reduction if reduction else "")


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits, averaged over the batch (torch.nn.CrossEntropyLoss).

    With logits z of shape (m, C) and log-softmax log p_ij = z_ij - logsumexp(z_i), where
    the log-sum-exp subtracts each row's maximum first (so any finite logits give a finite
    loss), the loss of row i is

        l_i = -sum_j a_ij log p_ij

    For integer class indices y (shape (m,)), with class weights w (default 1) and label
    smoothing eps (default 0):

        a_ij = (1 - eps) w_{y_i} [j = y_i] + (eps / C) w_j,   L = sum_i l_i / sum_i w_{y_i}

    the mean dividing by the total weight of the rows' classes (m without weights); rows
    whose label equals ``ignore_index`` count for nothing, in the sum and in the divisor.
    For probability rows t (shape (m, C), one-hot or soft labels summing to 1):

        a_ij = w_j ((1 - eps) t_ij + eps / C),   L = (1/m) sum_i l_i

    Terms with a_ij = 0 are left out (0 log 0 = 0, even where log p_ij is -inf); a mean
    whose divisor is 0 (every label ignored, or of weight 0) is NaN, as in PyTorch. Do not
    put a Softmax layer before this loss.

    Parameters
    ----------
    weight : array of shape (C,), optional
        Class weights >= 0, for unbalanced classes.
    ignore_index : int, default -100
        A class-index label marking a row to leave out (padding, unlabelled samples).
        With probability-row targets only the default is allowed, as in PyTorch.
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" returns the (m,) array of l_i (0 for ignored rows).
    label_smoothing : float in [0, 1], default 0.0
        eps above: the target moves eps of its mass onto the uniform distribution.

    Shape: pred (m, C) logits; target (m,) integers in [0, C) (or ``ignore_index``) or
    (m, C) rows -> float ("none": (m,)).
    Backward: dL/dz_i = (s_i p_i - a_i) / divisor, s_i = sum_j a_ij; without weights and
    smoothing (p - t) / m, each row summing to zero. Computed from the softmax kept by
    forward.

    Examples
    --------
    >>> loss = CrossEntropy()
    >>> round(loss(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1])), 6)
    0.126928
    >>> loss.backward().round(4)
    array([[-0.0596,  0.0596],
           [ 0.0596, -0.0596]])
    >>> loss = CrossEntropy(weight=[1.0, 3.0], ignore_index=-1, reduction="none")
    >>> loss(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]]), np.array([1, 0, -1])).round(4)
    array([2.0794, 0.6931, 0.    ])
    """

    weight = Checked(_class_weights, "Class weights (C,), or None.")
    ignore_index = Checked(_ignore_index, "The class-index label of rows to leave out.")
    label_smoothing = Checked(_smoothing, "The mass moved onto the uniform distribution.")

    def __init__(
        self,
        weight: ArrayLike | None = None,
        *,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self._probs: FloatArray | None = None
        self._target: NDArray[Any] | None = None
        self._rows: NDArray[np.intp] | None = None
        # (s (m,), the smoothing row (C,) or None, the picked labels' a (m,), kept rows (m,)
        # or None) for class indices, (s, a (m, C)) for probability rows; None: plain
        self._terms: _LabelTerms | _RowTerms | None = None
        #: whether the last class-index target lay wholly in [0, C) (set by _check_target)
        self._in_range = True

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = -sum_ij a_ij log softmax(z)_ij / divisor, caching the softmax."""
        self._probs = None  # a failed call leaves nothing for backward
        logits = as_prediction(pred, "CrossEntropy")
        check_ndim(logits, 2, "CrossEntropy pred", hint=" (batch, classes) of logits")
        _per_class(self.weight, logits.shape[1], "CrossEntropy")
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
            plain = self.weight is None and self.label_smoothing == 0
            ignored: NDArray[np.bool_] | None = None
            if target.ndim == 1 and not (plain and self._nothing_ignored(target, logits)):
                ignored = target == self.ignore_index
            terms: _LabelTerms | _RowTerms | None
            if target.ndim == 1 and ignored is None:
                # float64, as row_max is: the stubs lose that in the sum with sums' dtype
                per_row = cast(
                    NDArray[np.float64],
                    np.log(sums[:, 0]) + (row_max[:, 0] - logits[rows, target]),
                )
                terms, divisor = None, m
                value = self._reduce(per_row, divisor)
                self._probs, self._target, self._rows, self._terms = probs, target, rows, terms
                return value
            log_sums = np.log(sums, dtype=np.float64)
            if target.ndim == 1:
                # ignored is an array here: a 1-d target without one returned above
                per_row, terms, divisor = self._label_terms(
                    logits,
                    target,
                    ignored,  # type: ignore[arg-type]
                    row_max,
                )
                # l_i = s_i log(sum_i) + sum_j a_ij (max_i - z_ij), s_i = sum_j a_ij
                per_row += np.where(terms[0] != 0, terms[0] * log_sums[:, 0], 0.0)
            elif plain:
                # Classes of weight 0 are left out: their gap may be inf, and 0 * inf is NaN
                per_row = _weighted_sum(target, log_sums + (row_max - logits), 1)
                terms, divisor = None, m
            else:
                per_row, terms = self._row_terms(logits, target, log_sums + (row_max - logits))
                divisor = m
            value = self._reduce(per_row, divisor)
        self._probs, self._target, self._rows, self._terms = probs, target, rows, terms
        return value

    def _nothing_ignored(self, labels: NDArray[np.intp], logits: FloatArray) -> bool:
        """Whether no label equals ignore_index; labels outside [0, C) were checked to be
        ignored ones, so for an ignore_index outside [0, C) the check's own range test
        answers (``_in_range``, from :meth:`_check_target`)."""
        ignore_index, classes = self.ignore_index, logits.shape[1]
        if 0 <= ignore_index < classes:
            return not (labels == ignore_index).any()
        return self._in_range

    def _label_terms(
        self,
        logits: FloatArray,
        labels: NDArray[np.intp],
        ignored: NDArray[np.bool_],
        row_max: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], _LabelTerms, float]:
        """Per-row losses without their s_i log(sum_i) term, the backward terms (s, the
        smoothing row or None, the kept rows, the labels, a at the labels) and the mean's
        divisor, for class indices with weights, ignored rows or smoothing."""
        m, classes = logits.shape
        eps, weight = self.label_smoothing, self.weight
        kept = ~ignored
        labels = np.where(kept, labels, 0)  # ignored rows index class 0, with weight 0
        picked_weight = np.ones(m) if weight is None else weight[labels]
        picked_weight[ignored] = 0.0
        divisor = float(picked_weight.sum())
        picked = (1 - eps) * picked_weight
        gaps_picked = row_max[:, 0] - logits[np.arange(m), labels]
        per_row = np.where(picked != 0, picked * gaps_picked, 0.0)
        smooth = None
        total = picked.copy()
        if eps > 0:
            smooth = (eps / classes) * (np.ones(classes) if weight is None else weight)
            per_row += np.where(kept, _weighted_sum(smooth, row_max - logits, 1), 0.0)
            total += np.where(kept, smooth.sum(), 0.0)
        return per_row, (total, smooth, kept, labels, picked), divisor

    def _row_terms(
        self, logits: FloatArray, rows: FloatArray, gaps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], _RowTerms]:
        """Per-row losses and the backward terms for probability rows with weights or
        smoothing."""
        eps, classes = self.label_smoothing, logits.shape[1]
        coefficients = rows.astype(np.float64)
        if eps > 0:
            coefficients = (1 - eps) * coefficients + eps / classes
        if self.weight is not None:
            coefficients = coefficients * self.weight
        total = coefficients.sum(axis=1)
        return _weighted_sum(coefficients, gaps, 1), (total, coefficients)

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dz = (s p - a) / divisor, in pred's dtype; (softmax(z) - t) / m by default."""
        if self._probs is None or self._target is None:
            raise self._not_called()
        scale = self._upstream(grad_output)
        if isinstance(scale, np.ndarray):  # not a float: a row of the "none" reduction's
            scale = scale[:, None]
        terms, probs = self._terms, self._probs
        if terms is None:
            grad: FloatArray = probs.copy()
            if self._target.ndim == 1:
                grad[self._rows, self._target] -= 1
            else:
                grad -= self._target
            grad *= scale
            return grad
        with np.errstate(over="ignore", invalid="ignore"):
            # (s p - a) times the scale, in float64, rounded once to pred's dtype
            grad = probs * terms[0][:, None]
            if len(terms) == 2:
                grad -= terms[1]
            else:
                _, smooth, kept, labels, picked = terms
                if smooth is not None:
                    grad -= np.where(kept[:, None], smooth, 0.0)
                grad[np.arange(len(labels)), labels] -= picked
                grad = np.where(kept[:, None], grad * scale, 0.0)  # ignored rows: 0, as torch
                return in_dtype(grad, probs.dtype)
            return in_dtype(grad * scale, probs.dtype)

    def _check_target(self, logits: FloatArray, target: ArrayLike) -> NDArray[Any]:
        m, classes = logits.shape
        if not isinstance(target, np.ndarray):
            target = as_array(target, "CrossEntropy target")
        if target.ndim == 1:
            if target.shape[0] != m:
                raise ShapeError(
                    f"CrossEntropy: pred has {m} rows but target has {target.shape[0]} labels"
                )
            labels, self._in_range = _checked_labels(
                target, classes, "CrossEntropy", self.ignore_index
            )
            return labels
        if target.shape == logits.shape:
            if self.ignore_index != -100:
                raise ValueError(
                    f"CrossEntropy ignore_index={self.ignore_index} applies to class-index "
                    "targets only, not to probability rows (as in PyTorch): leave it at -100, "
                    "or give labels of shape (batch,)"
                )
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

    def extra_repr(self) -> str:
        """The options that differ from PyTorch's defaults, shown in the repr."""
        options = weights_repr("weight", self.weight).lstrip(", ")
        if self.ignore_index != -100:
            options += f", ignore_index={self.ignore_index}"
        if self.label_smoothing:
            options += f", label_smoothing={self.label_smoothing}"
        reduction = Loss.extra_repr(self)
        options += ", " + reduction if reduction else ""
        return options.lstrip(", ")


class NLLLoss(Loss):
    """Negative log-likelihood of class indices, on log-probabilities (torch.nn.NLLLoss).

    With log-probabilities x of shape (m, C) (a LogSoftmax layer's output), labels y and
    class weights w (default 1):

        l_i = -w_{y_i} x_{i, y_i},   L = sum_i l_i / sum_i w_{y_i}

    Rows whose label equals ``ignore_index`` count for nothing, in the sum and in the
    divisor; a mean whose divisor is 0 is NaN, as in PyTorch. NLLLoss after LogSoftmax is
    CrossEntropy on the logits (which is faster and exact for any logits); x is not checked
    to be a log-probability (PyTorch does not either).

    Parameters
    ----------
    weight : array of shape (C,), optional
        Class weights >= 0.
    ignore_index : int, default -100
        The label of rows to leave out.
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" returns the (m,) array of l_i (0 for ignored rows).

    Shape: pred (m, C) log-probabilities; target (m,) integers in [0, C) or
    ``ignore_index`` -> float ("none": (m,)).
    Backward: dL/dx_{i, y_i} = -w_{y_i} / sum_k w_{y_k}; every other entry is 0.

    Examples
    --------
    >>> loss = NLLLoss()
    >>> x = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> round(loss(x, np.array([0, 1])), 6)  # -(log 0.5 + log 0.75) / 2
    0.490415
    >>> loss.backward()
    array([[-0.5,  0. ],
           [ 0. , -0.5]])
    """

    weight = Checked(_class_weights, "Class weights (C,), or None.")
    ignore_index = Checked(_ignore_index, "The label of rows to leave out.")

    def __init__(
        self,
        weight: ArrayLike | None = None,
        *,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self._shape: tuple[int, ...] | None = None
        self._picked: tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]] | None = None
        self._dtype: np.dtype = np.dtype(np.float64)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = -sum_i w_{y_i} x_{i, y_i} / sum_i w_{y_i}, caching the labels and weights."""
        self._picked = None  # a failed call leaves nothing for backward
        x = as_prediction(pred, "NLLLoss")
        check_ndim(x, 2, "NLLLoss pred", hint=" (batch, classes) of log-probabilities")
        m, classes = x.shape
        _per_class(self.weight, classes, "NLLLoss")
        labels = _label_vector(target, m, classes, "NLLLoss", self.ignore_index)
        kept = labels != self.ignore_index
        labels = np.where(kept, labels, 0)
        weights = np.ones(m) if self.weight is None else self.weight[labels]
        weights[~kept] = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            picked = x[np.arange(m), labels].astype(np.float64)
            per_row = np.where(weights != 0, -weights * picked, 0.0)  # 0 weight: left out
            value = self._reduce(per_row, float(weights.sum()))
        self._shape, self._picked, self._dtype = x.shape, (labels, weights, kept), x.dtype
        return value

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dx: -w_{y_i} / divisor at (i, y_i), 0 elsewhere, in pred's dtype."""
        if self._picked is None or self._shape is None:
            raise self._not_called()
        labels, weights, kept = self._picked
        scale = self._upstream(grad_output)
        grad = np.zeros(self._shape, self._dtype)
        # ignored rows get 0; a mean over a total weight of 0 gives NaN elsewhere, as in torch
        with np.errstate(over="ignore", invalid="ignore"):
            grad[np.arange(len(labels)), labels] = np.where(kept, -weights * scale, 0.0)
        return grad

    def extra_repr(self) -> str:
        """The options that differ from PyTorch's defaults, shown in the repr."""
        options = weights_repr("weight", self.weight)
        if self.ignore_index != -100:
            options += f", ignore_index={self.ignore_index}"
        reduction = Loss.extra_repr(self)
        options += ", " + reduction if reduction else ""
        return options.lstrip(", ")


class MultiMarginLoss(Loss):
    """The multiclass hinge (SVM) loss on scores (torch.nn.MultiMarginLoss).

    With scores x of shape (m, C), labels y and class weights w (default 1), the hinge
    h_ij = max(0, margin - x_{i, y_i} + x_ij) of every wrong class j != y_i gives

        l_i = (w_{y_i} / C) sum_{j != y_i} h_ij^p,   L = (1/m) sum_i l_i

    so a row costs nothing once its class scores ``margin`` above every other. Unlike
    CrossEntropy the mean divides by m, whatever the weights (as in PyTorch).

    Parameters
    ----------
    p : {1, 2}, default 1
        1 for the hinge, 2 for the squared hinge.
    margin : float, default 1.0
        A finite number.
    weight : array of shape (C,), optional
        Class weights >= 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" returns the (m,) array of l_i.

    Shape: pred (m, C) scores; target (m,) integers in [0, C) -> float ("none": (m,)).
    Backward: dl_i/dx_ij = (w_{y_i} / C) p h_ij^(p-1) for j != y_i with h_ij > 0, and
    dl_i/dx_{i, y_i} = -sum_{j != y_i} dl_i/dx_ij; divided by m for the mean.

    Examples
    --------
    >>> loss = MultiMarginLoss()
    >>> loss(np.array([[2.0, 1.5, -1.0]]), np.array([0]))  # (0.5 + 0) / 3
    0.16666666666666666
    >>> loss.backward().round(4)
    array([[-0.3333,  0.3333,  0.    ]])
    """

    p = Checked(functools.partial(check_integer, minimum=1, maximum=2), "1 or 2.")
    margin = Checked(check_real, "The margin the right class must win by.")
    weight = Checked(_class_weights, "Class weights (C,), or None.")

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: ArrayLike | None = None,
        *,
        reduction: Reduction = "mean",
    ) -> None:
        self.p = p
        self.margin = margin
        self.weight = weight
        self.reduction = reduction
        self._slopes: NDArray[np.float64] | None = None
        self._dtype: np.dtype = np.dtype(np.float64)

    def forward(self, pred: ArrayLike, target: ArrayLike) -> float | NDArray[np.float64]:
        """L = (1/m) sum_i (w_{y_i} / C) sum_{j != y_i} h_ij^p, caching dl_i/dx."""
        self._slopes = None  # a failed call leaves nothing for backward
        x = as_prediction(pred, "MultiMarginLoss")
        check_ndim(x, 2, "MultiMarginLoss pred", hint=" (batch, classes) of scores")
        m, classes = x.shape
        _per_class(self.weight, classes, "MultiMarginLoss")
        labels = _label_vector(target, m, classes, "MultiMarginLoss")
        rows = np.arange(m)
        factor = (np.ones(m) if self.weight is None else self.weight[labels]) / classes
        # In float64, where the gap between float32 scores cannot overflow
        with np.errstate(over="ignore", invalid="ignore"):
            x64 = x.astype(np.float64, copy=False)
            hinge = self.margin - x64[rows, labels][:, None] + x64
            hinge[rows, labels] = 0.0
            np.maximum(hinge, 0.0, out=hinge)
            if self.p == 1:
                slopes = (hinge > 0).astype(np.float64)
                terms = hinge
            else:
                slopes = 2.0 * hinge
                terms = hinge * hinge
            per_row = _weighted_sum(factor[:, None], terms, 1)
            slopes = np.where(factor[:, None] != 0, slopes * factor[:, None], 0.0)
            slopes[rows, labels] = -np.add.reduce(slopes, axis=1)
            value = self._reduce(per_row, m)
        self._slopes, self._dtype = slopes, x.dtype
        return value

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        """dL/dx from the slopes forward cached, times the reduction's factor."""
        if self._slopes is None:
            raise self._not_called()
        scale = self._upstream(grad_output)
        if isinstance(scale, np.ndarray):  # not a float: a row of the "none" reduction's
            scale = scale[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            return in_dtype(self._slopes * scale, self._dtype)

    def extra_repr(self) -> str:
        """``p``, ``margin`` and the options that are set, shown in the repr."""
        options = f"p={self.p}, margin={self.margin}" + weights_repr("weight", self.weight)
        reduction = Loss.extra_repr(self)
        return options + (", " + reduction if reduction else "")


def _check_probabilities(pred: FloatArray) -> None:
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


def _label_vector(
    target: ArrayLike, m: int, classes: int, what: str, ignore_index: int | None = None
) -> NDArray[np.intp]:
    """``target`` as m class indices in [0, classes) (or ``ignore_index``)."""
    if not isinstance(target, np.ndarray):
        target = as_array(target, f"{what} target")
    if target.shape != (m,):
        hint = "; use target.ravel()" if target.shape == (m, 1) else ""
        raise ShapeError(
            f"{what}: pred has {m} rows, so target must be {m} class indices of shape ({m},), "
            f"got shape {target.shape}{hint}"
        )
    return _class_indices(target, classes, what, ignore_index)


#: itemsize -> 2^(bits-1) = the number of non-negative values of the signed integer dtype
_SIGNED_LIMIT = {size: 1 << (8 * size - 1) for size in (1, 2, 4, 8)}
#: itemsize -> the unsigned integer dtype of that size, in native byte order
_UNSIGNED = {np.dtype(t).itemsize: np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)}


def _class_indices(
    labels: NDArray[Any],
    classes: int,
    what: str = "CrossEntropy",
    ignore_index: int | None = None,
) -> NDArray[np.intp]:
    """Validate class labels (integers, or floats with integer values) in [0, classes), or
    equal to ``ignore_index``."""
    return _checked_labels(labels, classes, what, ignore_index)[0]


def _checked_labels(
    labels: NDArray[Any], classes: int, what: str, ignore_index: int | None
) -> tuple[NDArray[np.intp], bool]:
    """:func:`_class_indices`, and whether every label lies in [0, classes) (so that none
    equals an ``ignore_index`` outside that range)."""
    kind = labels.dtype.kind
    if kind == "f":
        bad = np.flatnonzero(labels != np.round(labels))  # NaN included; inf fails below
        if bad.size:
            raise ValueError(
                f"{what} class labels must be integers, got {labels[bad[0]]} at index {bad[0]}"
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
        raise TypeError(f"{what} class labels must be integers, {refused(labels)}")
    if out_of_range:
        outside = (labels < 0) | (labels >= classes)
        if ignore_index is not None:
            outside &= labels != ignore_index
        bad = np.flatnonzero(outside)
        if bad.size:
            i = bad[0]
            leave_out = "" if ignore_index is None else f" (or equal ignore_index={ignore_index})"
            raise ValueError(
                f"{what} class labels must lie in [0, {classes}) for {classes} classes, "
                f"got {labels[i]} at index {i}{leave_out}"
            )
    return labels.astype(np.intp, copy=False), not out_of_range
