"""Conv1d and Conv2d: finite-difference gradients, PyTorch as the oracle, dtypes, memory,
configs and files, and every error message."""

from __future__ import annotations

import math
import tracemalloc
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import Conv1d, Conv2d, ShapeError
from minigrad.layers import _windows, _workspace
from minigrad.layers import conv as conv_module
from minigrad.testing import check_gradients

#: the ways a convolution works, and the (FLAT_WASTE, SHORT_ROWS) values that force each: on
#: the flat padded grid (every stride-1 convolution), or window by window with the channels
#: first or the batch last
LAYOUTS = {"flat-grid": (math.inf, 0), "channels-first": (0.0, 0), "batch-last": (0.0, 10**9)}


@contextmanager
def forced(layout):
    """Make every convolution work the ``layout`` way where it can."""
    waste, short_rows = LAYOUTS[layout]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_module, "FLAT_WASTE", waste)
        patch.setattr(_windows, "SHORT_ROWS", short_rows)
        yield


@st.composite
def convolutions(draw, dims, max_kernel=4, max_dilation=3, max_extra=6, max_per_group=2):
    """(constructor keyword arguments, input shape) for a Conv1d or Conv2d that fits: every
    hyperparameter drawn, sizes from the smallest the padded window accepts upwards."""
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, max_per_group))
    out_channels = groups * draw(st.integers(1, max_per_group))

    def sizes(low, high):  # an int or a tuple of ``dims`` of them, as a user may write
        values = draw(st.lists(st.integers(low, high), min_size=dims, max_size=dims))
        return values[0] if draw(st.booleans()) and len(set(values)) == 1 else tuple(values)

    def per_axis(value):
        return (value,) * dims if isinstance(value, int) else value

    kernel, dilation = sizes(1, max_kernel), sizes(1, max_dilation)
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2), st.just(None)))
    if padding is None:
        padding = sizes(0, 3)
    stride = 1 if padding == "same" else sizes(1, 3)
    spans = [d * (k - 1) + 1 for k, d in zip(per_axis(kernel), per_axis(dilation), strict=True)]
    if padding == "same":
        pads = [span - 1 for span in spans]
    elif padding == "valid":
        pads = [0] * dims
    else:
        pads = [2 * p for p in per_axis(padding)]
    smallest = [max(1, span - pad) for span, pad in zip(spans, pads, strict=True)]
    spatial = [draw(st.integers(low, low + max_extra)) for low in smallest]
    kwargs = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    return kwargs, (draw(st.integers(1, 3)), in_channels, *spatial)


def build(dims, kwargs, seed, dtype=np.float64):
    """The layer, with a random bias (not the initial zeros) so that dL/db is exercised."""
    layer = (Conv2d if dims == 2 else Conv1d)(**kwargs, rng=seed, dtype=dtype)
    if layer.bias is not None:
        layer.bias.value[:] = np.random.default_rng(seed + 1).normal(size=layer.out_channels)
    return layer


def torch_conv(torch, dims, kwargs, layer):
    """The same convolution as a torch module holding the layer's parameters."""
    cls = torch.nn.Conv2d if dims == 2 else torch.nn.Conv1d
    module = cls(**kwargs, dtype=getattr(torch, layer.weight.dtype.name))
    module.load_state_dict({key: torch.from_numpy(v) for key, v in layer.state_dict().items()})
    return module


def torch_forward_backward(torch, module, x, g):
    """torch's output, dL/dx and parameter gradients for input x and upstream gradient g."""
    tx = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():  # torch warns that an odd "same" padding copies the input
        warnings.simplefilter("ignore", UserWarning)
        ty = module(tx)
    ty.backward(torch.from_numpy(g))
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return ty.detach().numpy(), tx.grad.numpy(), grads


# -- gradients by finite differences ------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=15)
@given(case=convolutions(1, max_kernel=3, max_dilation=2, max_extra=3), seed=st.integers(0, 99))
def test_gradients_match_finite_differences(dims, layout, case, seed):
    kwargs, shape = case
    if dims == 2:  # the same hyperparameters on both axes: the 1-d draw, squared
        kwargs = {**kwargs, **{key: _pair(kwargs[key]) for key in _SIZES}}
        shape = (*shape, shape[-1])
        shape = (min(shape[0], 2), *shape[1:])  # two samples at most: 2-d inputs are larger
    layer = build(dims, kwargs, seed)
    x = np.random.default_rng(seed).normal(size=shape)
    with forced(layout):
        report = check_gradients(layer, x, seed=seed)
    assert set(report.errors) == {"input", "weight"} | ({"bias"} if kwargs["bias"] else set())


