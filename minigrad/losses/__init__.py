"""Losses: regression (MSE, L1, Huber, smooth L1), classification (binary and softmax
cross-entropy, negative log-likelihood, multiclass hinge) and divergence (KL).

A loss is called on a batch, ``value = loss(pred, target)``, and returns the mean loss as a
Python float (``reduction="sum"``: the sum; ``"none"``: a float64 array of the per-sample
or per-element losses); ``loss.backward()`` then returns dL/dpred for that batch, with the
shape and dtype of ``pred``. The 1/N of the mean is part of that gradient, so layers never
divide by the batch size. Each loss follows the torch.nn loss of the same name or purpose,
options, defaults and reductions included.

>>> import numpy as np
>>> loss = MSE()
>>> loss(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
2.5
"""

from minigrad.losses.base import Loss
from minigrad.losses.classification import (
    BinaryCrossEntropy,
    CrossEntropy,
    MultiMarginLoss,
    NLLLoss,
)
from minigrad.losses.divergence import KLDivLoss
from minigrad.losses.regression import MSE, HuberLoss, L1Loss, SmoothL1Loss

__all__ = [
    "MSE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "Loss",
    "MultiMarginLoss",
    "NLLLoss",
    "SmoothL1Loss",
]
