"""BatchNorm1d and BatchNorm2d: finite differences in both modes, PyTorch as the oracle for
outputs, gradients, running statistics and state_dict keys, files, numerics and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import BatchNorm1d, BatchNorm2d, ShapeError
from minigrad.gradient_bounds import GradientBounds
from minigrad.testing import GradientCheckError, check_gradients

#: (class, number of input dimensions)
LAYOUTS = [(BatchNorm1d, 2), (BatchNorm1d, 3), (BatchNorm2d, 4)]
LAYOUT_IDS = ["1d-2d", "1d-3d", "2d"]
#: every (affine, bias, track_running_stats)
CONFIGS = [(a, b, t) for a in (True, False) for b in (True, False) for t in (True, False)]


def input_shape(ndim: int, batch: int, channels: int, side: int) -> tuple[int, ...]:
    return (batch, channels, *([side] * (ndim - 2)))


@st.composite
def cases(draw, min_values: int = 2):
    """A float64 layer of a random layout and configuration (weights not 1, bias not 0) and
    an input with at least ``min_values`` values per channel and a spread that finite
    differences resolve; batches of 1 and 2 included where positions make up the rest."""
    cls, ndim = draw(st.sampled_from(LAYOUTS))
    channels = draw(st.integers(1, 3))
    side = draw(st.integers(1, 3)) if ndim > 2 else 1
    positions = side ** (ndim - 2)
    batch = draw(st.integers(max(1, -(-min_values // positions)), 4))
    affine, bias, track = draw(st.sampled_from(CONFIGS))
    momentum = draw(st.sampled_from([0.1, None, 0.5, 1.0, 0.0]))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.5]))
    layer = cls(
        channels,
        eps=eps,
        momentum=momentum,
        affine=affine,
        bias=bias,
        track_running_stats=track,
        dtype=np.float64,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if layer.weight is not None:
        layer.weight.value[:] = rng.uniform(0.5, 2.0, channels) * rng.choice([-1, 1], channels)
    if layer.bias is not None:
        layer.bias.value[:] = rng.normal(size=channels)
    shape = input_shape(ndim, batch, channels, side)
    x = rng.normal(rng.normal(0, 5, (1, channels) + (1,) * (ndim - 2)), 2.0, shape)
    axes = (0, *range(2, ndim))
    assume(np.all(np.std(x, axis=axes) > 0.2))  # no spread finite differences cannot resolve
    return layer, x, seed


def with_running_statistics(layer, seed):
    """Running statistics that are not the initial ones (positive variances)."""
    if layer.running_mean is not None:
        rng = np.random.default_rng(seed + 1)
        layer.running_mean.value[:] = rng.normal(size=layer.num_features)
        layer.running_var.value[:] = rng.uniform(0.3, 3.0, layer.num_features)
    return layer


def parameter_names(layer) -> set[str]:
    return {name for name, _ in layer.named_parameters()}


# -- finite differences ------------------------------------------------------------------------


@given(case=cases())
def test_training_mode_gradients_match_finite_differences(case):
    layer, x, seed = case
    before = {key: value.copy() for key, value in layer.state_dict().items()}
    report = check_gradients(layer, x, seed=seed % 1000)
    assert set(report.errors) == {"input"} | parameter_names(layer)
    assert layer.training  # checked in the mode it was in
    for key, value in layer.state_dict().items():  # the check's forward passes left no trace
        np.testing.assert_array_equal(value, before[key])


@given(case=cases())
def test_evaluation_mode_gradients_match_finite_differences(case):
    layer, x, seed = case
    with_running_statistics(layer, seed).eval()
    report = check_gradients(layer, x, seed=seed % 1000)
    assert set(report.errors) == {"input"} | parameter_names(layer)


class ConstantStatistics(BatchNorm1d):
    """The classic from-scratch bug: backward as if the batch mean and variance were
    constants, dL/dx = g w / sqrt(var + eps)."""

    def backward(self, grad_output):
        super().backward(grad_output)
        return grad_output * (self.weight.value * self._inv_std)


def test_the_check_runs_through_the_batch_statistics_in_training_mode():
    x = np.random.default_rng(0).normal(size=(5, 3))
    layer = ConstantStatistics(3, dtype=np.float64)
    with pytest.raises(GradientCheckError, match="gradient of 'input'"):
        check_gradients(layer, x)
    assert layer.training
    report = check_gradients(layer.eval(), x)  # right in eval mode: the statistics are constant
    assert set(report.errors) == {"input", "weight", "bias"}


def test_backward_parameters_fills_the_gradients_of_backward():
    rng = np.random.default_rng(1)
    layer = BatchNorm2d(3, dtype=np.float64)
    x, g = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 3, 4, 4))
    layer(x)
    layer.backward(g)
    expected = [layer.weight.grad.copy(), layer.bias.grad.copy()]
    layer.zero_grad()
    layer(x)
    assert layer.backward_parameters(g) is None
    np.testing.assert_array_equal(layer.weight.grad, expected[0])
    np.testing.assert_array_equal(layer.bias.grad, expected[1])


# -- PyTorch as the oracle ---------------------------------------------------------------------


def torch_twin(torch, layer):
    """The PyTorch module of the same class and configuration, with the layer's state."""
    cls = getattr(torch.nn, type(layer).__name__)
    twin = cls(
        layer.num_features,
        eps=layer.eps,
        momentum=layer.momentum,
        affine=layer.affine,
        track_running_stats=layer.track_running_stats,
        bias=layer.bias is not None,
        dtype=getattr(torch, layer.get_config()["dtype"]),
    )
    twin.load_state_dict(
        {key: torch.from_numpy(value) for key, value in layer.state_dict().items()}
    )
    twin.train(layer.training)
    return twin


