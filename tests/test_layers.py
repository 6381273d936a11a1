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
        ({"in_features": 2.5, "out_features": 2}, TypeError, "in_features"),
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


# -- inputs that are not real numbers are refused, not coerced ----------------------------------

NOT_REAL = [
    (np.array([[1 + 2j, 0.5]]), "complex128"),
    (np.array([["1.5", "2"]]), "<U3"),
    (np.array([[0.5, None]], dtype=object), "object"),
]
NOT_REAL_IDS = ["complex", "numeric strings", "object with None"]


@pytest.mark.parametrize(("x", "dtype"), NOT_REAL, ids=NOT_REAL_IDS)
def test_dense_refuses_inputs_that_are_not_real_numbers(x, dtype):
    with pytest.raises(TypeError, match=f"Dense input must be a numeric array .*got dtype {dtype}"):
        Dense(2, 1, rng=0)(x)


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["tanh", "sigmoid", "relu", "leaky", "softmax"])
@pytest.mark.parametrize(("x", "dtype"), NOT_REAL, ids=NOT_REAL_IDS)
def test_activations_refuse_inputs_that_are_not_real_numbers(make, x, dtype):
    layer = make()
    with pytest.raises(TypeError, match=rf"{type(layer).__name__} input .*got dtype {dtype}"):
        layer(x)


def test_a_complex_input_would_have_lost_its_imaginary_part():
    with pytest.raises(TypeError, match=r"take \.real or np\.abs\(x\) explicitly"):
        Dense(1, 1, rng=0)(np.array([[1 + 2j]]))


def test_a_ragged_list_is_a_type_error_naming_the_layer():
    with pytest.raises(TypeError, match="Dense input must be a numeric array, got list"):
        Dense(2, 1)([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("x", [np.array([[1, 0]]), np.array([[True, False]])], ids=["int", "bool"])
def test_integer_and_boolean_inputs_are_converted(x):
    assert Dense(2, 1, rng=0)(x).dtype == np.float32
    for make in ACTIVATIONS:
        y = make()(x)
        assert y.dtype == np.float64  # not the float16 NumPy gives for small integers


# -- a forward pass in eval mode between the loss and backward ----------------------------------


@pytest.mark.parametrize("make", [lambda: Dense(2, 2, rng=0), *ACTIVATIONS])
def test_backward_after_an_eval_mode_forward_is_refused(make):
    layer = make()
    x = np.array([[0.5, -1.0]])
    layer(x)  # training mode: the pass the loss sees
    layer.eval()
    layer(np.array([[2.0, 3.0]]))  # what predict does ...
    layer.train()  # ... before restoring the mode
    with pytest.raises(RuntimeError, match=r"last forward pass ran in evaluation mode.*again"):
        layer.backward(np.ones((1, 2)))


@pytest.mark.parametrize("make", [lambda: Dense(2, 2, rng=0), *ACTIVATIONS])
def test_forward_and_backward_both_in_eval_mode_work(make):
    # gradients of a model in eval mode, as for a saliency map
    layer = make()
    x, g = np.array([[0.5, -1.0]]), np.array([[1.0, 2.0]])
    layer(x)
    expected = layer.backward(g)
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.backward(g), expected)


# -- gradients that are not arrays --------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: Dense(2, 2, rng=0), *ACTIVATIONS])
def test_backward_takes_an_array(make):
    layer = make()
    layer(np.ones((1, 2)))
    with pytest.raises(TypeError, match=r"backward takes the gradient as a NumPy array.*got list"):
        layer.backward([[1.0, 1.0]])
    with pytest.raises(TypeError, match="floating-point gradient, got dtype complex128"):
        layer.backward(np.ones((1, 2), complex))


# -- Softmax -------------------------------------------------------------------------------------


def test_softmax_over_an_empty_axis_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"at least one entry along axis -1.*shape \(3, 0\)"):
        Softmax()(np.zeros((3, 0)))
    assert Softmax()(np.zeros((0, 3))).shape == (0, 3)  # an empty batch is fine


