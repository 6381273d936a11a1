"""Metrics: from model outputs and targets, for classification (accuracy, top-k accuracy,
precision, recall, F1, the confusion matrix) and regression (MAE, MSE, R^2).

A metric is a function ``metric(pred, target) -> float`` over a batch or a whole data set;
``fit`` and ``evaluate`` look metrics up by name in :data:`METRICS`. Classification metrics
take what :func:`accuracy` takes: logits or probabilities (n, C), or one binary output per
sample (n, 1) or (n,), against labels or one-hot rows; regression metrics take predictions
and targets with the same number of values per sample.

In ``fit``'s training logs a metric is the mean of its values on the epoch's batches,
weighted by their sizes; that is its value on the whole epoch for the means (accuracy,
top-k accuracy, MAE, MSE) but not for R^2, precision, recall and F1, which validation and
``evaluate`` compute on all outputs at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_allocation, check_integer, check_real, shown
from minigrad.layers._checks import REAL_KINDS, as_array, refused
from minigrad.typing import Average, IntArray

__all__ = [
    "METRICS",
    "accuracy",
    "confusion_matrix",
    "f1",
    "mae",
    "mse",
    "precision",
    "predicted_classes",
    "r2",
    "recall",
    "top_k_accuracy",
]


def predicted_classes(pred: ArrayLike, threshold: float = 0.5) -> IntArray:
    """The class each row of ``pred`` picks.

    - (n, C) with C >= 2: the argmax of each row (logits or probabilities alike).
    - (n,) or (n, 1): one binary output per sample, class 1 where it exceeds ``threshold``:
      0.5 for probabilities (after a Sigmoid), 0.0 for logits.

    A NaN prediction picks no class: it raises a ValueError naming the first such row (a
    diverged model, or NaN in its input), where NumPy's argmax would say class 0.

    Shape: pred (n, C), (n, 1) or (n,) -> (n,) integer classes.

    Examples
    --------
    >>> predicted_classes(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]]))
    array([1, 0])
    >>> predicted_classes(np.array([[0.7], [0.2]])), predicted_classes([-0.3, 1.2], threshold=0.0)
    (array([1, 0]), array([0, 1]))
    >>> predicted_classes(np.array([[0.7], [np.nan]]))
    Traceback (most recent call last):
        ...
    ValueError: predictions hold NaN in row 1: the model diverged or its input holds NaN
    """
    threshold = check_real("threshold", threshold, finite=False)
    pred = as_array(pred, "predictions")
    if pred.dtype.kind not in REAL_KINDS:
        raise TypeError(f"predictions must be real numbers, {refused(pred)}")
    if pred.ndim == 2 and pred.shape[1] >= 2:
        multiclass = True
    elif pred.ndim == 1 or (pred.ndim == 2 and pred.shape[1] == 1):
        multiclass, pred = False, pred.reshape(-1)
    else:
        raise ValueError(
            f"predictions must be (n, classes), (n, 1) or (n,), got shape {pred.shape}"
        )
    if pred.dtype.kind == "f":
        nan = np.isnan(pred)
        if nan.any():
            row = int(np.argmax(nan.any(axis=1) if multiclass else nan))
            raise ValueError(
                f"predictions hold NaN in row {row}: the model diverged or its input holds NaN"
            )
    if multiclass:
        classes: IntArray = pred.argmax(axis=1)  # NumPy's stubs type argmax(axis=...) as Any
        return classes
    return (pred > threshold).astype(np.int64)


def _width(pred: NDArray[Any]) -> int:
    """The number of classes ``pred`` chooses between: its width, or 2 for binary outputs."""
    return pred.shape[1] if pred.ndim == 2 and pred.shape[1] >= 2 else 2


def _labels(target: ArrayLike, n: int, classes: int, width: int) -> IntArray:
    """Class labels in [0, classes) from integer labels (n,) / (n, 1) or one-hot /
    probability rows (n, width), for predictions that choose between ``width`` classes."""
    target = as_array(target, "targets")
    if target.dtype.kind not in REAL_KINDS:
        raise TypeError(
            f"targets must be class labels (integers) or one-hot rows, {refused(target)}"
        )
    if target.ndim == 2 and target.shape[1] >= 2:
        if target.shape[1] != width:
            raise ValueError(
                f"one-hot targets have {target.shape[1]} columns, but the predictions choose "
                f"between {width} classes"
            )
        _check_rows(target)
        labels: NDArray[Any] = target.argmax(axis=1)  # typed Any in NumPy's stubs
    else:
        labels = target.reshape(-1)
    if labels.shape != (n,):
        raise ValueError(f"targets of shape {target.shape} do not fit {n} predictions")
    if labels.dtype.kind in "fb":
        bad = np.flatnonzero(~(np.isfinite(labels) & (labels == np.round(labels))))
        if bad.size:
            raise ValueError(
                f"targets must be class labels (integers) or one-hot rows, got "
                f"{labels[bad[0]]} at index {bad[0]}"
            )
    if n and (labels.min() < 0 or labels.max() >= classes):
        i = int(np.flatnonzero((labels < 0) | (labels >= classes))[0])
        raise ValueError(
            f"target classes must lie in [0, {classes}) for {classes} classes, got "
            f"{labels[i]} at index {i}"
        )
    return labels.astype(np.int64, copy=False)


def _check_rows(target: NDArray[Any]) -> None:
    """ValueError naming the first row of ``target`` that picks no class: one holding NaN,
    infinity or a negative value, or only zeros.

    argmax would make any row a class: such a row would count as class 0 and silently
    change the score. Rows need not sum to 1 (unnormalised soft labels pick their largest).
    """
    rows = target.astype(np.float64, copy=False)
    valid = ((rows >= 0) & (rows < np.inf)).all(axis=1) & (rows > 0).any(axis=1)
    if not valid.all():
        row = int(np.argmin(valid))
        raise ValueError(
            "one-hot or probability targets must be rows of finite values >= 0, not all "
            f"zero; row {row} is {shown(target[row])}"
        )


def accuracy(pred: ArrayLike, target: ArrayLike, threshold: float = 0.5) -> float:
    """The fraction of samples whose predicted class equals the target class.

    Works for multi-class outputs (n, C) against labels (n,) or one-hot rows (n, C), and for
    binary outputs (n, 1) or (n,) against 0/1 targets: probabilities are cut at
    ``threshold`` = 0.5, logits need ``threshold=0.0`` (``fit`` chooses it from the loss).

        accuracy = (1/n) sum_i [yhat_i == t_i],   yhat = predicted_classes(pred, threshold)

    Raises ValueError for no samples (the accuracy of nothing is undefined), for a NaN
    prediction (naming its row), for a target outside the C classes the predictions
    choose between (naming its index) and for a one-hot or probability row that picks no
    class (holding NaN, infinity or a negative value, or all zeros, which argmax would
    count as class 0; naming the row); TypeError for targets or predictions that are not
    real numbers.

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float.

    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    0.5
    >>> accuracy(np.array([[0.9], [0.2]]), np.array([[1], [0]]))
    1.0
    """
    classes, labels, _ = _classified(pred, target, threshold, "accuracy")
    return int(np.count_nonzero(classes == labels)) / len(classes)


def _classified(
    pred: ArrayLike, target: ArrayLike, threshold: float, what: str
) -> tuple[IntArray, IntArray, int]:
    """The predicted classes, the target classes and the number of classes C, checked as
    :func:`accuracy` checks them; ValueError naming ``what`` for no samples."""
    classes = predicted_classes(pred, threshold)
    if len(classes) == 0:
        raise ValueError(f"{what} needs at least one prediction, got none")
    width = _width(np.asarray(pred))
    return classes, _labels(target, len(classes), width, width), width


def confusion_matrix(
    pred: ArrayLike, target: ArrayLike, classes: int | None = None, threshold: float = 0.5
) -> NDArray[np.int64]:
    """Counts (C, C): entry [i, j] is the number of samples of true class i predicted as j.

        M_ij = #{k : t_k = i and yhat_k = j};   trace(M) / n is the accuracy.

    ``classes`` defaults to the width of ``pred`` (2 for binary outputs); every target must
    lie in [0, classes), which is checked before the matrix is allocated (so a stray label
    of 10^6 is an error naming it, not a request for terabytes). Pass a larger ``classes``
    to count classes the predictions never pick; one whose C x C matrix would not fit in
    memory is a MemoryError naming it and the size, raised before allocating.

    Shape: pred (n, C), (n, 1) or (n,); target as for :func:`accuracy` -> (C, C) int64.

    >>> confusion_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), np.array([0, 0, 1]))
    array([[1, 1],
           [0, 1]])
    """
    predicted = predicted_classes(pred, threshold)
    width = _width(np.asarray(pred))
    if classes is None:
        classes = width
    classes = check_integer("confusion_matrix classes", classes, minimum=1)
    true = _labels(target, len(predicted), classes, width)
    if predicted.size and predicted.max() >= classes:
        raise ValueError(
            f"predictions pick class {predicted.max()}, outside the {classes} classes asked for"
        )
    check_allocation(
        f"confusion_matrix(classes={classes}) is too large: the matrix",
        (classes, classes),
        np.int64,
    )
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


def top_k_accuracy(pred: ArrayLike, target: ArrayLike, k: int = 5, threshold: float = 0.5) -> float:
    """The fraction of samples whose target class is among the ``k`` classes scored highest.

        top_k = (1/n) sum_i [#{j : s_ij > s_it} + #{j < t : s_ij = s_it} < k],  t = t_i

    Ties are broken toward the lower class index, as argmax breaks them, so ``k=1`` is
    :func:`accuracy` exactly (scikit-learn's top_k_accuracy_score breaks them the other
    way). With k >= C every sample counts (the score is 1.0); a binary output (n, 1) or
    (n,) has two classes, so k = 1 is the accuracy at ``threshold`` and k >= 2 is 1.0. Inputs
    are checked as :func:`accuracy` checks them. For another k in ``fit``, pass a function:
    ``def top_3(pred, target): return top_k_accuracy(pred, target, k=3)``.

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float.

    Examples
    --------
    >>> scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    >>> labels = np.array([1, 0, 1])  # 2nd, 3rd, and 3rd (class 0 wins the tie)
    >>> top_k_accuracy(scores, labels, k=1), top_k_accuracy(scores, labels, k=2)
    (0.0, 0.3333333333333333)
    """
    k = check_integer("top_k_accuracy k", k, minimum=1)
    classes, labels, width = _classified(pred, target, threshold, "top_k_accuracy")
    n = len(classes)
    if k >= width:
        return 1.0
    if k == 1:
        return int(np.count_nonzero(classes == labels)) / n
    scores = np.asarray(pred)
    mine = scores[np.arange(n), labels][:, None]
    ahead = np.count_nonzero(scores > mine, axis=1)
    ahead += np.count_nonzero((scores == mine) & (np.arange(width) < labels[:, None]), axis=1)
    return int(np.count_nonzero(ahead < k)) / n


_AVERAGES = ("macro", "micro", "weighted", "binary", None)


def _per_class(
    pred: ArrayLike, target: ArrayLike, average: Average | None, threshold: float, what: str
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """True positives, false positives, false negatives (C,) and, for the averages, the
    classes that count: those occurring in the targets or the predictions."""
    if not (average is None or (isinstance(average, str) and average in _AVERAGES)):
        raise ValueError(
            f"{what} average must be 'macro', 'micro', 'weighted', 'binary' or None, got "
            f"{shown(average)}"
        )
    classes, labels, width = _classified(pred, target, threshold, what)
    if average == "binary" and width != 2:
        raise ValueError(
            f"{what} average='binary' scores class 1 of two classes, but the predictions "
            f"choose between {width}; use 'macro', 'micro' or 'weighted'"
        )
    hits = np.bincount(labels[classes == labels], minlength=width)
    predicted = np.bincount(classes, minlength=width)
    support = np.bincount(labels, minlength=width)
    return hits, predicted - hits, support - hits, support


def _ratio(top: NDArray[Any], bottom: NDArray[Any]) -> NDArray[np.float64]:
    """top / bottom, and 0.0 where bottom is 0 (scikit-learn's zero_division default)."""
    out = np.zeros(top.shape, dtype=np.float64)
    np.divide(top, bottom, out=out, where=bottom != 0)
    return out


def _averaged(
    score: Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[np.float64]],
    counts: tuple[NDArray[np.int64], ...],
    average: Average | None,
) -> float | NDArray[np.float64]:
    """``score(tp, fp, fn)`` per class, or its average."""
    tp, fp, fn, support = counts
    if average == "micro":
        return float(score(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0])
    per_class = score(tp, fp, fn)
    if average is None:
        return per_class
    if average == "binary":
        return float(per_class[1])
    if average == "weighted":
        return float(np.average(per_class, weights=support))
    return float(per_class[(tp + fp + fn) > 0].mean())


@overload
def precision(
    pred: ArrayLike, target: ArrayLike, average: Average = "macro", threshold: float = 0.5
) -> float: ...


@overload
def precision(
    pred: ArrayLike, target: ArrayLike, average: None, threshold: float = 0.5
) -> NDArray[np.float64]: ...


def precision(
    pred: ArrayLike, target: ArrayLike, average: Average | None = "macro", threshold: float = 0.5
) -> float | NDArray[np.float64]:
    """The fraction of the samples predicted as a class that are of that class.

        precision_c = tp_c / (tp_c + fp_c)

    per class c (tp_c: samples of class c predicted c; fp_c: others predicted c), and 0.0
    for a class never predicted (scikit-learn's default, zero_division="warn", gives 0.0
    too, with a warning; this gives none). ``average``:

    - "macro" (default): the mean over the classes that occur in the targets or the
      predictions (scikit-learn's, with labels=None);
    - "micro": from the counts summed over classes; for one label per sample it is the
      accuracy;
    - "weighted": the mean weighted by each class's number of targets;
    - "binary": class 1's, for two classes (``fit`` uses it after BinaryCrossEntropy);
    - None: an array (C,) with every class's.

    Inputs and ``threshold`` are as for :func:`accuracy`.

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float, or
    (C,) with ``average=None``.

    Examples
    --------
    >>> pred = np.array([0, 1, 1, 1, 0, 2])  # the predicted classes, as one-hot rows below
    >>> target = np.array([0, 1, 2, 1, 1, 2])
    >>> precision(np.eye(3)[pred], target, average=None)
    array([0.5       , 0.66666667, 1.        ])
    >>> precision(np.eye(3)[pred], target), precision(np.eye(3)[pred], target, average="micro")
    (0.7222222222222222, 0.6666666666666666)
    """
    counts = _per_class(pred, target, average, threshold, "precision")
    return _averaged(lambda tp, fp, fn: _ratio(tp, tp + fp), counts, average)


@overload
def recall(
    pred: ArrayLike, target: ArrayLike, average: Average = "macro", threshold: float = 0.5
) -> float: ...


@overload
def recall(
    pred: ArrayLike, target: ArrayLike, average: None, threshold: float = 0.5
) -> NDArray[np.float64]: ...


def recall(
    pred: ArrayLike, target: ArrayLike, average: Average | None = "macro", threshold: float = 0.5
) -> float | NDArray[np.float64]:
    """The fraction of the samples of a class that are predicted as that class.

        recall_c = tp_c / (tp_c + fn_c)

    per class c (fn_c: samples of class c predicted otherwise), 0.0 for a class with no
    targets; averaged as :func:`precision` says ("weighted" recall is the accuracy).

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float, or
    (C,) with ``average=None``.

    Examples
    --------
    >>> pred = np.array([[0.8], [0.3], [0.6], [0.9]])  # probabilities of class 1
    >>> target = np.array([1, 1, 0, 1])
    >>> recall(pred, target, average="binary"), recall(pred, target, average=None)
    (0.6666666666666666, array([0.        , 0.66666667]))
    """
    counts = _per_class(pred, target, average, threshold, "recall")
    return _averaged(lambda tp, fp, fn: _ratio(tp, tp + fn), counts, average)


@overload
def f1(
    pred: ArrayLike, target: ArrayLike, average: Average = "macro", threshold: float = 0.5
) -> float: ...


@overload
def f1(
    pred: ArrayLike, target: ArrayLike, average: None, threshold: float = 0.5
) -> NDArray[np.float64]: ...


def f1(
    pred: ArrayLike, target: ArrayLike, average: Average | None = "macro", threshold: float = 0.5
) -> float | NDArray[np.float64]:
    """The harmonic mean of precision and recall:

        F1_c = 2 tp_c / (2 tp_c + fp_c + fn_c) = 2 P_c R_c / (P_c + R_c)

    per class c, 0.0 where tp_c + fp_c + fn_c = 0; averaged as :func:`precision` says (the
    "macro" F1 is the mean of the per-class F1s, not the F1 of the mean precision and
    recall; "micro" F1 is the accuracy for one label per sample).

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float, or
    (C,) with ``average=None``.

    Examples
    --------
    >>> logits = np.array([[2.0, 0.1], [0.3, 1.0], [1.5, -1.0], [0.0, 0.4]])
    >>> f1(logits, np.array([0, 1, 1, 1]), average=None)
    array([0.66666667, 0.8       ])
    """
    counts = _per_class(pred, target, average, threshold, "f1")
    return _averaged(lambda tp, fp, fn: _ratio(2 * tp, 2 * tp + fp + fn), counts, average)


def _regression(
    pred: ArrayLike, target: ArrayLike, what: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``pred`` and ``target`` as float64 arrays (n, outputs), checked: real numbers, finite,
    at least one sample, and the same number of values per sample."""
    arrays = []
    for name, x in (("predictions", pred), ("targets", target)):
        array = as_array(x, name)
        if array.dtype.kind not in REAL_KINDS:
            raise TypeError(f"{what}: {name} must be real numbers, {refused(array)}")
        if array.ndim == 0:
            raise ValueError(f"{what}: {name} must be an array of samples, got a scalar")
        arrays.append(array)
    p, t = arrays
    n = len(p)
    if n == 0:
        raise ValueError(f"{what} needs at least one prediction, got none")
    if len(t) != n or p.size != t.size or p.size == 0:
        raise ValueError(
            f"{what}: predictions of shape {p.shape} and targets of shape {t.shape} must hold "
            "the same number of values per sample"
        )
    p = p.reshape(n, -1).astype(np.float64, copy=False)
    t = t.reshape(n, -1).astype(np.float64, copy=False)
    for name, array in (("predictions", p), ("targets", t)):
        finite = np.isfinite(array)
        if not finite.all():
            row = int(np.argmin(finite.all(axis=1)))
            raise ValueError(f"{what}: {name} hold NaN or infinite values in row {row}")
    return p, t


def mae(pred: ArrayLike, target: ArrayLike) -> float:
    """The mean absolute error, (1/(n m)) sum_ij |pred_ij - target_ij|.

    Predictions and targets must hold the same number m of values per sample ((n,) and
    (n, 1) both hold one); m outputs are averaged uniformly, as scikit-learn's
    mean_absolute_error does. NaN or infinite values are a ValueError naming the row.

    Shape: pred (n, ...), target (n, ...) of the same size -> float.

    Examples
    --------
    >>> mae(np.array([[1.0], [2.0], [4.0]]), np.array([1.5, 2.0, 3.0]))
    0.5
    """
    p, t = _regression(pred, target, "mae")
    return float(np.mean(np.mean(np.abs(p - t), axis=0)))


def mse(pred: ArrayLike, target: ArrayLike) -> float:
    """The mean squared error, (1/(n m)) sum_ij (pred_ij - target_ij)^2: what the ``MSE``
    loss computes, as a metric (scikit-learn's mean_squared_error). Inputs as for
    :func:`mae`.

    Shape: pred (n, ...), target (n, ...) of the same size -> float.

    Examples
    --------
    >>> mse(np.array([[1.0], [2.0], [4.0]]), np.array([1.5, 2.0, 3.0]))
    0.4166666666666667
    """
    p, t = _regression(pred, target, "mse")
    return float(np.mean(np.mean((p - t) ** 2, axis=0)))


def r2(pred: ArrayLike, target: ArrayLike) -> float:
    """The coefficient of determination, 1 - SS_res / SS_tot, averaged over outputs:

        R^2_j = 1 - sum_i (t_ij - p_ij)^2 / sum_i (t_ij - mean_i t_ij)^2

    1 for perfect predictions, 0 for predicting the mean, negative for worse. As
    scikit-learn's r2_score: an output whose targets are all equal scores 1.0 if predicted
    exactly and 0.0 otherwise, and fewer than two samples give NaN (R^2 is not defined
    there; so in ``fit``'s training logs, which average the batches' values, a last batch
    of one sample makes the epoch's R^2 NaN: watch ``val_r2``). Inputs as for :func:`mae`.

    Shape: pred (n, ...), target (n, ...) of the same size -> float.

    Examples
    --------
    >>> r2(np.array([2.5, 0.0, 2.0, 8.0]), np.array([3.0, -0.5, 2.0, 7.0]))
    0.9486081370449679
    """
    p, t = _regression(pred, target, "r2")
    if len(p) < 2:
        return float("nan")
    residual = ((t - p) ** 2).sum(axis=0)
    total = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    scores = np.where(residual == 0, 1.0, 0.0)
    defined = total != 0
    scores[defined] = 1 - residual[defined] / total[defined]
    return float(np.mean(scores))


#: metric name -> function(pred, target, **options) -> float, as ``fit(metrics=...)`` names
#: them; fit passes ``threshold`` (0.0 after BinaryCrossEntropy(from_logits=True), else 0.5)
#: to those that take one, and ``average="binary"`` after BinaryCrossEntropy
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "top_k_accuracy": top_k_accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "mae": mae,
    "mse": mse,
    "r2": r2,
}
