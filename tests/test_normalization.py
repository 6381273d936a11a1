"""Normalization: statistics learned by adapt (or given), kept as buffers, saved with the model.
LayerNorm: each sample standardised over its trailing axes, checked against finite
differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import Dense, LayerNorm, Normalization, Sequential, ShapeError, Tanh
from minigrad.layers import normalization
from minigrad.testing import GradientCheckError, batches, check_gradients


def raw_data(n=200, seed=0):
    """Two features on very different scales, as raw tabular data has."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(1000.0, 50.0, n), rng.normal(-0.01, 0.002, n)])


# -- adapt -------------------------------------------------------------------------------------


def test_adapt_learns_the_population_mean_and_std_per_feature():
    x = raw_data()
    norm = Normalization(2, dtype=np.float64).adapt(x)
    np.testing.assert_allclose(norm.mean.value, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(norm.std.value, x.std(axis=0), rtol=1e-12)  # ddof=0
    y = norm(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=0), 1.0, rtol=1e-12)


def test_adapt_returns_the_layer_and_works_on_lists_and_integers():
    norm = Normalization(1)
    assert norm.adapt([[1], [3]]) is norm
    np.testing.assert_array_equal(norm.mean.value, [2.0])
    np.testing.assert_array_equal(norm.std.value, [1.0])


def test_adapt_accumulates_float32_data_in_float64():
    # float32 data far from zero: a float32 sum of 10^6 values loses the small spread
    rng = np.random.default_rng(1)
    x = (1e4 + rng.normal(0.0, 1.0, (1_000_000, 1))).astype(np.float32)
    norm = Normalization(1).adapt(x)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(norm.mean.value, exact.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(norm.std.value, exact.std(axis=0), rtol=1e-6)


def test_adapt_in_chunks_gives_the_statistics_of_the_whole(monkeypatch):
    monkeypatch.setattr(normalization, "_CHUNK_VALUES", 7)  # chunks of 3 rows of 2 features
    x = raw_data(n=50)
    norm = Normalization(2, dtype=np.float64).adapt(x)
    np.testing.assert_allclose(norm.mean.value, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(norm.std.value, x.std(axis=0), rtol=1e-12)


@pytest.mark.parametrize("value", [0.0, 0.1, 1e6, -3.3e-5], ids=str)
def test_a_constant_feature_gets_std_one(value):
    x = np.column_stack([np.full(10_000, value, np.float32), np.arange(10_000.0)])
    norm = Normalization(2).adapt(x)
    assert norm.std.value[0] == 1.0
    np.testing.assert_allclose(norm(x)[:, 0], 0.0, atol=1e-6 * max(1.0, abs(value)))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, "holds NaN in feature \\(column\\) 1, first at row 3"),
        (np.inf, "holds infinite values in feature \\(column\\) 1, first at row 3"),
    ],
    ids=["nan", "inf"],
)
def test_adapt_refuses_nan_and_infinity_naming_the_column_and_row(bad, message):
    x = raw_data(n=10)
    x[3, 1] = x[7, 1] = bad
    norm = Normalization(2)
    with pytest.raises(ValueError, match=f"Normalization.adapt: x {message}"):
        norm.adapt(x)
    np.testing.assert_array_equal(norm.mean.value, [0.0, 0.0])  # left as it was


def test_adapt_refuses_values_whose_sum_overflows():
    x = np.full((4, 1), 1e308)
    with pytest.raises(ValueError, match=r"feature \(column\) 0 are too large to average"):
        Normalization(1, dtype=np.float64).adapt(x)


def test_statistics_that_do_not_fit_the_dtype_are_refused():
    with pytest.raises(
        ValueError, match=r"mean of feature 0 is 1e\+39.*float32; use dtype=np\.float64"
    ):
        Normalization(1).adapt([[1e39], [1e39]])


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (np.zeros((4, 3)), ShapeError, r"expected x of shape \(n, 2\), got \(4, 3\)"),
        (np.zeros(4), ShapeError, r"expected x of shape \(n, 2\), got \(4,\)"),
        (np.zeros((0, 2)), ValueError, "at least one sample, got 0 rows"),
        (np.zeros((2, 2), complex), TypeError, "got dtype complex128"),
        (np.array([["1", "2"]]), TypeError, "got dtype <U1"),
    ],
)
def test_adapt_checks_its_data(x, error, message):
    with pytest.raises(error, match=message):
        Normalization(2).adapt(x)