def test_softmax_axis_beyond_the_input_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"needs an input with an axis 2, got shape \(3, 4\)"):
        Softmax(axis=2)(np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("axis", "error"), [(1.0, TypeError), (True, TypeError), ("1", TypeError), (99, ValueError)]
)
def test_softmax_axis_must_be_an_integer(axis, error):
    with pytest.raises(error, match="Softmax axis must be"):
        Softmax(axis=axis)


def test_softmax_takes_a_numpy_integer_axis():
    assert Softmax(axis=np.int64(0)).axis == 0


# -- flags and numbers are checked, not coerced --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"bias": "False"}, TypeError, r"Dense bias must be True or False, got 'False' \(str\)"),
        ({"bias": 0}, TypeError, r"Dense bias must be True or False, got 0 \(int\)"),
        ({"dtype": None}, TypeError, "Dense dtype must be a floating-point type.*got None"),
        ({"dtype": "not a dtype"}, TypeError, "Dense dtype must be .*got 'not a dtype'"),
        ({"dtype": np.longdouble}, TypeError, "Dense dtype must be .*float16, float32 or float64"),
        ({"rng": True}, TypeError, r"Dense rng must be None, an integer seed.*True \(bool\)"),
        ({"rng": 1.5}, TypeError, r"Dense rng must be .*1\.5 \(float\)"),
        ({"rng": -1}, ValueError, "Dense rng must be .*got -1"),
        ({"init": None}, TypeError, "init must be a name or a function"),
        ({"init": Dense}, TypeError, "got the class Dense"),
    ],
)
def test_dense_arguments_are_checked_not_coerced(kwargs, error, message):
    with pytest.raises(error, match=message):
        Dense(2, 3, **kwargs)


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, TypeError), ("4", TypeError), (4.0, TypeError), (None, TypeError), (0, ValueError)],
)
def test_dense_widths_must_be_positive_integers(value, error):
    with pytest.raises(error, match=r"Dense in_features must be a positive integer"):
        Dense(value, 2)


def test_dense_takes_numpy_integers_and_bools():
    layer = Dense(np.int64(3), np.int32(2), bias=np.bool_(False), rng=np.int64(0))
    assert (layer.in_features, layer.out_features, layer.bias) == (3, 2, None)
    assert type(layer.in_features) is int


def test_a_width_beyond_the_address_space_is_a_memory_error_not_a_numpy_error():
    with pytest.raises(
        MemoryError,
        match=r"Dense\(4294967296, 4294967296\) is too large: its weight would hold "
        r"1\.84e\+19 values of float32 \(6\.71e\+07 TiB\), more than any array can hold",
    ):
        Dense(2**32, 2**32)
    with pytest.raises(ValueError, match="in_features must be a positive integer, got <int too"):
        Dense(10**5000, 2)


def test_a_custom_initialiser_returning_nan_is_refused():
    with pytest.raises(ValueError, match="init returned NaN or infinite weights"):
        Dense(2, 2, init=lambda shape, rng, dtype: np.full(shape, np.nan))


@pytest.mark.parametrize(
    ("slope", "error", "message"),
    [
        ("0.1", TypeError, r"LeakyReLU negative_slope must be a real number, got '0\.1' \(str\)"),
        (True, TypeError, r"LeakyReLU negative_slope must be a real number, got True"),
        (None, TypeError, "LeakyReLU negative_slope must be a real number"),
        (float("inf"), ValueError, "LeakyReLU negative_slope must be finite, got inf"),
        (10**400, ValueError, "LeakyReLU negative_slope must be finite, got an integer of 1329"),
    ],
)
def test_leaky_relu_slope_must_be_a_finite_real_number(slope, error, message):
    with pytest.raises(error, match=message):
        LeakyReLU(slope)