_SIZES = ("kernel_size", "stride", "padding", "dilation")


def _pair(value):
    if isinstance(value, str):
        return value
    return (value, value) if isinstance(value, int) else (value[0], value[0])


@pytest.mark.parametrize("stride", [(2, 1), (1, 1)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_single_sample_has_the_finite_difference_gradients(layout, stride):
    layer = build(2, {"in_channels": 2, "out_channels": 3, "kernel_size": (3, 2),
                      "stride": stride, "padding": (1, 2), "dilation": (1, 2)}, seed=3)  # fmt: skip
    x = np.random.default_rng(0).normal(size=(1, 2, 5, 6))
    with forced(layout):
        report = check_gradients(layer, x)
    assert set(report.errors) == {"input", "weight", "bias"}


# -- PyTorch as the oracle -----------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
@given(data=st.data())
def test_outputs_and_every_gradient_equal_torchs(torch, dims, layout, data):
    kwargs, shape = data.draw(convolutions(dims, max_per_group=3))
    layer = build(dims, kwargs, seed=0)
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape)
    module = torch_conv(torch, dims, kwargs, layer)
    with forced(layout):
        y = layer(x)
        g = rng.normal(size=y.shape)
        dx = layer.backward(g)
    ty, tdx, tgrads = torch_forward_backward(torch, module, x, g)
    assert y.shape == ty.shape
    np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tdx, rtol=1e-10, atol=1e-12)
    assert set(tgrads) == {name for name, _ in layer.named_parameters()}
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, tgrads[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel_size", "dilation", "pads"),
    [(2, 1, (0, 1)), (4, 1, (1, 2)), (4, 3, (4, 5)), (2, 3, (1, 2)), (3, 2, (2, 2))],
)
def test_same_padding_puts_the_odd_zero_after_as_torch_does(torch, kernel_size, dilation, pads):
    layer = build(2, {"in_channels": 1, "out_channels": 1, "kernel_size": kernel_size,
                      "padding": "same", "dilation": dilation}, seed=0)  # fmt: skip
    x = np.random.default_rng(0).normal(size=(2, 1, 7, 9))
    y = layer(x)
    assert y.shape == x.shape
    # the same convolution on the input padded by hand: pads[0] before, pads[1] after
    padded = np.pad(x, ((0, 0), (0, 0), pads, pads))
    plain = build(2, {"in_channels": 1, "out_channels": 1, "kernel_size": kernel_size,
                      "dilation": dilation}, seed=0)  # fmt: skip
    np.testing.assert_allclose(y, plain(padded), rtol=1e-12)
    module = torch_conv(torch, 2, {"in_channels": 1, "out_channels": 1,
                                   "kernel_size": kernel_size, "padding": "same",
                                   "dilation": dilation}, layer)  # fmt: skip
    np.testing.assert_allclose(y, torch_forward_backward(torch, module, x, y)[0], rtol=1e-12)


