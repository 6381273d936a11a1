"""Typical user code, which must type-check cleanly under mypy --strict (tests/test_typing.py).

It is checked, never run: build a model, train it with fit and callbacks, evaluate and
predict, and plug in a layer, a loss, an optimizer, a callback, a schedule and a metric of
one's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import assert_type

import minigrad as mg
from minigrad.schedules import Schedule
from minigrad.training import TrainingState
from minigrad.typing import FloatArray, Metric

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 2)).astype(np.float32)
y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)


# -- a layer of one's own ---------------------------------------------------------------------
class Scale(mg.Layer):
    """y = a * x with one learned scalar a."""

    def __init__(self) -> None:
        super().__init__()
        self.a = mg.Parameter(np.ones(1, dtype=np.float32))
        self.x: FloatArray | None = None

    def forward(self, x: FloatArray) -> FloatArray:
        self.x = x
        return self.a.value * x

    def backward(self, grad_output: FloatArray) -> FloatArray:
        assert self.x is not None
        self.a.grad[...] = np.sum(grad_output * self.x)
        return self.a.value * grad_output


# -- a loss of one's own ----------------------------------------------------------------------
class MeanAbsolute(mg.Loss):
    def forward(self, pred: ArrayLike, target: ArrayLike) -> float:
        self.diff = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
        return float(np.mean(np.abs(self.diff)))

    def backward(self, grad_output: ArrayLike | None = None) -> FloatArray:
        return np.sign(self.diff) / self.diff.size


# -- an optimizer of one's own: sign-SGD ------------------------------------------------------
class SignSGD(mg.Optimizer):
    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        value -= self.lr * np.sign(grad)


# -- a callback, a schedule and a metric of one's own -----------------------------------------
class PrintEvery(mg.Callback):
    def __init__(self, every: int) -> None:
        self.every = every

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if state.epoch % self.every == 0:
            print(state.epoch, logs["loss"])


class Halving(Schedule):
    def __init__(self, lr: float) -> None:
        self.lr = lr

    def rate(self, t: int) -> float:
        return self.lr * 0.5 ** (t // 10)


def sign_agreement(pred: NDArray[Any], target: NDArray[Any]) -> float:
    return float(np.mean((pred > 0) == (target > 0.5)))


metric: Metric = sign_agreement

# -- build, train, evaluate -------------------------------------------------------------------
model = mg.Sequential(mg.Dense(2, 16, rng=0), mg.ReLU(), mg.Dense(16, 1, rng=1), Scale())
out = model(x)
assert_type(out, FloatArray)
loss = mg.BinaryCrossEntropy(from_logits=True)
optimizer = mg.Adam(model.parameters(), lr=1e-2)
history = mg.fit(
    model,
    loss,
    optimizer,
    x,
    y,
    epochs=5,
    batch_size=32,
    validation_data=(x, y),
    metrics=["accuracy", sign_agreement],
    callbacks=[
        PrintEvery(2),
        mg.EarlyStopping(patience=3),
        mg.LearningRateScheduler(Halving(1e-2)),
    ],
    seed=0,
    progress=False,
)
assert_type(history, mg.History)
losses: list[float] = history["loss"]
results = mg.evaluate(model, loss, x, y, metrics=["accuracy"])
assert_type(results, dict[str, float])
probabilities = mg.predict(model, x, batch_size=64)
assert_type(probabilities, FloatArray)
warmup = mg.LearningRateScheduler(lambda t: 1e-3 * min(1.0, (t + 1) / 5), per="step")
per_sample = mg.MSE(reduction="none")
grads = [p.grad for p in model.parameters()]
g = loss.backward()
assert_type(g, FloatArray)
assert_type(model.backward(g), None)
x_grad = model.backward(g, input_grad=True)
assert_type(x_grad, FloatArray)
saliency = np.abs(x_grad + 1)
SignSGD(model.parameters(), lr=0.1).step()
mg.fit(model, MeanAbsolute(), mg.SGD(model.parameters(), lr=0.1), x, y, epochs=1)
assert_type(model.eval(), mg.Sequential)
first = model.eval()[0]
head = model.train()[1:].append(mg.Sigmoid())
assert_type(head, mg.Sequential)
frozen = mg.Dense(2, 2).freeze()
assert_type(frozen, mg.Dense)
assert_type(mg.Sequential([mg.Dense(2, 2), mg.ReLU()]), mg.Sequential)

# -- param groups -----------------------------------------------------------------------------
head_layer = model[2]
mg.Adam(
    [{"params": model[0].parameters()}, {"params": head_layer.parameters(), "lr": 1e-3}],
    lr=1e-2,
)
mg.AdamW(mg.optim.weight_decay_groups(model, 1e-2), lr=1e-3)
mg.SGD(mg.weight_decay_groups(model, 1e-4), lr=0.1)
mg.Momentum([{"params": model.parameters(), "momentum": 0.8}], lr=0.1, momentum=0.9)
guarded = mg.optim.SafeStep(optimizer, names=list(model.state_dict()))
state = model.state_dict()
model.load_state_dict(state)
