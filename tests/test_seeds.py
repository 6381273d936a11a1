"""The systems minigrad grew out of: the lesson's 2-layer network and the slides' XOR net."""

from __future__ import annotations

import numpy as np
import pytest

from minigrad import SGD, Adam, BinaryCrossEntropy, Dense, Momentum, Sequential, Sigmoid, Tanh

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def two_layer_network(n_x, n_h, seed, dtype=np.float64):
    """The lesson's network: tanh hidden layer, sigmoid output."""
    return Sequential(
        Dense(n_x, n_h, rng=seed, dtype=dtype),
        Tanh(),
        Dense(n_h, 1, rng=seed + 1, dtype=dtype),
        Sigmoid(),
    )


@pytest.mark.parametrize(("n_x", "n_h", "m"), [(2, 3, 4), (5, 4, 1), (3, 7, 16)])
def test_gradients_equal_the_lessons_six_equations(n_x, n_h, m):
    rng = np.random.default_rng(n_x * 100 + m)
    model = two_layer_network(n_x, n_h, seed=m)
    model[0].bias.value[:] = rng.normal(size=n_h)
    model[2].bias.value[:] = rng.normal(size=1)
    x = rng.normal(size=(m, n_x))
    y = rng.integers(0, 2, size=(m, 1)).astype(np.float64)

    loss = BinaryCrossEntropy()
    loss(model(x), y)
    model.backward(loss.backward())

    # The lesson, column layout: X is (n_x, m), W^[l] is (n^[l], n^[l-1]), b^[l] is (n^[l], 1).
    X, Y = x.T, y.T
    W1, b1 = model[0].weight.value, model[0].bias.value[:, None]
    W2, b2 = model[2].weight.value, model[2].bias.value[:, None]
    A1 = np.tanh(W1 @ X + b1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dW2 = dZ2 @ A1.T / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = (W2.T @ dZ2) * (1 - A1**2)
    dW1 = dZ1 @ X.T / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m

    np.testing.assert_allclose(model(x), A2.T, rtol=1e-12)
    np.testing.assert_allclose(model[0].weight.grad, dW1, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model[0].bias.grad, db1[:, 0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model[2].weight.grad, dW2, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model[2].bias.grad, db2[:, 0], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("make_optimizer", "steps"),
    [
        (lambda params: SGD(params, lr=2.0), 2000),
        (lambda params: Momentum(params, lr=0.2, momentum=0.9), 1000),
        (lambda params: Adam(params, lr=0.05), 1000),
    ],
    ids=["sgd", "momentum", "adam"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_slides_xor_network_learns(make_optimizer, steps, seed):
    model = two_layer_network(2, 4, seed=seed, dtype=np.float32)
    loss = BinaryCrossEntropy()
    optimizer = make_optimizer(model.parameters())
    first = loss(model(XOR_X), XOR_Y)
    for _ in range(steps):
        value = loss(model(XOR_X), XOR_Y)
        model.backward(loss.backward())
        optimizer.step()
    assert value < 0.05 < first
    np.testing.assert_array_equal(model(XOR_X) > 0.5, XOR_Y > 0.5)
    assert model[0].weight.dtype == np.float32