# -- given statistics --------------------------------------------------------------------------


def test_statistics_can_be_given_to_the_constructor():
    norm = Normalization(2, mean=[1.0, 2.0], std=[2.0, 4.0])
    np.testing.assert_array_equal(norm(np.array([[3.0, 6.0]])), np.array([[1.0, 1.0]], np.float32))


def test_without_statistics_the_layer_is_the_identity():
    x = raw_data(n=5).astype(np.float32)
    np.testing.assert_array_equal(Normalization(2)(x), x)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mean": [0.0]}, ShapeError, r"mean must have shape \(2,\), one value per feature"),
        ({"std": [1.0, 0.0]}, ValueError, "std must be > 0, got 0.0 for feature 1"),
        ({"std": [1.0, -2.0]}, ValueError, "std must be > 0, got -2.0 for feature 1"),
        ({"mean": [np.nan, 0.0]}, ValueError, "mean of feature 0 is nan"),
        ({"std": [1e-50, 1.0]}, ValueError, "std of feature 0 is 1e-50.*use dtype=np.float64"),
        ({"mean": ["1", "2"]}, TypeError, "Normalization mean must be a numeric array"),
        ({"num_features": True}, TypeError, "num_features must be a positive integer, got True"),
        ({"num_features": 0}, ValueError, "num_features must be a positive integer, got 0"),
        ({"dtype": None}, TypeError, "Normalization dtype must be a floating-point type"),
        ({"dtype": np.int32}, TypeError, "Normalization dtype must be a floating-point type"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, error, message):
    kwargs = {"num_features": 2, **kwargs}
    with pytest.raises(error, match=message):
        Normalization(**kwargs)


def test_numpy_integers_are_accepted_as_widths():
    assert Normalization(np.int64(3)).num_features == 3


# -- forward and backward ----------------------------------------------------------------------


@st.composite
def layers_and_batches(draw, adapted):
    """float64 layers with statistics learned from random data (any spread, constant features
    included) or given (a spread the finite differences can resolve), and a batch."""
    features = draw(st.integers(1, 6))
    if adapted:
        rows = draw(st.integers(1, 10))
        data = draw(hnp.arrays(np.float64, (rows, features), elements=st.floats(-50, 50)))
        layer = Normalization(features, dtype=np.float64).adapt(data)
    else:
        mean = draw(hnp.arrays(np.float64, features, elements=st.floats(-50, 50)))
        std = draw(hnp.arrays(np.float64, features, elements=st.floats(0.05, 50)))
        layer = Normalization(features, mean=mean, std=std, dtype=np.float64)
    return layer, draw(batches(features))


@given(case=layers_and_batches(adapted=False))
def test_gradients_match_finite_differences(case):
    layer, x = case
    report = check_gradients(layer, x)
    assert set(report.errors) == {"input"}


@given(case=layers_and_batches(adapted=True))
def test_forward_and_backward_are_the_formulas(case):
    layer, x = case
    np.testing.assert_allclose(layer(x), (x - layer.mean.value) / layer.std.value, rtol=1e-14)
    g = np.random.default_rng(0).normal(size=x.shape)
    np.testing.assert_allclose(layer.backward(g), g / layer.std.value, rtol=1e-14)


def test_the_output_has_the_layers_dtype():
    norm = Normalization(2).adapt(raw_data())
    assert norm(raw_data()).dtype == np.float32
    assert norm(np.ones((1, 2), int)).dtype == np.float32


def test_forward_and_backward_check_their_arrays():
    norm = Normalization(2)
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 2\), got \(3, 4\)"):
        norm(np.zeros((3, 4)))
    with pytest.raises(TypeError, match=r"Normalization input .*got dtype complex128"):
        norm(np.zeros((3, 2), complex))
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        norm.backward(np.zeros((3, 2)))
    norm(np.zeros((3, 2)))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(3, 2\)"):
        norm.backward(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="takes the gradient as a NumPy array"):
        norm.backward([[0.0, 0.0]] * 3)