@pytest.mark.parametrize("dims", [1, 2])
@settings(max_examples=20)
@given(data=st.data())
def test_float32_is_torchs_to_a_few_ulps_of_the_terms(torch, dims, data):
    kwargs, shape = data.draw(convolutions(dims, max_per_group=3))
    layer = build(dims, kwargs, seed=1, dtype=np.float32)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    g = rng.normal(size=y.shape).astype(np.float32)
    dx = layer.backward(g)
    module = torch_conv(torch, dims, kwargs, layer)
    ty, tdx, tgrads = torch_forward_backward(torch, module, x, g)
    # Each result is a sum of products; its rounding error is a few float32 ulps of the sum
    # of the products' magnitudes, which the same convolution of |x|, |W|, |g| gives
    absolute = build(dims, kwargs, seed=1, dtype=np.float64)
    absolute.weight.value[...] = np.abs(layer.weight.value)
    if layer.bias is not None:
        absolute.bias.value[...] = np.abs(layer.bias.value)
    magnitude = absolute(np.abs(x).astype(np.float64))
    magnitudes = {"input": absolute.backward(np.abs(g).astype(np.float64))}
    magnitudes |= {name: p.grad for name, p in absolute.named_parameters()}
    ulps = 8 * np.finfo(np.float32).eps
    assert np.all(np.abs(y - ty) <= ulps * magnitude)
    assert np.all(np.abs(dx - tdx) <= ulps * magnitudes["input"])
    for name, p in layer.named_parameters():
        assert p.grad.dtype == np.float32
        assert np.all(np.abs(p.grad - tgrads[name]) <= ulps * magnitudes[name])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 4, "out_channels": 6, "kernel_size": 3},
        {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2), "stride": 2, "padding": 1,
         "dilation": (1, 2), "groups": 2, "bias": False},
        {"in_channels": 2, "out_channels": 2, "kernel_size": 4, "padding": "same"},
        {"in_channels": 2, "out_channels": 2, "kernel_size": 1, "padding": "valid", "groups": 2},
        {"in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": (0, 1)},
    ],
)  # fmt: skip
def test_repr_and_state_dict_keys_are_torchs(torch, kwargs):
    for dims, ours, theirs in [(2, Conv2d, torch.nn.Conv2d), (1, Conv1d, torch.nn.Conv1d)]:
        if dims == 1:
            kwargs = {k: v[0] if isinstance(v, tuple) else v for k, v in kwargs.items()}
        layer, module = ours(**kwargs), theirs(**kwargs)
        assert repr(layer) == repr(module)
        assert list(layer.state_dict()) == list(module.state_dict())
        assert {k: v.shape for k, v in layer.state_dict().items()} == {
            k: tuple(v.shape) for k, v in module.state_dict().items()
        }
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups", "padding_mode"):  # fmt: skip
            assert getattr(layer, name) == getattr(module, name), name


# -- a LeNet, end to end against PyTorch ----------------------------------------------------------


def lenet():
    return mg.Sequential(
        Conv2d(1, 8, 5, padding=2, rng=0), mg.ReLU(), mg.MaxPool2d(2),
        Conv2d(8, 16, 5, rng=1), mg.ReLU(), mg.MaxPool2d(2),
        mg.Flatten(), mg.Dense(16 * 5 * 5, 10, rng=2),
    )  # fmt: skip


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    )  # fmt: skip


def test_a_lenet_gives_torchs_outputs_and_gradients_in_float32(torch):
    # Dyadic data: integer inputs, weights and biases in 1/64ths, so that every convolution
    # and pooling of the forward pass is exact in float32 in any order of summation. The
    # ReLUs and max pools then decide alike in both frameworks (and the zeros after the
    # ReLUs give the pools ties to break, PyTorch's way); without that, a value within
    # float32 rounding of a kink could send a gradient elsewhere in one of them
    rng = np.random.default_rng(0)
    model = lenet()
    for p in model.parameters():
        p.value[...] = rng.integers(-15, 16, p.shape) / 64
    reference = torch_lenet(torch).float()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = rng.integers(-3, 4, size=(64, 1, 28, 28)).astype(np.float32)
    g = (rng.integers(-8, 9, size=(64, 10)) / 8).astype(np.float32)
    y = model(x)
    dx = model.backward(g, input_grad=True)
    ty, tdx, tgrads = torch_forward_backward(torch, reference, x, g)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-6 * np.abs(ty).max())
    np.testing.assert_allclose(dx, tdx, rtol=1e-5, atol=1e-6 * np.abs(tdx).max())
    assert set(tgrads) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32
        scale = np.abs(tgrads[name]).max()
        np.testing.assert_allclose(p.grad, tgrads[name], rtol=1e-5, atol=1e-6 * scale)


# -- backward_parameters, dtypes, memory --------------------------------------------------------


