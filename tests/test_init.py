"""Initialisers: their arguments are checked with messages that name them."""

from __future__ import annotations

import numpy as np
import pytest

from minigrad import Dense
from minigrad.init import he_normal, he_uniform, xavier_normal, xavier_uniform

INITIALISERS = [he_normal, he_uniform, xavier_normal, xavier_uniform]


@pytest.mark.parametrize("init", INITIALISERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("shape", "error", "message"),
    [
        (("3", 2), TypeError, r"got \('3', 2\): shape\[0\] is '3' \(str\), not an integer"),
        ((3.0, 2), TypeError, r"got \(3\.0, 2\): shape\[0\] is 3\.0 \(float\), not an integer"),
        ((3, True), TypeError, r"got \(3, True\): shape\[1\] is True \(bool\), not an integer"),
        ([3, 2], TypeError, r"got \[3, 2\]"),
        ((3,), ValueError, r"got \(3,\)"),
        ((), ValueError, r"got \(\)"),
        ((3, 0), ValueError, r"got \(3, 0\)"),
        ((-1, 2), ValueError, r"got \(-1, 2\)"),
        ((4, 2, 3, 0), ValueError, r"got \(4, 2, 3, 0\)"),
        ((4, 2, 3.0), TypeError, r"got \(4, 2, 3\.0\): shape\[2\] is 3\.0 \(float\)"),
    ],
    ids=["str", "float", "bool", "list", "1-D", "0-D", "zero", "negative", "kernel zero",
         "kernel float"],
)  # fmt: skip
def test_a_bad_shape_is_named(init, shape, error, message):
    expected = (
        rf"{init.__name__} expects a weight shape \(fan_out, fan_in\), or \(out_channels, "
        r"in_channels / groups, \*kernel_size\) for a convolution, of positive widths"
    )
    with pytest.raises(error, match=expected + ", " + message):
        init(shape, 0, np.float32)


# -- convolution weights: fans count the kernel's taps, as torch.nn.init does ------------------

#: (variance as a function of fan_in and fan_out) for each initialiser
VARIANCES = {
    he_normal: lambda fan_in, fan_out: 2 / fan_in,
    he_uniform: lambda fan_in, fan_out: 2 / fan_in,
    xavier_normal: lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    xavier_uniform: lambda fan_in, fan_out: 2 / (fan_in + fan_out),
}


@pytest.mark.parametrize("init", INITIALISERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("shape", "fan_in", "fan_out"),
    [
        ((48, 40, 6), 240, 288),  # Conv1d(40, 48, 6)
        ((64, 12, 3, 5), 180, 960),  # Conv2d(24, 64, (3, 5), groups=2): in_channels / groups
        ((64, 3, 4, 4, 4), 192, 4096),  # a 3-d kernel: every axis after the second counts
    ],
)
def test_a_convolution_weight_has_the_variance_of_its_fans(init, shape, fan_in, fan_out):
    weight = init(shape, np.random.default_rng(0), np.float64)
    assert weight.shape == shape and weight.dtype == np.float64
    variance = VARIANCES[init](fan_in, fan_out)
    # over 10^4 draws the sample variance is within 1.5% of the variance (one standard error)
    np.testing.assert_allclose(weight.var(), variance, rtol=0.05)
    assert abs(weight.mean()) < 0.05 * np.sqrt(variance)
    if init in (he_uniform, xavier_uniform):
        bound = np.sqrt(3 * variance)
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.99 * bound  # not a narrower distribution


@pytest.mark.parametrize("shape", [(6, 4), (48, 40, 5), (32, 12, 3, 5), (8, 3, 2, 2, 2)])
def test_the_fans_are_torch_nn_inits(torch, shape):
    # torch's xavier_uniform_ bound is sqrt(6 / (fan_in + fan_out)) and kaiming_uniform_'s
    # (a=0) sqrt(6 / fan_in): the largest magnitude of many draws finds the bound
    big = (shape[0] * 50, *shape[1:])
    xavier = torch.nn.init.xavier_uniform_(torch.empty(big)).abs().max().item()
    kaiming = torch.nn.init.kaiming_uniform_(torch.empty(big), nonlinearity="relu")
    kaiming = kaiming.abs().max().item()
    ours_xavier = np.abs(xavier_uniform(big, np.random.default_rng(0), np.float64)).max()
    ours_he = np.abs(he_uniform(big, np.random.default_rng(0), np.float64)).max()
    np.testing.assert_allclose(ours_xavier, xavier, rtol=0.01)
    np.testing.assert_allclose(ours_he, kaiming, rtol=0.01)


def test_a_dense_weight_draws_the_same_numbers_as_before():
    # the n-d shapes must not change the 2-d draw: saved seeds keep their models
    weight = he_normal((2, 3), np.random.default_rng(0), np.float64)
    expected = np.random.default_rng(0).standard_normal((2, 3)) * np.sqrt(2 / 3)
    np.testing.assert_array_equal(weight, expected)


@pytest.mark.parametrize("init", INITIALISERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("dtype", "shown"),
    [
        (None, "None"),
        (np.int32, "int32"),
        (np.complex64, "complex64"),
        (object, "object"),
        (bool, "bool"),
        (np.longdouble, "float128"),
        ("not a dtype", r"'not a dtype' \(str\)"),
    ],
)
def test_a_dtype_that_is_not_float16_32_or_64_is_a_type_error(init, dtype, shown):
    # None gave float64 and int32 gave weights that were mostly 0
    if np.dtype(np.longdouble) == np.float64 and dtype is np.longdouble:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(
        TypeError, match=rf"{init.__name__} dtype must be a floating-point type: .*got {shown}"
    ):
        init((3, 2), 0, dtype)


@pytest.mark.parametrize("init", INITIALISERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "float32"])
def test_float_dtypes_and_numpy_integer_widths_are_accepted(init, dtype):
    weight = init((np.int64(3), np.int32(2)), np.random.default_rng(0), dtype)
    assert weight.shape == (3, 2) and weight.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(weight, init((3, 2), 0, dtype))


@pytest.mark.parametrize("init", INITIALISERS, ids=lambda f: f.__name__)
def test_a_draw_larger_than_memory_is_refused_before_drawing(init):
    with pytest.raises(
        MemoryError,
        match=rf"{init.__name__}\(1000000, 1000000\) is too large: its float64 draw would hold "
        r"1e\+12 values of float64 \(7\.28 TiB\)",
    ):
        init((10**6, 10**6), 0, np.float16)


def test_dense_reports_the_initialisers_float64_draw_too(monkeypatch):
    from minigrad import _validation

    monkeypatch.setattr(_validation, "physical_memory", lambda: 2**30)
    # the float16 weight (400 MB) fits in 1 GiB, its float64 draw (1.6 GB) does not
    with pytest.raises(
        MemoryError,
        match=r"Dense\(10000, 20000\): its weight of shape \(20000, 10000\) could not be "
        r"allocated: xavier_uniform\(20000, 10000\) is too large: its float64 draw would hold "
        r"200,000,000 values of float64 \(1\.49 GiB\), more than this machine's 1 GiB of memory",
    ):
        Dense(10_000, 20_000, dtype=np.float16)
    with pytest.raises(MemoryError, match=r"Dense\(40000, 20000\) is too large: its weight"):
        Dense(40_000, 20_000, dtype=np.float16)