def test_backward_after_an_eval_mode_forward_is_refused():
    norm = Normalization(2)
    norm(np.zeros((3, 2)))
    norm.eval()(np.zeros((5, 2)))
    with pytest.raises(RuntimeError, match="last forward pass ran in evaluation mode"):
        norm.train().backward(np.zeros((3, 2)))


# -- the statistics belong to the model --------------------------------------------------------


def test_the_statistics_are_buffers_in_the_state_dict_and_never_trained():
    model = Sequential(Normalization(2).adapt(raw_data()), Dense(2, 1, rng=0))
    assert list(model.state_dict()) == ["0.mean", "0.std", "1.weight", "1.bias"]
    assert [key for key, _ in model.named_buffers()] == ["0.mean", "0.std"]
    assert [key for key, _ in model.named_parameters()] == ["1.weight", "1.bias"]
    optimizer = mg.SGD(model.parameters(), lr=0.1)
    assert model[0].mean not in optimizer.state and model[0].std not in optimizer.state


def test_a_trained_model_reloaded_from_its_state_dict_predicts_the_same_on_raw_inputs():
    x = raw_data(n=300)
    y = (x[:, 0] - 1000.0) / 50.0 + (x[:, 1] + 0.01) / 0.002  # a linear target in z-scores
    model = Sequential(Normalization(2).adapt(x), Dense(2, 8, rng=0), Tanh(), Dense(8, 1, rng=1))
    mg.fit(
        model, mg.MSE(), mg.Adam(model.parameters(), lr=0.01), x, y[:, None],
        epochs=5, metrics=(), progress=False, seed=0,
    )  # fmt: skip
    statistics = model[0].mean.value.copy(), model[0].std.value.copy()
    fresh = Sequential(Normalization(2), Dense(2, 8), Tanh(), Dense(8, 1))
    fresh.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(fresh[0].mean.value, statistics[0])
    np.testing.assert_array_equal(fresh[0].std.value, statistics[1])
    np.testing.assert_array_equal(mg.predict(fresh, x), mg.predict(model, x))
    # training did not move the statistics
    np.testing.assert_allclose(statistics[0], x.mean(axis=0), rtol=1e-6)


def test_config_round_trip():
    norm = Normalization(3, dtype=np.float64)
    assert norm.get_config() == {"num_features": 3, "dtype": "float64"}
    copy = Normalization.from_config(norm.get_config())
    assert copy.num_features == 3 and copy.mean.dtype == np.float64
    assert repr(copy) == "Normalization(num_features=3)"


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (None, TypeError, "a Normalization config is a dict, got NoneType"),
        ({"num_features": 3}, ValueError, "has the keys \\['dtype', 'num_features'\\]"),
        ({"num_features": 3, "dtype": "int64"}, ValueError, "dtype must be 'float16'"),
        ({"num_features": "3", "dtype": "float32"}, TypeError, "must be a positive integer"),
    ],
)
def test_from_config_checks_what_a_file_says(config, error, message):
    with pytest.raises(error, match=message):
        Normalization.from_config(config)


def test_sequential_checks_its_width_against_its_neighbours():
    with pytest.raises(ShapeError, match=r"layer 1 \(Normalization\(num_features=3\)\) expects 3"):
        Sequential(Dense(2, 4), Normalization(3))
    with pytest.raises(ShapeError, match=r"expects 2 input features, but layer 0 .*outputs 3"):
        Sequential(Normalization(3), Dense(2, 1))
    assert Sequential(Normalization(3), Dense(3, 1)).in_features == 3


# -- hardening: sizes, extremes, dtypes, unusable statistics from a file -------------------------


def test_a_width_larger_than_memory_is_refused_naming_it():
    with pytest.raises(
        MemoryError,
        match=r"Normalization\(1000000000000\) is too large: its mean and std would hold 2e\+12 "
        r"values of float32 \(7\.28 TiB\)",
    ):
        Normalization(10**12)


