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
        ((3, 2, 1), ValueError, r"got \(3, 2, 1\)"),
        ((3, 0), ValueError, r"got \(3, 0\)"),
        ((-1, 2), ValueError, r"got \(-1, 2\)"),
    ],
    ids=["str", "float", "bool", "list", "1-D", "3-D", "zero", "negative"],
)
def test_a_bad_shape_is_named(init, shape, error, message):
    expected = rf"{init.__name__} expects a 2-D weight shape \(fan_out, fan_in\) of positive widths"
    with pytest.raises(error, match=expected + ", " + message):
        init(shape, 0, np.float32)


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