def run_torch(torch, module, x, g):
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    ty.backward(torch.from_numpy(g))
    grads = {name: p.grad.numpy().copy() for name, p in module.named_parameters()}
    module.zero_grad()
    return ty.detach().numpy(), tx.grad.numpy(), grads


def assert_same(ours, theirs, rtol=1e-10):
    """Equal to float64 rounding (an absolute floor for values that are sums cancelling to 0)."""
    scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-13 * scale)


def compare_step(torch, layer, twin, x, g, rtol=1e-10):
    y, dx, grads = run_torch(torch, twin, x, g)
    assert_same(layer(x), y, rtol)
    assert_same(layer.backward(g), dx, rtol)
    for name, p in layer.named_parameters():
        assert_same(p.grad, grads[name], rtol)
    state, theirs = layer.state_dict(), twin.state_dict()
    assert list(state) == list(theirs)
    for key, value in state.items():
        assert value.dtype == theirs[key].numpy().dtype
        assert_same(value, theirs[key].numpy(), rtol)


@settings(max_examples=25)
@given(case=cases(), steps=st.integers(1, 4))
def test_training_steps_then_evaluation_match_torch(torch, case, steps):
    """Outputs, dL/dx, dL/dw, dL/db at every step; running_mean, running_var and
    num_batches_tracked after each (momentum 0.1, None, others; with and without affine and
    running statistics); then the evaluation-mode output and gradients."""
    layer, x, seed = case
    twin = torch_twin(torch, layer)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        batch = x if step == 0 else x * rng.uniform(0.5, 2.0) + rng.normal(size=x.shape)
        compare_step(torch, layer, twin, batch, rng.normal(size=x.shape))
    layer.eval()
    twin.eval()
    compare_step(torch, layer, twin, x + rng.normal(size=x.shape), rng.normal(size=x.shape))


@pytest.mark.parametrize(("cls", "ndim"), LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_float32_matches_torch_to_a_few_ulps(torch, cls, ndim, momentum):
    rng = np.random.default_rng(2)
    layer = cls(4, momentum=momentum)
    layer.weight.value[:] = rng.uniform(0.5, 2, 4)
    layer.bias.value[:] = rng.normal(size=4)
    twin = torch_twin(torch, layer)
    shape = input_shape(ndim, 16, 4, 5)
    for _ in range(3):
        x = rng.normal(3.0, 2.0, shape).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        y, dx, grads = run_torch(torch, twin, x, g)
        ours = [layer(x), layer.backward(g), layer.weight.grad, layer.bias.grad]
        theirs = [y, dx, grads["weight"], grads["bias"]]
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == np.float32
            # a few ulps of the largest value (sums over n values carry n roundings)
            scale = float(np.max(np.abs(b)))
            np.testing.assert_allclose(a, b, rtol=0, atol=64 * np.finfo(np.float32).eps * scale)
    for key, value in layer.state_dict().items():
        expected = twin.state_dict()[key].numpy()
        np.testing.assert_allclose(value, expected, rtol=8 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d])