@pytest.mark.parametrize("value", [1e300, -1e300, 1e154])
def test_a_huge_constant_feature_gets_std_one_without_a_warning(value):
    # the bound of the constant-column test, (n mean eps)^2, overflowed float64
    norm = Normalization(2, dtype=np.float64).adapt([[value, 0.0], [value, 1.0], [value, 2.0]])
    assert norm.std.value[0] == 1.0
    assert norm.mean.value[0] == value


def test_a_float64_input_beyond_float32_becomes_inf_without_a_warning():
    np.testing.assert_array_equal(Normalization(1)(np.array([[1e300], [2.0]])), [[np.inf], [2.0]])


def test_backward_of_a_float64_gradient_has_the_layers_dtype():
    norm = Normalization(2, std=[2.0, 4.0])
    norm(np.ones((1, 2), np.float32))
    grad = norm.backward(np.array([[1.0, 1.0]]))
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [[0.5, 0.25]])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("std", 0.0, r"state_dict\['0\.std'\] holds 0\.0 for feature 1: a Normalization std "
         r"must be finite and > 0"),
        ("std", -2.0, r"'0\.std'\] holds -2\.0 for feature 1"),
        ("std", np.nan, r"'0\.std'\] holds nan for feature 1"),
        ("std", np.inf, r"'0\.std'\] holds inf for feature 1"),
        ("mean", np.nan, r"state_dict\['0\.mean'\] holds nan for feature 1: a Normalization mean "
         r"must be finite$"),
        ("mean", -np.inf, r"'0\.mean'\] holds -inf for feature 1"),
    ],
)  # fmt: skip
def test_unusable_statistics_are_refused_by_load_state_dict_naming_the_buffer(name, value, message):
    model = Sequential(Normalization(2).adapt(raw_data()), Dense(2, 1, rng=0))
    before = model.state_dict()
    state = model.state_dict()
    state[f"0.{name}"][1] = value
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)
    for key, array in model.state_dict().items():  # nothing was written
        np.testing.assert_array_equal(array, before[key])
    with pytest.raises(ValueError, match=message.replace("'0\\.", "'")):
        model[0].load_state_dict({key[2:]: state[key] for key in ("0.mean", "0.std")})


def test_a_model_file_with_a_zero_std_is_refused(tmp_path):
    pytest.importorskip("safetensors")
    model = Sequential(Normalization(2).adapt(raw_data()), Dense(2, 1, rng=0))
    model[0].std.value[0] = 0.0  # as a damaged or hand-edited file would hold it
    path = tmp_path / "model.safetensors"
    mg.save(model, path)
    with pytest.raises(mg.ModelFileError, match=r"'0\.std'\] holds 0\.0 for feature 0"):
        mg.load(path)


@pytest.mark.parametrize("name", ["mean", "std"])
def test_a_statistic_replaced_by_an_array_is_named_at_the_next_forward(name):
    norm = Normalization(2)
    setattr(norm, name, np.ones(2, np.float32))
    with pytest.raises(TypeError, match=rf"Normalization\.{name} must be a Buffer, got ndarray"):
        norm(np.ones((1, 2), np.float32))


def test_backward_after_a_failed_forward_raises_instead_of_the_previous_batch():
    norm = Normalization(2)
    norm(np.ones((3, 2), np.float32))
    with pytest.raises(ShapeError):
        norm(np.ones((3, 5), np.float32))
    with pytest.raises(RuntimeError, match=r"or after a forward pass that failed"):
        norm.backward(np.ones((3, 2), np.float32))


# -- LayerNorm ---------------------------------------------------------------------------------


