"""Layers: finite-difference gradients, exact values, dtypes, numerics and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import Dense, Layer, LeakyReLU, Parameter, ReLU, ShapeError, Sigmoid, Softmax, Tanh
from minigrad.testing import batches, check_gradients, floats_away_from_zero

ACTIVATIONS = [Tanh, Sigmoid, ReLU, lambda: LeakyReLU(0.1), Softmax]
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


# -- gradients ------------------------------------------------------------------------------


@given(
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 6),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_dense_gradients_match_finite_differences(in_features, out_features, bias, seed, data):
    layer = Dense(in_features, out_features, bias=bias, rng=seed, dtype=np.float64)
    if bias:
        layer.bias.value[:] = np.random.default_rng(seed).normal(size=out_features)
    x = data.draw(batches(in_features))
    report = check_gradients(layer, x, seed=seed)
    expected = {"input", "weight", "bias"} if bias else {"input", "weight"}
    assert set(report.errors) == expected


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["tanh", "sigmoid", "relu", "leaky", "softmax"])
@given(data=st.data())
def test_activation_gradients_match_finite_differences(make, data):
    x = data.draw(hnp.arrays(np.float64, shapes, elements=floats_away_from_zero(0.01, 6.0)))
    report = check_gradients(make(), x)
    assert set(report.errors) == {"input"}


def test_dense_backward_is_the_batch_first_formula():
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    layer.bias.value[:] = [0.5, -1.0]
    x = np.arange(12.0).reshape(4, 3)
    g = np.arange(8.0).reshape(4, 2) - 3
    np.testing.assert_allclose(layer(x), x @ layer.weight.value.T + [0.5, -1.0])
    dx = layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, g.T @ x)
    np.testing.assert_allclose(layer.bias.grad, g.sum(axis=0))
    np.testing.assert_allclose(dx, g @ layer.weight.value)


def test_backward_overwrites_gradients_rather_than_accumulating():
    layer = Dense(3, 2, rng=0)
    x = np.ones((4, 3), dtype=np.float32)
    g = np.ones((4, 2), dtype=np.float32)
    layer(x)
    layer.backward(g)
    first = layer.weight.grad.copy()
    layer(x)
    layer.backward(g)
    np.testing.assert_array_equal(layer.weight.grad, first)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


# -- values ---------------------------------------------------------------------------------


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    np.testing.assert_allclose(Tanh()(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_array_equal(ReLU()(x), [[0.0, 0.0, 0.0, 0.5, 2.0]])
    np.testing.assert_allclose(LeakyReLU(0.1)(x), [[-0.2, -0.05, 0.0, 0.5, 2.0]])
    softmax = Softmax()(x)
    np.testing.assert_allclose(softmax, np.exp(x) / np.exp(x).sum())


def test_relu_subgradient_at_zero_is_zero_like_pytorch():
    relu = ReLU()
    relu(np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 5.0]])), [[0.0, 5.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    # pytest turns warnings into errors, so an overflow in exp would fail here
    x = np.array([[-1e30, -1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0, 1e30]], dtype=dtype)
    y = Sigmoid()(x)
    assert y.dtype == dtype
    assert np.all((y >= 0) & (y <= 1))
    assert y[0, 4] == 0.5 and y[0, -1] == 1.0 and y[0, 0] == 0.0
    # the negative tail keeps its relative precision: sigma(-30) = e^-30 / (1 + e^-30)
    np.testing.assert_allclose(y[0, 3], np.exp(-30.0) / (1 + np.exp(-30.0)), rtol=1e-6)
    layer = Sigmoid()
    layer(x)
    assert np.all(np.isfinite(layer.backward(np.ones_like(x))))


def test_softmax_and_relu_handle_extreme_inputs():
    x = np.array([[1e4, 0.0, -1e4], [-np.inf, 0.0, 1.0]], dtype=np.float32)
    y = Softmax()(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(ReLU()(np.array([-np.inf, np.inf])), [0.0, np.inf])


@given(x=hnp.arrays(np.float64, shapes, elements=st.floats(-50, 50)))
def test_activation_ranges(x):
    assert np.all(np.abs(Tanh()(x)) <= 1)
    sig = Sigmoid()(x)
    assert np.all((sig >= 0) & (sig <= 1))
    assert np.all(ReLU()(x) >= 0)
    np.testing.assert_allclose(Softmax()(x).sum(axis=-1), 1.0)


# -- dtype ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_end_to_end(dtype):
    layer = Dense(4, 3, rng=0, dtype=dtype)
    assert layer.weight.dtype == dtype and layer.bias.dtype == dtype
    x = np.random.default_rng(0).normal(size=(5, 4))  # float64 data: converted to the layer's
    y = layer(x)
    assert y.dtype == dtype
    for make in ACTIVATIONS:
        activation = make()
        out = activation(y)
        assert out.dtype == dtype
        assert activation.backward(np.ones_like(out)).dtype == dtype
    assert layer.backward(np.ones_like(y)).dtype == dtype
    assert layer.weight.grad.dtype == dtype


def test_dense_default_dtype_is_float32():
    assert Dense(2, 2).weight.dtype == np.float32


# -- initialisation -------------------------------------------------------------------------


def test_same_seed_gives_same_weights_and_different_seeds_differ():
    a, b, c = Dense(5, 4, rng=1), Dense(5, 4, rng=1), Dense(5, 4, rng=2)
    np.testing.assert_array_equal(a.weight.value, b.weight.value)
    assert not np.array_equal(a.weight.value, c.weight.value)
    assert not a.bias.value.any()


@pytest.mark.parametrize(
    ("init", "variance"),
    [
        ("he_normal", 2 / 400),
        ("he_uniform", 2 / 400),
        ("xavier_normal", 2 / 700),
        ("xavier_uniform", 2 / 700),
    ],
)
def test_initialisers_have_the_documented_variance(init, variance):
    weight = Dense(400, 300, init=init, rng=0, dtype=np.float64).weight.value
    assert weight.shape == (300, 400)
    assert abs(weight.mean()) < 0.05 * np.sqrt(variance)
    np.testing.assert_allclose(weight.var(), variance, rtol=0.02)
    if init.endswith("uniform"):
        assert np.abs(weight).max() <= np.sqrt(3 * variance)


def test_custom_initialiser_is_called_with_shape_rng_and_dtype():
    def ones(shape, rng, dtype):
        assert isinstance(rng, np.random.Generator)
        return np.ones(shape, dtype=dtype)

    layer = Dense(3, 2, init=ones, dtype=np.float64)
    np.testing.assert_array_equal(layer.weight.value, np.ones((2, 3)))


# -- errors ---------------------------------------------------------------------------------


def test_dense_with_wrong_feature_count_names_both_numbers():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 3\), got \(4, 5\)"):
        Dense(3, 2)(np.zeros((4, 5)))


def test_dense_rejects_wrong_ndim_with_a_hint():
    with pytest.raises(
        ShapeError, match=r"2-D array \(batch, 3\), got 1-D with shape \(3,\).*x\[None, :\]"
    ):
        Dense(3, 2)(np.zeros(3))
    with pytest.raises(ShapeError, match="got 3-D"):
        Dense(3, 2)(np.zeros((2, 2, 3)))


@pytest.mark.parametrize("make", [lambda: Dense(2, 2), *ACTIVATIONS])
def test_backward_before_forward_is_an_error(make):
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        make().backward(np.ones((1, 2)))


def test_backward_with_wrong_gradient_shape_is_an_error():
    layer = Dense(3, 2)
    layer(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(4, 2\).*got \(4, 3\)"):
        layer.backward(np.zeros((4, 3)))
    tanh = Tanh()
    tanh(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"\(4, 3\).*got \(3, 4\)"):
        tanh.backward(np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"in_features": 0, "out_features": 2}, ValueError, "in_features must be a positive"),
        ({"in_features": 2, "out_features": -1}, ValueError, "out_features must be a positive"),
        ({"in_features": 2.5, "out_features": 2}, ValueError, "in_features"),
        ({"in_features": 2, "out_features": 2, "init": "nope"}, ValueError, "unknown init 'nope'"),
        ({"in_features": 2, "out_features": 2, "dtype": np.int32}, TypeError, "floating-point"),
    ],
)
def test_dense_rejects_bad_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        Dense(**kwargs)


def test_leaky_relu_rejects_a_slope_that_is_not_finite():
    with pytest.raises(ValueError, match="finite, got nan"):
        LeakyReLU(float("nan"))


def test_leaky_relu_gradient_at_zero_is_the_slope_like_pytorch():
    layer = LeakyReLU(0.1)
    layer(np.array([[0.0, 1.0, -1.0]]))
    np.testing.assert_allclose(layer.backward(np.array([[2.0, 2.0, 2.0]])), [[0.2, 2.0, 0.2]])


def test_a_custom_initialiser_is_checked_and_cast():
    layer = Dense(3, 2, init=lambda shape, rng, dtype: rng.normal(size=shape))  # float64 out
    assert layer.weight.dtype == np.float32
    with pytest.raises(ValueError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        Dense(3, 2, init=lambda shape, rng, dtype: np.zeros((3, 2)))


def test_parameter_rejects_integer_values():
    with pytest.raises(TypeError, match="floating point"):
        Parameter(np.arange(3))


# -- the base class contract ----------------------------------------------------------------


class Scale(Layer):
    """A user-defined layer: y = a * x with a learnable scalar a."""

    def __init__(self):
        super().__init__()
        self.a = Parameter(np.array([1.5]))

    def forward(self, x):
        self.x = x
        return self.a.value * x

    def backward(self, grad_output):
        self.a.grad[:] = np.sum(grad_output * self.x)
        return self.a.value * grad_output


def test_a_user_layer_needs_only_forward_and_backward():
    layer = Scale()
    assert [name for name, _ in layer.named_parameters()] == ["a"]
    assert list(layer.state_dict()) == ["a"]
    report = check_gradients(layer, np.array([[0.5, -1.0], [2.0, 3.0]]))
    assert set(report.errors) == {"input", "a"}
    assert repr(layer) == "Scale()"


def test_base_layer_methods_say_what_to_implement():
    with pytest.raises(NotImplementedError, match="must implement forward"):
        Layer()(np.zeros(1))
    with pytest.raises(NotImplementedError, match="must implement backward"):
        Layer().backward(np.zeros(1))


def test_train_and_eval_set_the_flag():
    layer = Dense(2, 2)
    assert layer.training
    assert layer.eval() is layer and not layer.training
    assert layer.train().training


def test_layer_state_dict_round_trip_and_checks():
    a, b = Dense(3, 2, rng=0), Dense(3, 2, rng=1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight.value, b.weight.value)
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*\(2, 3\)"):
        b.load_state_dict({"weight": np.zeros((3, 2), np.float32), "bias": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"dtype float64.*float32"):
        b.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"missing keys \['bias'\]"):
        b.load_state_dict({"weight": np.zeros((2, 3), np.float32)})


# -- PyTorch as an oracle -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "torch_name"),
    [
        (Tanh, "Tanh"),
        (Sigmoid, "Sigmoid"),
        (ReLU, "ReLU"),
        (lambda: LeakyReLU(0.2), "LeakyReLU"),
        (Softmax, "Softmax"),
    ],
    ids=["tanh", "sigmoid", "relu", "leaky", "softmax"],
)
def test_activations_match_torch(torch, make, torch_name):
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(6, 5))
    g = rng.normal(size=(6, 5))
    kwargs = {"negative_slope": 0.2} if torch_name == "LeakyReLU" else {}
    kwargs = {"dim": -1} if torch_name == "Softmax" else kwargs
    reference = getattr(torch.nn, torch_name)(**kwargs)
    tx = torch.tensor(x, requires_grad=True)
    ty = reference(tx)
    ty.backward(torch.from_numpy(g))
    layer = make()
    np.testing.assert_allclose(layer(x), ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_dense_matches_torch_linear(torch):
    rng = np.random.default_rng(1)
    layer = Dense(5, 3, rng=2, dtype=np.float64)
    layer.bias.value[:] = rng.normal(size=3)
    reference = torch.nn.Linear(5, 3)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x, g = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    tx = torch.tensor(x, requires_grad=True)
    reference(tx).backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer(x), reference(tx).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, reference.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, reference.bias.grad.numpy(), rtol=1e-12)
