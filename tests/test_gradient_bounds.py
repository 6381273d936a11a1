"""GradientBounds: the bounds really bound every gradient (a hypothesis property over models,
data and losses), and models it does not know are reported as unsupported."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradient_bounds import GradientBounds, parameter_norms
from minigrad.optim.safe_step import norm

ACTIVATIONS = [
    mg.ReLU,
    mg.Tanh,
    mg.Sigmoid,
    lambda: mg.LeakyReLU(0.2),
    lambda: mg.LeakyReLU(-3.0),
    lambda: mg.Softmax(),
]


@st.composite
def problems(draw):
    """A random MLP (maybe with a Normalization first), a batch, and a loss."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    rows = draw(st.integers(1, 7))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 1e3]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    layers = []
    if draw(st.booleans()):
        mean = rng.standard_normal(widths[0])
        layers.append(
            mg.Normalization(
                widths[0], mean=mean, std=rng.uniform(0.1, 3.0, widths[0]), dtype=dtype
            )
        )
    for index, (n_in, n_out) in enumerate(pairwise(widths)):
        dense = mg.Dense(n_in, n_out, bias=draw(st.booleans()), rng=index, dtype=dtype)
        dense.weight.value[...] = rng.standard_normal(dense.weight.shape) * scale
        if dense.bias is not None:
            dense.bias.value[...] = rng.standard_normal(dense.bias.shape) * scale
        layers.append(dense)
        if draw(st.booleans()):
            layers.append(draw(st.sampled_from(ACTIVATIONS))())
    model = mg.Sequential(*layers)
    x = (rng.standard_normal((rows, widths[0])) * draw(st.sampled_from([0.1, 1.0, 100.0]))).astype(
        dtype
    )
    out = widths[-1]
    kind = draw(st.sampled_from(["ce", "mse", "bce-logits", "bce"]))
    if kind == "ce":
        loss, y = mg.CrossEntropy(), rng.integers(0, out, rows)
    elif kind == "mse":
        loss, y = mg.MSE(), rng.standard_normal((rows, out))
    else:
        loss, y = (
            mg.BinaryCrossEntropy(from_logits=kind == "bce-logits"),
            rng.integers(0, 2, (rows, out)).astype(dtype),
        )
        if kind == "bce":
            model.append(mg.Sigmoid())
    return model, x, y, loss


@settings(max_examples=300, deadline=None)
@given(problems())
def test_every_gradient_is_within_its_bound(problem):
    model, x, y, loss = problem
    with np.errstate(all="ignore"):
        value = loss(model(x), y)
        model.backward(loss.backward())
    bounds = GradientBounds(model, loss, float(np.linalg.norm(x, axis=1).max()), x.shape[1])
    assert bounds.supported
    limits = bounds(parameter_norms(model.parameters()), len(x), value, model(x).size)
    for key, param in model.named_parameters():
        measured = float(np.linalg.norm(param.grad.astype(np.float64)))
        assert measured <= limits[id(param)], key


def test_models_and_losses_it_does_not_know_are_unsupported():
    class Square(mg.Layer):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, grad_output):
            return 2 * self.x * grad_output

    class Scaled(mg.CrossEntropy):  # a subclass may change the gradient
        pass

    known = mg.Sequential(mg.Dense(2, 2), mg.Sequential(mg.ReLU(), mg.Dense(2, 1)))
    assert GradientBounds(known, mg.MSE(), 1.0, 2).supported
    assert not GradientBounds(mg.Sequential(mg.Dense(2, 2), Square()), mg.MSE(), 1.0, 2).supported
    assert not GradientBounds(known, Scaled(), 1.0, 2).supported
    assert GradientBounds(known, Scaled(), 1.0, 2)({}, 3, 0.5) is None


def test_the_bounds_of_a_trained_mnist_sized_model_are_far_below_overflow():
    rng = np.random.default_rng(0)
    model = mg.Sequential(
        mg.Dense(784, 256, init="he_normal", rng=0),
        mg.ReLU(),
        mg.Dense(256, 128, init="he_normal", rng=1),
        mg.ReLU(),
        mg.Dense(128, 10, rng=2),
    )
    x = rng.uniform(0, 1, (128, 784)).astype(np.float32)
    bounds = GradientBounds(model, mg.CrossEntropy(), float(np.linalg.norm(x, axis=1).max()), 784)
    limits = bounds(parameter_norms(model.parameters()), 128, 2.3)
    assert max(limits.values()) < 1e9  # float32's limit here is 3.4e38 / 16