@st.composite
def layer_norms(draw, dtype=np.float64):
    """A LayerNorm of 1 to 3 normalised axes (weights not 1, bias not 0) and an input with 0 to
    2 leading axes whose samples have a spread finite differences resolve."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    assume(int(np.prod(shape)) >= 2)
    leading = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    affine, bias = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    eps = draw(st.sampled_from([1e-5, 1e-2]))
    argument = shape[0] if len(shape) == 1 and draw(st.booleans()) else shape
    layer = LayerNorm(argument, eps=eps, elementwise_affine=affine, bias=bias, dtype=dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if layer.weight is not None:
        layer.weight.value[...] = rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)
    if layer.bias is not None:
        layer.bias.value[...] = rng.normal(size=shape)
    x = rng.normal(rng.normal(0, 5), rng.uniform(0.5, 3), leading + shape)
    axes = tuple(range(len(leading), x.ndim))
    assume(np.all(np.std(x, axis=axes) > 0.2))
    return layer, x


@given(case=layer_norms(), training=st.booleans())
def test_layer_norm_gradients_match_finite_differences(case, training):
    layer, x = case
    layer.train(training)
    report = check_gradients(layer, x)
    expected = {"input"} | {name for name, _ in layer.named_parameters()}
    assert set(report.errors) == expected


class LayerNormWithConstantStatistics(LayerNorm):
    def backward(self, grad_output):
        super().backward(grad_output)
        return grad_output * self.weight.value * self._inv_std


def test_the_layer_norm_gradient_runs_through_each_sample_s_statistics():
    x = np.random.default_rng(0).normal(size=(3, 4))
    with pytest.raises(GradientCheckError, match="gradient of 'input'"):
        check_gradients(LayerNormWithConstantStatistics(4, dtype=np.float64), x)


@given(case=layer_norms())
def test_layer_norm_matches_torch(torch, case):
    layer, x = case
    twin = torch.nn.LayerNorm(
        layer.normalized_shape,
        eps=layer.eps,
        elementwise_affine=layer.elementwise_affine,
        bias=layer.bias is not None,
    )
    twin.load_state_dict({key: torch.from_numpy(v) for key, v in layer.state_dict().items()})
    g = np.random.default_rng(1).normal(size=x.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = twin(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer(x), ty.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-13)
    for name, p in layer.named_parameters():
        expected = dict(twin.named_parameters())[name].grad.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-10, atol=1e-12)
    assert list(layer.state_dict()) == list(twin.state_dict())
    assert repr(layer) == repr(twin)


def test_float32_layer_norm_matches_torch_to_a_few_ulps(torch):
    rng = np.random.default_rng(2)
    layer = LayerNorm((3, 8))
    layer.weight.value[...] = rng.uniform(0.5, 2, (3, 8))
    layer.bias.value[...] = rng.normal(size=(3, 8))
    twin = torch.nn.LayerNorm((3, 8), dtype=torch.float32)
    twin.load_state_dict({key: torch.from_numpy(v) for key, v in layer.state_dict().items()})
    x = rng.normal(3.0, 2.0, (16, 3, 8)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = twin(tx)
    ty.backward(torch.from_numpy(g))
    ours = [layer(x), layer.backward(g), layer.weight.grad, layer.bias.grad]
    theirs = [ty.detach().numpy(), tx.grad.numpy(), twin.weight.grad.numpy(), twin.bias.grad]
    for a, b in zip(ours, theirs, strict=True):
        b = np.asarray(b)
        assert a.dtype == np.float32
        atol = 64 * np.finfo(np.float32).eps * float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def test_layer_norm_normalises_each_sample_whatever_the_batch_holds():
    layer = LayerNorm(3, dtype=np.float64)
    x = np.array([[1.0, 2.0, 6.0], [-100.0, 0.0, 100.0]])
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-14)
    np.testing.assert_allclose(layer(x[1:]), expected[1:], rtol=1e-14)  # alone, the same
    np.testing.assert_allclose(layer.eval()(x), expected, rtol=1e-14)  # in both modes
    assert layer.state_dict().keys() == {"weight", "bias"}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_layer_norm_keeps_the_dtype(dtype):
    layer = LayerNorm((2, 3), dtype=dtype)
    x = np.random.default_rng(3).normal(size=(4, 2, 3))
    y = layer(x)
    assert y.dtype == layer.backward(np.ones(x.shape)).dtype == layer.weight.grad.dtype == dtype


@pytest.mark.parametrize(
    "row", [[1e30, -1e30, 5e29, 0.0], [3e38, -3e38, 1e38, -2e38], [4.0, 4.0, 4.0, 4.0]]
)
def test_extreme_and_constant_float32_rows_give_finite_outputs_without_warnings(row):
    layer = LayerNorm(4)
    x = np.array([row, [1.0, 2.0, 3.0, 4.0]], np.float32)
    y = layer(x)
    exact = np.array(row) / max(1.0, np.max(np.abs(row)))
    exact = (exact - exact.mean()) / np.sqrt(exact.var() + (1e-5 if exact.var() == 0 else 0))
    np.testing.assert_allclose(y[0], exact, rtol=1e-5, atol=1e-5)
    assert np.isfinite(layer.backward(np.ones_like(x))).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"normalized_shape": 0}, ValueError, "normalized_shape must be a positive integer, got 0"),
        ({"normalized_shape": "4"}, TypeError, r"must be a positive integer or a tuple of them"),
        ({"normalized_shape": 4.0}, TypeError, r"normalized_shape must be a positive integer or"),
        ({"normalized_shape": True}, TypeError, r"normalized_shape must be a positive integer or"),
        ({"normalized_shape": ()}, ValueError, r"must hold at least one size, got \(\)"),
        ({"normalized_shape": [2, "3"]}, TypeError, r"normalized_shape\[1\] must be a positive"),
        ({"normalized_shape": (2, -1)}, ValueError, r"normalized_shape\[1\] must be a positive"),
        ({"normalized_shape": (1,) * 33}, ValueError, "may hold at most 32 sizes, got 33"),
        ({"eps": 0.0}, ValueError, "LayerNorm eps must be a finite number > 0, got 0.0"),
        ({"eps": "0.1"}, TypeError, "LayerNorm eps must be a real number"),
        ({"elementwise_affine": "True"}, TypeError, "elementwise_affine must be True or False"),
        ({"bias": None}, TypeError, "LayerNorm bias must be True or False, got None"),
        ({"dtype": None}, TypeError, "LayerNorm dtype must be a floating-point type"),
    ],
)
def test_layer_norm_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        LayerNorm(**{"normalized_shape": 4, **kwargs})


def test_layer_norm_checks_its_input_and_gradient():
    layer = LayerNorm((2, 3))
    with pytest.raises(
        ShapeError,
        match=r"LayerNorm\(\(2, 3\)\) expected an input whose last 2 axes are \(2, 3\), "
        r"shape \(\*, 2, 3\), got shape \(4, 3, 2\)",
    ):
        layer(np.zeros((4, 3, 2)))
    with pytest.raises(ShapeError, match=r"got shape \(3,\)"):
        layer(np.zeros(3))
    with pytest.raises(TypeError, match=r"LayerNorm input .*got dtype complex128"):
        layer(np.zeros((1, 2, 3), complex))
    with pytest.raises(RuntimeError, match="after a forward pass that failed"):
        layer.backward(np.zeros((1, 2, 3), np.float32))
    layer(np.ones((4, 2, 3)))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(4, 2, 3\)"):
        layer.backward(np.zeros((4, 3, 2), np.float32))
    layer.eval()(np.ones((4, 2, 3)))
    layer.train()
    with pytest.raises(RuntimeError, match=r"LayerNorm.backward\(\): the last forward pass ran"):
        layer.backward(np.zeros((4, 2, 3), np.float32))


def test_layer_norm_saves_loads_and_rebuilds_from_its_config(tmp_path):
    pytest.importorskip("safetensors")
    model = Sequential(Dense(4, 6, rng=0), LayerNorm(6, eps=1e-3, bias=False), Tanh())
    model[1].weight.value[:] = np.linspace(0.5, 2, 6)
    mg.save(model, tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    x = np.random.default_rng(4).normal(size=(3, 4))
    np.testing.assert_array_equal(loaded(x), model(x))
    config = LayerNorm((2, 3)).get_config()
    assert config == {
        "normalized_shape": [2, 3],
        "eps": 1e-5,
        "elementwise_affine": True,
        "bias": True,
        "dtype": "float32",
    }
    assert not LayerNorm.from_config(config).weight.value.any()  # for a load to fill
    with pytest.raises(ValueError, match="a LayerNorm config has the keys"):
        LayerNorm.from_config({"normalized_shape": [2]})
    with pytest.raises(ShapeError, match=r"layer 1 \(LayerNorm.*expects 6 input features"):
        Sequential(Dense(4, 5), LayerNorm(6))
