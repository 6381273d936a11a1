"""Gradient clipping: the global norm against a float64 reference, huge float32 gradients,
clip_grad_norm below and above the limit (direction, dtype, in place, the returned norm),
PyTorch's clip_grad_norm_ as an oracle, non-finite gradients and argument errors;
clip_grad_value against torch.nn.utils.clip_grad_value_.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import Parameter
from minigrad.optim.clip import clip_grad_norm, clip_grad_value, global_grad_norm

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)
shape_lists = st.lists(shapes, min_size=1, max_size=4)
seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([np.float64, np.float32])


def make_params(shapes, seed, dtype=np.float64, scale=1.0):
    """Parameters of the given shapes whose gradients are random normal times ``scale``."""
    rng = np.random.default_rng(seed)
    params = []
    for shape in shapes:
        p = Parameter(np.zeros(shape, dtype=dtype))
        p.grad[...] = rng.standard_normal(shape) * scale
        params.append(p)
    return params


def reference_norm(grads):
    """sqrt of the sum of squares of every gradient entry, in float64 (fsum: exact sum)."""
    return math.sqrt(
        math.fsum(float(x) ** 2 for g in grads for x in np.asarray(g, np.float64).reshape(-1))
    )


# -- global_grad_norm -----------------------------------------------------------------------


@given(shapes=shape_lists, seed=seeds, scale=st.floats(1e-3, 1e3))
def test_global_grad_norm_float64(shapes, seed, scale):
    params = make_params(shapes, seed, np.float64, scale)
    expected = reference_norm([p.grad for p in params])
    assert global_grad_norm(params) == pytest.approx(expected, rel=1e-12, abs=0)


@given(shapes=shape_lists, seed=seeds, scale=st.floats(1e-3, 1e3))
def test_global_grad_norm_float32(shapes, seed, scale):
    params = make_params(shapes, seed, np.float32, scale)
    expected = reference_norm([p.grad for p in params])  # of the float32 values, in float64
    norm = global_grad_norm(params)
    assert isinstance(norm, float)
    assert norm == pytest.approx(expected, rel=1e-6, abs=0)


def test_global_grad_norm_values():
    p = Parameter(np.zeros(2))
    p.grad[:] = [3.0, 4.0]
    q = Parameter(np.zeros((2, 2), dtype=np.float32))
    q.grad[...] = [[0.0, 12.0], [0.0, 0.0]]
    assert global_grad_norm([p]) == 5.0
    assert global_grad_norm([p, q]) == 13.0
    assert global_grad_norm(p for p in [p, q]) == 13.0  # any iterable
    assert global_grad_norm([]) == 0.0
    assert global_grad_norm([Parameter(np.zeros(3))]) == 0.0


def huge_float32_params(seed):
    rng = np.random.default_rng(seed)
    params = []
    for shape in [(4, 3), (5,)]:
        p = Parameter(np.zeros(shape, dtype=np.float32))
        p.grad[...] = rng.uniform(-2.0, 2.0, size=shape) * 1e20  # squares overflow float32
        params.append(p)
    return params


def test_global_grad_norm_of_huge_float32_gradients_is_finite_and_correct():
    params = huge_float32_params(0)
    expected = reference_norm([p.grad for p in params])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        norm = global_grad_norm(params)
    assert math.isfinite(norm)
    assert norm == pytest.approx(expected, rel=1e-6, abs=0)
    assert expected > 1e20


@pytest.mark.parametrize(
    ("dtype", "size", "rtol"), [(np.float32, 1e20, 1e-5), (np.float16, 1e3, 2e-3)]
)
def test_huge_low_precision_gradients_give_no_warning(dtype, size, rtol):
    rng = np.random.default_rng(1)
    p = Parameter(np.zeros(50, dtype=dtype))
    p.grad[...] = rng.uniform(1.0, 2.0, size=50) * size
    expected = reference_norm([p.grad])
    # pytest runs with filterwarnings=error: a RuntimeWarning fails here
    assert global_grad_norm([p]) == pytest.approx(expected, rel=1e-6, abs=0)
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(expected, rel=1e-6, abs=0)
    assert p.grad.dtype == dtype
    assert reference_norm([p.grad]) == pytest.approx(1.0, rel=rtol, abs=0)


def test_tiny_float32_gradients_do_not_underflow():
    p = Parameter(np.zeros(2, dtype=np.float32))
    p.grad[:] = [3e-30, 4e-30]
    assert global_grad_norm([p]) == pytest.approx(reference_norm([p.grad]), rel=1e-6, abs=0)


# -- clip_grad_norm -------------------------------------------------------------------------


@given(
    shapes=shape_lists,
    seed=seeds,
    dtype=float_dtypes,
    max_norm=st.floats(0.01, 100.0),
    fraction=st.floats(1e-3, 0.99),
)
def test_clip_below_max_norm_leaves_gradients_unchanged(shapes, seed, dtype, max_norm, fraction):
    params = make_params(shapes, seed, dtype)
    norm = reference_norm([p.grad for p in params])
    if norm == 0:
        return
    for p in params:  # rescale so the norm is fraction * max_norm
        p.grad *= dtype(fraction * max_norm / norm)
    before = [p.grad.copy() for p in params]
    arrays = [p.grad for p in params]
    expected = reference_norm(before)
    if expected + 1e-6 >= max_norm:  # torch's eps: scale = max_norm / (norm + 1e-6) < 1
        return
    returned = clip_grad_norm(params, max_norm)
    assert returned == pytest.approx(expected, rel=1e-6, abs=0)
    for p, b, a in zip(params, before, arrays, strict=True):
        np.testing.assert_array_equal(p.grad, b)
        assert p.grad is a


@given(
    shapes=shape_lists,
    seed=seeds,
    dtype=float_dtypes,
    max_norm=st.floats(0.1, 10.0),
    factor=st.floats(1.01, 1e4),
)
def test_clip_above_max_norm_scales_to_max_norm_keeping_direction(
    shapes, seed, dtype, max_norm, factor
):
    params = make_params(shapes, seed, dtype)
    norm = reference_norm([p.grad for p in params])
    if norm < 1e-3:
        return
    for p in params:  # rescale so the norm is factor * max_norm
        p.grad *= dtype(factor * max_norm / norm)
    before = [p.grad.copy() for p in params]
    arrays = [p.grad for p in params]
    expected = reference_norm(before)
    rtol = 1e-12 if dtype is np.float64 else 1e-6

    returned = clip_grad_norm(params, max_norm)

    assert returned == pytest.approx(expected, rel=rtol, abs=0)  # the norm before clipping
    assert reference_norm([p.grad for p in params]) == pytest.approx(max_norm, rel=1e-5, abs=0)
    scale = max_norm / (expected + 1e-6)
    for p, b, a in zip(params, before, arrays, strict=True):
        assert p.grad is a  # in place
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad, b * scale, rtol=rtol, atol=0)  # one common factor


def test_clip_grad_norm_docstring_values():
    p = Parameter(np.zeros(2))
    p.grad[:] = [3.0, 4.0]
    q = Parameter(np.zeros(1, dtype=np.float32))
    assert clip_grad_norm([p, q], max_norm=1.0) == 5.0
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(q.grad, [0.0])
    assert q.grad.dtype == np.float32


def test_clip_grad_norm_adds_torch_eps_to_the_norm():
    # scale = min(1, max_norm / (norm + 1e-6)): with a tiny max_norm even a norm below it
    # is scaled, as torch.nn.utils.clip_grad_norm_ does
    p = Parameter(np.zeros(2))
    p.grad[:] = [3e-7, 4e-7]  # norm 5e-7
    assert clip_grad_norm([p], max_norm=1e-6) == pytest.approx(5e-7, rel=1e-12, abs=0)
    np.testing.assert_allclose(p.grad, np.array([3e-7, 4e-7]) * (1e-6 / 1.5e-6), rtol=1e-12)


def test_clip_grad_norm_accepts_a_generator():
    params = make_params([(3, 2), (4,)], seed=5, scale=10.0)
    norm = clip_grad_norm((p for p in params), max_norm=2.0)
    assert norm > 2.0
    assert global_grad_norm(params) == pytest.approx(2.0, rel=1e-5, abs=0)


# -- PyTorch as an oracle -------------------------------------------------------------------


@given(
    shapes=shape_lists,
    seed=seeds,
    scale=st.floats(1e-2, 1e2),
    max_norm=st.floats(0.01, 20.0),
)
def test_clip_grad_norm_matches_torch(torch, shapes, seed, scale, max_norm):
    params = make_params(shapes, seed, np.float64, scale)
    tensors = []
    for p in params:
        t = torch.nn.Parameter(torch.zeros(p.shape, dtype=torch.float64))
        t.grad = torch.from_numpy(p.grad.copy())
        tensors.append(t)

    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    returned = clip_grad_norm(params, max_norm)

    assert returned == pytest.approx(expected, rel=1e-12, abs=0)
    for p, t in zip(params, tensors, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=0)


# -- non-finite gradients and argument errors -----------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_gradient_gives_non_finite_norm_and_leaves_gradients(bad, dtype):
    params = make_params([(3, 2), (4,)], seed=7, dtype=dtype, scale=10.0)
    params[1].grad[2] = bad
    before = [p.grad.copy() for p in params]

    returned = clip_grad_norm(params, max_norm=1.0)

    if np.isnan(bad):
        assert math.isnan(returned)
        assert math.isnan(global_grad_norm(params))
    else:
        assert returned == math.inf
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.grad, b)  # NaN compares equal to NaN here


@pytest.mark.parametrize("max_norm", [0.0, -1.0, np.nan, np.inf, -np.inf])
def test_bad_max_norm_raises_and_leaves_gradients(max_norm):
    params = make_params([(3,)], seed=3, scale=10.0)
    before = params[0].grad.copy()
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        clip_grad_norm(params, max_norm)
    np.testing.assert_array_equal(params[0].grad, before)


@pytest.mark.parametrize("max_norm", ["big", "1.0", True, None, [1.0]])
def test_max_norm_that_is_not_a_number_is_a_type_error_naming_it(max_norm):
    params = make_params([(3,)], seed=3, scale=10.0)
    before = params[0].grad.copy()
    with pytest.raises(
        TypeError, match=rf"max_norm must be a real number, got {re.escape(repr(max_norm))}"
    ):
        clip_grad_norm(params, max_norm)
    np.testing.assert_array_equal(params[0].grad, before)


def test_max_norm_may_be_a_numpy_number_or_an_int():
    params = make_params([(2,)], seed=3)
    params[0].grad[:] = [3.0, 4.0]
    assert clip_grad_norm(params, np.float32(1.0)) == 5.0
    params[0].grad[:] = [3.0, 4.0]
    clip_grad_norm(params, 1)
    np.testing.assert_allclose(params[0].grad, [0.6, 0.8], rtol=1e-6)


def test_max_norm_too_large_for_a_float_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"max_norm must be a finite number"):
        clip_grad_norm(make_params([(3,)], seed=3), 10**400)


@pytest.mark.parametrize("function", [clip_grad_norm, global_grad_norm])
def test_a_parameter_listed_twice_is_refused_not_counted_twice(function):
    p, q = make_params([(2,), (3,)], seed=4)
    before = p.grad.copy()
    args = (1e-3,) if function is clip_grad_norm else ()
    with pytest.raises(ValueError, match=r"same Parameter .* twice: at positions 0 and 2"):
        function([p, q, p], *args)
    np.testing.assert_array_equal(p.grad, before)


@pytest.mark.parametrize("function", [clip_grad_norm, global_grad_norm])
def test_a_bare_parameter_or_a_non_parameter_is_a_type_error(function):
    (p,) = make_params([(2,)], seed=5)
    args = (1.0,) if function is clip_grad_norm else ()
    with pytest.raises(TypeError, match=r"iterable of Parameters, got Parameter"):
        function(p, *args)
    with pytest.raises(TypeError, match=r"parameter 1 is a ndarray, not a minigrad Parameter"):
        function([p, np.ones(2)], *args)


def test_an_empty_list_has_norm_zero():
    assert global_grad_norm([]) == 0.0
    assert clip_grad_norm([], 1.0) == 0.0


# -- norms beyond the range of a sum of squares ---------------------------------------------


@pytest.mark.parametrize(
    ("values", "norm"),
    [
        ([1e200] * 4, 2e200),  # the squares overflow float64
        ([3e307, 4e307], 5e307),
        ([1e-200] * 4, 2e-200),  # the squares underflow to 0
        ([3e-320, 4e-320], 5e-320),  # subnormal gradients
        ([1e200, 1.0, -1e-200, 0.0], 1e200),
    ],
)
def test_the_norm_is_finite_and_right_whenever_the_true_norm_is(values, norm):
    p = Parameter(np.zeros(len(values)))
    p.grad[:] = values
    # pytest runs with filterwarnings=error: an overflow warning fails here
    assert global_grad_norm([p]) == pytest.approx(norm, rel=1e-12, abs=0)


def test_huge_float64_gradients_are_clipped():
    p, q = Parameter(np.zeros(3)), Parameter(np.zeros(1))
    p.grad[:] = [1e200, -1e200, 1e200]
    q.grad[:] = [-1e200]
    assert clip_grad_norm([p, q], max_norm=1.0) == pytest.approx(2e200, rel=1e-12)
    np.testing.assert_allclose(p.grad, [0.5, -0.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(q.grad, [-0.5], rtol=1e-12)


def test_a_norm_beyond_float64_is_inf_and_leaves_the_gradients():
    p = Parameter(np.zeros(4))
    p.grad[:] = 1.5e308
    assert global_grad_norm([p]) == math.inf
    assert clip_grad_norm([p], max_norm=1.0) == math.inf
    np.testing.assert_array_equal(p.grad, [1.5e308] * 4)


@pytest.mark.parametrize(
    ("dtype", "size", "max_norm", "rtol"),
    [
        (np.float16, 6e4, 1.0, 1e-3),
        (np.float32, 3e38, 1e-4, 1e-6),
        (np.float64, 1e300, 1e-10, 1e-12),
    ],
)
def test_a_scale_below_the_dtypes_normal_range_keeps_its_precision(dtype, size, max_norm, rtol):
    # max_norm / n is subnormal in the gradient's dtype (about 1e-5, 1e-43, 1e-311):
    # multiplying by it would keep only a few bits, so the gradients are divided by n, then
    # multiplied by max_norm
    p = Parameter(np.zeros(4, dtype))
    p.grad[:] = [size, -size, size / 2, 0.0]
    assert clip_grad_norm([p], max_norm=max_norm) == pytest.approx(
        1.5 * float(p.grad.dtype.type(size)), rel=1e-3
    )
    assert p.grad.dtype == dtype
    np.testing.assert_allclose(
        p.grad, np.array([1.0, -1.0, 0.5, 0.0]) / 1.5 * max_norm, rtol=rtol, atol=0
    )


def test_gradients_after_zero_grad_have_norm_zero():
    params = make_params([(3,), (2, 2)], seed=0, scale=100.0)
    for p in params:
        p.zero_grad()
    assert global_grad_norm(params) == 0.0
    assert clip_grad_norm(params, 1.0) == 0.0
    assert not any(p.grad.any() for p in params)


# -- clip_grad_value ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.0, 1e5])
def test_clip_grad_value_matches_torch(torch, dtype, clip_value):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=s).astype(dtype) * 2 for s in [(3, 4), (5,), ()]]
    grads[0][0, 0], grads[1][0] = np.inf, -np.inf
    params = [Parameter(np.zeros_like(g)) for g in grads]
    tensors = [torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name)) for g in grads]
    for p, t, g in zip(params, tensors, grads, strict=True):
        p.grad[...] = g
        t.grad = torch.tensor(g.copy())
    assert clip_grad_value(params, clip_value) is None
    if clip_value > float(np.finfo(dtype).max):  # torch refuses it; nothing lies beyond
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_array_equal(p.grad, g)
        return
    torch.nn.utils.clip_grad_value_(tensors, clip_value)
    for p, t in zip(params, tensors, strict=True):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
        assert p.grad.dtype == dtype


def test_clip_grad_value_keeps_nan_and_skips_frozen_parameters():
    p, frozen = Parameter(np.zeros(3)), Parameter(np.zeros(2))
    p.grad[...] = [np.nan, 5.0, -5.0]
    frozen.grad[...] = 7.0
    frozen.requires_grad = False
    clip_grad_value([p, frozen], 2.0)
    np.testing.assert_array_equal(p.grad, [np.nan, 2.0, -2.0])
    np.testing.assert_array_equal(frozen.grad, [7.0, 7.0])


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-1.0, ValueError, r"clip_value must be a finite number >= 0, got -1\.0"),
        (float("nan"), ValueError, r"clip_value must be a finite number >= 0, got nan"),
        (float("inf"), ValueError, r"clip_value must be a finite number >= 0, got inf"),
        ("1", TypeError, r"clip_value must be a real number, got '1'"),
        (True, TypeError, r"clip_value must be a real number, got True"),
    ],
)
def test_clip_grad_value_checks_its_arguments(value, error, match):
    p = Parameter(np.ones(2))
    p.grad[...] = 3.0
    with pytest.raises(error, match=match):
        clip_grad_value([p], value)
    with pytest.raises(TypeError, match="iterable of Parameters"):
        clip_grad_value(p, 1.0)
    np.testing.assert_array_equal(p.grad, [3.0, 3.0])