@pytest.mark.parametrize("rows", [1, 5])
def test_norm_and_parameter_norms(rows):
    p = mg.Parameter(np.full((rows, 4), 0.5, np.float32))
    assert parameter_norms([p]) == {id(p): norm(p.value)} == {id(p): 0.5 * np.sqrt(4 * rows)}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_binary_cross_entropy_on_clipped_probabilities_is_bounded_in_every_dtype(dtype):
    """p clipped to eps of its dtype: the gradient reaches 1 / (eps N); the bound uses the
    smallest eps (float64's), so it holds whatever the model's dtype."""
    model = mg.Sequential(mg.Dense(1, 1, bias=False, rng=0, dtype=dtype))
    model[0].weight.value[...] = 0.0  # p = 0 is clipped to eps
    x, y = np.ones((1, 1), dtype), np.ones((1, 1), dtype)
    loss = mg.BinaryCrossEntropy()
    value = loss(model(x), y)
    model.backward(loss.backward())
    bounds = GradientBounds(model, loss, 1.0, 1)
    limit = bounds(parameter_norms(model.parameters()), 1, value)[id(model[0].weight)]
    assert float(np.abs(model[0].weight.grad.astype(np.float64)).max()) <= limit


def test_fit_with_saturated_probabilities_keeps_the_weights_finite():
    """A prediction of 0 is clipped to float32's eps, so with an input of 1e31 the weight's
    gradient is 1e31 / eps = 8e37: the step of lr 10 would overflow, and is refused."""
    model = mg.Sequential(mg.Dense(1, 1, bias=False, rng=0))
    model[0].weight.value[...] = 0.0
    with pytest.raises(mg.DivergenceError):
        mg.fit(
            model,
            mg.BinaryCrossEntropy(),
            mg.SGD(model.parameters(), lr=10.0),
            np.array([[1e31]], np.float32),
            np.array([[1.0]], np.float32),
            epochs=2,
            progress=False,
        )
    assert np.isfinite(model[0].weight.value).all()


def test_bad_arguments_are_named():
    model = mg.Sequential(mg.Dense(2, 1))
    with pytest.raises(TypeError, match="loss must be a Loss instance, got the class MSE"):
        GradientBounds(model, mg.MSE, 1.0, 2)
    with pytest.raises(TypeError, match="row_norm must be a real number"):
        GradientBounds(model, mg.MSE(), "5", 2)
    with pytest.raises(ValueError, match="row_norm must be a finite number >= 0"):
        GradientBounds(model, mg.MSE(), np.nan, 2)
    with pytest.raises(TypeError, match="input_width must be an integer"):
        GradientBounds(model, mg.MSE(), 1.0, 2.7)
    bounds = GradientBounds(model, mg.MSE(), 1.0, 2)
    with pytest.raises(ValueError, match="at least one row"):
        bounds(parameter_norms(model.parameters()), 0, 1.0)
    stranger = mg.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="not one of the model's"):
        bounds.for_step([stranger], 2, 1.0)(parameter_norms(model.parameters()))


@pytest.mark.parametrize(
    ("loss", "target"),
    [
        (mg.CrossEntropy(reduction="sum"), np.array([0, 1, 2, 1])),
        (mg.CrossEntropy(weight=np.array([0.1, 5.0, 1.0])), np.array([0, 1, 2, 1])),
        (mg.CrossEntropy(), np.array([0, -100, -100, -100])),  # one label of four is kept
        (mg.CrossEntropy(label_smoothing=0.1), np.array([0, 1, 2, 1])),
        (mg.MSE(reduction="sum"), np.ones((4, 3))),
        (mg.BinaryCrossEntropy(from_logits=True, reduction="sum"), np.ones((4, 3))),
        (mg.BinaryCrossEntropy(from_logits=True, weight=np.full(3, 9.0)), np.ones((4, 3))),
        (mg.BinaryCrossEntropy(from_logits=True, pos_weight=np.full(3, 9.0)), np.ones((4, 3))),
    ],
    ids=[
        "ce sum",
        "ce weight",
        "ce ignored",
        "ce smoothing",
        "mse sum",
        "bce sum",
        "bce weight",
        "bce pos_weight",
    ],
)
def test_losses_whose_options_change_the_gradients_scale_give_no_bound(loss, target):
    """The plain losses' bounds assume a mean over every row: a sum, class weights or
    ignored labels scale the gradient past them (8x in one case), so they are measured."""
    model = mg.Sequential(mg.Dense(2, 3, rng=0, dtype=np.float64))
    x = np.random.default_rng(0).normal(size=(4, 2))
    value = loss(model(x), target)
    bounds = GradientBounds(model, loss, float(np.linalg.norm(x, axis=1).max()), 2)
    norms = parameter_norms(model.parameters())
    given = bounds(norms, rows=4, loss_value=float(value))
    assert given is not None and all(not np.isfinite(b) for b in given.values())


def test_the_plain_losses_still_give_finite_bounds_after_a_call_with_options():
    model = mg.Sequential(mg.Dense(2, 3, rng=0, dtype=np.float64))
    x = np.random.default_rng(0).normal(size=(4, 2))
    loss = mg.CrossEntropy()
    loss(model(x), np.array([0, -100, 1, 2]))
    loss(model(x), np.array([0, 1, 1, 2]))  # nothing ignored: the plain mean again
    bounds = GradientBounds(model, loss, float(np.linalg.norm(x, axis=1).max()), 2)
    assert all(np.isfinite(list(bounds(parameter_norms(model.parameters()), 4, 1.0).values())))
