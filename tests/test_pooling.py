"""Pooling layers: PyTorch as the oracle (ties, NaN, -inf, overlapping windows), finite
differences, dtypes, configs and every error message."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minigrad import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
    ShapeError,
)
from minigrad.testing import check_gradients

MAX = {1: MaxPool1d, 2: MaxPool2d}
AVG = {1: AvgPool1d, 2: AvgPool2d}
ADAPTIVE = {1: AdaptiveAvgPool1d, 2: AdaptiveAvgPool2d}


@st.composite
def windows(draw, dims, dilated):
    """(constructor arguments, input shape) for a pooling window that fits its input."""

    def sizes(values):  # an int or a tuple of ``dims`` of them, as a user may write
        drawn = [draw(values) for _ in range(dims)]
        return drawn[0] if len(set(drawn)) == 1 and draw(st.booleans()) else tuple(drawn)

    def per_axis(value):
        return (value,) * dims if isinstance(value, int) else value

    kernel = sizes(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.just(sizes(st.integers(1, 4)))))
    dilation = sizes(st.integers(1, 3)) if dilated else 1
    padding = tuple(draw(st.integers(0, k // 2)) for k in per_axis(kernel))
    spans = [d * (k - 1) + 1 for k, d in zip(per_axis(kernel), per_axis(dilation), strict=True)]
    spatial = [draw(st.integers(max(1, s - 2 * p), max(1, s - 2 * p) + 6))
               for s, p in zip(spans, padding, strict=True)]  # fmt: skip
    args = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if dilated:
        args["dilation"] = dilation
    return args, (draw(st.integers(1, 3)), draw(st.integers(1, 3)), *spatial)


def inputs(draw, shape):
    """Integer-valued floats (ties in most windows) or continuous ones."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    return rng.normal(size=shape)


def torch_result(torch, function, x, g, **kwargs):
    """torch's output and dL/dx of ``function`` (a torch.nn.functional pooling)."""
    tx = torch.tensor(x, requires_grad=True)
    ty = function(tx, **kwargs)
    ty.backward(torch.from_numpy(g))
    return ty.detach().numpy(), tx.grad.numpy()


def forward_backward(layer, x, seed=0):
    y = layer(x)
    g = np.random.default_rng(seed).normal(size=y.shape)
    return y, g, layer.backward(g)


# -- PyTorch as the oracle ------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2])
@given(data=st.data())
def test_max_pooling_equals_torchs_ties_and_overlaps_included(torch, dims, data):
    args, shape = data.draw(windows(dims, dilated=True))
    x = inputs(data.draw, shape)
    layer = MAX[dims](**args)
    y = layer(x)
    # A window can fall in the padding entirely (dilated taps that straddle the input):
    # its output is -inf; PyTorch then writes its gradient out of bounds, so it is no oracle
    assume(np.isfinite(y).all())
    g = np.random.default_rng(0).normal(size=y.shape)
    function = torch.nn.functional.max_pool2d if dims == 2 else torch.nn.functional.max_pool1d
    ty, tdx = torch_result(torch, function, x, g, **args)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(layer.backward(g), tdx, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("count_include_pad", [True, False])
@given(data=st.data())
def test_average_pooling_equals_torchs(torch, dims, count_include_pad, data):
    args, shape = data.draw(windows(dims, dilated=False))
    x = inputs(data.draw, shape)
    layer = AVG[dims](**args, count_include_pad=count_include_pad)
    y, g, dx = forward_backward(layer, x)
    function = torch.nn.functional.avg_pool2d if dims == 2 else torch.nn.functional.avg_pool1d
    ty, tdx = torch_result(torch, function, x, g, **args, count_include_pad=count_include_pad)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, tdx, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dims", [1, 2])
@given(data=st.data())
def test_adaptive_average_pooling_equals_torchs_bins(torch, dims, data):
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    shape += tuple(data.draw(st.integers(1, 12)) for _ in range(dims))
    # outputs smaller, equal or larger than the input (bins that share entries), or None
    out = [data.draw(st.one_of(st.integers(1, 14), st.none() if dims == 2 else st.nothing()))
           for _ in range(dims)]  # fmt: skip
    output_size = out[0] if dims == 1 and data.draw(st.booleans()) else tuple(out)
    x = inputs(data.draw, shape)
    layer = ADAPTIVE[dims](output_size)
    y, g, dx = forward_backward(layer, x)
    function = (
        torch.nn.functional.adaptive_avg_pool2d
        if dims == 2
        else torch.nn.functional.adaptive_avg_pool1d
    )
    ty, tdx = torch_result(torch, function, x, g, output_size=output_size)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, tdx, rtol=1e-12, atol=1e-14)


