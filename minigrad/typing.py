"""Type aliases and protocols for code that uses minigrad, and for minigrad's own signatures.

minigrad ships a ``py.typed`` marker and is checked with ``mypy --strict``, so these names
are what a user's type checker sees. Arrays are NumPy's ``NDArray`` with the dtype family
that matters: layers, losses and optimizers work in any floating dtype (float16, float32,
float64) and keep it end to end, so their arrays are :data:`FloatArray`; class labels and
indices are :data:`IntArray`.

The extension points are classes to subclass (:class:`~minigrad.Layer`,
:class:`~minigrad.Loss`, :class:`~minigrad.Optimizer`, :class:`~minigrad.Callback`,
:class:`~minigrad.schedules.Schedule`) and, for metrics, any function that fits the
:class:`Metric` protocol.

Examples
--------
>>> import numpy as np
>>> import minigrad as mg
>>> from minigrad.typing import FloatArray
>>> def scaled(model: mg.Layer, x: FloatArray) -> FloatArray:
...     return 2 * model(x)
>>> scaled(mg.Identity(), np.ones((1, 2), dtype=np.float32))
array([[2., 2.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["Average", "FloatArray", "IntArray", "Metric", "Mode", "Reduction"]

#: An array of any floating dtype: a layer's input, output and gradients, a parameter's value.
FloatArray: TypeAlias = NDArray[np.floating[Any]]

#: An array of integers: class labels, token indices, sample indices.
IntArray: TypeAlias = NDArray[np.integer[Any]]

#: How a loss reduces its per-sample terms (``reduction=``), as torch.nn's losses do.
Reduction: TypeAlias = Literal["mean", "sum", "none"]

#: How precision, recall and f1 combine the classes' scores (``average=``), as scikit-learn.
Average: TypeAlias = Literal["macro", "micro", "weighted", "binary"]

#: Whether a monitored number improves by going down or up (``mode=`` of callbacks); "auto"
#: reads it from the name (accuracy-like names go up).
Mode: TypeAlias = Literal["auto", "min", "max"]


class Metric(Protocol):
    """What ``fit(metrics=[...])`` and ``evaluate`` accept besides a metric's name.

    A function ``metric(pred, target) -> float`` of a batch's model outputs ``pred``
    (batch, ...) and targets ``target``; fit reports its mean over an epoch's samples.

    Examples
    --------
    >>> import numpy as np
    >>> def mean_error(pred: np.ndarray, target: np.ndarray) -> float:
    ...     return float(np.mean(pred - target))
    >>> metric: Metric = mean_error
    >>> metric(np.array([[1.0]]), np.array([[0.5]]))
    0.5
    """

    def __call__(self, pred: NDArray[Any], target: NDArray[Any], /) -> float: ...
