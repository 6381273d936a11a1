"""GradientMean, fit's gradient accumulation: the mean it writes, the bounds it gives
SafeStep (they bound the mean, and refuse to vouch for sums that could overflow), and the
dtype it sums in."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad._accumulate import GradientMean
from minigrad.gradient_bounds import GradientBounds
from minigrad.optim.safe_step import SafeStep, norm


def test_the_mean_is_weighted_by_the_batches_sizes_and_bounded_by_their_bounds():
    """Three MSE batches (each with its own loss value, so its own bound), the last short:
    the mean is the gradient of all their samples together and within the bound given."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    model = mg.Sequential(mg.Dense(3, 4, rng=0, dtype=np.float64), mg.Tanh())
    model.append(mg.Dense(4, 2, rng=1, dtype=np.float64))
    loss, params = mg.MSE(), model.parameters()
    bounds = GradientBounds(model, loss, float(np.linalg.norm(x, axis=1).max()), 3)
    mean = GradientMean(params, every=3)
    for batch, rows in enumerate((slice(0, 4), slice(4, 8), slice(8, 10))):
        value = loss(model(x[rows]), y[rows])
        model.backward(loss.backward())
        n = rows.stop - rows.start
        due = mean.add(batch, n, bounds.for_step(params, n, value, 2 * n), last=batch == 2)
        assert due == (batch == 2)
    accumulated = [p.grad.copy() for p in params]
    limits = mean.grad_bounds({id(p): norm(p.value) for p in params})
    loss(model(x), y)
    model.backward(loss.backward())
    for got, p, limit in zip(accumulated, params, limits, strict=True):
        np.testing.assert_allclose(got, p.grad, rtol=1e-13, atol=1e-15)
        assert norm(got) <= limit < np.inf
    assert {"mean"} <= set(mean.grad_bounds.key)


def test_sums_that_could_overflow_are_not_vouched_for_and_safe_step_refuses_them():
    """Gradients of 3e37 are finite in float32, but 20 of them add up past its 3.4e38: the
    bounds say so (inf), SafeStep measures the sum's mean, and no step is taken."""
    p = mg.Parameter(np.ones(1, np.float32))
    optimizer = mg.SGD([p], lr=1e-40)
    mean = GradientMean([p], every=20)

    def bound(value_norms):
        return [3.1e37]

    bound.key = ("test",)
    with np.errstate(over="ignore"):  # as in fit
        for batch in range(20):
            p.grad[:] = 3e37
            due = mean.add(batch, 1, bound, last=False)
        assert due and mean.grad_bounds({id(p): 1.0}) == [np.inf]
        with pytest.raises(mg.DivergenceError, match="gradient of parameter 0 holds NaN or inf"):
            SafeStep(optimizer).step(mean.grad_bounds)
    assert p.value.tolist() == [1.0]
    few = GradientMean([p], every=2)  # two: their sum stays below float32's max / 16

    def smaller(value_norms):
        return [1e36]

    p.grad[:] = 1e36
    few.add(0, 1, smaller, last=False)
    few.add(1, 1, smaller, last=False)
    assert few.grad_bounds({id(p): 1.0}) == [pytest.approx(1e36, rel=1e-6)]
    assert not hasattr(few.grad_bounds, "key")  # bounds without a key: no proof reused


def test_float16_gradients_are_summed_in_float32_and_a_group_of_one_is_left_alone():
    p = mg.Parameter(np.zeros(3, np.float16))
    mean = GradientMean([p], every=4)
    assert mean.sums[0].dtype == np.float32
    for batch in range(3):
        p.grad[:] = 60000.0  # float16 holds up to 65504: the sum of three would overflow
        mean.add(batch, 8, None, last=False)
    p.grad[:] = 30000.0
    assert mean.add(3, 4, None, last=True)  # the epoch's short last batch ends the group
    expected = (3 * 8 * 60000.0 + 4 * 30000.0) / 28
    np.testing.assert_allclose(p.grad, expected, rtol=1e-3)
    assert mean.grad_bounds is None  # no bounds given: SafeStep measures
    p.grad[:] = 7.0
    assert mean.add(4, 2, None, last=True)  # a group of one batch: its gradient is the mean
    assert p.grad.tolist() == [7.0] * 3