def test_backward_parameters_fills_the_gradients_of_backward_and_returns_nothing():
    layer = build(2, {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "groups": 2}, 0)
    x = np.random.default_rng(0).normal(size=(3, 2, 6, 6))
    g = np.random.default_rng(1).normal(size=layer(x).shape)
    layer.backward(g)
    expected = {name: p.grad.copy() for name, p in layer.named_parameters()}
    layer.zero_grad()
    assert layer.backward_parameters(g) is None
    for name, p in layer.named_parameters():
        np.testing.assert_array_equal(p.grad, expected[name])
    model = mg.Sequential(layer, mg.ReLU())  # a Sequential asks its first layer for this
    model(x)
    assert model.backward(np.ones((3, 4, 4, 4))) is None


@pytest.mark.parametrize("cls", [Conv1d, Conv2d])
def test_float32_by_default_and_the_dtype_is_kept_end_to_end(cls):
    shape = (2, 3, 8) if cls is Conv1d else (2, 3, 8, 8)
    layer = cls(3, 4, 3, padding=1)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    x = np.random.default_rng(0).normal(size=shape)  # float64 data, computed in float32
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, layer(x.astype(np.float32)), rtol=0)
    dx = layer.backward(np.ones(y.shape))  # a float64 gradient, too
    assert dx.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == np.float32
    for dtype in (np.float16, np.float64):
        other = cls(3, 4, 3, padding=1, dtype=dtype)
        assert other(x).dtype == other.backward(np.ones(y.shape)).dtype == dtype
        assert other.weight.grad.dtype == dtype
    assert cls(3, 4, 3)(np.ones(shape, dtype=int)).dtype == np.float32  # integers converted


def test_huge_values_overflow_to_inf_without_a_warning():
    # pytest turns warnings into errors
    layer = Conv2d(1, 1, 2, rng=0)
    layer.weight.value[...] = 1.0
    y = layer(np.full((1, 1, 3, 3), 1e38, np.float32))
    assert np.isinf(y).all() and y.dtype == np.float32
    assert np.isinf(layer(np.full((1, 1, 3, 3), 1e300))).all()  # float64 data beyond float32
    layer.backward(np.full(y.shape, 3e38, np.float32))
    assert np.isinf(layer.weight.grad).all()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_only_the_input_is_kept_for_backward_not_the_im2col_matrix(layout):
    layer = Conv2d(8, 8, 3, padding=1, rng=0)
    x = np.random.default_rng(0).normal(size=(16, 8, 12, 12)).astype(np.float32)
    columns = 8 * 3 * 3 * 16 * 12 * 12 * 4  # bytes of the im2col matrix, 9 inputs
    with forced(layout):
        layer.backward(np.ones_like(layer(x)))  # the workspace grows to its size once
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            y = layer(x)
            after = tracemalloc.get_traced_memory()[0]
            kept = after - before - y.nbytes
            tracemalloc.reset_peak()
            layer.backward(np.ones_like(y))
            peak = tracemalloc.get_traced_memory()[1] - after
        finally:
            tracemalloc.stop()
    assert kept <= x.nbytes + 4096  # at most a copy of the input (batch-last), not X_col
    # backward: g in the working layout and the arrays of dL/dx (on the grid: none of them
    # fresh but dL/dx), X_col in the workspace
    assert peak < (2 if layout == "flat-grid" else 6) * y.nbytes + 4096
    assert peak < columns


