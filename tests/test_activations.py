"""GELU, SiLU, ELU, Softplus, LogSoftmax and Identity: finite differences, PyTorch as an oracle,
extreme inputs, dtypes and errors; and the erf behind the exact GELU, against math.erf."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import ELU, GELU, Identity, LogSoftmax, ShapeError, SiLU, Softplus
from minigrad.layers._special import erf, erfc
from minigrad.testing import batches_for, check_gradients, floats_away_from_zero, sequential_stacks
from minigrad.testing.strategies import DEFAULT_ACTIVATIONS

#: (id, build, the same function in torch.nn.functional: f(F, x))
ACTIVATIONS = [
    ("gelu", GELU, lambda F, x: F.gelu(x)),
    ("gelu-tanh", lambda: GELU(approximate="tanh"), lambda F, x: F.gelu(x, approximate="tanh")),
    ("silu", SiLU, lambda F, x: F.silu(x)),
    ("elu", ELU, lambda F, x: F.elu(x)),
    ("elu-0.3", lambda: ELU(alpha=0.3), lambda F, x: F.elu(x, alpha=0.3)),
    ("softplus", Softplus, lambda F, x: F.softplus(x)),
    (
        "softplus-2-5",
        lambda: Softplus(beta=2.0, threshold=5.0),
        lambda F, x: F.softplus(x, beta=2.0, threshold=5.0),
    ),
    ("log-softmax", LogSoftmax, lambda F, x: F.log_softmax(x, dim=-1)),
    ("log-softmax-0", lambda: LogSoftmax(dim=0), lambda F, x: F.log_softmax(x, dim=0)),
    ("identity", Identity, lambda F, x: x * 1),
]
IDS = [case[0] for case in ACTIVATIONS]
BUILDS = [case[1] for case in ACTIVATIONS]
ELEMENT_WISE = [case for case in ACTIVATIONS if not case[0].startswith(("log", "identity"))]
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


def ulps(value, reference):
    """|value - reference| in units of the last place of the reference, in its dtype."""
    value, reference = np.asarray(value), np.asarray(reference)
    same = (value == reference) | (np.isnan(value) & np.isnan(reference))
    with np.errstate(invalid="ignore"):
        error = np.abs(value.astype(np.float64) - reference.astype(np.float64))
        spacing = np.spacing(np.abs(reference)).astype(np.float64)
        return np.where(same, 0.0, error / spacing)


# -- erf and erfc -------------------------------------------------------------------------------

#: a wide grid, the interval ends of the approximation and the tails (erfc(26.5) is subnormal)
GRID = np.concatenate(
    [
        np.linspace(-30.0, 30.0, 60_001),
        np.geomspace(1e-300, 30.0, 3_001),
        -np.geomspace(1e-300, 30.0, 3_001),
        [0.0, -0.0, 0.25, 0.84375, 1.25, 1 / 0.35, 6.0, 26.5, 28.0, -28.0, 1e300, -1e300],
    ]
)


def test_erf_and_erfc_match_math_within_a_few_ulps_in_float64():
    assert ulps(erf(GRID), [math.erf(v) for v in GRID]).max() <= 2
    assert ulps(erfc(GRID), [math.erfc(v) for v in GRID]).max() <= 4


@given(st.floats(-40.0, 40.0, allow_subnormal=False))
def test_erf_and_erfc_match_math_at_any_float(v):
    x = np.array([v, -v])
    assert ulps(erf(x), [math.erf(v), math.erf(-v)]).max() <= 2
    assert ulps(erfc(x), [math.erfc(v), math.erfc(-v)]).max() <= 4


def test_erfc_keeps_its_relative_precision_in_the_tail():
    x = np.array([5.0, 10.0, 20.0, 26.0])
    np.testing.assert_allclose(erfc(x), [math.erfc(v) for v in x], rtol=1e-15)
    assert erfc(np.array([26.0]))[0] > 0  # 1 - erf(26) is 0


def test_erf_and_erfc_in_float32_are_computed_in_float32_to_a_few_ulps():
    x = GRID[(np.abs(GRID) > 1e-30) & (np.abs(GRID) < 1e30)].astype(np.float32)
    for function, reference in ((erf, math.erf), (erfc, math.erfc)):
        value = function(x)
        assert value.dtype == np.float32
        expected = np.array([reference(float(v)) for v in x]).astype(np.float32)
        assert ulps(value, expected).max() <= 4


def test_erf_and_erfc_special_values_and_dtypes():
    x = np.array([np.inf, -np.inf, np.nan, 0.0])
    np.testing.assert_array_equal(erf(x), [1.0, -1.0, np.nan, 0.0])
    np.testing.assert_array_equal(erfc(x), [0.0, 2.0, np.nan, 1.0])
    assert erf(np.array([1, 2])).dtype == np.float64
    assert erfc(np.array([0.5], np.float16)).dtype == np.float16
    np.testing.assert_allclose(erfc(np.array([0.5], np.float16)), math.erfc(0.5), rtol=1e-3)


# -- gradients against finite differences ---------------------------------------------------------


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
@given(data=st.data())
def test_gradients_match_finite_differences(make, data):
    # away from ELU's kink at 0 (for alpha != 1) and from Softplus's switch at beta x = 5
    elements = floats_away_from_zero(0.01, 6.0).filter(lambda v: abs(2 * v - 5.0) > 0.01)
    x = data.draw(hnp.arrays(np.float64, shapes, elements=elements))
    report = check_gradients(make(), x)
    assert set(report.errors) == {"input"}


@given(x=hnp.arrays(np.float64, shapes, elements=st.floats(-40.0, 40.0)))
def test_the_smooth_ones_pass_finite_differences_anywhere_including_the_tails(x):
    for layer in (GELU(), GELU(approximate="tanh"), SiLU(), Softplus(threshold=100.0)):
        check_gradients(layer, x, atol=1e-7)


# -- PyTorch as an oracle -------------------------------------------------------------------------


def torch_pass(torch, function, x, g):
    F = torch.nn.functional
    tx = torch.tensor(x, requires_grad=True)
    ty = function(F, tx)
    ty.backward(torch.from_numpy(g))
    return ty.detach().numpy(), tx.grad.numpy()


def assert_close_to_torch(ours, theirs, x, scale, dtype):
    """|ours - torch| within a few units of rounding of the terms that make them up: the
    relative precision of a value near 0 that is a difference of larger terms (GELU's
    1 + erf in the negative tail, in PyTorch) is that of the terms, of size ~(1 + |x|)."""
    info = np.finfo(dtype)
    eps = float(info.eps)
    tolerance = 16 * eps * ((1.0 + np.abs(x.astype(np.float64))) * scale + np.abs(theirs))
    error = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    assert np.all(error <= tolerance + float(info.tiny)), error.max()  # tiny: subnormal noise


@pytest.mark.parametrize(("name", "make", "function"), ACTIVATIONS, ids=IDS)
@given(data=st.data())
def test_outputs_and_gradients_equal_torch_to_float64_rounding(torch, name, make, function, data):
    x = data.draw(hnp.arrays(np.float64, shapes, elements=st.floats(-60.0, 60.0)))
    if name == "log-softmax-0":
        x = x.reshape(x.shape[0], -1)
    g = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-2.0, 2.0)))
    layer = make()
    y, dx = layer(x), layer.backward(g)
    ty, tdx = torch_pass(torch, function, x, g)
    assert y.dtype == dx.dtype == np.float64
    scale = 1.0 + np.abs(g).sum() if name.startswith("log") else np.abs(g)
    assert_close_to_torch(y, ty, x, 1.0, np.float64)
    assert_close_to_torch(dx, tdx, x, scale, np.float64)


@pytest.mark.parametrize(("name", "make", "function"), ACTIVATIONS, ids=IDS)
def test_float32_outputs_and_gradients_are_within_a_few_ulps_of_torch(torch, name, make, function):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(scale=3.0, size=(200, 8)), rng.uniform(-60, 60, (200, 8))])
    x, g = x.astype(np.float32), rng.normal(size=x.shape).astype(np.float32)
    layer = make()
    y, dx = layer(x), layer.backward(g)
    assert y.dtype == dx.dtype == np.float32
    ty, tdx = torch_pass(torch, function, x, g)
    scale = 1.0 + np.abs(g).sum(axis=-1 if name != "log-softmax-0" else 0, keepdims=True)
    assert_close_to_torch(y, ty, x, 1.0, np.float32)
    assert_close_to_torch(dx, tdx, x, scale if name.startswith("log") else np.abs(g), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "make", "function"), ELEMENT_WISE, ids=IDS[:7])
def test_extreme_inputs_give_the_limits_with_no_warning(torch, name, make, function, dtype):
    # pytest turns warnings into errors: an overflow or an invalid 0 * inf would fail here
    big = float(np.finfo(dtype).max)
    x = np.array([-big, -1e30, -1e4, -700.0, -50.0, 50.0, 700.0, 1e4, 1e30, big], dtype)
    g = np.ones_like(x)
    layer = make()
    y, dx = layer(x), layer.backward(g)
    assert y.dtype == dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    np.testing.assert_array_equal(y[-3:], x[-3:])  # y = x far right
    np.testing.assert_array_equal(dx[-4:], 1.0)
    limit = dtype(-getattr(layer, "alpha", 0.0))  # ELU tends to -alpha, the others to 0
    np.testing.assert_array_equal(y[:3], limit)
    np.testing.assert_array_equal(dx[:3], 0.0)
    # where PyTorch is finite, it agrees
    ty, tdx = torch_pass(torch, function, x, g)
    finite = np.isfinite(ty) & np.isfinite(tdx)
    np.testing.assert_allclose(y[finite], ty[finite], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(dx[finite], tdx[finite], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("make", BUILDS[:7], ids=IDS[:7])
def test_infinite_inputs_give_the_limits(make):
    x = np.array([-np.inf, np.inf, np.nan])
    layer = make()
    y, dx = layer(x), layer.backward(np.ones(3))
    np.testing.assert_array_equal(y, [-getattr(layer, "alpha", 0.0), np.inf, np.nan])
    np.testing.assert_array_equal(dx, [0.0, 1.0, np.nan])


def test_exact_gelu_keeps_its_relative_precision_in_the_negative_tail():
    # PyTorch's 1 + erf(x / sqrt 2) is 0 below about -8.3; x Phi(x) is not
    x = np.array([-5.0, -10.0, -20.0, -37.0])
    layer = GELU()
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(layer(x), x * phi, rtol=1e-12)
    slope = phi + x * np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(layer.backward(np.ones(4)), slope, rtol=1e-11)
    assert np.all(layer(x) < 0)


def test_silu_and_softplus_keep_their_tails_and_log_softmax_its_gaps():
    x = np.array([-700.0, -40.0])
    np.testing.assert_allclose(SiLU()(x), x / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(Softplus()(x), np.exp(x), rtol=1e-14)
    extremes = np.array([[3e38, -3e38], [1e4, -1e4]], np.float32)
    layer = LogSoftmax()
    y = layer(extremes)
    np.testing.assert_array_equal(y, [[0.0, -np.inf], [0.0, -2e4]])  # as in PyTorch
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), [[-1.0, 1.0], [-1.0, 1.0]])


def test_log_softmax_of_infinities_is_nan_as_in_pytorch_without_a_warning():
    y = LogSoftmax()(np.array([[np.inf, 0.0], [-np.inf, -np.inf], [-np.inf, 1.0]]))
    np.testing.assert_array_equal(y, [[np.nan, np.nan], [np.nan, np.nan], [-np.inf, 0.0]])


def test_softplus_is_the_identity_above_the_threshold_exactly_as_torch(torch):
    layer = Softplus(beta=0.5, threshold=3.0)
    x = np.array([5.9, 6.0, 6.1, 100.0], np.float32)  # beta x = 2.95, 3, 3.05, 50
    y = layer(x)
    np.testing.assert_array_equal(y[2:], x[2:])
    assert y[1] != x[1]  # beta x = threshold: the logarithm, as in PyTorch
    ty, tdx = torch_pass(torch, lambda F, t: F.softplus(t, 0.5, 3.0), x, np.ones_like(x))
    np.testing.assert_allclose(y, ty, rtol=1e-6)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), tdx, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("beta", [1e10, 1e-30])
def test_a_beta_beyond_the_dtype_is_not_nan(dtype, beta):
    x = np.array([-2.0, 0.0, 3.0], dtype)
    layer = Softplus(beta=beta)
    y = layer(x)
    z = beta * x.astype(np.float64)
    expected = np.where(z > 20, x, np.logaddexp(0.0, z) / beta)
    with np.errstate(over="ignore"):  # 1e-30 in float16: log(2) / beta is inf
        np.testing.assert_allclose(y, expected.astype(dtype), rtol=1e-3)
    assert y.dtype == layer.backward(np.ones(3)).dtype == dtype


# -- dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("make", BUILDS, ids=IDS)
def test_dtype_is_kept_and_a_float64_gradient_is_converted(make, dtype):
    x = np.array([[0.5, -1.0, 2.0], [-0.3, 0.8, -2.5]], dtype=dtype)
    g = np.array([[0.1, -0.7, 0.4], [1.3, 0.2, -0.6]])
    layer = make()
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape
    grad = layer.backward(g)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, layer.backward(g.astype(dtype)))


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
def test_integers_and_booleans_become_float64(make):
    assert make()(np.array([[1, 0], [2, 3]])).dtype == np.float64
    assert make()(np.array([[True, False]])).dtype == np.float64


def test_identity_returns_its_input_without_a_copy():
    x = np.ones((2, 3), np.float32)
    layer = Identity()
    assert layer(x) is x
    g = np.full((2, 3), 2.0, np.float32)
    assert layer.backward(g) is g


# -- errors ------------------------------------------------------------------------------------

NOT_REAL = [np.array([[1 + 2j, 0.5]]), np.array([["1.5", "2"]]), np.array([[0.5, None]], object)]


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
@pytest.mark.parametrize("x", NOT_REAL, ids=["complex", "strings", "object"])
def test_inputs_that_are_not_real_numbers_are_refused(make, x):
    layer = make()
    with pytest.raises(TypeError, match=rf"{type(layer).__name__} input must be a numeric array"):
        layer(x)


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
def test_backward_before_forward_after_an_eval_forward_and_with_a_bad_gradient(make):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.ones((1, 2)))
    layer(np.array([[0.5, -1.0]]))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(1, 2\).*got \(2, 1\)"):
        layer.backward(np.ones((2, 1)))
    with pytest.raises(TypeError, match=r"backward takes the gradient as a NumPy array.*list"):
        layer.backward([[1.0, 1.0]])
    with pytest.raises(TypeError, match="floating-point gradient, got dtype int64"):
        layer.backward(np.ones((1, 2), np.int64))
    layer.eval()
    layer(np.array([[2.0, 3.0]]))  # what predict does between the loss and backward
    layer.train()
    with pytest.raises(RuntimeError, match=r"last forward pass ran in evaluation mode"):
        layer.backward(np.ones((1, 2)))


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
def test_forward_and_backward_both_in_eval_mode_work(make):
    layer = make()
    x, g = np.array([[0.5, -1.0]]), np.array([[1.0, 2.0]])
    layer(x)
    expected = layer.backward(g)
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.backward(g), expected)


def test_log_softmax_shape_errors_and_a_failed_forward_leaves_nothing():
    layer = LogSoftmax(dim=1)
    with pytest.raises(ShapeError, match=r"LogSoftmax\(dim=1\) needs an input with a dimension 1"):
        layer(np.zeros(3))
    y = layer(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match=r"at least one entry along dimension 1.*\(3, 0\)"):
        layer(np.zeros((3, 0)))
    with pytest.raises(RuntimeError, match="after a forward pass that failed"):
        layer.backward(np.ones_like(y))
    assert LogSoftmax()(np.zeros((0, 3))).shape == (0, 3)  # an empty batch is fine


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: GELU("exact"), ValueError, r"approximate must be 'none' or 'tanh', got 'exact'"),
        (lambda: GELU(None), TypeError, r"GELU approximate must be 'none' or 'tanh', got None \("),
        (lambda: GELU(True), TypeError, r"approximate must be 'none' or 'tanh', got True \(bool\)"),
        (lambda: ELU("1.0"), TypeError, r"ELU alpha must be a real number, got '1\.0' \(str\)"),
        (lambda: ELU(True), TypeError, r"ELU alpha must be a real number, got True \(bool\)"),
        (lambda: ELU(float("nan")), ValueError, "ELU alpha must be a finite number, got nan"),
        (lambda: ELU(float("inf")), ValueError, "ELU alpha must be a finite number, got inf"),
        (lambda: Softplus(0.0), ValueError, r"Softplus beta must be a finite number > 0, got 0\.0"),
        (lambda: Softplus(-1), ValueError, r"Softplus beta must be a finite number > 0, got -1"),
        (lambda: Softplus("2"), TypeError, r"Softplus beta must be a real number, got '2' \(str\)"),
        (lambda: Softplus(np.inf), ValueError, "Softplus beta must be a finite number > 0, got in"),
        (lambda: Softplus(threshold=np.nan), ValueError, "threshold must be a finite number"),
        (lambda: Softplus(threshold=False), TypeError, r"threshold must be a real number, got F"),
        (lambda: LogSoftmax(1.0), TypeError, r"LogSoftmax dim must be an integer, got 1\.0"),
        (lambda: LogSoftmax("1"), TypeError, r"LogSoftmax dim must be an integer, got '1' \(str"),
        (lambda: LogSoftmax(True), TypeError, r"LogSoftmax dim must be an integer, got True"),
        (lambda: LogSoftmax(64), ValueError, r"LogSoftmax dim must be in \[-64, 63\], got 64"),
        (lambda: Identity(3), TypeError, "takes 1 positional argument"),
    ],
)
def test_arguments_are_checked_not_coerced(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("layer", "attribute", "value", "error"),
    [
        (GELU(), "approximate", "exact", ValueError),
        (ELU(), "alpha", "2", TypeError),
        (Softplus(), "beta", 0, ValueError),
        (Softplus(), "threshold", np.inf, ValueError),
        (LogSoftmax(), "dim", "0", TypeError),
        (SiLU(), "training", "False", TypeError),
    ],
)
def test_attributes_are_checked_when_assigned(layer, attribute, value, error):
    before = getattr(layer, attribute)
    with pytest.raises(error, match=f"{type(layer).__name__} {attribute} must be"):
        setattr(layer, attribute, value)
    assert getattr(layer, attribute) == before


def test_numpy_numbers_are_taken():
    assert ELU(np.float32(0.5)).alpha == 0.5 and type(ELU(np.float32(0.5)).alpha) is float
    assert Softplus(np.int64(2), np.float64(10)).beta == 2.0
    assert LogSoftmax(np.int64(0)).dim == 0
    assert GELU(np.str_("tanh")).approximate == "tanh"


# -- configuration, repr, files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "torch_layer"),
    [
        (GELU(), "GELU()"),
        (GELU(approximate="tanh"), "GELU(approximate='tanh')"),
        (SiLU(), "SiLU()"),
        (ELU(alpha=0.5), "ELU(alpha=0.5)"),
        (Softplus(beta=2.0, threshold=10.0), "Softplus(beta=2.0, threshold=10.0)"),
        (LogSoftmax(dim=1), "LogSoftmax(dim=1)"),
        (Identity(), "Identity()"),
    ],
    ids=repr,
)
def test_repr_is_pytorchs(torch, layer, torch_layer):
    assert repr(layer) == repr(eval(f"torch.nn.{torch_layer}"))


@pytest.mark.parametrize("make", BUILDS, ids=IDS)
def test_config_rebuilds_the_layer(make):
    layer = make()
    copy = type(layer).from_config(layer.get_config())
    assert repr(copy) == repr(layer) and copy is not layer
    x = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_array_equal(copy(x), layer(x))


def test_every_activation_saves_and_loads(tmp_path):
    model = mg.Sequential(
        mg.Dense(3, 4, rng=0),
        GELU(approximate="tanh"),
        mg.Dense(4, 4, rng=1),
        SiLU(),
        ELU(alpha=0.2),
        Softplus(beta=3.0, threshold=4.0),
        Identity(),
        mg.Dense(4, 3, rng=2),
        GELU(),
        LogSoftmax(dim=1),
    )
    mg.save(model, tmp_path / "model.safetensors")
    copy = mg.load(tmp_path / "model.safetensors")
    assert repr(copy) == repr(model)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(copy(x), model(x))


def test_widths_are_seen_through_the_new_activations():
    model = mg.Sequential(mg.Dense(2, 3), GELU(), SiLU(), ELU(), Softplus(), Identity())
    assert model.out_features == 3
    with pytest.raises(ShapeError, match=r"layer 6 .*expects 4 input features, but layer 0"):
        model.append(mg.Dense(4, 1))


# -- random stacks ---------------------------------------------------------------------------


def test_random_stacks_draw_the_new_element_wise_activations():
    assert {GELU, SiLU, ELU, Softplus} <= set(DEFAULT_ACTIVATIONS)


@given(model=sequential_stacks(activations=(GELU, SiLU, ELU, Softplus, Identity)), data=st.data())
def test_random_stacks_of_the_new_activations_pass_the_gradient_check(model, data):
    report = check_gradients(model, data.draw(batches_for(model)))
    assert set(report.errors) == {"input", *model.state_dict()}
