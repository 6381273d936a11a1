"""minigrad: a small object-oriented deep-learning framework on NumPy.

Layers implement forward and backward by hand, a Sequential chains them, losses give the
gradient that starts backpropagation, and optimizers update parameters in place.

>>> import numpy as np
>>> import minigrad as mg
>>> model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
>>> loss = mg.BinaryCrossEntropy(from_logits=True)
>>> optimizer = mg.Adam(model.parameters(), lr=0.05)
>>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([[0], [1], [1], [0]], dtype=np.float32)
>>> for step in range(300):
...     value = loss(model(x), y)
...     model.backward(loss.backward())  # fills every .grad; returns None
...     optimizer.step()
>>> value < 0.05
True
"""

from minigrad import callbacks, data, metrics, schedules
from minigrad.callbacks import (
    Callback,
    DivergenceGuard,
    EarlyStopping,
    HistoryLogger,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from minigrad.data import DataLoader
from minigrad.errors import DistributedError, DivergenceError, ModelFileError, ShapeError
from minigrad.layers import (
    ELU,
    GELU,
    Activation,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Concat,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    Normalization,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.losses import (
    MSE,
    BinaryCrossEntropy,
    CrossEntropy,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    Loss,
    MultiMarginLoss,
    NLLLoss,
    SmoothL1Loss,
)
from minigrad.metrics import accuracy, confusion_matrix
from minigrad.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Momentum,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    clip_grad_norm,
    clip_grad_value,
    weight_decay_groups,
)
from minigrad.parameter import Buffer, Parameter
from minigrad.sequential import Sequential
from minigrad.serialization import (
    Checkpoint,
    export_onnx,
    load,
    load_checkpoint,
    load_tensors,
    register_layer,
    register_optimizer,
    save,
    save_checkpoint,
)
from minigrad.summaries import summary
from minigrad.training import History, evaluate, fit, predict

__version__ = "0.2.0"

__all__ = [
    "ELU",
    "GELU",
    "MSE",
    "SGD",
    "Activation",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BinaryCrossEntropy",
    "Buffer",
    "Callback",
    "Checkpoint",
    "Concat",
    "Conv1d",
    "Conv2d",
    "CrossEntropy",
    "DataLoader",
    "Dense",
    "DistributedError",
    "DivergenceError",
    "DivergenceGuard",
    "Dropout",
    "EarlyStopping",
    "Embedding",
    "Flatten",
    "History",
    "HistoryLogger",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LambdaCallback",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "LearningRateScheduler",
    "LogSoftmax",
    "Loss",
    "MaxPool1d",
    "MaxPool2d",
    "ModelCheckpoint",
    "ModelFileError",
    "Momentum",
    "MultiMarginLoss",
    "NAdam",
    "NLLLoss",
    "Normalization",
    "Optimizer",
    "Parameter",
    "RAdam",
    "RMSprop",
    "ReLU",
    "ReduceLROnPlateau",
    "Residual",
    "Sequential",
    "ShapeError",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "__version__",
    "accuracy",
    "callbacks",
    "clip_grad_norm",
    "clip_grad_value",
    "confusion_matrix",
    "data",
    "evaluate",
    "export_onnx",
    "fit",
    "load",
    "load_checkpoint",
    "load_tensors",
    "metrics",
    "predict",
    "register_layer",
    "register_optimizer",
    "save",
    "save_checkpoint",
    "schedules",
    "summary",
    "weight_decay_groups",
]
