"""Typical mistakes, each of which mypy --strict must flag on its line (tests/test_typing.py
reads the expected error code from the comment at the end of the line). Checked, never run."""

from __future__ import annotations

import numpy as np

import minigrad as mg

x = np.zeros((8, 2), dtype=np.float32)
y = np.zeros((8, 1), dtype=np.float32)
model = mg.Sequential(mg.Dense(2, 1))
optimizer = mg.SGD(model.parameters(), lr=0.1)

mg.fit(model, mg.MSE, optimizer, x, y, epochs=1)  # error: arg-type
mg.fit(model, mg.MSE(), optimizer, x, y, epochs="10")  # error: arg-type
mg.fit(model, mg.MSE(), mg.SGD, x, y, epochs=1)  # error: arg-type
mg.fit(model, mg.MSE(), optimizer, x, y, 10)  # error: call-arg
mg.fit(model, mg.MSE(), optimizer, x, y, epochs=1, callbacks=[mg.EarlyStopping])  # error: list-item
mg.fit(model, mg.MSE(), optimizer, x, y, epochs=1, metrics=[len])  # error: list-item
mg.fit(model, mg.MSE(), optimizer, x, y, epochs=1, batch_size=None)  # error: arg-type
mg.Dense("2", 1)  # error: arg-type
mg.Adam(model.parameters(), lr="0.01")  # error: arg-type
accuracy: int = mg.accuracy(x, y)  # error: assignment
mg.save("model.safetensors", model)  # error: arg-type


class Doubler(mg.Layer):
    def forward(self, x: int) -> int:  # error: override
        return 2 * x


mg.CrossEntropy(reduction="avg")  # error: arg-type
mg.LearningRateScheduler(lambda t: 0.1 / (1 + t), per="batch")  # error: arg-type
mg.metrics.f1(x, y, average="samples")  # error: call-overload
mg.Sequential(mg.Dense(2, 2), [mg.ReLU(), mg.Dense(2, 1)])  # error: call-overload
mg.optim.SafeStep(optimizer, names="w")  # error: arg-type
input_shape = model.backward(y).shape  # error: attr-defined
mg.SGD(model, lr=0.1)  # error: arg-type