def test_nan_is_the_maximum_and_its_last_occurrence_takes_the_gradient(torch):
    nan = np.nan
    x = np.array([[[[nan, 1.0, 2.0, 5.0, 0.0, 0.0],
                    [3.0, nan, nan, 4.0, 0.0, nan],
                    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]]])  # fmt: skip
    for layer, args in [(MaxPool2d(2), {"kernel_size": 2}),
                        (MaxPool2d(2, stride=1, padding=1), {"kernel_size": 2, "stride": 1,
                                                              "padding": 1})]:  # fmt: skip
        y, g, dx = forward_backward(layer, x)
        ty, tdx = torch_result(torch, torch.nn.functional.max_pool2d, x, g, **args)
        np.testing.assert_array_equal(y, ty)  # NaN where PyTorch has NaN
        np.testing.assert_array_equal(dx, tdx)


def test_a_window_of_minus_infinity_routes_its_gradient_to_its_first_entry_inside(torch):
    x = np.full((1, 1, 3, 3), -np.inf)
    layer = MaxPool2d(2, stride=1, padding=1)
    y = layer(x)
    np.testing.assert_array_equal(y, np.full((1, 1, 4, 4), -np.inf))
    dx = layer.backward(np.ones_like(y))
    # each of the 16 windows gives its 1 to its first entry that is not padding
    np.testing.assert_array_equal(dx[0, 0], [[4.0, 2.0, 2.0], [2.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    _, tdx = torch_result(torch, torch.nn.functional.max_pool2d, x, np.ones_like(y),
                          kernel_size=2, stride=1, padding=1)  # fmt: skip
    np.testing.assert_array_equal(dx, tdx)


@pytest.mark.parametrize(
    "args", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}], ids=str
)
def test_an_infinite_or_nan_gradient_reaches_only_the_entries_taken(torch, args):
    x = np.random.default_rng(0).normal(size=(1, 2, 4, 4))
    layer = MaxPool2d(**args)
    y = layer(x)
    g = np.ones_like(y)
    g[0, 0, 0, 0], g[0, 1, 1, 1] = np.inf, np.nan
    _, expected = torch_result(torch, torch.nn.functional.max_pool2d, x, g, **args)
    np.testing.assert_array_equal(layer.backward(g), expected)  # no inf * 0 = NaN elsewhere


def test_count_include_pad_is_checked_when_assigned():
    layer = AvgPool2d(2)
    layer.count_include_pad = np.bool_(False)
    assert layer.count_include_pad is False
    with pytest.raises(TypeError, match="AvgPool2d count_include_pad must be True or False"):
        layer.count_include_pad = "True"


def test_the_window_is_read_only():
    for layer, name in [(MaxPool2d(2), "stride"), (AvgPool1d(2), "padding"),
                        (AdaptiveAvgPool2d(1), "output_size")]:  # fmt: skip
        with pytest.raises(AttributeError):
            setattr(layer, name, 3)


def test_ties_go_to_the_first_entry_and_overlapping_windows_add_up():
    layer = MaxPool2d(2)
    layer(np.ones((1, 1, 2, 4)))
    np.testing.assert_array_equal(
        layer.backward(np.array([[[[1.0, 2.0]]]])), [[[[1.0, 0.0, 2.0, 0.0], [0.0] * 4]]]
    )
    # a single peak in the middle of a 5 x 5 map is in all nine 3 x 3 windows with stride 1
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    layer = MaxPool2d(3, stride=1)
    assert (layer(x) == 1).all()
    dx = layer.backward(np.ones((1, 1, 3, 3)))
    expected = np.zeros((5, 5))
    expected[2, 2] = 9.0
    np.testing.assert_array_equal(dx[0, 0], expected)


# -- gradients by finite differences --------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2])
@settings(max_examples=20)
@given(data=st.data())
def test_max_pooling_gradients_match_finite_differences(dims, data):
    args, shape = data.draw(windows(dims, dilated=True))
    layer = MAX[dims](**args)
    # distinct entries at least 0.1 apart: no tie within a finite-difference step
    seed = data.draw(st.integers(0, 99))
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) * 0.1
    assume(np.isfinite(layer(x)).all())
    assert set(check_gradients(layer, x, seed=seed).errors) == {"input"}