def test_leaky_relu_takes_numpy_numbers():
    assert LeakyReLU(np.float32(0.25)).negative_slope == 0.25
    assert LeakyReLU(np.int64(2)).negative_slope == 2.0


def test_train_mode_must_be_a_bool():
    with pytest.raises(TypeError, match=r"mode must be True or False, got 'False' \(str\)"):
        Dense(2, 2).train("False")
    assert Dense(2, 2).train(np.bool_(False)).training is False


def test_load_state_dict_takes_a_mapping():
    with pytest.raises(TypeError, match=r"load_state_dict takes a dict of arrays .*got NoneType"):
        Dense(2, 2).load_state_dict(None)


def test_load_state_dict_lists_at_most_ten_unexpected_keys():
    layer = Dense(2, 2)
    state = {**layer.state_dict(), **{f"extra{i}": np.zeros(1) for i in range(10_000)}}
    with pytest.raises(ValueError, match=r"'extra9'\] and 9990 more$") as caught:
        layer.load_state_dict(state)
    assert len(str(caught.value)) < 400


def test_from_config_takes_a_dict():
    with pytest.raises(TypeError, match=r"Tanh\.from_config takes a dict .*got NoneType"):
        Tanh.from_config(None)
    with pytest.raises(TypeError, match="a Dense config is a dict, got str"):
        Dense.from_config("in_features=2")


# -- each object in one place -------------------------------------------------------------------


class TiedTwice(Layer):
    """A user layer that holds one Parameter under two names: a tie."""

    def __init__(self):
        super().__init__()
        self.a = Parameter(np.ones(2))
        self.b = self.a


def test_a_parameter_held_twice_is_refused_by_every_walk():
    layer = TiedTwice()
    message = r"the same Parameter is at 'a' and at 'b': tied parameters are not supported"
    for walk in (layer.parameters, layer.state_dict, lambda: list(layer.named_parameters())):
        with pytest.raises(ValueError, match=message):
            walk()


class Cycle(Layer):
    def __init__(self):
        super().__init__()
        self.inner = Dense(2, 2)
        self.inner.outer = self  # a layer that (indirectly) holds itself


def test_a_layer_inside_itself_is_an_error_not_an_endless_walk():
    with pytest.raises(ValueError, match=r"'inner\.outer' is the model itself"):
        Cycle().parameters()