@pytest.mark.parametrize(("affine", "bias", "track"), CONFIGS)
def test_state_dict_keys_shapes_and_dtypes_are_torch_s(torch, cls, affine, bias, track):
    layer = cls(3, affine=affine, bias=bias, track_running_stats=track)
    twin = getattr(torch.nn, cls.__name__)(
        3, affine=affine, bias=bias, track_running_stats=track, dtype=torch.float32
    )
    ours = {key: (value.shape, value.dtype) for key, value in layer.state_dict().items()}
    theirs = {
        key: (tuple(value.shape), value.numpy().dtype) for key, value in twin.state_dict().items()
    }
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert repr(layer) == repr(twin)
    torch_state = {key: value.numpy() for key, value in twin.state_dict().items()}
    layer.load_state_dict(torch_state)  # and each loads the other's
    twin.load_state_dict({key: torch.from_numpy(v) for key, v in layer.state_dict().items()})


def test_a_torch_batchnorm2d_file_loads_into_minigrad_and_back(torch, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    rng = np.random.default_rng(3)
    twin = torch.nn.BatchNorm2d(3, momentum=None, dtype=torch.float32)
    for _ in range(3):  # running statistics and a count that are not the initial ones
        twin(torch.tensor(rng.normal(2.0, 3.0, (4, 3, 5, 5)), dtype=torch.float32))
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(rng.uniform(0.5, 2, 3)))
        twin.bias.copy_(torch.tensor(rng.normal(size=3)))
    twin.eval()
    path = tmp_path / "bn.safetensors"
    safetensors_torch.save_file(twin.state_dict(), str(path))

    layer = BatchNorm2d(3, momentum=None)
    layer.load_state_dict(mg.load_tensors(path))
    assert int(layer.num_batches_tracked.value) == 3
    x = rng.normal(2.0, 3.0, (2, 3, 5, 5)).astype(np.float32)
    expected = twin(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(layer.eval()(x), expected, rtol=1e-6, atol=1e-6)

    model = mg.Sequential(layer)
    mg.save(model, tmp_path / "model.safetensors")  # and back, through a minigrad model file
    back = torch.nn.Sequential(torch.nn.BatchNorm2d(3, momentum=None, dtype=torch.float32))
    back.load_state_dict(safetensors_torch.load_file(str(tmp_path / "model.safetensors")))
    assert int(back[0].num_batches_tracked) == 3
    back_output = back.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(back_output, model(x), rtol=1e-6, atol=1e-6)


# -- the running statistics, without PyTorch ---------------------------------------------------


def test_running_statistics_use_the_unbiased_variance_and_the_momentum():
    rng = np.random.default_rng(4)
    layer = BatchNorm1d(2, momentum=0.25, dtype=np.float64)
    x = rng.normal(size=(5, 2))
    layer(x)
    np.testing.assert_allclose(layer.running_mean.value, 0.25 * x.mean(axis=0), rtol=1e-14)
    expected = 0.75 * 1.0 + 0.25 * x.var(axis=0, ddof=1)  # n / (n - 1), not the biased var
    np.testing.assert_allclose(layer.running_var.value, expected, rtol=1e-14)
    # the output is normalised with the biased variance
    y = layer.eval().train()(x)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12)


def test_momentum_none_is_the_cumulative_average_of_the_batches():
    rng = np.random.default_rng(5)
    layer = BatchNorm2d(3, momentum=None, dtype=np.float64)
    batches = [rng.normal(k, 1 + k, (2, 3, 3, 3)) for k in range(4)]
    for x in batches:
        layer(x)
    means = [x.mean(axis=(0, 2, 3)) for x in batches]
    variances = [x.var(axis=(0, 2, 3), ddof=1) for x in batches]
    np.testing.assert_allclose(layer.running_mean.value, np.mean(means, axis=0), rtol=1e-13)
    np.testing.assert_allclose(layer.running_var.value, np.mean(variances, axis=0), rtol=1e-13)
    assert layer.num_batches_tracked.value == 4 and layer.num_batches_tracked.dtype == np.int64