@pytest.mark.parametrize("dims", [1, 2])
@settings(max_examples=20)
@given(data=st.data())
def test_average_pooling_gradients_match_finite_differences(dims, data):
    args, shape = data.draw(windows(dims, dilated=False))
    layer = AVG[dims](**args, count_include_pad=data.draw(st.booleans()))
    x = np.random.default_rng(0).normal(size=shape)
    assert set(check_gradients(layer, x).errors) == {"input"}


@pytest.mark.parametrize("dims", [1, 2])
@settings(max_examples=20)
@given(data=st.data())
def test_adaptive_pooling_gradients_match_finite_differences(dims, data):
    size = data.draw(st.integers(1, 7))
    layer = ADAPTIVE[dims](data.draw(st.integers(1, 8)))
    x = np.random.default_rng(0).normal(size=(data.draw(st.integers(1, 2)), 2) + (size,) * dims)
    assert set(check_gradients(layer, x).errors) == {"input"}


# -- dtypes and extreme values -------------------------------------------------------------------


LAYERS = [
    lambda: MaxPool2d(2),
    lambda: MaxPool2d(3, stride=1, padding=1),
    lambda: AvgPool2d(2),
    lambda: AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    lambda: AdaptiveAvgPool2d(1),
    lambda: AdaptiveAvgPool2d((3, 2)),
]
NAMES = ["max", "max-overlap", "avg", "avg-exclude-pad", "global", "adaptive"]


@pytest.mark.parametrize("make", LAYERS, ids=NAMES)
def test_the_input_dtype_is_kept_end_to_end(make):
    for dtype in (np.float16, np.float32, np.float64):
        layer = make()
        x = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(dtype)
        y = layer(x)
        assert y.dtype == dtype
        assert layer.backward(np.ones(y.shape)).dtype == dtype  # a float64 gradient converted
    assert make()(np.ones((1, 1, 5, 5), dtype=int)).dtype == np.float64


@pytest.mark.parametrize("make", LAYERS, ids=NAMES)
def test_means_of_the_largest_floats_do_not_overflow(make):
    # pytest turns warnings into errors; PyTorch's float32 sums give inf here
    top = np.finfo(np.float32).max
    x = np.full((1, 1, 6, 6), top, np.float32)
    y = make()(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, top, rtol=1e-6)