def test_the_workspace_holds_one_im2col_matrix_however_many_convolutions():
    _workspace.free_workspace()
    model = mg.Sequential(Conv2d(4, 8, 3, padding=1, rng=0), Conv2d(8, 8, 3, padding=1, rng=1))
    x = np.random.default_rng(0).normal(size=(8, 4, 16, 16)).astype(np.float32)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            model.backward(np.ones_like(model(x)), input_grad=True)
        held = tracemalloc.get_traced_memory()[0] - before
        _workspace.free_workspace()
        freed = held - (tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    grid = 8 * 18 * 18  # the flat padded grid of one channel: 8 samples of 18 x 18
    largest = 8 * 9 * grid * 4  # bytes of the columns of an 8-channel layer, on the grid
    padded = 8 * (38 + grid) * 4  # an 8-channel grid, with the 2 * 18 + 2 zeros of its tail
    assert 0 <= freed - (largest + padded) < 1024  # one of each, not one per layer or step
    assert held < freed + 100_000  # and besides, the layer's input, output and gradients


@pytest.mark.parametrize(
    ("layout", "shape", "count", "size"),
    [
        ("flat-grid", r"\(2, 9, 65536\)", "1,179,648", r"4\.5 MiB"),
        ("channels-first", r"\(18, 57600\)", "1,036,800", r"3\.96 MiB"),
    ],
)
def test_an_input_whose_im2col_matrix_cannot_fit_in_memory_is_refused(
    monkeypatch, layout, shape, count, size
):
    from minigrad import _validation

    _workspace.free_workspace()  # a workspace already that large would just be reused
    monkeypatch.setattr(_validation, "physical_memory", lambda: 2**20)
    with (
        forced(layout),
        pytest.raises(
            MemoryError,
            match=r"Conv2d\(2, 3, kernel_size=\(3, 3\), stride=\(1, 1\)\) on input of shape "
            rf"\(64, 2, 32, 32\): its im2col matrix {shape} would hold {count} values of "
            rf"float32 \({size}\), more than this machine's 1 MiB of memory",
        ),
    ):
        Conv2d(2, 3, 3)(np.zeros((64, 2, 32, 32), np.float32))


# -- initialisation --------------------------------------------------------------------------------


def test_the_default_init_is_he_uniform_with_the_kernels_fan_in():
    layer = Conv2d(8, 64, (3, 5), groups=2, rng=0, dtype=np.float64)
    fan_in = 8 // 2 * 3 * 5
    bound = np.sqrt(6 / fan_in)
    assert np.abs(layer.weight.value).max() <= bound
    assert np.abs(layer.weight.value).max() > 0.99 * bound
    np.testing.assert_allclose(layer.weight.value.var(), 2 / fan_in, rtol=0.1)
    assert not layer.bias.value.any()


def test_an_init_by_name_or_function_gets_the_weights_shape():
    seen = []

    def ones(shape, rng, dtype):
        seen.append((shape, type(rng), dtype))
        return np.ones(shape)

    layer = Conv1d(6, 3, 5, groups=3, init=ones)
    assert seen == [((3, 2, 5), np.random.Generator, np.dtype(np.float32))]
    assert layer.weight.dtype == np.float32 and (layer.weight.value == 1).all()
    xavier = Conv2d(3, 5, 3, init="xavier_uniform", rng=0, dtype=np.float64).weight.value
    assert np.abs(xavier).max() <= np.sqrt(6 / (3 * 9 + 5 * 9))
    np.testing.assert_array_equal(Conv2d(3, 5, 3, rng=7).weight.value,
                                  Conv2d(3, 5, 3, rng=7).weight.value)  # fmt: skip


@pytest.mark.parametrize(
    ("init", "error", "message"),
    [
        (lambda shape, rng, dtype: np.ones((2, 2)), ValueError,
         r"Conv2d init returned an array of shape \(2, 2\), expected \(4, 3, 3, 3\)"),
        (lambda shape, rng, dtype: np.full(shape, np.nan), ValueError,
         "Conv2d init returned NaN or infinite weights"),
        (lambda shape, rng, dtype: np.full(shape, "a"), TypeError,
         "Conv2d init returned an array of dtype <U1, not numbers"),
        ("nope", ValueError, "unknown init 'nope'"),
    ],
)  # fmt: skip
def test_a_bad_init_is_refused(init, error, message):
    with pytest.raises(error, match=message):
        Conv2d(3, 4, 3, init=init)


# -- configs and model files ---------------------------------------------------------------------


def cnn():
    return mg.Sequential(
        Conv2d(1, 4, 3, padding=1, rng=0), mg.ReLU(), mg.MaxPool2d(2),
        Conv2d(4, 6, (3, 2), stride=(1, 2), padding="valid", dilation=(2, 1), groups=2,
               bias=False, rng=1),
        mg.ReLU(), mg.AvgPool2d(2, padding=1, count_include_pad=False),
        mg.AdaptiveAvgPool2d((1, None)), mg.Flatten(), mg.Dense(6 * 1 * 3, 3, rng=2),
    )  # fmt: skip


def torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding="valid", dilation=(2, 1), groups=2,
                  bias=False),
        nn.ReLU(), nn.AvgPool2d(2, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d((1, None)), nn.Flatten(), nn.Linear(6 * 1 * 3, 3),
    )  # fmt: skip


