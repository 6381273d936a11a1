"""Metrics: accuracy and the confusion matrix, from model outputs and targets.

A metric is a function ``metric(pred, target) -> float`` over a batch or a whole data set;
``fit`` and ``evaluate`` look metrics up by name in :data:`METRICS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["METRICS", "accuracy", "confusion_matrix", "predicted_classes"]


def predicted_classes(pred: ArrayLike, threshold: float = 0.5) -> NDArray[np.integer]:
    """The class each row of ``pred`` picks.

    - (n, C) with C >= 2: the argmax of each row (logits or probabilities alike).
    - (n,) or (n, 1): one binary output per sample, class 1 where it exceeds ``threshold``:
      0.5 for probabilities (after a Sigmoid), 0.0 for logits.

    Shape: pred (n, C), (n, 1) or (n,) -> (n,) integer classes.

    Examples
    --------
    >>> predicted_classes(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]]))
    array([1, 0])
    >>> predicted_classes(np.array([[0.7], [0.2]])), predicted_classes([-0.3, 1.2], threshold=0.0)
    (array([1, 0]), array([0, 1]))
    """
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] >= 2:
        return pred.argmax(axis=1)
    if pred.ndim == 1 or (pred.ndim == 2 and pred.shape[1] == 1):
        return (pred.reshape(-1) > threshold).astype(np.int64)
    raise ValueError(f"predictions must be (n, classes), (n, 1) or (n,), got shape {pred.shape}")


def _labels(target: ArrayLike, n: int) -> NDArray[np.integer]:
    """Class labels from integer labels (n,) / (n, 1) or one-hot / probability rows (n, C)."""
    target = np.asarray(target)
    if target.ndim == 2 and target.shape[1] >= 2:
        labels = target.argmax(axis=1)
    else:
        labels = target.reshape(-1)
    if labels.shape != (n,):
        raise ValueError(f"targets of shape {target.shape} do not fit {n} predictions")
    if labels.dtype.kind in "iu":
        return labels
    if labels.dtype.kind not in "fb" or not np.all(
        np.isfinite(labels) & (labels == np.round(labels))
    ):
        raise ValueError("targets must be class labels (integers) or one-hot rows")
    return labels.astype(np.int64)


def accuracy(pred: ArrayLike, target: ArrayLike, threshold: float = 0.5) -> float:
    """The fraction of samples whose predicted class equals the target class.

    Works for multi-class outputs (n, C) against labels (n,) or one-hot rows (n, C), and for
    binary outputs (n, 1) or (n,) against 0/1 targets: probabilities are cut at
    ``threshold`` = 0.5, logits need ``threshold=0.0`` (``fit`` chooses it from the loss).

        accuracy = (1/n) sum_i [yhat_i == t_i],   yhat = predicted_classes(pred, threshold)

    Shape: pred (n, C), (n, 1) or (n,); target (n,), (n, 1) or one-hot (n, C) -> float.

    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    0.5
    >>> accuracy(np.array([[0.9], [0.2]]), np.array([[1], [0]]))
    1.0
    """
    classes = predicted_classes(pred, threshold)
    return int(np.count_nonzero(classes == _labels(target, len(classes)))) / len(classes)


def confusion_matrix(
    pred: ArrayLike, target: ArrayLike, classes: int | None = None, threshold: float = 0.5
) -> NDArray[np.int64]:
    """Counts (C, C): entry [i, j] is the number of samples of true class i predicted as j.

        M_ij = #{k : t_k = i and yhat_k = j};   trace(M) / n is the accuracy.

    ``classes`` defaults to the width of ``pred`` (2 for binary outputs), widened to fit the
    largest target label.

    Shape: pred (n, C), (n, 1) or (n,); target as for :func:`accuracy` -> (C, C) int64.

    >>> confusion_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), np.array([0, 0, 1]))
    array([[1, 1],
           [0, 1]])
    """
    predicted = predicted_classes(pred, threshold)
    true = _labels(target, len(predicted))
    if classes is None:
        pred_array = np.asarray(pred)
        width = pred_array.shape[1] if pred_array.ndim == 2 and pred_array.shape[1] >= 2 else 2
        classes = max(width, int(true.max(initial=-1)) + 1)
    if true.size and (true.min() < 0 or true.max() >= classes):
        raise ValueError(
            f"target classes must lie in [0, {classes}), got {true.min()} to {true.max()}"
        )
    if predicted.size and predicted.max() >= classes:
        raise ValueError(
            f"predictions pick class {predicted.max()}, outside the {classes} classes asked for"
        )
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


#: metric name -> function(pred, target, threshold) -> float, as ``fit(metrics=...)`` names them
METRICS: dict[str, Callable[..., float]] = {"accuracy": accuracy}
