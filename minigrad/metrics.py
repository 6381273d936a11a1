"""Metrics: accuracy and the confusion matrix, from model outputs and targets.

A metric is a function ``metric(pred, target) -> float`` over a batch or a whole data set;
``fit`` and ``evaluate`` look metrics up by name in :data:`METRICS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_allocation, check_integer, check_real
from minigrad.layers._checks import REAL_KINDS, as_array, refused, shown

__all__ = ["METRICS", "accuracy", "confusion_matrix", "predicted_classes"]


def predicted_classes(pred: ArrayLike, threshold: float = 0.5) -> NDArray[np.integer]:
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
        return pred.argmax(axis=1)
    return (pred > threshold).astype(np.int64)


def _width(pred: NDArray) -> int:
    """The number of classes ``pred`` chooses between: its width, or 2 for binary outputs."""
    return pred.shape[1] if pred.ndim == 2 and pred.shape[1] >= 2 else 2


def _labels(target: ArrayLike, n: int, classes: int, width: int) -> NDArray[np.integer]:
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
        labels = target.argmax(axis=1)
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


def _check_rows(target: NDArray) -> None:
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
    classes = predicted_classes(pred, threshold)
    n = len(classes)
    if n == 0:
        raise ValueError("accuracy needs at least one prediction, got none")
    width = _width(np.asarray(pred))
    labels = _labels(target, n, width, width)
    return int(np.count_nonzero(classes == labels)) / n


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


#: metric name -> function(pred, target, threshold) -> float, as ``fit(metrics=...)`` names them
METRICS: dict[str, Callable[..., float]] = {"accuracy": accuracy}