def test_evaluation_uses_the_running_statistics_and_updates_nothing():
    layer = BatchNorm1d(2, dtype=np.float64)
    layer.running_mean.value[:] = [1.0, -2.0]
    layer.running_var.value[:] = [4.0, 0.25]
    before = layer.state_dict()
    x = np.array([[3.0, -1.0], [5.0, -2.5]])
    expected = (x - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(layer.eval()(x), expected, rtol=1e-14)
    np.testing.assert_allclose(layer(x[:1]), expected[:1], rtol=1e-14)  # one sample is fine
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("training", [True, False])
def test_without_running_statistics_the_batch_s_are_used_in_both_modes(training):
    layer = BatchNorm1d(2, track_running_stats=False, dtype=np.float64).train(training)
    x = np.array([[3.0, -1.0], [5.0, -2.5], [0.0, 1.0]])
    np.testing.assert_allclose(layer(x), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-13)
    assert layer.state_dict().keys() == {"weight", "bias"}
    assert layer.running_mean is None and layer.num_batches_tracked is None


# -- dtypes and extreme values -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_dtype_is_kept_end_to_end(dtype):
    layer = BatchNorm2d(2, dtype=dtype)
    x = np.random.default_rng(6).normal(size=(2, 2, 3, 3))  # float64 given to any layer
    y = layer(x)
    dx = layer.backward(np.ones(x.shape))  # a float64 gradient too
    assert y.dtype == dx.dtype == layer.weight.grad.dtype == layer.running_var.dtype == dtype
    assert layer.eval()(x).dtype == dtype


@pytest.mark.parametrize(
    "values",
    [[1e30, -1e30, 3e29, 0.0], [3e38, -3e38, 1e38, -2e38], [7.0, 7.0, 7.0, 7.0]],
    ids=["1e30", "near-float32-max", "constant"],
)
def test_extreme_and_constant_float32_channels_give_finite_outputs_without_warnings(values):
    x = np.array(values, np.float32).reshape(4, 1)
    x = np.concatenate([x, np.linspace(-1, 1, 4, dtype=np.float32)[:, None]], axis=1)
    layer = BatchNorm1d(2)
    layer.bias.value[:] = 0.5
    y = layer(x)  # pytest turns any warning into an error
    assert np.isfinite(y).all()
    exact = (x.astype(np.float64) - x.astype(np.float64).mean(0)) / np.sqrt(
        x.astype(np.float64).var(0) + 1e-5
    )
    np.testing.assert_allclose(y, exact + 0.5, rtol=1e-5, atol=1e-5)
    dx = layer.backward(np.random.default_rng(7).normal(size=x.shape).astype(np.float32))
    assert np.isfinite(dx).all() and np.isfinite(layer.weight.grad).all()
    assert np.isfinite(layer.eval()(x)).all()


def test_huge_float64_values_normalise_exactly():
    x = np.array([[1e200], [-1e200], [3e199]])
    layer = BatchNorm1d(1, dtype=np.float64)
    exact = (x / 1e200 - (x / 1e200).mean()) / (x / 1e200).std()
    np.testing.assert_allclose(layer(x), exact, rtol=1e-12)


def test_a_nan_input_gives_nan_without_a_warning():
    y = BatchNorm1d(1)(np.array([[np.nan], [1.0], [2.0]], np.float32))
    assert np.isnan(y).all()


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_features": "3"}, TypeError, "BatchNorm1d num_features must be a positive integer"),
        ({"num_features": True}, TypeError, "num_features must be a positive integer, got True"),
        ({"num_features": 3.0}, TypeError, "num_features must be a positive integer, got 3.0"),
        ({"num_features": 0}, ValueError, "num_features must be a positive integer, got 0"),
        ({"num_features": -2}, ValueError, "num_features must be a positive integer, got -2"),
        ({"eps": 0}, ValueError, "BatchNorm1d eps must be a finite number > 0, got 0"),
        ({"eps": -1e-5}, ValueError, "eps must be a finite number > 0, got -1e-05"),
        ({"eps": float("nan")}, ValueError, "eps must be a finite number > 0, got nan"),
        ({"eps": float("inf")}, ValueError, "eps must be a finite number > 0, got inf"),
        ({"eps": "1e-5"}, TypeError, "BatchNorm1d eps must be a real number, got '1e-5'"),
        ({"momentum": 1.5}, ValueError, "momentum must be a finite number >= 0 and <= 1, got 1.5"),
        ({"momentum": -0.1}, ValueError, "momentum must be a finite number >= 0 and <= 1"),
        ({"momentum": float("nan")}, ValueError, "momentum must be a finite number"),
        ({"momentum": "0.1"}, TypeError, "BatchNorm1d momentum must be a real number, got '0.1'"),
        ({"momentum": True}, TypeError, "momentum must be a real number, got True"),
        ({"affine": "False"}, TypeError, "BatchNorm1d affine must be True or False, got 'False'"),
        ({"affine": 0}, TypeError, "affine must be True or False, got 0"),
        ({"track_running_stats": "True"}, TypeError, "track_running_stats must be True or False"),
        ({"bias": 1}, TypeError, "BatchNorm1d bias must be True or False, got 1"),
        ({"dtype": None}, TypeError, "BatchNorm1d dtype must be a floating-point type"),
        ({"dtype": np.int64}, TypeError, "BatchNorm1d dtype must be a floating-point type"),
        ({"num_features": 2**60}, MemoryError, r"BatchNorm1d\(1152921504606846976\) is too large"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        BatchNorm1d(**{"num_features": 3, **kwargs})


def test_momentum_and_eps_are_checked_when_assigned():
    layer = BatchNorm2d(2)
    layer.momentum = None
    layer.momentum = np.float32(0.5)
    with pytest.raises(ValueError, match="BatchNorm2d momentum must be a finite number >= 0"):
        layer.momentum = 2
    with pytest.raises(ValueError, match="BatchNorm2d eps must be a finite number > 0"):
        layer.eps = 0.0
    assert layer.momentum == 0.5 and layer.eps == 1e-5


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            BatchNorm1d(3),
            (2, 3, 4, 5),
            r"BatchNorm1d\(3\) expected a 2-D input \(batch, 3\) or a 3-D input \(batch, 3, "
            r"length\), got 4-D with shape \(2, 3, 4, 5\); for \(batch, C, height, width\) "
            "images use BatchNorm2d",
        ),
        (BatchNorm1d(3), (6,), r"expected a 2-D input \(batch, 3\) .*got 1-D with shape \(6,\)$"),
        (
            BatchNorm1d(3),
            (4, 5),
            r"BatchNorm1d\(3\) expected 3 channels along axis 1 .*got shape \(4, 5\) with 5",
        ),
        (
            BatchNorm2d(3),
            (4, 3, 5),
            r"BatchNorm2d\(3\) expected a 4-D input \(batch, 3, height, width\), got 3-D with "
            r"shape \(4, 3, 5\); for \(batch, C\) or \(batch, C, length\) inputs use BatchNorm1d",
        ),
        (BatchNorm2d(3), (4, 2, 5, 5), r"expected 3 channels along axis 1 .*\(4, 2, 5, 5\) with 2"),
    ],
)
def test_inputs_of_the_wrong_shape_are_refused_with_the_layout_expected(layer, shape, message):
    with pytest.raises(ShapeError, match=message):
        layer(np.zeros(shape))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (BatchNorm1d(3), (1, 3)),
        (BatchNorm1d(3), (1, 3, 1)),
        (BatchNorm2d(3), (1, 3, 1, 1)),
        (BatchNorm1d(3), (0, 3)),
        (BatchNorm1d(3, track_running_stats=False).eval(), (1, 3)),
    ],
)
def test_a_single_value_per_channel_cannot_be_normalised_with_batch_statistics(layer, shape):
    when = "when training" if layer.training else "with track_running_stats=False"
    count = int(np.prod(shape)) // 3
    with pytest.raises(
        ValueError,
        match=f"expected more than 1 value per channel {when}, got input of shape "
        rf"{re_shape(shape)} \({count} per channel\).*change batch_size",
    ):
        layer(np.ones(shape))
    if layer.num_batches_tracked is not None:
        assert layer.num_batches_tracked.value == 0  # unlike PyTorch, a refused batch counts 0


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_inputs_that_are_not_real_numbers_are_refused():
    with pytest.raises(TypeError, match=r"BatchNorm1d input .*got dtype complex128"):
        BatchNorm1d(2)(np.ones((3, 2), complex))
    with pytest.raises(TypeError, match=r"BatchNorm1d input .*got dtype <U1"):
        BatchNorm1d(2)(np.array([["1", "2"], ["3", "4"]]))