def sequence_model():
    return mg.Sequential(
        Conv1d(2, 4, 3, padding="same", rng=0), mg.ReLU(), mg.MaxPool1d(3, stride=1, padding=1),
        mg.AvgPool1d(2), mg.AdaptiveAvgPool1d(3), mg.Flatten(), mg.Dense(12, 2, rng=1),
    )  # fmt: skip


@pytest.mark.parametrize(("make", "shape"), [(cnn, (5, 1, 12, 16)), (sequence_model, (5, 2, 9))])
def test_a_saved_cnn_loads_back_and_computes_the_same(tmp_path, make, shape):
    pytest.importorskip("safetensors")
    model = make()
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = model(x)
    path = tmp_path / "cnn.safetensors"
    mg.save(model, path)
    loaded = mg.load(path)
    assert repr(loaded) == repr(model)
    assert [layer.get_config() for layer in loaded] == [layer.get_config() for layer in model]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    np.testing.assert_array_equal(loaded(x), y)
    g = np.ones_like(y)
    np.testing.assert_array_equal(
        loaded.backward(g, input_grad=True), model.backward(g, input_grad=True)
    )


def test_torch_loads_the_state_dict_and_computes_the_same(torch):
    model = cnn()
    reference = torch_cnn(torch).float()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 1, 12, 16)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [Conv1d, Conv2d])