class TiedProperly(Layer):
    """y = W (W x): one Parameter used twice, the gradients of both uses added, as the Layer
    contract says tied weights are written."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.random.default_rng(0).normal(size=(3, 3)))

    def forward(self, x):
        self.x = x
        self.h = x @ self.w.value.T
        return self.h @ self.w.value.T

    def backward(self, grad_output):
        grad_h = grad_output @ self.w.value
        self.w.grad[...] = grad_output.T @ self.h + grad_h.T @ self.x
        return grad_h @ self.w.value


def test_tied_weights_written_as_one_layer_pass_the_gradient_check():
    report = check_gradients(TiedProperly(), np.random.default_rng(1).normal(size=(4, 3)))
    assert set(report.errors) == {"input", "w"}


# -- initialisers and configs --------------------------------------------------------------------


@pytest.mark.parametrize("init", ["he_normal", "he_uniform", "xavier_normal", "xavier_uniform"])
def test_initialisers_take_a_seed_as_well_as_a_generator(init):
    from minigrad.init import get_initializer

    draw = get_initializer(init)
    np.testing.assert_array_equal(
        draw((3, 2), 7, np.float32), draw((3, 2), np.random.default_rng(7), np.float32)
    )
    with pytest.raises(TypeError, match=r"rng must be None, an integer seed .*'7' \(str\)"):
        draw((3, 2), "7", np.float32)
    with pytest.raises(ValueError, match=r"positive widths, got \(3, 0\)"):
        draw((3, 0), 7, np.float32)


def test_a_config_with_many_unknown_keys_gives_a_short_message():
    with pytest.raises(ValueError, match=r"and 9990 more$") as caught:
        Dense.from_config({f"key{i}" * 20: 1 for i in range(10_000)})
    assert len(str(caught.value)) < 700


# -- settable attributes are checked when assigned -----------------------------------------------


@pytest.mark.parametrize(
    ("make", "attribute", "value", "error", "message"),
    [
        (Tanh, "training", "False", TypeError, r"Tanh training must be True or False, got 'False'"),
        (lambda: Dense(2, 2), "training", 0, TypeError, r"Dense training must be True or False"),
        (
            LeakyReLU,
            "negative_slope",
            "x",
            TypeError,
            r"LeakyReLU negative_slope must be a real number, got 'x' \(str\)",
        ),
        (LeakyReLU, "negative_slope", np.inf, ValueError, "negative_slope must be finite"),
        (Softmax, "axis", "1", TypeError, r"Softmax axis must be an integer, got '1' \(str\)"),
        (Softmax, "axis", 64, ValueError, r"Softmax axis must be in \[-64, 63\], got 64"),
    ],
    ids=["training str", "training int", "slope str", "slope inf", "axis str", "axis range"],
)
def test_attributes_are_checked_when_assigned_not_at_the_next_forward(
    make, attribute, value, error, message
):
    layer = make()
    before = getattr(layer, attribute)
    with pytest.raises(error, match=message):
        setattr(layer, attribute, value)
    assert getattr(layer, attribute) == before  # unchanged


def test_checked_attributes_take_numpy_values_and_work_in_forward():
    leaky = LeakyReLU()
    leaky.negative_slope = np.float32(0.5)
    assert type(leaky.negative_slope) is float
    np.testing.assert_array_equal(leaky(np.array([[-2.0, 2.0]])), [[-1.0, 2.0]])
    softmax = Softmax()
    softmax.axis = np.int64(0)
    np.testing.assert_allclose(softmax(np.zeros((2, 1))), [[0.5], [0.5]])
    layer = Dense(2, 2)
    layer.training = np.bool_(False)
    assert layer.training is False


def test_a_layer_that_forgets_super_init_still_has_a_training_flag():
    class NoInit(Layer):
        def __init__(self):  # no super().__init__()
            pass

        def forward(self, x):
            return x

    layer = NoInit()
    assert layer.training is True
    assert layer.eval().training is False


@pytest.mark.parametrize("name", ["weight", "bias"])
def test_a_parameter_replaced_by_an_array_is_named_at_the_next_forward(name):
    layer = Dense(3, 2)
    layer(np.ones((1, 3), np.float32))
    setattr(layer, name, np.ones(getattr(layer, name).shape, np.float32))
    message = rf"Dense\.{name} must be a Parameter.*got ndarray: .*layer\.{name}\.value\[\.\.\.\]"
    with pytest.raises(TypeError, match=message):
        layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(TypeError, match=message):
        layer(np.ones((1, 3), np.float32))


# -- huge sizes are refused by name, before NumPy tries ------------------------------------------


def test_a_weight_larger_than_memory_is_refused_naming_the_widths():
    with pytest.raises(
        MemoryError,
        match=r"Dense\(1000000, 1000000\) is too large: its weight would hold 1e\+12 values of "
        r"float32 \(3\.64 TiB\), more than this machine's .* of memory",
    ):
        Dense(10**6, 10**6)


# -- backward returns the forward's dtype, whatever the gradient's --------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize(
    "make",
    [
        lambda dtype: Dense(3, 3, rng=0, dtype=dtype),
        lambda dtype: Tanh(),
        lambda dtype: Sigmoid(),
        lambda dtype: ReLU(),
        lambda dtype: LeakyReLU(0.1),
        lambda dtype: Softmax(),
    ],
    ids=["dense", "tanh", "sigmoid", "relu", "leaky", "softmax"],
)
def test_backward_of_a_float64_gradient_has_the_forward_dtype(make, dtype):
    x = np.array([[0.5, -1.0, 2.0], [-0.3, 0.8, -2.5]], dtype=dtype)
    g = np.array([[0.1, -0.7, 0.4], [1.3, 0.2, -0.6]])
    layer = make(dtype)
    layer(x)
    grad = layer.backward(g)
    assert grad.dtype == dtype
    expected = layer.backward(g.astype(dtype))  # the gradient given in the layer's dtype
    np.testing.assert_array_equal(grad, expected)
    if isinstance(layer, Dense):
        assert layer.weight.grad.dtype == dtype and layer.bias.grad.dtype == dtype


@pytest.mark.parametrize("make", [Tanh, Sigmoid, ReLU], ids=["tanh", "sigmoid", "relu"])
def test_a_float64_gradient_beyond_float16_becomes_inf_without_a_warning(make):
    # the conversion used to overflow inside the in-place product, with a warning
    layer = make()
    layer(np.array([[0.5, 1.0]], np.float16))
    grad = layer.backward(np.array([[1e300, 1e300]]))
    assert grad.dtype == np.float16
    np.testing.assert_array_equal(grad, [[np.inf, np.inf]])


# -- extreme inputs: a value (or NaN), never a warning --------------------------------------------


def test_a_float64_input_beyond_float32_becomes_inf_in_a_float32_dense_without_a_warning():
    layer = Dense(1, 1, init=lambda shape, rng, dtype: np.ones(shape, dtype))
    np.testing.assert_array_equal(
        layer(np.array([[1e300], [-1e300], [2.0]])), [[np.inf], [-np.inf], [2.0]]
    )


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        ([[np.inf, 0.0]], [[np.nan, np.nan]]),
        ([[-np.inf, -np.inf]], [[np.nan, np.nan]]),
        ([[3e38, -3e38]], [[1.0, 0.0]]),
    ],
    ids=["inf", "all -inf", "float32 extremes"],
)
def test_softmax_of_extreme_inputs_is_nan_as_in_pytorch_or_exact_without_a_warning(x, expected):
    np.testing.assert_array_equal(Softmax()(np.array(x, np.float32)), expected)


# -- a failed forward leaves nothing for backward -------------------------------------------------


@pytest.mark.parametrize(
    ("make", "good", "bad"),
    [
        (lambda: Dense(3, 2, rng=0), np.ones((4, 3), np.float32), np.ones((2, 5), np.float32)),
        (lambda: Dense(3, 2, rng=0), np.ones((4, 3), np.float32), [["a", "b", "c"]]),
        (Tanh, np.ones((4, 3)), np.ones((4, 3), complex)),
        (ReLU, np.ones((4, 3)), "abc"),
        (Softmax, np.ones((4, 3)), np.ones((4, 0))),
    ],
    ids=["dense width", "dense strings", "tanh complex", "relu string", "softmax empty"],
)
def test_backward_after_a_failed_forward_raises_instead_of_the_previous_batch(make, good, bad):
    layer = make()
    out = layer(good)
    with pytest.raises((TypeError, ValueError)):
        layer(bad)
    with pytest.raises(
        RuntimeError, match=r"before forward\(\), or after a forward pass that failed"
    ):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (np.array([[70000], [-3]], np.int32), [[np.inf], [-3.0]]),
        (np.array([[65535], [1]], np.uint16), [[np.inf], [1.0]]),
        (np.array([[32767], [-32768]], np.int16), [[32768.0], [-32768.0]]),  # rounded, in range
        (np.array([[1e5], [0.5]], np.float32), [[np.inf], [0.5]]),
    ],
    ids=["int32", "uint16", "int16", "float32"],
)
def test_inputs_beyond_float16_become_inf_in_a_float16_layer_without_a_warning(x, expected):
    layer = Dense(1, 1, init=lambda shape, rng, dtype: np.ones(shape, dtype), dtype=np.float16)
    np.testing.assert_array_equal(layer(x), expected)