def test_backward_checks_when_and_what_it_is_given():
    layer = BatchNorm1d(2)
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.zeros((3, 2), np.float32))
    layer(np.ones((3, 2)))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(3, 2\).*got \(2, 3\)"):
        layer.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="takes a floating-point gradient, got dtype int64"):
        layer.backward(np.zeros((3, 2), np.int64))
    with pytest.raises(TypeError, match=r"takes the gradient as a NumPy array.*got list"):
        layer.backward([[0.0, 0.0]] * 3)
    layer.eval()(np.ones((3, 2)))  # mg.predict between the loss and backward
    layer.train()
    with pytest.raises(RuntimeError, match=r"BatchNorm1d.backward\(\): the last forward pass ran"):
        layer.backward(np.zeros((3, 2), np.float32))
    with pytest.raises(ShapeError):
        layer(np.ones((3, 4)))
    with pytest.raises(RuntimeError, match="after a forward pass that failed"):
        layer.backward(np.zeros((3, 2), np.float32))


def test_forward_and_backward_in_evaluation_mode_work():
    layer = BatchNorm1d(2).eval()
    layer(np.ones((1, 2)))
    np.testing.assert_allclose(
        layer.backward(np.ones((1, 2), np.float32)), 1 / np.sqrt(1 + 1e-5), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("running_var", [1.0, -0.5], r"state_dict\['running_var'\] holds -0.5 for channel 1: "),
        ("running_var", [np.nan, 1.0], r"holds nan for channel 0: a running variance must be"),
        ("running_mean", [0.0, np.inf], r"holds inf for channel 1: a running mean must be finite"),
        ("num_batches_tracked", -3, r"state_dict\['num_batches_tracked'\] is -3"),
    ],
)
def test_unusable_running_statistics_are_refused_by_load_state_dict(key, value, message):
    layer = BatchNorm1d(2)
    state = layer.state_dict()
    state[key] = np.asarray(value, dtype=state[key].dtype)
    with pytest.raises(ValueError, match=message):
        layer.load_state_dict(state)
    assert layer.running_var.value.tolist() == [1.0, 1.0]  # nothing written