def test_config_round_trip(cls):
    dims = 1 if cls is Conv1d else 2
    layer = cls(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, bias=False,
                dtype=np.float64)  # fmt: skip
    config = layer.get_config()
    assert config == {
        "in_channels": 4, "out_channels": 6, "kernel_size": [3] * dims, "stride": [2] * dims,
        "padding": [1] * dims, "dilation": [2] * dims, "groups": 2, "bias": False,
        "dtype": "float64",
    }  # fmt: skip
    copy = cls.from_config(config)
    assert repr(copy) == repr(layer) and copy.weight.dtype == np.float64
    assert not copy.weight.value.any()  # zeros, for the file's tensors to fill in
    assert cls.from_config({**config, "padding": "same", "stride": 1}).padding == "same"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"bias": "yes"}, TypeError, "Conv2d bias must be true or false, got 'yes'"),
        ({"dtype": "int8"}, ValueError, "Conv2d dtype must be 'float16', 'float32' or 'float64'"),
        ({"kernel_size": [3, "3"]}, TypeError, "Conv2d kernel_size must be an integer or a pair"),
        ({"groups": 3}, ValueError, r"Conv2d in_channels \(2\) must be divisible by groups"),
        ({"padding": "full"}, ValueError, "Conv2d padding must be an integer >= 0"),
        ({"in_channels": 10**4, "kernel_size": [10**6, 10**6]}, MemoryError, "too large"),
        ({"extra": 1}, ValueError, r"a Conv2d config has the keys \['bias', 'dilation', "
         r"'dtype', 'groups', 'in_channels', 'kernel_size', 'out_channels', 'padding', "
         r"'stride'\], got \['bias', .*'extra'"),
    ],
)  # fmt: skip
def test_from_config_checks_what_a_file_says(change, error, message):
    with pytest.raises(error, match=message):
        Conv2d.from_config({**Conv2d(2, 4, 3).get_config(), **change})
    with pytest.raises(TypeError, match="a Conv2d config is a dict, got NoneType"):
        Conv2d.from_config(None)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"in_channels": 0}, ValueError, "Conv2d in_channels must be a positive integer, got 0"),
        ({"in_channels": True}, TypeError, "Conv2d in_channels must be a positive integer, "
         "got True"),
        ({"out_channels": "4"}, TypeError, "Conv2d out_channels must be a positive integer, "
         "got '4'"),
        ({"out_channels": 2.0}, TypeError, "Conv2d out_channels must be a positive integer, "
         "got 2.0"),
        ({"kernel_size": 0}, ValueError, "Conv2d kernel_size must be an integer or a pair of "
         "integers >= 1, got 0"),
        ({"kernel_size": (3,)}, ValueError, r"kernel_size .* got \(3,\) of length 1"),
        ({"kernel_size": (3, 3, 3)}, ValueError, r"got \(3, 3, 3\) of length 3"),
        ({"kernel_size": "3"}, TypeError, r"kernel_size .* got '3' \(str\)"),
        ({"kernel_size": (3, True)}, TypeError, r"got \(3, True\) \(bool\)"),
        ({"kernel_size": float("nan")}, TypeError, r"got nan \(float\)"),
        ({"kernel_size": float("inf")}, TypeError, r"got inf \(float\)"),
        ({"stride": 0}, ValueError, "Conv2d stride must be an integer or a pair of integers >= 1"),
        ({"stride": (1, -2)}, ValueError, r"stride .* got \(1, -2\)"),
        ({"dilation": 0}, ValueError, "Conv2d dilation must be .* >= 1, got 0"),
        ({"padding": -1}, ValueError, "Conv2d padding must be an integer or a pair of integers "
         ">= 0, got -1"),
        ({"padding": "full"}, ValueError, "Conv2d padding must be an integer >= 0, a pair of "
         "integers, 'valid' or 'same', got 'full'"),
        ({"padding": 1.5}, TypeError, r"padding .* got 1\.5 \(float\)"),
        ({"padding": "same", "stride": 2}, ValueError, r"Conv2d padding='same' needs stride 1 "
         r"\(a strided output cannot keep the input's size\), got stride=\(2, 2\)"),
        ({"groups": 0}, ValueError, "Conv2d groups must be a positive integer, got 0"),
        ({"groups": 4}, ValueError, r"Conv2d in_channels \(6\) must be divisible by groups \(4\)"),
        ({"groups": 3, "out_channels": 4}, ValueError,
         r"Conv2d out_channels \(4\) must be divisible by groups \(3\)"),
        ({"bias": "False"}, TypeError, "Conv2d bias must be True or False, got 'False' \\(str\\)"),
        ({"padding_mode": "reflect"}, ValueError,
         "Conv2d pads with zeros only \\(padding_mode='zeros'\\), got 'reflect'"),
        ({"padding_mode": None}, TypeError, "Conv2d padding_mode must be 'zeros', got None"),
        ({"dtype": np.int32}, TypeError, "Conv2d dtype must be a floating-point type"),
        ({"dtype": None}, TypeError, "Conv2d dtype must be a floating-point type.*got None"),
        ({"rng": True}, TypeError, "Conv2d rng must be None, an integer seed >= 0"),
        ({"in_channels": 10**6, "out_channels": 10**6}, MemoryError,
         r"Conv2d\(1000000, 1000000, kernel_size=\(3, 3\)\) is too large: its weight"),
    ],
)  # fmt: skip
def test_constructor_arguments_are_checked(kwargs, error, message):
    kwargs = {"in_channels": 6, "out_channels": 6, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=message):
        Conv2d(**kwargs)


def test_conv1d_arguments_are_one_int_or_a_1_tuple():
    assert Conv1d(1, 1, (3,), stride=[2]).kernel_size == (3,)
    with pytest.raises(ValueError, match=r"Conv1d kernel_size must be an integer >= 1, got "
                       r"\(3, 3\) of length 2"):  # fmt: skip
        Conv1d(1, 1, (3, 3))
    with pytest.raises(ValueError, match="Conv1d padding must be an integer >= 0, an integer, "):
        Conv1d(1, 1, 3, padding="full")