# -- PyTorch's names, reprs and configs --------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "torch_name", "kwargs"),
    [
        (MaxPool2d, "MaxPool2d", {"kernel_size": 2}),
        (MaxPool2d, "MaxPool2d", {"kernel_size": (3, 2), "stride": 1, "padding": (1, 0),
                                  "dilation": (1, 2)}),
        (MaxPool1d, "MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}),
        (AvgPool2d, "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
        (AvgPool2d, "AvgPool2d", {"kernel_size": (2, 4), "count_include_pad": False}),
        (AvgPool1d, "AvgPool1d", {"kernel_size": 3}),
        (AdaptiveAvgPool2d, "AdaptiveAvgPool2d", {"output_size": 1}),
        (AdaptiveAvgPool2d, "AdaptiveAvgPool2d", {"output_size": (None, 3)}),
        (AdaptiveAvgPool1d, "AdaptiveAvgPool1d", {"output_size": 4}),
    ],
)  # fmt: skip
def test_reprs_and_attributes_are_torchs(torch, make, torch_name, kwargs):
    ours, theirs = make(**kwargs), getattr(torch.nn, torch_name)(**kwargs)
    # minigrad has no ceil_mode (always False), and shows count_include_pad when False
    expected = repr(theirs).replace(", ceil_mode=False", "")
    if kwargs.get("count_include_pad") is False:
        expected = expected[:-1] + ", count_include_pad=False)"
    assert repr(ours) == expected
    for name in ("kernel_size", "stride", "padding", "dilation", "output_size",
                 "count_include_pad"):  # fmt: skip
        if hasattr(theirs, name) and hasattr(ours, name):
            assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.state_dict() == {} and ours.parameters() == []


@pytest.mark.parametrize(
    "layer",
    [
        MaxPool2d((3, 2), stride=1, padding=(1, 0), dilation=(1, 2)),
        MaxPool1d(2),
        AvgPool2d(3, 2, 1, count_include_pad=False),
        AvgPool1d(4, stride=[2], padding=(1,)),
        AdaptiveAvgPool2d((None, 3)),
        AdaptiveAvgPool1d(5),
    ],
    ids=repr,
)
def test_config_round_trip(layer):
    config = layer.get_config()
    copy = type(layer).from_config(config)
    assert repr(copy) == repr(layer) and copy.get_config() == config
    x = np.random.default_rng(0).normal(size=(2, 2, 7) if "1d" in type(layer).__name__
                                       else (2, 2, 7, 8))  # fmt: skip
    np.testing.assert_array_equal(copy(x), layer(x))


@pytest.mark.parametrize(
    ("cls", "config", "error", "message"),
    [
        (MaxPool2d, None, TypeError, "a MaxPool2d config is a dict, got NoneType"),
        (MaxPool2d, {"kernel_size": 2}, ValueError, r"a MaxPool2d config has the keys "
         r"\['dilation', 'kernel_size', 'padding', 'stride'\], got \['kernel_size'\]"),
        (AvgPool2d, {"kernel_size": 2, "stride": 2, "padding": 0, "count_include_pad": "no"},
         TypeError, "AvgPool2d count_include_pad must be True or False, got 'no'"),
        (AdaptiveAvgPool2d, {"output_size": [1, 1], "x": 1}, ValueError,
         r"a AdaptiveAvgPool2d config has the keys \['output_size'\]"),
        (AdaptiveAvgPool2d, {"output_size": "1"}, TypeError, "AdaptiveAvgPool2d output_size"),
    ],
)  # fmt: skip
def test_from_config_checks_what_a_file_says(cls, config, error, message):
    with pytest.raises(error, match=message):
        cls.from_config(config)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MaxPool2d(0), ValueError, "MaxPool2d kernel_size must be an integer or a pair "
         "of integers >= 1, got 0"),
        (lambda: MaxPool2d("2"), TypeError, r"kernel_size .* got '2' \(str\)"),
        (lambda: MaxPool2d(True), TypeError, r"kernel_size .* got True \(bool\)"),
        (lambda: MaxPool2d(2.0), TypeError, r"kernel_size .* got 2\.0 \(float\)"),
        (lambda: MaxPool2d((2, 2, 2)), ValueError, r"got \(2, 2, 2\) of length 3"),
        (lambda: MaxPool2d(2, stride=0), ValueError, "MaxPool2d stride must be .* >= 1, got 0"),
        (lambda: MaxPool2d(2, padding=-1), ValueError, "MaxPool2d padding must be .* >= 0"),
        (lambda: MaxPool2d(2, padding=2), ValueError, r"MaxPool2d padding must be at most half "
         r"the kernel size \(as PyTorch requires\), got padding=2 for kernel_size=2"),
        (lambda: MaxPool2d(3, padding=2, dilation=2), ValueError, "at most half the kernel"),
        (lambda: MaxPool2d(2, dilation=0), ValueError, "MaxPool2d dilation must be .* >= 1"),
        (lambda: MaxPool1d((2, 2)), ValueError, "MaxPool1d kernel_size must be an integer >= 1, "
         r"got \(2, 2\) of length 2"),
        (lambda: AvgPool2d((4, 2), padding=(2, 2)), ValueError, r"AvgPool2d padding must be at "
         r"most half the kernel size \(as PyTorch requires\), got padding=\(2, 2\) for "
         r"kernel_size=\(4, 2\)"),
        (lambda: AvgPool2d(2, count_include_pad="False"), TypeError,
         "AvgPool2d count_include_pad must be True or False, got 'False' \\(str\\)"),
        (lambda: AvgPool1d(2, stride=float("nan")), TypeError, r"stride .* got nan \(float\)"),
        (lambda: AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d output_size must be an "
         r"integer >= 1 or a pair of them \(None for an axis keeps the input's size\), got 0"),
        (lambda: AdaptiveAvgPool2d((2, 2, 2)), ValueError, r"got \(2, 2, 2\) of length 3"),
        (lambda: AdaptiveAvgPool2d(2.0), TypeError, r"got 2\.0 \(float\)"),
        (lambda: AdaptiveAvgPool2d((1, True)), TypeError, r"got \(1, True\) \(bool\)"),
        (lambda: AdaptiveAvgPool1d(None), TypeError, "AdaptiveAvgPool1d output_size must be an "
         r"integer >= 1, got None \(NoneType\)"),
        (lambda: AdaptiveAvgPool1d("3"), TypeError, r"got '3' \(str\)"),
    ],
)  # fmt: skip
def test_constructor_arguments_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (MaxPool2d(2), np.zeros((3, 4, 4)), r"MaxPool2d\(kernel_size=2, stride=2, padding=0, "
         r"dilation=1\) expects input of shape \(batch, channels, height, width\), got a 3-D "
         r"array of shape \(3, 4, 4\); for one sample use x\[None\]"),
        (AvgPool1d(2), np.zeros((1, 2, 3, 4)), r"expects input of shape \(batch, channels, "
         r"length\), got a 4-D array of shape \(1, 2, 3, 4\)$"),
        (MaxPool2d(3), np.zeros((1, 1, 2, 5)), r"MaxPool2d\(.*\) needs an input at least as "
         r"large as its window once padded: the window spans 3 x 3, but input of shape "
         r"\(1, 1, 2, 5\) is 2 x 5 after padding"),
        (MaxPool1d(3, padding=1, dilation=3), np.zeros((1, 1, 4)), r"the window spans 7, but "
         r"input of shape \(1, 1, 4\) is 6 after padding"),
        (AvgPool2d(3, padding=1), np.zeros((1, 1, 0, 9)), r"is 2 x 11 after padding"),
        (AdaptiveAvgPool2d(1), np.zeros((1, 1, 0, 3)), r"AdaptiveAvgPool2d\(output_size=1\) "
         r"needs at least one entry along each spatial axis, got input of shape \(1, 1, 0, 3\)"),
        (AdaptiveAvgPool1d(2), np.zeros((2, 4)), r"expects input of shape \(batch, channels, "
         r"length\), got a 2-D array of shape \(2, 4\); for one sample use x\[None\]"),
    ],
)  # fmt: skip
def test_input_shapes_are_checked_naming_the_layer(layer, x, message):
    with pytest.raises(ShapeError, match=message):
        layer(x)


@pytest.mark.parametrize("make", LAYERS, ids=NAMES)
def test_backward_checks_its_gradient_and_its_forward(make):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(TypeError, match="must be a numeric array of real numbers"):
        layer(np.zeros((1, 1, 4, 4), complex))
    y = layer(np.zeros((2, 1, 6, 6)))
    with pytest.raises(ShapeError, match=re.escape(f"expected grad_output of shape {y.shape}")):
        layer.backward(np.zeros((2, 1, 7, 7)))
    with pytest.raises(TypeError, match="takes the gradient as a NumPy array"):
        layer.backward(y.tolist())
    with pytest.raises(TypeError, match="takes a floating-point gradient, got dtype int64"):
        layer.backward(np.zeros(y.shape, np.int64))
    layer.eval()(np.zeros((5, 1, 6, 6)))
    with pytest.raises(RuntimeError, match="last forward pass ran in evaluation mode"):
        layer.train().backward(np.zeros(y.shape))
    layer(np.zeros((2, 1, 6, 6)))
    with pytest.raises(ShapeError):
        layer(np.zeros((2, 1, 6)))
    with pytest.raises(RuntimeError, match="or after a forward pass that failed"):
        layer.backward(np.zeros(y.shape))