def test_a_count_of_another_integer_type_is_refused_by_dtype():
    state = BatchNorm1d(2).state_dict()
    state["num_batches_tracked"] = np.int32(1)
    with pytest.raises(ValueError, match=r"has dtype int32, but the buffer has dtype int64"):
        BatchNorm1d(2).load_state_dict(state)


# -- configuration, files, models --------------------------------------------------------------


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d])
@pytest.mark.parametrize(("affine", "bias", "track"), CONFIGS)
def test_save_and_load_round_trip_every_configuration(tmp_path, cls, affine, bias, track):
    rng = np.random.default_rng(8)
    layer = cls(3, eps=1e-3, momentum=None, affine=affine, bias=bias, track_running_stats=track)
    shape = (4, 3) if cls is BatchNorm1d else (4, 3, 2, 2)
    for _ in range(2):
        layer(rng.normal(size=shape))
    mg.save(mg.Sequential(layer), tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")[0]
    assert repr(loaded) == repr(layer) and loaded.get_config() == layer.get_config()
    for key, value in layer.state_dict().items():
        assert loaded.state_dict()[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    x = rng.normal(size=shape)
    np.testing.assert_array_equal(loaded.eval()(x), layer.eval()(x))


def test_from_config_leaves_the_weight_and_variance_for_the_load_to_fill():
    config = BatchNorm1d(4, dtype=np.float64).get_config()
    assert config == {
        "num_features": 4,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": True,
        "bias": True,
        "track_running_stats": True,
        "dtype": "float64",
    }
    built = BatchNorm1d.from_config(config)
    assert not built.weight.value.any() and not built.running_var.value.any()  # untouched zeros
    built.load_state_dict(BatchNorm1d(4, dtype=np.float64).state_dict())
    assert built.running_var.value.tolist() == [1.0] * 4


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"extra": 1}, ValueError, "a BatchNorm2d config has the keys"),
        ({"dtype": "int64"}, ValueError, "BatchNorm2d dtype must be 'float16', 'float32' or"),
        ({"momentum": "fast"}, TypeError, "momentum must be a real number"),
        ({"affine": "yes"}, TypeError, "affine must be True or False"),
        ({"num_features": -1}, ValueError, "num_features must be a positive integer"),
    ],
)
def test_from_config_checks_what_a_file_says(change, error, message):
    config = {**BatchNorm2d(2).get_config(), **change}
    with pytest.raises(error, match=message):
        BatchNorm2d.from_config(config)
    with pytest.raises(TypeError, match="a BatchNorm2d config is a dict, got list"):
        BatchNorm2d.from_config([])