def test_the_geometry_is_read_only():
    layer = Conv2d(1, 1, 3)
    with pytest.raises(AttributeError):
        layer.stride = (2, 2)


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (Conv2d(3, 4, 3), np.zeros((3, 8, 8)), r"Conv2d\(3, 4, kernel_size=\(3, 3\), stride="
         r"\(1, 1\)\) expects input of shape \(batch, 3, height, width\), got a 3-D array of "
         r"shape \(3, 8, 8\); for one sample use x\[None\]"),
        (Conv2d(3, 4, 3), np.zeros((8, 8)), r"got a 2-D array of shape \(8, 8\)$"),
        (Conv2d(3, 4, 3), np.zeros((2, 4, 8, 8)), r"expects input of shape \(batch, 3, height, "
         r"width\), got \(2, 4, 8, 8\): 4 channels instead of 3$"),
        (Conv2d(3, 4, 3), np.zeros((2, 8, 8, 3)), r"8 channels instead of 3; for channels-last "
         r"\(NHWC\) images pass x\.transpose\(0, 3, 1, 2\)"),
        (Conv1d(2, 4, 3), np.zeros((2, 3, 8)), r"Conv1d\(2, 4, kernel_size=\(3,\), stride=\(1,\)\) "
         r"expects input of shape \(batch, 2, length\), got \(2, 3, 8\): 3 channels instead of 2"),
        (Conv1d(2, 4, 3), np.zeros((2, 8)), r"got a 2-D array of shape \(2, 8\); for one sample"),
        (Conv2d(1, 1, 5), np.zeros((1, 1, 4, 9)), r"needs an input at least as large as its "
         r"kernel once padded: the kernel spans 5 x 5 \(dilation included\), but input of shape "
         r"\(1, 1, 4, 9\) is 4 x 9 after padding"),
        (Conv2d(1, 1, 3, padding=(1, 0), dilation=(1, 3)), np.zeros((1, 1, 9, 6)),
         r"spans 3 x 7 \(dilation included\), but input of shape \(1, 1, 9, 6\) is 11 x 6 after"),
        (Conv2d(1, 1, 4, padding="same"), np.zeros((1, 1, 0, 1)), r"is 3 x 4 after padding"),
        (Conv1d(1, 1, 3, dilation=4), np.zeros((1, 1, 8)), r"spans 9 \(dilation included\), "
         r"but input of shape \(1, 1, 8\) is 8 after padding"),
    ],
)  # fmt: skip
def test_input_shapes_are_checked_naming_the_layer(layer, x, message):
    with pytest.raises(ShapeError, match=message):
        layer(x)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((1, 1, 3, 3), complex), "Conv2d input must be a numeric array of real "
         "numbers, got dtype complex128"),
        (np.full((1, 1, 3, 3), "1"), "Conv2d input must be a numeric array of real numbers, "
         "got dtype <U1"),
        ([[[[1.0, 2.0], [3.0]]]], "Conv2d input must be a numeric array, got list"),
    ],
)  # fmt: skip
def test_inputs_that_are_not_real_numbers_are_refused(x, message):
    with pytest.raises(TypeError, match=message):
        Conv2d(1, 1, 2)(x)


def test_backward_checks_its_gradient_and_its_forward():
    layer = Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.zeros((1, 2, 2, 2)))
    x = np.zeros((3, 1, 5, 5), np.float32)
    layer(x)
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(3, 2, 3, 3\) \(the "
                       r"forward output's\), got \(3, 2, 5, 5\)"):  # fmt: skip
        layer.backward(np.zeros((3, 2, 5, 5)))
    with pytest.raises(TypeError, match="takes the gradient as a NumPy array"):
        layer.backward([[0.0]])
    with pytest.raises(TypeError, match="takes a floating-point gradient, got dtype int64"):
        layer.backward(np.zeros((3, 2, 3, 3), np.int64))
    layer.eval()(np.zeros((7, 1, 5, 5)))
    with pytest.raises(RuntimeError, match="last forward pass ran in evaluation mode"):
        layer.train().backward(np.zeros((3, 2, 3, 3)))
    layer.eval()  # a forward and backward both in evaluation mode (saliency) is fine
    assert layer.backward(np.zeros((7, 2, 3, 3))).shape == (7, 1, 5, 5)
    layer.train()(x)
    with pytest.raises(ShapeError):
        layer(np.zeros((3, 1, 2, 2)))
    with pytest.raises(RuntimeError, match="or after a forward pass that failed"):
        layer.backward(np.zeros((3, 2, 3, 3)))


@pytest.mark.parametrize("name", ["weight", "bias"])
def test_a_parameter_replaced_by_an_array_is_named(name):
    layer = Conv2d(1, 1, 2)
    layer(np.zeros((1, 1, 3, 3)))
    setattr(layer, name, np.zeros(getattr(layer, name).shape, np.float32))
    with pytest.raises(TypeError, match=rf"Conv2d\.{name} must be a Parameter"):
        layer(np.zeros((1, 1, 3, 3)))