def test_sequential_checks_widths_through_batchnorm1d():
    mg.Sequential(mg.Dense(4, 3), BatchNorm1d(3), mg.ReLU(), mg.Dense(3, 1))
    with pytest.raises(ShapeError, match=r"layer 1 \(BatchNorm1d\(3, .*\) expects 3 input"):
        mg.Sequential(mg.Dense(4, 5), BatchNorm1d(3))
    with pytest.raises(ShapeError, match=r"layer 2 .* expects 2 input features, but layer 1"):
        mg.Sequential(mg.Dense(4, 3), BatchNorm1d(3), mg.Dense(2, 1))


def test_fit_trains_through_batchnorm_and_keeps_its_running_statistics():
    """GradientBounds has no bounds for BatchNorm (SafeStep measures the gradients), and
    the buffers changing at every step trouble nothing: the running statistics are those
    of the training batches (of the best epoch, which EarlyStopping restores with the
    weights) and evaluation uses them."""
    x, y = mg.data.make_spirals(120, classes=3, seed=0)
    model = mg.Sequential(
        mg.Dense(2, 16, rng=0), BatchNorm1d(16), mg.ReLU(), mg.Dense(16, 3, rng=1)
    )
    assert not GradientBounds(model, mg.CrossEntropy(), 1.0, 2).supported
    optimizer = mg.Adam(model.parameters(), lr=0.02)
    history = mg.fit(
        model, mg.CrossEntropy(), optimizer, x, y, epochs=15, batch_size=16, seed=0,
        validation_data=(x, y), progress=False, callbacks=[mg.EarlyStopping("val_loss")],
    )  # fmt: skip
    assert history["loss"][-1] < history["loss"][0]
    norm = model[1]
    # EarlyStopping restored the best epoch's state: its running statistics and count too
    best = int(np.argmin(history["val_loss"])) + 1
    assert norm.num_batches_tracked.value == best * int(np.ceil(len(x) / 16))
    assert norm.running_var.value.min() > 0 and np.abs(norm.running_mean.value).max() > 0
    assert model.training
    # evaluation mode runs on the restored running statistics: the best epoch's val_loss
    assert mg.evaluate(model, mg.CrossEntropy(), x, y)["loss"] == min(history["val_loss"])
    mg.clip_grad_norm(model.parameters(), 1.0)  # parameters only: the int64 count is no float


def test_fit_checks_its_data_on_two_samples_so_batch_statistics_work_in_evaluation_mode():
    """Without running statistics a BatchNorm normalises with the batch's even in eval mode,
    where fit and evaluate run their first look at the data: one sample has no variance."""
    x = np.random.default_rng(9).normal(size=(10, 3)).astype(np.float32)
    y = np.column_stack([x, x.sum(axis=1)])
    model = mg.Sequential(mg.Dense(3, 4, rng=0), BatchNorm1d(4, track_running_stats=False))
    history = mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y, epochs=2, batch_size=4,
                     progress=False)  # fmt: skip
    assert len(history["loss"]) == 2
    assert set(mg.evaluate(model, mg.MSE(), x, y)) == {"loss"}
