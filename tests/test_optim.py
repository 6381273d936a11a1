"""Optimizers: update rules against formulas written out here, PyTorch as an oracle,
in-place updates and per-parameter state, zero_grad, convergence, argument errors,
state_dict round trips and reprs.

The reference formulas below are plain NumPy on copies of the arrays; none of them calls
minigrad's own update functions.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import (
    MSE,
    SGD,
    Adam,
    AdamW,
    Dense,
    Momentum,
    Parameter,
    Sequential,
    ShapeError,
    Tanh,
)
from minigrad.optim import adam_update, momentum_update, sgd_update
from minigrad.optim import fused as fused_kernels

RTOL = 1e-10
ATOL = 1e-12
SCHEDULE = [0.1, 0.1, 0.05, 0.05, 0.2, 0.01, 0.01, 0.1, 0.003, 0.03]  # lr changes mid-run
SHAPES = [(3, 4), (4,), (2, 3, 2), ()]

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)
lr_schedules = st.lists(st.floats(1e-3, 0.5), min_size=5, max_size=5).filter(
    lambda lrs: len(set(lrs)) > 1
)
fractions = st.floats(0.0, 0.99)

# every optimizer, each with weight decay switched on so that code path runs too
FACTORIES = {
    "sgd": lambda ps, lr=0.1: SGD(ps, lr=lr, weight_decay=0.1),
    "momentum": lambda ps, lr=0.1: Momentum(ps, lr=lr, momentum=0.9, weight_decay=0.1),
    "nesterov": lambda ps, lr=0.1: Momentum(
        ps, lr=lr, momentum=0.8, nesterov=True, weight_decay=0.1
    ),
    "adam": lambda ps, lr=0.1: Adam(ps, lr=lr, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda ps, lr=0.1: AdamW(ps, lr=lr, betas=(0.8, 0.99), weight_decay=0.1),
}
all_optimizers = pytest.mark.parametrize("make", list(FACTORIES.values()), ids=list(FACTORIES))
BUFFERS = {"momentum": ("velocity",), "nesterov": ("velocity",), "adam": ("m", "v")}
BUFFERS["adamw"] = BUFFERS["adam"]
with_buffers = pytest.mark.parametrize(
    ("make", "keys"), [(FACTORIES[name], keys) for name, keys in BUFFERS.items()], ids=BUFFERS
)


# -- helpers ----------------------------------------------------------------------------------


def random_arrays(shapes_, rng, dtype=np.float64):
    """One standard-normal array per shape (0-d arrays stay arrays)."""
    return [np.asarray(rng.normal(size=shape), dtype=dtype) for shape in shapes_]


def problem(shape, seed, steps):
    """A starting value and one random gradient per step, float64."""
    rng = np.random.default_rng(seed)
    start = np.asarray(rng.normal(size=shape))
    grads = [np.asarray(rng.normal(size=shape)) for _ in range(steps)]
    return start, grads


def trajectory(make, start, grads, lrs):
    """Run a minigrad optimizer on one parameter; the value after each step."""
    param = Parameter(start.copy())
    opt = make([param])
    values = []
    for grad, lr in zip(grads, lrs, strict=True):
        opt.lr = lr
        param.grad[...] = grad
        opt.step()
        values.append(param.value.copy())
    return values


def assert_trajectories_close(got, expected, rtol=RTOL, atol=ATOL):
    assert len(got) == len(expected)
    for step, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"step {step + 1}")


def reference_momentum(start, grads, lrs, mu, *, nesterov=False, weight_decay=0.0):
    """torch.optim.SGD's momentum: b <- mu b + g; p <- p - lr b (or lr (g + mu b))."""
    p, b, values = start.copy(), np.zeros_like(start), []
    for grad, lr in zip(grads, lrs, strict=True):
        g = grad + weight_decay * p
        b = mu * b + g
        p = p - lr * (g + mu * b) if nesterov else p - lr * b
        values.append(p)
    return values


def slides_momentum(start, grads, lrs, mu):
    """The slides' form: v <- mu v + lr g; p <- p - v."""
    p, v, values = start.copy(), np.zeros_like(start), []
    for grad, lr in zip(grads, lrs, strict=True):
        v = mu * v + lr * grad
        p = p - v
        values.append(p)
    return values


def reference_adam(start, grads, lrs, beta1, beta2, eps, weight_decay, *, decoupled):
    """Adam (coupled L2) or AdamW (decoupled decay), bias-corrected, eps outside the root."""
    p, m, v, values = start.copy(), np.zeros_like(start), np.zeros_like(start), []
    for t, (grad, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
            g = grad
        else:
            g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        values.append(p)
    return values


def assert_state_dicts_equal(a, b):
    assert a["hyperparameters"] == b["hyperparameters"]
    assert len(a["state"]) == len(b["state"])
    for sa, sb in zip(a["state"], b["state"], strict=True):
        assert set(sa) == set(sb)
        for key in sa:
            assert np.shape(sa[key]) == np.shape(sb[key]), key
            assert np.asarray(sa[key]).dtype == np.asarray(sb[key]).dtype, key
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def trained(make, seed=0, steps=3, lr=0.1):
    """An optimizer over SHAPES-shaped parameters after a few random steps."""
    rng = np.random.default_rng(seed)
    params = [Parameter(v) for v in random_arrays(SHAPES, rng)]
    opt = make(params, lr=lr)
    for _ in range(steps):
        for p, g in zip(params, random_arrays(SHAPES, rng), strict=True):
            p.grad[...] = g
        opt.step()
    return opt, params


# -- 1. update rules against the formulas ----------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
@given(shape=shapes, seed=seeds, lrs=lr_schedules)
def test_sgd_follows_its_formula_with_a_changing_lr(weight_decay, shape, seed, lrs):
    start, grads = problem(shape, seed, len(lrs))
    got = trajectory(lambda ps: SGD(ps, lr=lrs[0], weight_decay=weight_decay), start, grads, lrs)
    p, expected = start.copy(), []
    for grad, lr in zip(grads, lrs, strict=True):
        p = p - lr * (grad + weight_decay * p)
        expected.append(p)
    assert_trajectories_close(got, expected)


@pytest.mark.parametrize("nesterov", [False, True], ids=["heavy_ball", "nesterov"])
@given(
    shape=shapes,
    seed=seeds,
    lrs=lr_schedules,
    mu=fractions,
    weight_decay=st.sampled_from([0.0, 0.05, 0.5]),
)
def test_momentum_follows_the_torch_formula_with_a_changing_lr(
    nesterov, shape, seed, lrs, mu, weight_decay
):
    start, grads = problem(shape, seed, len(lrs))
    make = lambda ps: Momentum(  # noqa: E731
        ps, lr=lrs[0], momentum=mu, nesterov=nesterov, weight_decay=weight_decay
    )
    expected = reference_momentum(
        start, grads, lrs, mu, nesterov=nesterov, weight_decay=weight_decay
    )
    assert_trajectories_close(trajectory(make, start, grads, lrs), expected)


def test_momentum_by_hand_two_steps():
    p = Parameter(np.array([1.0, -2.0]))
    opt = Momentum([p], lr=0.1, momentum=0.5)
    p.grad[:] = [1.0, 2.0]
    opt.step()  # b = g = [1, 2]; p = [0.9, -2.2]
    np.testing.assert_allclose(opt.state[p]["velocity"], [1.0, 2.0])
    np.testing.assert_allclose(p.value, [0.9, -2.2])
    opt.lr = 0.2
    p.grad[:] = [0.0, -4.0]
    opt.step()  # b = [0.5, 1 - 4] = [0.5, -3]; p = [0.9 - 0.1, -2.2 + 0.6]
    np.testing.assert_allclose(opt.state[p]["velocity"], [0.5, -3.0])
    np.testing.assert_allclose(p.value, [0.8, -1.6])


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
@given(
    shape=shapes,
    seed=seeds,
    lrs=lr_schedules,
    beta1=fractions,
    beta2=st.floats(0.0, 0.999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    weight_decay=st.sampled_from([0.0, 0.01, 0.3]),
)
def test_adam_follows_its_formula_with_a_changing_lr(
    decoupled, shape, seed, lrs, beta1, beta2, eps, weight_decay
):
    start, grads = problem(shape, seed, len(lrs))
    cls = AdamW if decoupled else Adam
    make = lambda ps: cls(  # noqa: E731
        ps, lr=lrs[0], betas=(beta1, beta2), eps=eps, weight_decay=weight_decay
    )
    expected = reference_adam(
        start, grads, lrs, beta1, beta2, eps, weight_decay, decoupled=decoupled
    )
    assert_trajectories_close(trajectory(make, start, grads, lrs), expected)


def test_adam_and_adamw_differ_only_in_where_weight_decay_acts():
    start, grads = problem((5,), 7, 5)
    lrs = [0.1, 0.05, 0.05, 0.2, 0.01]
    coupled = trajectory(lambda ps: Adam(ps, weight_decay=0.3), start, grads, lrs)
    decoupled = trajectory(lambda ps: AdamW(ps, weight_decay=0.3), start, grads, lrs)
    assert np.abs(coupled[-1] - decoupled[-1]).max() > 1e-3
    no_decay_adam = trajectory(lambda ps: Adam(ps, weight_decay=0.0), start, grads, lrs)
    no_decay_adamw = trajectory(lambda ps: AdamW(ps, weight_decay=0.0), start, grads, lrs)
    assert_trajectories_close(no_decay_adam, no_decay_adamw, rtol=0, atol=0)


def test_adamw_with_zero_gradient_only_shrinks_the_parameter():
    p = Parameter(np.array([2.0, -4.0]))
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    opt.step()
    np.testing.assert_allclose(p.value, [1.9, -3.8], rtol=1e-15)
    opt.lr = 0.2
    opt.step()
    np.testing.assert_allclose(p.value, [1.9 * 0.9, -3.8 * 0.9], rtol=1e-15)


# eps must be > 0; 1e-300 is far below every sqrt(v) here, so the step is Adam's without eps


@given(seed=seeds, lr=st.floats(1e-3, 1.0), scale=st.floats(1e-3, 1e3))
def test_first_adam_step_moves_each_entry_by_lr_whatever_the_gradient_scale(seed, lr, scale):
    start, (grad,) = problem((6,), seed, 1)
    p = Parameter(start.copy())
    p.grad[...] = scale * grad
    Adam([p], lr=lr, eps=1e-300).step()
    np.testing.assert_allclose(p.value, start - lr * np.sign(grad), rtol=1e-12, atol=1e-12)


@given(seed=seeds, scale=st.floats(1e-3, 1e3))
def test_adam_with_a_negligible_eps_is_invariant_to_gradient_scale(seed, scale):
    start, grads = problem((4,), seed, 5)
    lrs = [0.1, 0.05, 0.2, 0.01, 0.1]
    make = lambda ps: Adam(ps, eps=1e-300)  # noqa: E731
    plain = trajectory(make, start, grads, lrs)
    scaled = trajectory(make, start, [scale * g for g in grads], lrs)
    assert_trajectories_close(scaled, plain, rtol=1e-9, atol=1e-12)


def test_slides_momentum_form_is_the_same_trajectory_at_constant_lr():
    start, grads = problem((3, 2), 3, 8)
    lrs = [0.1] * 8
    got = trajectory(lambda ps: Momentum(ps, lr=0.1, momentum=0.9), start, grads, lrs)
    assert_trajectories_close(got, slides_momentum(start, grads, lrs, 0.9))


def test_slides_momentum_form_diverges_once_the_lr_changes_and_torch_form_does_not():
    start, grads = problem((3, 2), 3, 8)
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01]
    got = trajectory(lambda ps: Momentum(ps, lr=0.1, momentum=0.9), start, grads, lrs)
    slides = slides_momentum(start, grads, lrs, 0.9)
    assert_trajectories_close(got[:3], slides[:3])  # the same until the lr changes
    for step in range(3, 8):
        assert np.abs(got[step] - slides[step]).max() > 1e-3, f"step {step + 1}"
    assert_trajectories_close(got, reference_momentum(start, grads, lrs, 0.9))


# -- 2. PyTorch as an oracle ------------------------------------------------------------------

ORACLE_CASES = {
    "sgd": (
        lambda ps, lr, fused: SGD(ps, lr=lr, fused=fused),
        lambda torch, ps, lr: torch.optim.SGD(ps, lr=lr),
    ),
    "sgd_weight_decay": (
        lambda ps, lr, fused: SGD(ps, lr=lr, fused=fused, weight_decay=0.1),
        lambda torch, ps, lr: torch.optim.SGD(ps, lr=lr, weight_decay=0.1),
    ),
    "momentum": (
        lambda ps, lr, fused: Momentum(ps, lr=lr, fused=fused, momentum=0.9),
        lambda torch, ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    ),
    "momentum_weight_decay": (
        lambda ps, lr, fused: Momentum(ps, lr=lr, fused=fused, momentum=0.8, weight_decay=0.05),
        lambda torch, ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.8, weight_decay=0.05),
    ),
    "nesterov_weight_decay": (
        lambda ps, lr, fused: Momentum(
            ps, lr=lr, fused=fused, momentum=0.9, nesterov=True, weight_decay=0.01
        ),
        lambda torch, ps, lr: torch.optim.SGD(
            ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=0.01
        ),
    ),
    "adam": (
        lambda ps, lr, fused: Adam(ps, lr=lr, fused=fused),
        lambda torch, ps, lr: torch.optim.Adam(ps, lr=lr),
    ),
    "adam_weight_decay": (
        lambda ps, lr, fused: Adam(
            ps, lr=lr, fused=fused, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1
        ),
        lambda torch, ps, lr: torch.optim.Adam(
            ps, lr=lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1
        ),
    ),
    "adamw": (
        lambda ps, lr, fused: AdamW(ps, lr=lr, fused=fused, weight_decay=0.1),
        lambda torch, ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.1),
    ),
}


def compare_with_torch(torch, make, make_torch, dtype, rtol, atol, fused, seed=0):
    if fused and not fused_kernels.available():
        pytest.skip("the fused kernels need numba")
    rng = np.random.default_rng(seed)
    starts = random_arrays(SHAPES, rng, dtype)
    params = [Parameter(v.copy()) for v in starts]
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in starts]
    assert all(tp.dtype == getattr(torch, np.dtype(dtype).name) for tp in tparams)
    opt = make(params, SCHEDULE[0], fused)
    assert opt.fused is fused
    topt = make_torch(torch, tparams, SCHEDULE[0])
    for step, lr in enumerate(SCHEDULE, start=1):
        opt.lr = lr
        topt.param_groups[0]["lr"] = lr
        for p, tp, g in zip(params, tparams, random_arrays(SHAPES, rng, dtype), strict=True):
            p.grad[...] = g
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        for index, (p, tp) in enumerate(zip(params, tparams, strict=True)):
            assert p.value.dtype == dtype
            np.testing.assert_allclose(
                p.value,
                tp.detach().numpy(),
                rtol=rtol,
                atol=atol,
                err_msg=f"step {step}, parameter {index}",
            )
    # the run really moved the parameters, by more than the tolerance
    assert max(np.abs(p.value - s).max() for p, s in zip(params, starts, strict=True)) > 1e-2


# the NumPy update and the fused kernels (minigrad/optim/fused.py, skipped without numba)
each_path = pytest.mark.parametrize("fused", [False, True], ids=["numpy", "fused"])


@each_path
@pytest.mark.parametrize(("make", "make_torch"), ORACLE_CASES.values(), ids=ORACLE_CASES)
def test_matches_torch_float64_with_a_changing_lr(torch, make, make_torch, fused):
    compare_with_torch(torch, make, make_torch, np.float64, rtol=1e-10, atol=1e-12, fused=fused)


@each_path
@pytest.mark.parametrize(("make", "make_torch"), ORACLE_CASES.values(), ids=ORACLE_CASES)
def test_matches_torch_float32_with_a_changing_lr(torch, make, make_torch, fused):
    compare_with_torch(torch, make, make_torch, np.float32, rtol=1e-5, atol=1e-6, fused=fused)


# -- 3. in-place updates, state and dtypes ----------------------------------------------------


@all_optimizers
def test_step_updates_values_in_place(make):
    rng = np.random.default_rng(1)
    params = [Parameter(v) for v in random_arrays(SHAPES, rng)]
    arrays = [p.value for p in params]
    before = [a.copy() for a in arrays]
    opt = make(params)
    for p, g in zip(params, random_arrays(SHAPES, rng), strict=True):
        p.grad[...] = g
    opt.step()
    for p, array, old in zip(params, arrays, before, strict=True):
        assert p.value is array
        assert not np.allclose(array, old)


@all_optimizers
def test_step_leaves_gradients_unchanged(make):
    rng = np.random.default_rng(2)
    params = [Parameter(v) for v in random_arrays(SHAPES, rng)]
    opt = make(params)
    grads = random_arrays(SHAPES, rng)
    for p, g in zip(params, grads, strict=True):
        p.grad[...] = g
    opt.step()
    opt.step()
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)


@all_optimizers
def test_zero_lr_leaves_values_unchanged(make):
    rng = np.random.default_rng(3)
    params = [Parameter(v) for v in random_arrays(SHAPES, rng)]
    before = [p.value.copy() for p in params]
    opt = make(params, lr=0.0)
    for _ in range(3):
        for p, g in zip(params, random_arrays(SHAPES, rng), strict=True):
            p.grad[...] = g
        opt.step()
    for p, old in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.value, old)


@with_buffers
def test_state_buffers_are_allocated_once_and_updated_in_place(make, keys):
    opt, params = trained(make, steps=0)
    buffers = {(i, key): opt.state[p][key] for i, p in enumerate(params) for key in keys}
    rng = np.random.default_rng(4)
    for _ in range(3):
        for p, g in zip(params, random_arrays(SHAPES, rng), strict=True):
            p.grad[...] = g
        opt.step()
        for (i, key), buffer in buffers.items():
            assert opt.state[params[i]][key] is buffer
    assert all(np.any(buffer != 0) for buffer in buffers.values())


@all_optimizers
def test_float32_parameters_and_state_stay_float32(make):
    rng = np.random.default_rng(5)
    params = [Parameter(v) for v in random_arrays(SHAPES, rng, np.float32)]
    before = [p.value.copy() for p in params]
    opt = make(params)
    for _ in range(5):
        for p, g in zip(params, random_arrays(SHAPES, rng, np.float32), strict=True):
            p.grad[...] = g
        opt.step()
    for p, old in zip(params, before, strict=True):
        assert p.value.dtype == np.float32
        assert p.grad.dtype == np.float32
        assert np.all(np.isfinite(p.value))
        assert not np.allclose(p.value, old)
        for key, value in opt.state[p].items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key


@all_optimizers
def test_state_is_per_parameter_even_for_equal_shapes(make):
    rng = np.random.default_rng(6)
    a, b = random_arrays([(3, 2), (3, 2)], rng)
    together = [Parameter(a.copy()), Parameter(b.copy())]
    alone = [Parameter(a.copy()), Parameter(b.copy())]
    opt = make(together)
    separate = [make([alone[0]]), make([alone[1]])]
    assert set(opt.state) == set(together)
    for _ in range(4):
        grads = random_arrays([(3, 2), (3, 2)], rng)
        for p, q, g in zip(together, alone, grads, strict=True):
            p.grad[...] = g
            q.grad[...] = g
        opt.step()
        for single in separate:
            single.step()
    for p, q in zip(together, alone, strict=True):
        np.testing.assert_array_equal(p.value, q.value)
    assert not np.allclose(together[0].value, together[1].value)


@with_buffers
def test_state_buffers_are_not_shared_between_parameters(make, keys):
    opt, params = trained(make, steps=1)
    arrays = [opt.state[p][key] for p in params for key in keys]
    assert len({id(a) for a in arrays}) == len(arrays)
    assert not any(np.shares_memory(x, y) for i, x in enumerate(arrays) for y in arrays[i + 1 :])


def test_momentum_velocity_is_the_sum_of_discounted_gradients():
    p = Parameter(np.zeros(3))
    opt = Momentum([p], lr=0.01, momentum=0.5)
    grads = random_arrays([(3,)] * 4, np.random.default_rng(8))
    for g in grads:
        p.grad[...] = g
        opt.step()
    expected = sum(0.5 ** (len(grads) - 1 - k) * g for k, g in enumerate(grads))
    np.testing.assert_allclose(opt.state[p]["velocity"], expected, rtol=1e-14)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_counts_steps_per_parameter(cls):
    rng = np.random.default_rng(9)
    a, b = random_arrays([(4,), (4,)], rng)
    pa, pb = Parameter(a.copy()), Parameter(b.copy())
    opt = cls([pa, pb], lr=0.1, weight_decay=0.0)
    assert opt.state[pa]["step"] == opt.state[pb]["step"] == 0
    opt.state[pa]["step"] = 4  # as if pa had been trained before, with zero moments
    ga, gb = random_arrays([(4,), (4,)], rng)
    pa.grad[...] = ga
    pb.grad[...] = gb
    opt.step()
    assert opt.state[pa]["step"] == 5
    assert opt.state[pb]["step"] == 1
    for p, start, g, t in [(pa, a, ga, 5), (pb, b, gb, 1)]:
        m_hat = 0.1 * g / (1 - 0.9**t)
        v_hat = 0.001 * g**2 / (1 - 0.999**t)
        np.testing.assert_allclose(p.value, start - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8))


def test_optimizer_updates_the_arrays_a_model_uses():
    model = Sequential(
        Dense(3, 4, rng=0, dtype=np.float64), Tanh(), Dense(4, 2, rng=1, dtype=np.float64)
    )
    opt = SGD(model.parameters(), lr=0.5)
    x = np.random.default_rng(10).normal(size=(5, 3))
    y = np.random.default_rng(11).normal(size=(5, 2))
    loss = MSE()
    first = loss(model(x), y)
    model.backward(loss.backward())
    expected = [p.value - 0.5 * p.grad for p in model.parameters()]
    opt.step()
    for p, e in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(p.value, e, rtol=1e-15)
    assert loss(model(x), y) < first


def test_a_generator_of_parameters_is_accepted():
    params = [Parameter(np.ones(2)), Parameter(np.ones(3))]
    opt = SGD((p for p in params), lr=0.1)
    assert opt.params == params
    assert set(opt.state) == set(params)


# -- 4. zero_grad -----------------------------------------------------------------------------


@all_optimizers
def test_zero_grad_zeroes_every_gradient_in_place(make):
    opt, params = trained(make)
    grads = [p.grad for p in params]
    values = [p.value.copy() for p in params]
    for p in params:
        p.grad[...] = 1.5
    opt.zero_grad()
    for p, grad, value in zip(params, grads, values, strict=True):
        assert p.grad is grad
        np.testing.assert_array_equal(p.grad, np.zeros(p.shape))
        np.testing.assert_array_equal(p.value, value)


@pytest.mark.parametrize("cls", [SGD, Momentum, Adam, AdamW], ids=lambda c: c.__name__)
def test_zero_grad_is_safe_before_any_backward_and_twice(cls):
    model = Sequential(Dense(2, 3, rng=0), Tanh(), Dense(3, 1, rng=1))
    params = model.parameters()
    before = [p.value.copy() for p in params]
    opt = cls(params, lr=0.1, weight_decay=0.0)
    opt.zero_grad()
    opt.zero_grad()
    for p in params:
        assert not np.any(p.grad)
    opt.step()  # a zero gradient (and no decay) moves nothing, momentum and Adam included
    for p, old in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.value, old)


def explicit_zeros(params):
    for p in params:
        p.grad[...] = 0.0


@all_optimizers
@pytest.mark.parametrize(
    "between",
    [
        lambda params: None,
        # a value replaced by an array of the same layout: step() rebinds its arrays
        lambda params: setattr(params[0], "value", params[0].value.copy()),
    ],
    ids=["plain", "rebound"],
)
def test_a_step_after_zero_grad_with_no_backward_uses_zero_gradients(make, between):
    """zero_grad() writes no zeros, and step() reads the gradient arrays it cached: it must
    still see zeros, not the last (stale) gradients, with decay and state applied as usual."""
    opt, params = trained(make)  # the last step's gradients are still in .grad
    reference, expected = trained(make)
    opt.zero_grad()
    explicit_zeros(expected)
    between(params)
    opt.step()
    reference.step()
    for p, q in zip(params, expected, strict=True):
        np.testing.assert_array_equal(p.value, q.value)
        assert not p.grad.any()
    assert_state_dicts_equal(opt.state_dict(), reference.state_dict())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("block_size", [10**6, 10], ids=["whole", "in blocks"])
def test_sgd_after_zero_grad_moves_only_by_weight_decay(dtype, block_size, monkeypatch):
    import minigrad.optim.base as base

    monkeypatch.setattr(base, "BLOCK_SIZE", block_size)
    start = np.random.default_rng(0).normal(size=(7, 9)).astype(dtype)
    plain, decayed, reference = (Parameter(start.copy()) for _ in range(3))
    sgd, sgd_decay = SGD([plain], lr=0.5), SGD([decayed], lr=0.5, weight_decay=0.1)
    for p in (plain, decayed):
        p.grad[...] = 1.0  # stale
    sgd.zero_grad()
    sgd_decay.zero_grad()
    sgd.step()
    sgd_decay.step()
    np.testing.assert_array_equal(plain.value, start)
    explicit_zeros([reference])
    SGD([reference], lr=0.5, weight_decay=0.1).step()
    np.testing.assert_array_equal(decayed.value, reference.value)
    assert not np.array_equal(decayed.value, start)


def test_a_frozen_branch_after_zero_grad_is_not_stepped_with_its_old_gradient():
    model = Sequential(Dense(2, 3, rng=0), Tanh(), Dense(3, 1, rng=1))
    branch = Dense(2, 1, rng=2)
    opt = SGD(model.parameters() + branch.parameters(), lr=0.1)
    loss, x, y = MSE(), np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    for layer in (model, branch):
        loss(layer(x), y)
        layer.backward(loss.backward())
    opt.step()
    frozen = [p.value.copy() for p in branch.parameters()]
    opt.zero_grad()
    loss(model(x), y)  # the branch takes no part in this step
    model.backward(loss.backward())
    opt.step()
    for p, value in zip(branch.parameters(), frozen, strict=True):
        np.testing.assert_array_equal(p.value, value)


def test_zero_grad_does_not_touch_optimizer_state():
    opt, _ = trained(FACTORIES["adam"])
    saved = opt.state_dict()
    opt.zero_grad()
    assert_state_dicts_equal(opt.state_dict(), saved)


# -- 5. convergence ---------------------------------------------------------------------------

TARGET = np.array([[3.0, -2.0, 0.5], [1.0, 0.0, -4.0]])

PARABOLA_CASES = {
    "sgd": (lambda ps, wd: SGD(ps, lr=0.1, weight_decay=wd), 150),
    "momentum": (lambda ps, wd: Momentum(ps, lr=0.05, momentum=0.9, weight_decay=wd), 400),
    "nesterov": (
        lambda ps, wd: Momentum(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=wd),
        400,
    ),
    "adam": (lambda ps, wd: Adam(ps, lr=0.1, weight_decay=wd), 1000),
}


def minimise_parabola(opt_from_params, steps, target=TARGET):
    """Minimise sum((p - target)^2) from p = 0; returns the final value."""
    p = Parameter(np.zeros_like(target))
    opt = opt_from_params([p])
    for _ in range(steps):
        p.grad[...] = 2 * (p.value - target)
        opt.step()
    return p.value


@pytest.mark.parametrize(("make", "steps"), PARABOLA_CASES.values(), ids=PARABOLA_CASES)
def test_minimises_a_parabola(make, steps):
    result = minimise_parabola(lambda ps: make(ps, 0.0), steps)
    np.testing.assert_allclose(result, TARGET, rtol=0, atol=1e-5)


def test_adamw_without_decay_minimises_a_parabola():
    result = minimise_parabola(lambda ps: AdamW(ps, lr=0.1, weight_decay=0.0), 1000)
    np.testing.assert_allclose(result, TARGET, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("make", "steps"), PARABOLA_CASES.values(), ids=PARABOLA_CASES)
def test_coupled_weight_decay_finds_the_l2_regularised_minimum(make, steps):
    # sum((p - c)^2) + (wd / 2) sum(p^2) is smallest at p = 2c / (2 + wd)
    result = minimise_parabola(lambda ps: make(ps, 0.5), steps)
    np.testing.assert_allclose(result, 2 * TARGET / 2.5, rtol=0, atol=1e-5)


def rosenbrock_gradient(x, y):
    """Gradient of (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def minimise_rosenbrock(make, steps):
    p = Parameter(np.array([-1.5, 2.0]))
    opt = make([p])
    for _ in range(steps):
        p.grad[...] = rosenbrock_gradient(*p.value)
        opt.step()
    return p.value


def test_adam_solves_rosenbrock():
    result = minimise_rosenbrock(lambda ps: Adam(ps, lr=0.02), 3000)
    np.testing.assert_allclose(result, [1.0, 1.0], rtol=0, atol=1e-3)


@pytest.mark.parametrize("nesterov", [False, True], ids=["heavy_ball", "nesterov"])
def test_momentum_solves_rosenbrock_where_plain_sgd_stalls(nesterov):
    momentum = minimise_rosenbrock(
        lambda ps: Momentum(ps, lr=1e-3, momentum=0.9, nesterov=nesterov), 2000
    )
    np.testing.assert_allclose(momentum, [1.0, 1.0], rtol=0, atol=1e-2)
    sgd = minimise_rosenbrock(lambda ps: SGD(ps, lr=1e-3), 2000)
    assert np.abs(sgd - 1.0).max() > 0.1


# -- 6. argument errors -----------------------------------------------------------------------

ALL_CLASSES = [SGD, Momentum, Adam, AdamW]
each_class = pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)


def one_param():
    return [Parameter(np.ones(3))]


@each_class
@pytest.mark.parametrize(
    ("lr", "shown"), [(-0.5, r"-0\.5"), (float("nan"), "nan"), (float("inf"), "inf")]
)
def test_constructor_rejects_bad_learning_rates(cls, lr, shown):
    with pytest.raises(ValueError, match=rf"learning rate.*{shown}"):
        cls(one_param(), lr=lr)


@each_class
@pytest.mark.parametrize(
    ("lr", "shown"),
    [(-1, r"-1$"), (float("nan"), "nan"), (float("-inf"), "-inf"), (float("inf"), "inf")],
)
def test_lr_setter_rejects_bad_learning_rates_and_keeps_the_old_one(cls, lr, shown):
    opt = cls(one_param(), lr=0.05)
    with pytest.raises(ValueError, match=rf"learning rate.*{shown}"):
        opt.lr = lr
    assert opt.lr == 0.05


@each_class
def test_lr_setter_accepts_zero_and_numpy_scalars(cls):
    opt = cls(one_param(), lr=0.05)
    opt.lr = 0
    assert opt.lr == 0.0
    opt.lr = np.float32(0.25)
    assert opt.lr == 0.25
    assert type(opt.lr) is float


@pytest.mark.parametrize(
    ("momentum", "shown"), [(1.0, r"1\.0"), (-0.1, r"-0\.1"), (1.5, r"1\.5"), (np.inf, "inf")]
)
def test_momentum_must_be_in_zero_one(momentum, shown):
    with pytest.raises(ValueError, match=rf"momentum must be in \[0, 1\), got {shown}"):
        Momentum(one_param(), momentum=momentum)


def test_momentum_nan_is_refused():
    with pytest.raises(ValueError, match=r"momentum must be a number, got nan"):
        Momentum(one_param(), momentum=np.nan)


def test_momentum_zero_is_allowed_and_is_plain_sgd():
    start, grads = problem((4,), 12, 5)
    lrs = [0.1, 0.2, 0.05, 0.1, 0.3]
    plain = trajectory(lambda ps: SGD(ps), start, grads, lrs)
    heavy = trajectory(lambda ps: Momentum(ps, momentum=0.0), start, grads, lrs)
    assert_trajectories_close(heavy, plain, rtol=1e-15, atol=0)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize(
    ("betas", "pattern"),
    [
        ((1.0, 0.999), r"betas\[0\].*1\.0"),
        ((-0.1, 0.999), r"betas\[0\].*-0\.1"),
        ((0.9, 1.0), r"betas\[1\].*1\.0"),
        ((0.9, 1.2), r"betas\[1\].*1\.2"),
    ],
)
def test_betas_must_be_in_zero_one(cls, betas, pattern):
    with pytest.raises(ValueError, match=pattern):
        cls(one_param(), betas=betas)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.999), ()], ids=["one", "three", "none"])
def test_betas_must_be_a_pair(cls, betas):
    with pytest.raises(ValueError, match=r"betas must be a pair.*" + re.escape(repr(betas))):
        cls(one_param(), betas=betas)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_a_single_number_for_betas_is_reported_as_betas(cls):
    # betas=0.9 is an easy slip (forgetting beta2); the error should name the argument
    with pytest.raises((TypeError, ValueError), match="betas"):
        cls(one_param(), betas=0.9)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize(
    ("eps", "shown"), [(-0.5, r"-0\.5"), (np.nan, "nan"), (np.inf, "inf"), (0.0, r"0\.0")]
)
def test_eps_must_be_finite_and_positive(cls, eps, shown):
    with pytest.raises(ValueError, match=rf"eps.*{shown}"):
        cls(one_param(), eps=eps)


@each_class
@pytest.mark.parametrize(("wd", "shown"), [(-0.1, r"-0\.1"), (np.nan, "nan"), (np.inf, "inf")])
def test_weight_decay_must_be_finite_and_non_negative(cls, wd, shown):
    with pytest.raises(ValueError, match=rf"weight_decay.*{shown}"):
        cls(one_param(), weight_decay=wd)


@each_class
def test_empty_parameter_list_is_rejected(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match="empty parameter list"):
        cls(iter([]))


@each_class
def test_duplicate_parameter_is_rejected(cls):
    p, q = Parameter(np.ones(2)), Parameter(np.ones(2))
    with pytest.raises(ValueError, match=r"same Parameter .* twice: at positions 0 and 2"):
        cls([p, q, p])


@each_class
def test_non_parameter_in_the_list_is_a_type_error_naming_its_position(cls):
    with pytest.raises(TypeError, match=r"parameter 1 is a ndarray.*model\.parameters\(\)"):
        cls([Parameter(np.ones(2)), np.ones(2)])


@each_class
def test_a_layer_instead_of_its_parameters_is_a_type_error(cls):
    with pytest.raises(TypeError, match=r"got Dense.*model\.parameters\(\)"):
        cls(Dense(2, 3, rng=0))
    model = Sequential(Dense(2, 3, rng=0), Tanh(), Dense(3, 1, rng=1))
    with pytest.raises(TypeError, match=r"Dense.*not a minigrad Parameter.*model\.parameters"):
        cls(model)


@each_class
def test_a_bare_parameter_instead_of_a_list_is_a_type_error(cls):
    with pytest.raises(TypeError, match=r"iterable of Parameters, got Parameter"):
        cls(Parameter(np.ones(2)))


# -- 7. state_dict / load_state_dict ----------------------------------------------------------


@all_optimizers
def test_state_dict_round_trip_continues_the_same_trajectory(make):
    opt_a, params_a = trained(make, seed=20, steps=4, lr=0.07)
    saved = opt_a.state_dict()
    params_b = [Parameter(p.value.copy()) for p in params_a]
    opt_b = make(params_b, lr=0.9)
    opt_b.load_state_dict(saved)
    assert opt_b.hyperparameters() == opt_a.hyperparameters()
    assert opt_b.lr == 0.07
    rng = np.random.default_rng(21)
    for lr in [0.07, 0.02, 0.2]:
        grads = random_arrays(SHAPES, rng)
        for opt, params in [(opt_a, params_a), (opt_b, params_b)]:
            opt.lr = lr
            for p, g in zip(params, grads, strict=True):
                p.grad[...] = g
            opt.step()
        for pa, pb in zip(params_a, params_b, strict=True):
            np.testing.assert_array_equal(pb.value, pa.value)
    assert_state_dicts_equal(opt_b.state_dict(), opt_a.state_dict())


@all_optimizers
def test_state_dict_is_a_snapshot(make):
    opt, params = trained(make, steps=2)
    saved = opt.state_dict()
    copy = {
        "hyperparameters": dict(saved["hyperparameters"]),
        "state": [{k: np.copy(v) for k, v in s.items()} for s in saved["state"]],
    }
    opt.lr = 0.3
    for p in params:
        p.grad[...] = 1.0
    opt.step()
    assert_state_dicts_equal(saved, copy)
    assert saved["hyperparameters"]["lr"] == 0.1


@with_buffers
def test_state_dict_arrays_are_copies_both_ways(make, keys):
    opt, params = trained(make, steps=2)
    saved = opt.state_dict()
    for p, s in zip(params, saved["state"], strict=True):
        for key in keys:
            assert not np.shares_memory(s[key], opt.state[p][key])
    before = opt.state_dict()
    for s in saved["state"]:
        for key in keys:
            s[key] += 100.0  # editing the snapshot does not reach the optimizer
    assert_state_dicts_equal(opt.state_dict(), before)
    opt.load_state_dict(saved)
    loaded = opt.state_dict()
    for s in saved["state"]:
        for key in keys:
            s[key] -= 50.0  # nor, after a load, does editing the dict that was loaded
    assert_state_dicts_equal(opt.state_dict(), loaded)


@with_buffers
def test_load_copies_into_the_existing_buffers(make, keys):
    opt, params = trained(make, seed=40, steps=2)
    buffers = {(i, key): opt.state[p][key] for i, p in enumerate(params) for key in keys}
    source, _ = trained(make, seed=41, steps=3)
    opt.load_state_dict(source.state_dict())
    for (i, key), buffer in buffers.items():
        assert opt.state[params[i]][key] is buffer
        np.testing.assert_array_equal(buffer, source.state[source.params[i]][key])


def test_state_dict_contents():
    opt, params = trained(lambda ps, lr: Adam(ps, lr=lr, betas=(0.8, 0.9), eps=1e-6), steps=3)
    saved = opt.state_dict()
    assert saved["hyperparameters"] == {
        "lr": 0.1,
        "betas": (0.8, 0.9),
        "eps": 1e-6,
        "weight_decay": 0.0,
    }
    assert [set(s) for s in saved["state"]] == [{"step", "m", "v"}] * len(params)
    assert all(s["step"] == 3 for s in saved["state"])
    assert [s["m"].shape for s in saved["state"]] == SHAPES


def test_load_restores_every_hyperparameter():
    source = Momentum(one_param(), lr=0.3, momentum=0.7, nesterov=True, weight_decay=0.02)
    target = Momentum(one_param(), lr=0.01, momentum=0.1, nesterov=False, weight_decay=0.0)
    target.load_state_dict(source.state_dict())
    assert (target.lr, target.momentum, target.nesterov, target.weight_decay) == (
        0.3,
        0.7,
        True,
        0.02,
    )
    adam_source = AdamW(one_param(), lr=0.2, betas=(0.5, 0.6), eps=1e-4, weight_decay=0.3)
    adam_target = AdamW(one_param())
    adam_target.load_state_dict(adam_source.state_dict())
    assert adam_target.hyperparameters() == {
        "lr": 0.2,
        "betas": (0.5, 0.6),
        "eps": 1e-4,
        "weight_decay": 0.3,
    }


def bad_count(saved):
    saved["state"].pop()
    return ValueError, r"state has 3 parameters, this optimizer has 4"


def bad_shape(saved):
    saved["state"][1]["m"] = np.zeros(5)
    return ValueError, r"'m' of parameter 1 has shape \(5,\).*expected \(4,\)"


def bad_dtype(saved):
    saved["state"][2]["v"] = saved["state"][2]["v"].astype(np.float32)
    return ValueError, r"'v' of parameter 2 .*float32.*expected .*float64"


def missing_key(saved):
    del saved["state"][0]["v"]
    return ValueError, r"parameter 0 has keys \['m', 'step'\], expected \['m', 'step', 'v'\]"


def extra_key(saved):
    saved["state"][3]["velocity"] = np.zeros(())
    return ValueError, r"parameter 3 has keys"


def wrong_hyperparameter_names(saved):
    saved["hyperparameters"]["momentum"] = 0.9
    return ValueError, r"unexpected \['momentum'\]"


@pytest.mark.parametrize(
    "corrupt",
    [bad_count, bad_shape, bad_dtype, missing_key, extra_key, wrong_hyperparameter_names],
)
def test_bad_load_is_rejected_and_leaves_the_optimizer_unchanged(corrupt):
    opt, _ = trained(FACTORIES["adam"], seed=30, steps=3)
    before = opt.state_dict()
    source, _ = trained(FACTORIES["adam"], seed=31, steps=5, lr=0.02)
    saved = source.state_dict()
    error, pattern = corrupt(saved)
    with pytest.raises(error, match=pattern):
        opt.load_state_dict(saved)
    assert_state_dicts_equal(opt.state_dict(), before)


def test_load_rejects_another_optimizers_state():
    momentum, _ = trained(FACTORIES["momentum"], steps=1)
    adam, _ = trained(FACTORIES["adam"], steps=1)
    before = adam.state_dict()
    with pytest.raises(ValueError, match=r"keys \['velocity'\], expected \['m', 'step', 'v'\]"):
        adam.load_state_dict(momentum.state_dict())
    assert_state_dicts_equal(adam.state_dict(), before)


def test_load_with_an_invalid_hyperparameter_leaves_the_optimizer_unchanged():
    # a well-formed state whose momentum is out of range: rejected, and nothing written
    opt, _ = trained(FACTORIES["momentum"], seed=32, steps=2, lr=0.1)
    before = opt.state_dict()
    source, _ = trained(FACTORIES["momentum"], seed=33, steps=2, lr=0.5)
    saved = source.state_dict()
    saved["hyperparameters"]["momentum"] = 1.5
    with pytest.raises(ValueError, match=r"momentum.*1\.5"):
        opt.load_state_dict(saved)
    assert opt.lr == 0.1, "the failed load changed lr"
    assert_state_dicts_equal(opt.state_dict(), before)


def test_load_with_a_bad_step_count_leaves_the_optimizer_unchanged():
    opt, _ = trained(FACTORIES["adam"], seed=34, steps=2, lr=0.1)
    before = opt.state_dict()
    source, _ = trained(FACTORIES["adam"], seed=35, steps=4, lr=0.5)
    saved = source.state_dict()
    saved["state"][3]["step"] = None  # the last parameter's count is unusable
    with pytest.raises((TypeError, ValueError)):
        opt.load_state_dict(saved)
    assert_state_dicts_equal(opt.state_dict(), before)


# -- 8. repr ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda ps: SGD(ps), "SGD(lr=0.01, weight_decay=0.0)"),
        (
            lambda ps: SGD(ps, lr=0.5, weight_decay=1e-4),
            "SGD(lr=0.5, weight_decay=0.0001)",
        ),
        (
            lambda ps: Momentum(ps),
            "Momentum(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0)",
        ),
        (
            lambda ps: Momentum(ps, lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.01),
            "Momentum(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.01)",
        ),
        (
            lambda ps: Adam(ps),
            "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)",
        ),
        (
            lambda ps: AdamW(ps),
            "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)",
        ),
        (
            lambda ps: AdamW(ps, lr=3e-4, betas=[0.8, 0.95], eps=1e-6, weight_decay=0.1),
            "AdamW(lr=0.0003, betas=(0.8, 0.95), eps=1e-06, weight_decay=0.1)",
        ),
    ],
)
def test_repr_shows_hyperparameters(make, expected):
    assert repr(make(one_param())) == expected


def test_repr_follows_lr_changes():
    opt = Adam(one_param(), lr=0.1)
    opt.lr = 0.025
    assert repr(opt).startswith("Adam(lr=0.025, ")
    assert opt.hyperparameters()["lr"] == 0.025


@pytest.mark.parametrize(
    ("make", "name", "value", "message"),
    [
        (lambda ps: Momentum(ps), "momentum", 1.5, r"momentum must be in \[0, 1\), got 1\.5"),
        (lambda ps: Adam(ps), "betas", (0.9, 1.0), r"betas\[1\] must be in \[0, 1\), got 1\.0"),
        (lambda ps: Adam(ps), "eps", -1.0, r"eps must be a finite number > 0, got -1\.0"),
        (lambda ps: SGD(ps), "weight_decay", -5, r"weight_decay .* got -5"),
        (lambda ps: AdamW(ps), "lr", float("inf"), r"learning rate .* got inf"),
    ],
)
def test_hyperparameters_are_checked_when_changed_between_steps(make, name, value, message):
    opt = make([Parameter(np.ones(2))])
    before = getattr(opt, name)
    with pytest.raises(ValueError, match=message):
        setattr(opt, name, value)
    assert getattr(opt, name) == before


def test_a_state_dict_that_is_not_one_is_refused():
    opt = SGD([Parameter(np.ones(2))])
    with pytest.raises(
        ValueError,
        match=r"keys 'hyperparameters' and 'state' \(and 'param_groups'\), got dict with keys \[\]",
    ):
        opt.load_state_dict({})


@pytest.mark.parametrize("make", [SGD, Momentum, Adam, AdamW])
def test_a_parameter_larger_than_a_block_is_updated_as_a_whole(make, monkeypatch):
    """Block-wise updates of a large parameter equal the update of the whole array (the
    NumPy path: the fused kernels never split a parameter)."""
    import minigrad.optim.base as base

    rng = np.random.default_rng(0)
    start, grads = rng.normal(size=(7, 9)), rng.normal(size=(3, 7, 9))
    trajectories = []
    for block_size in (10**6, 10):  # one whole block; then blocks of 10 with a short last one
        monkeypatch.setattr(base, "BLOCK_SIZE", block_size)
        p, small = Parameter(start.copy()), Parameter(np.ones(3))
        opt = make([p, small], lr=0.1, fused=False)
        assert (opt._plan[0][3] is not None) == (block_size > p.size)  # a whole work array
        for g in grads:
            p.grad[...] = g
            small.grad[...] = 1.0
            opt.step()
        trajectories.append(p.value)
    np.testing.assert_array_equal(trajectories[0], trajectories[1])


def test_parameters_are_made_contiguous():
    transposed = np.ones((3, 2)).T
    p = Parameter(transposed)
    assert p.value.flags.c_contiguous and p.shape == (2, 3)
    assert Parameter(np.array(2.0)).shape == ()


# -- 9. float16 parameters: computed in float32 -----------------------------------------------

HALF_SHAPES = [(3, 4), (5,), ()]


def half_problem(seed, steps, zero_fraction=0.3):
    """float16 starting values and gradients, some gradient entries exactly zero."""
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=shape).astype(np.float16) for shape in HALF_SHAPES]
    grads = []
    for _ in range(steps):
        step = []
        for shape in HALF_SHAPES:
            g = rng.normal(size=shape) * (rng.uniform(size=shape) > zero_fraction)
            step.append(np.asarray(g, dtype=np.float16))
        grads.append(step)
    return starts, grads


def reference_adam_half(starts, grads, lrs, beta1, beta2, eps, weight_decay, *, decoupled):
    """Adam on float16 values computed in float32, the value rounded to float16 after each
    step and the moments kept in float32 (plain NumPy on float32 arrays)."""
    f32 = np.float32
    values = [p.copy() for p in starts]
    m = [np.zeros(p.shape, f32) for p in starts]
    v = [np.zeros(p.shape, f32) for p in starts]
    trajectory = []
    for t, (step_grads, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        for i, grad in enumerate(step_grads):
            p, g = values[i].astype(f32), grad.astype(f32)
            if decoupled:
                p = p * f32(1 - lr * weight_decay)
            else:
                g = g + f32(weight_decay) * p
            m[i] = f32(beta1) * m[i] + f32(1 - beta1) * g
            v[i] = f32(beta2) * v[i] + f32(1 - beta2) * g * g
            denom = np.sqrt(v[i]) / f32(math.sqrt(1 - beta2**t)) + f32(eps)
            p = p - f32(lr / (1 - beta1**t)) * m[i] / denom
            values[i] = p.astype(np.float16)
        trajectory.append([p.copy() for p in values])
    return trajectory


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_adam_on_float16_gives_no_nan_and_follows_float32_arithmetic(decoupled):
    starts, grads = half_problem(seed=50, steps=8)
    lrs = [0.01, 0.01, 0.005, 0.02, 0.01, 0.001, 0.01, 0.01]
    cls = AdamW if decoupled else Adam
    params = [Parameter(p.copy()) for p in starts]
    opt = cls(params, lr=lrs[0], weight_decay=0.1)
    expected = reference_adam_half(starts, grads, lrs, 0.9, 0.999, 1e-8, 0.1, decoupled=decoupled)
    for step, (step_grads, lr) in enumerate(zip(grads, lrs, strict=True)):
        opt.lr = lr
        for p, g in zip(params, step_grads, strict=True):
            p.grad[...] = g
        opt.step()
        for index, (p, e) in enumerate(zip(params, expected[step], strict=True)):
            assert p.value.dtype == np.float16
            assert np.isfinite(p.value).all(), f"step {step + 1}, parameter {index}"
            # as close as float16 allows: one float16 step (2^-10 relative) apart at most
            np.testing.assert_allclose(
                p.value.astype(np.float32),
                e.astype(np.float32),
                rtol=2**-10,
                atol=2**-24,
                err_msg=f"step {step + 1}, parameter {index}",
            )
    assert (
        max(np.abs(p.value.astype(float) - s).max() for p, s in zip(params, starts, strict=True))
        > 0.01
    )


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_on_float16_matches_torch_in_float32_rounded_to_float16(torch, name):
    """torch.optim.Adam on float16 parameters turns a zero gradient into NaN (its eps rounds
    to 0 in float16); run it in float32 on the same float16 values instead, rounding the
    parameter to float16 after each step as minigrad does."""
    starts, grads = half_problem(seed=51, steps=10)
    params = [Parameter(p.copy()) for p in starts]
    tparams = [torch.tensor(p.astype(np.float32), requires_grad=True) for p in starts]
    if name == "adam":
        opt, topt = Adam(params, lr=0.01), torch.optim.Adam(tparams, lr=0.01)
    else:
        opt = AdamW(params, lr=0.01, weight_decay=0.1)
        topt = torch.optim.AdamW(tparams, lr=0.01, weight_decay=0.1)
    for step, step_grads in enumerate(grads, start=1):
        for p, tp, g in zip(params, tparams, step_grads, strict=True):
            p.grad[...] = g
            tp.grad = torch.tensor(g.astype(np.float32))
        opt.step()
        topt.step()
        with torch.no_grad():
            for tp in tparams:
                tp.copy_(tp.half().float())
        for p, tp in zip(params, tparams, strict=True):
            np.testing.assert_allclose(
                p.value.astype(np.float32),
                tp.detach().numpy(),
                rtol=2**-10,
                atol=2**-24,
                err_msg=f"step {step}",
            )


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_on_float16_with_a_zero_gradient_is_not_nan(cls):
    p = Parameter(np.array([1.0, -2.0, 0.5], dtype=np.float16))
    p.grad[:] = [0.1, 0.0, -3.0]
    cls([p], lr=0.01, weight_decay=0.0).step()
    np.testing.assert_array_equal(p.value, np.array([0.99, -2.0, 0.51], dtype=np.float16))


@all_optimizers
def test_float16_state_is_float32_in_the_state_dict_and_round_trips(make):
    rng = np.random.default_rng(52)
    params = [Parameter(v.astype(np.float16)) for v in random_arrays(SHAPES, rng)]
    opt = make(params)
    for _ in range(3):
        for p, g in zip(params, random_arrays(SHAPES, rng), strict=True):
            p.grad[...] = g
        opt.step()
    saved = opt.state_dict()
    for state in saved["state"]:
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key
    assert all(p.value.dtype == np.float16 and np.isfinite(p.value).all() for p in params)
    other = make([Parameter(p.value.copy()) for p in params])
    other.load_state_dict(saved)
    assert_state_dicts_equal(other.state_dict(), saved)
    stale = {
        **saved,
        "state": [
            {k: (v.astype(np.float16) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for s in saved["state"]
        ],
    }
    if any(isinstance(v, np.ndarray) for s in saved["state"] for v in s.values()):
        with pytest.raises(ValueError, match=r"dtype float16, expected .* float32"):
            other.load_state_dict(stale)


def test_float16_checkpoint_keeps_float32_moments(tmp_path):
    pytest.importorskip("safetensors")
    import minigrad as mg

    model = mg.Sequential(
        mg.Dense(2, 3, rng=0, dtype=np.float16), mg.Tanh(), mg.Dense(3, 1, rng=1, dtype=np.float16)
    )
    opt = Adam(model.parameters(), lr=0.01)
    x, y = np.ones((4, 2), np.float16), np.zeros((4, 1), np.float16)
    mg.fit(model, MSE(), opt, x, y, epochs=2, metrics=(), progress=False)
    path = tmp_path / "run.safetensors"
    mg.save_checkpoint(path, model, opt, epoch=2, step=2)
    tensors = mg.load_tensors(path)
    assert tensors["model.0.weight"].dtype == np.float16
    assert tensors["optimizer.0.m"].dtype == tensors["optimizer.0.v"].dtype == np.float32
    restored = mg.load_checkpoint(path).optimizer
    assert_state_dicts_equal(restored.state_dict(), opt.state_dict())


def test_momentum_on_float16_does_not_overflow_its_velocity():
    # the velocity sums g / (1 - mu) = 1000 / 0.01 = 1e5 > 65504, float16's largest value
    p = Parameter(np.array([0.0], dtype=np.float16))
    opt = Momentum([p], lr=1e-4, momentum=0.99)
    p.grad[:] = 1000.0
    for _ in range(300):
        opt.step()
    velocity = opt.state[p]["velocity"]
    assert velocity.dtype == np.float32
    np.testing.assert_allclose(velocity, 1000.0 * (1 - 0.99**300) / 0.01, rtol=1e-4)
    assert np.isfinite(p.value).all() and p.value[0] < -1000


@pytest.mark.parametrize("make", [SGD, Momentum, lambda ps: Momentum(ps, nesterov=True)])
def test_sgd_and_momentum_on_float16_round_float32_arithmetic_once(make):
    starts, grads = half_problem(seed=53, steps=6, zero_fraction=0.0)
    half = [Parameter(p.copy()) for p in starts]
    wide = [Parameter(p.astype(np.float32)) for p in starts]
    opt_half, opt_wide = make(half), make(wide)
    for step_grads in grads:
        for h, w, g in zip(half, wide, step_grads, strict=True):
            h.grad[...] = g
            w.grad[...] = g
        opt_half.step()
        opt_wide.step()
        for h, w in zip(half, wide, strict=True):
            assert h.value.dtype == np.float16
            w.value[...] = w.value.astype(np.float16)  # the same rounding, after every step
            np.testing.assert_array_equal(h.value, w.value.astype(np.float16))


@pytest.mark.parametrize("make", [SGD, Momentum, Adam, AdamW])
def test_float16_parameters_larger_than_a_block_are_updated_in_float32_blocks(make, monkeypatch):
    import minigrad.optim.base as base

    rng = np.random.default_rng(54)
    start = rng.normal(size=(7, 9)).astype(np.float16)
    grads = [rng.normal(size=(7, 9)).astype(np.float16) for _ in range(3)]
    results = []
    for block_size in (10**6, 10):
        monkeypatch.setattr(base, "BLOCK_SIZE", block_size)
        p = Parameter(start.copy())
        opt = make([p, Parameter(np.ones(3, np.float16))], lr=0.1)
        for g in grads:
            p.grad[...] = g
            opt.step()
        results.append(p.value)
    np.testing.assert_array_equal(results[0], results[1])
    assert np.isfinite(results[0]).all() and results[0].dtype == np.float16


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@all_optimizers
def test_step_allocates_no_parameter_sized_array(make, dtype):
    import tracemalloc

    rng = np.random.default_rng(55)
    params = [Parameter(rng.normal(size=(200, 100)).astype(dtype)), Parameter(np.zeros(100, dtype))]
    opt = make(params)
    for p in params:
        p.grad[...] = rng.normal(size=p.shape)
    opt.step()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - before < 2_000, "a step allocated an array"  # the smallest is 200 x 100 x 2 B


# -- 10. flags and numbers are checked, not coerced -------------------------------------------


@pytest.mark.parametrize("flag", ["False", "True", 0, 1, None, 1.0])
def test_nesterov_must_be_a_bool(flag):
    with pytest.raises(
        TypeError, match=rf"^nesterov must be True or False, got {re.escape(repr(flag))} "
    ):
        Momentum(one_param(), nesterov=flag)
    opt = Momentum(one_param(), nesterov=True)
    with pytest.raises(TypeError, match=r"nesterov must be True or False"):
        opt.nesterov = flag
    assert opt.nesterov is True


def test_nesterov_accepts_numpy_bools():
    opt = Momentum(one_param(), nesterov=np.True_)
    assert opt.nesterov is True
    opt.nesterov = np.bool_(False)
    assert opt.nesterov is False


@each_class
@pytest.mark.parametrize("lr", [True, False, "0.1", "fast", None, [0.1], np.array([0.1]), 1 + 0j])
def test_lr_that_is_not_a_real_number_is_a_type_error_naming_the_learning_rate(cls, lr):
    pattern = rf"^learning rate must be a real number, got {re.escape(repr(lr)[:20])}"
    with pytest.raises(TypeError, match=pattern):
        cls(one_param(), lr=lr)
    opt = cls(one_param(), lr=0.05)
    with pytest.raises(TypeError, match=pattern):
        opt.lr = lr
    assert opt.lr == 0.05


@each_class
def test_lr_accepts_numpy_floats_and_integers(cls):
    opt = cls(one_param(), lr=np.float32(0.5))
    assert opt.lr == 0.5 and type(opt.lr) is float
    opt.lr = np.int64(1)
    assert opt.lr == 1.0 and type(opt.lr) is float


@each_class
def test_an_lr_too_large_for_a_float_is_a_value_error(cls):
    with pytest.raises(ValueError, match=r"^learning rate must be a finite number"):
        cls(one_param(), lr=10**400)


@pytest.mark.parametrize(
    ("make", "name", "value", "pattern"),
    [
        (lambda ps, v: Momentum(ps, momentum=v), "momentum", "0.9", r"momentum must be a real"),
        (lambda ps, v: Momentum(ps, momentum=v), "momentum", True, r"momentum must be a real"),
        (
            lambda ps, v: SGD(ps, weight_decay=v),
            "weight_decay",
            "0",
            r"weight_decay must be a real",
        ),
        (
            lambda ps, v: SGD(ps, weight_decay=v),
            "weight_decay",
            True,
            r"weight_decay must be a real",
        ),
        (lambda ps, v: Adam(ps, eps=v), "eps", "1e-8", r"eps must be a real number, got '1e-8'"),
        (lambda ps, v: Adam(ps, eps=v), "eps", None, r"eps must be a real number, got None"),
        (lambda ps, v: Adam(ps, betas=v), "betas", ("0.9", 0.999), r"betas\[0\] must be a real"),
        (lambda ps, v: Adam(ps, betas=v), "betas", (0.9, True), r"betas\[1\] must be a real"),
        (lambda ps, v: Adam(ps, betas=v), "betas", "0.9,0.999", r"betas must be a pair .*str"),
        (lambda ps, v: AdamW(ps, betas=v), "betas", 0.9, r"betas must be a pair .*float"),
        (lambda ps, v: AdamW(ps, betas=v), "betas", {0.9, 0.99}, r"betas must be a pair .*set"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_type_errors_naming_them(make, name, value, pattern):
    with pytest.raises(TypeError, match=pattern):
        make(one_param(), value)
    opt = make(one_param(), _default(name))
    before = getattr(opt, name)
    with pytest.raises(TypeError, match=pattern):
        setattr(opt, name, value)
    assert getattr(opt, name) == before


def _default(name):
    return {"momentum": 0.9, "weight_decay": 0.0, "eps": 1e-8, "betas": (0.9, 0.999)}[name]


def test_betas_accept_numpy_floats():
    opt = Adam(one_param(), betas=(np.float32(0.5), np.float64(0.25)))
    assert opt.betas == (0.5, 0.25)
    assert all(type(beta) is float for beta in opt.betas)


# -- 11. load_state_dict refuses malformed state before writing anything ----------------------


def state_none(saved):
    saved["state"] = None
    return TypeError, r"state_dict\['state'\] must be a list with one dict per parameter, got None"


def state_dict_instead_of_list(saved):
    saved["state"] = dict(enumerate(saved["state"]))
    return TypeError, r"state_dict\['state'\] must be a list .* got \{0: "


def hyperparameters_none(saved):
    saved["hyperparameters"] = None
    return TypeError, r"Adam hyperparameters must be a dict, got None"


def entry_not_a_dict(saved):
    saved["state"][2] = [("step", 1)]
    return TypeError, r"optimizer state of parameter 2 must be a dict, got \[\('step', 1\)\]"


def buffer_a_list(saved):
    saved["state"][1]["m"] = saved["state"][1]["m"].tolist()
    return TypeError, r"'m' of parameter 1 must be a NumPy array, got \["


def buffer_a_string(saved):
    saved["state"][0]["v"] = "zeros"
    return TypeError, r"'v' of parameter 0 must be a NumPy array, got 'zeros'"


def count_a_float(saved):
    saved["state"][1]["step"] = 3.0
    return TypeError, r"'step' of parameter 1 must be an integer count >= 0, got 3\.0"


def count_negative(saved):
    saved["state"][1]["step"] = -1
    return ValueError, r"'step' of parameter 1 must be an integer count >= 0, got -1"


def count_a_bool(saved):
    saved["state"][0]["step"] = True
    return TypeError, r"'step' of parameter 0 must be an integer count >= 0, got True"


def lr_nan(saved):
    saved["hyperparameters"]["lr"] = float("nan")
    return ValueError, r"learning rate must be a finite number >= 0, got nan"


def lr_string(saved):
    saved["hyperparameters"]["lr"] = "0.1"
    return TypeError, r"learning rate must be a real number, got '0\.1'"


def beta_nan(saved):
    saved["hyperparameters"]["betas"] = (0.9, float("nan"))
    return ValueError, r"betas\[1\] must be a number, got nan"


def eps_inf(saved):
    saved["hyperparameters"]["eps"] = float("inf")
    return ValueError, r"eps must be a finite number > 0, got inf"


def not_a_mapping(saved):
    return (
        TypeError,
        r"a dict with the keys 'hyperparameters' and 'state' \(and 'param_groups'\), got list$",
    )


@pytest.mark.parametrize(
    "corrupt",
    [
        state_none,
        state_dict_instead_of_list,
        hyperparameters_none,
        entry_not_a_dict,
        buffer_a_list,
        buffer_a_string,
        count_a_float,
        count_negative,
        count_a_bool,
        lr_nan,
        lr_string,
        beta_nan,
        eps_inf,
        not_a_mapping,
    ],
)
def test_a_malformed_state_dict_is_refused_naming_the_part_and_changes_nothing(corrupt):
    opt, _ = trained(FACTORIES["adam"], seed=36, steps=2)
    before = opt.state_dict()
    source, _ = trained(FACTORIES["adam"], seed=37, steps=4, lr=0.02)
    saved = source.state_dict()
    error, pattern = corrupt(saved)
    given = [saved] if corrupt is not_a_mapping else saved
    with pytest.raises(error, match=pattern):
        opt.load_state_dict(given)
    assert_state_dicts_equal(opt.state_dict(), before)


def test_load_state_dict_accepts_numpy_integer_counts():
    opt, _ = trained(FACTORIES["adam"], seed=38, steps=2)
    saved = opt.state_dict()
    for state in saved["state"]:
        state["step"] = np.int64(7)
    opt.load_state_dict(saved)
    assert all(type(s["step"]) is int and s["step"] == 7 for s in opt.state.values())


# -- 12. a parameter whose arrays were replaced ------------------------------------------------


def two_params(dtype=np.float64):
    p, q = Parameter(np.ones(3, dtype), name="weight"), Parameter(np.ones(2, dtype), name="bias")
    p.grad[:] = 1.0
    q.grad[:] = 1.0
    return p, q


@each_class
def test_a_value_replaced_by_another_shape_is_refused_before_any_update(cls):
    p, q = two_params()
    opt = cls([q, p], lr=0.1)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):  # at assignment, or at the step
        p.value = np.ones((3, 3))
        p.grad = np.ones((3, 3))
        opt.step()
    np.testing.assert_array_equal(q.value, [1.0, 1.0])  # nothing was stepped


@each_class
def test_a_value_replaced_by_another_dtype_is_refused_before_any_update(cls):
    p, q = two_params()
    opt = cls([q, p], lr=0.1)
    with pytest.raises(TypeError, match=r"float32"):
        p.value = np.ones(3, np.float32)
        opt.step()
    np.testing.assert_array_equal(q.value, [1.0, 1.0])


@each_class
def test_a_read_only_value_is_refused(cls):
    p, q = two_params()
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        p.value = read_only
        cls([q, p], lr=0.1)
    p, q = two_params()
    opt = cls([q, p], lr=0.1)
    with pytest.raises(ValueError, match="read-only"):
        p.value = read_only
        opt.step()
    np.testing.assert_array_equal(q.value, [1.0, 1.0])


def test_the_optimizer_step_names_the_replaced_parameter():
    p, q = two_params()
    opt = SGD([q, p], lr=0.1)
    object.__setattr__(p, "_grad", np.ones(4))  # past any check a Parameter makes itself
    with pytest.raises(
        ShapeError,
        match=r"optimizer parameter 1 \(weight\): its grad has shape \(4,\), but SGD was built "
        r"for shape \(3,\); change it in place \(param\.grad\[\.\.\.\] = new\)",
    ):
        opt.step()


@each_class
def test_a_value_replaced_by_an_array_of_the_same_layout_is_the_one_updated(cls):
    p, q = two_params()
    opt = cls([q, p], lr=0.1)
    opt.step()
    new = np.full(3, 5.0)
    p.value = new
    opt.step()
    assert p.value is new and np.all(new < 5.0)


@pytest.mark.parametrize(
    ("make", "name", "shown"),
    [
        (lambda ps: SGD(ps), "learning_rate", r"lr, weight_decay \(the learning rate is lr\)"),
        (lambda ps: SGD(ps), "momentum", r"lr, weight_decay$"),
        (lambda ps: Adam(ps), "learning_rate", r"lr, betas, eps, weight_decay"),
        (lambda ps: Adam(ps), "momentum", r"lr, betas, eps, weight_decay$"),
        (lambda ps: Momentum(ps), "betas", r"lr, momentum, nesterov, weight_decay$"),
        (lambda ps: AdamW(ps), "beta_1", r"lr, betas, eps, weight_decay$"),
    ],
)
def test_setting_a_hyperparameter_the_optimizer_does_not_have_is_refused(make, name, shown):
    opt = make(one_param())
    with pytest.raises(
        AttributeError,
        match=rf"has no hyperparameter '{name}', so setting it would change nothing; "
        rf"its hyperparameters are {shown}",
    ):
        setattr(opt, name, 0.5)
    assert not hasattr(opt, name)


def test_optimizer_params_and_state_cannot_be_replaced():
    p, q = two_params()
    opt = Adam([p, q], lr=0.1)
    for name in ("params", "state"):
        with pytest.raises(
            AttributeError, match=rf"^Adam\.{name} cannot be replaced: .*build a new"
        ):
            setattr(opt, name, [] if name == "params" else {})
    assert opt.params == [p, q] and set(opt.state) == {p, q}


# -- 13. a value or a state buffer made read-only in place -------------------------------------


@each_class
def test_a_value_made_read_only_in_place_stops_the_step_before_any_update(cls):
    p, q = two_params()
    opt = cls([q, p], lr=0.1)
    before = opt.state_dict()
    p.value.flags.writeable = False  # the same array: only its flag changed
    with pytest.raises(
        ValueError, match=r"^optimizer parameter 1 \(weight\): its value is a read-only array"
    ):
        opt.step()
    np.testing.assert_array_equal(q.value, [1.0, 1.0])  # the parameter before it: untouched
    assert_state_dicts_equal(opt.state_dict(), before)  # Adam's step counts too
    p.value.flags.writeable = True
    opt.step()
    assert np.all(p.value < 1.0) and np.all(q.value < 1.0)


@pytest.mark.parametrize(
    ("make", "key"),
    [(FACTORIES[name], key) for name, keys in BUFFERS.items() for key in keys],
    ids=[f"{name}-{key}" for name, keys in BUFFERS.items() for key in keys],
)
def test_a_state_buffer_made_read_only_stops_the_step_before_any_update(make, key):
    p, q = two_params()
    opt = make([q, p])
    opt.step()
    before, values = opt.state_dict(), (q.value.copy(), p.value.copy())
    opt.state[p][key].flags.writeable = False
    with pytest.raises(
        ValueError,
        match=rf"^optimizer state '{key}' of parameter 1 \(weight\) is a read-only array, "
        r"and the step updates it in place; nothing was updated",
    ):
        opt.step()
    np.testing.assert_array_equal(q.value, values[0])
    np.testing.assert_array_equal(p.value, values[1])
    assert_state_dicts_equal(opt.state_dict(), before)


# -- 14. eps and the scalars an update computes with, in its dtype -----------------------------


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_eps_zero_is_refused_on_construction_and_assignment(cls):
    # torch accepts eps=0, and a zero gradient entry then gives 0 / 0 = NaN
    with pytest.raises(ValueError, match=r"^eps must be a finite number > 0, got 0\.0$"):
        cls(one_param(), eps=0.0)
    opt = cls(one_param(), eps=1e-8)
    with pytest.raises(ValueError, match=r"^eps must be a finite number > 0, got 0$"):
        opt.eps = 0
    assert opt.eps == 1e-8


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_an_eps_that_is_zero_in_float32_is_refused_naming_eps_dtype_and_parameter(cls, dtype):
    params = [Parameter(np.ones(2), name="a"), Parameter(np.ones(2, dtype), name="b")]
    pattern = (
        r"^eps=1e-50 rounds to 0 in float32, the dtype parameter 1 \(b\) is updated in, "
        r"and 0 / 0 would give NaN; eps must be at least 1\.4e-45 there"
    )
    with pytest.raises(ValueError, match=pattern):
        cls(params, eps=1e-50)
    opt = cls(params)
    with pytest.raises(ValueError, match=pattern):
        opt.eps = 1e-50
    saved = opt.state_dict()
    saved["hyperparameters"]["eps"] = 1e-50
    with pytest.raises(ValueError, match=pattern):
        opt.load_state_dict(saved)
    assert opt.eps == 1e-8


def test_a_tiny_eps_is_accepted_where_it_is_not_zero_and_zero_gradients_stay_finite():
    p = Parameter(np.array([1.0, 2.0]))  # float64: 1e-50 is a fine number there
    p.grad[:] = [0.0, 1.0]
    opt = Adam([p], lr=0.1, eps=1e-50)
    opt.step()
    np.testing.assert_allclose(p.value, [1.0, 1.9], rtol=1e-15)
    q = Parameter(np.ones(2, np.float32))
    Adam([q], eps=1e-45).step()  # the smallest float32 (subnormal) is not 0
    np.testing.assert_array_equal(q.value, [1.0, 1.0])


@each_class
def test_a_learning_rate_beyond_the_parameters_float_range_is_refused(cls):
    params = [Parameter(np.ones(2, np.float16), name="half")]
    with pytest.raises(
        ValueError,
        match=r"^lr=1e\+39 overflows float32 \(largest 3\.4e\+38\), the dtype parameter 0 "
        r"\(half\) is updated in$",
    ):
        cls(params, lr=1e39)
    opt = cls(params, lr=0.1, weight_decay=0.5)
    with pytest.raises(ValueError, match=r"^weight_decay=1e\+39 overflows float32"):
        opt.weight_decay = 1e39
    assert opt.weight_decay == 0.5
    cls([Parameter(np.ones(2))], lr=1e39)  # float64 holds it


# -- 15. the state a load_state_dict brings ----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "key", "bad", "problem"),
    [
        (FACTORIES["momentum"], "velocity", np.nan, "NaN or infinite values: nan"),
        (FACTORIES["nesterov"], "velocity", -np.inf, "NaN or infinite values: -inf"),
        (FACTORIES["adam"], "m", np.inf, "NaN or infinite values: inf"),
        (FACTORIES["adamw"], "m", np.nan, "NaN or infinite values: nan"),
        (FACTORIES["adam"], "v", np.nan, "negative or NaN values: nan"),
        (FACTORIES["adam"], "v", -1e-3, r"negative or NaN values: -0\.001"),
        (FACTORIES["adamw"], "v", -np.inf, "negative or NaN values: -inf"),
    ],
    ids=[
        *("velocity-nan", "nesterov-velocity-inf", "m-inf", "adamw-m-nan"),
        *("v-nan", "v-negative", "adamw-v-minus-inf"),
    ],
)
def test_a_state_with_non_finite_or_negative_buffers_is_refused_before_anything_is_written(
    make, key, bad, problem
):
    opt, _ = trained(make, seed=40, steps=2)
    before = opt.state_dict()
    source, _ = trained(make, seed=41, steps=3, lr=0.05)
    saved = source.state_dict()
    saved["state"][2][key][1, 0, 1] = bad
    with pytest.raises(
        ValueError,
        match=rf"^optimizer state '{key}' of parameter 2 holds {problem} at index \(1, 0, 1\), "
        r"1 in all; nothing was loaded$",
    ):
        opt.load_state_dict(saved)
    assert_state_dicts_equal(opt.state_dict(), before)  # hyperparameters and buffers


def test_an_infinite_second_moment_that_adam_reaches_itself_round_trips():
    # g^2 overflows float64 for |g| > 1.3e154: v becomes inf, m stays finite, and that
    # entry's step is m / inf = 0; the state is Adam's own and must load back
    p = Parameter(np.array([1.0, 2.0]))
    p.grad[:] = [1e200, 1.0]
    opt = Adam([p], lr=0.1)
    with np.errstate(over="ignore"):
        opt.step()
    assert opt.state[p]["v"][0] == np.inf and np.isfinite(p.value).all()
    copy = Adam([Parameter(p.value.copy())], lr=0.1)
    copy.load_state_dict(opt.state_dict())
    assert copy.state[copy.params[0]]["v"][0] == np.inf


@pytest.mark.parametrize(
    ("count", "shown"), [(10**400, "a huge integer"), (2**53 + 1, str(2**53 + 1))]
)
def test_a_step_count_beyond_two_to_the_53_is_refused(count, shown):
    opt, _ = trained(FACTORIES["adam"], seed=42, steps=2)
    before = opt.state_dict()
    saved = opt.state_dict()
    saved["state"][3]["step"] = count
    with pytest.raises(
        ValueError,
        match=rf"^optimizer state 'step' of parameter 3 must be an integer count of at most "
        rf"2\*\*53, got {shown}$",
    ):
        opt.load_state_dict(saved)
    assert_state_dicts_equal(opt.state_dict(), before)
    saved["state"][3]["step"] = 2**53  # the largest, still usable: beta ** t is 0
    opt.load_state_dict(saved)
    opt.step()
    assert opt.state[opt.params[3]]["step"] == 2**53 + 1


# -- 16. huge integers in messages --------------------------------------------------------------


def test_a_huge_integer_momentum_or_beta_is_reported_shortened():
    with pytest.raises(ValueError, match=r"^momentum must be in \[0, 1\), got a huge integer$"):
        Momentum(one_param(), momentum=10**5000)
    with pytest.raises(ValueError, match=r"^betas\[1\] must be in \[0, 1\), got a huge integer$"):
        Adam(one_param(), betas=(0.9, 10**5000))
    with pytest.raises(ValueError, match=r"^betas\[0\] must be in \[0, 1\), got a huge integer$"):
        Adam(one_param(), betas=(10**400, 0.9))
    with pytest.raises(
        ValueError,
        match=r"^betas must be a pair \(beta1, beta2\), got 3 values: a tuple holding a huge "
        r"integer",
    ):
        Adam(one_param(), betas=(0.9, 0.9, 10**5000))
    with pytest.raises(
        ValueError, match=r"^learning rate must be a finite number >= 0, got a huge"
    ):
        SGD(one_param(), lr=10**5000)


# -- 17. the update functions' scalar arguments -------------------------------------------------


def adam_arrays():
    return np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.full(2, 0.1), np.full(2, 0.2)


ADAM_SCALARS = {"step": 1, "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


@pytest.mark.parametrize(
    ("changed", "error", "pattern"),
    [
        (
            {"step": 0},
            ValueError,
            r"step must count from 1 and the betas lie in \[0, 1\); got step=0,",
        ),
        ({"step": -3}, ValueError, r"got step=-3, beta1=0\.9, beta2=0\.999$"),
        ({"beta2": 1}, ValueError, r"got step=1, beta1=0\.9, beta2=1$"),
        ({"beta1": 1.0}, ValueError, r"got step=1, beta1=1\.0, beta2=0\.999$"),
        (
            {"step": 10**400},
            ValueError,
            r"^adam_update: step must be in \[1, 9007199254740992\], got a huge integer$",
        ),
        ({"eps": 0.0}, ValueError, r"^adam_update: eps must be > 0 \(0 / 0 gives NaN\), got 0\.0$"),
        ({"lr": "0.1"}, TypeError, r"^adam_update: lr must be a real number, got '0\.1' \(str\)$"),
        ({"beta1": "0.9"}, TypeError, r"^adam_update: beta1 must be a real number, got '0\.9'"),
        ({"eps": "1e-8"}, TypeError, r"^adam_update: eps must be a real number, got '1e-8'"),
        ({"weight_decay": "0"}, TypeError, r"^adam_update: weight_decay must be a real number"),
        ({"step": 1.5}, TypeError, r"^adam_update: step must be an integer, got 1\.5"),
    ],
)
def test_adam_update_refuses_bad_scalars_before_writing_any_array(changed, error, pattern):
    value, grad, m, v = adam_arrays()
    scalars = {**ADAM_SCALARS, "weight_decay": 0.1, **changed}
    if "step" in changed and changed["step"] == 1.5:
        scalars["lr"] = None  # a step that is a float computes; the lr fails, and names step
    with pytest.raises(error, match=pattern):
        adam_update(value, grad, m, v, **scalars, decoupled=False, scratch=np.empty(2))
    for got, start in zip((value, grad, m, v), adam_arrays(), strict=True):
        np.testing.assert_array_equal(got, start)


@pytest.mark.parametrize(
    ("update", "scalars", "name"),
    [
        ("sgd", {"lr": "0.1", "weight_decay": 0.0}, "lr"),
        ("sgd", {"lr": 0.1, "weight_decay": "0.1"}, "weight_decay"),
        ("momentum", {"lr": "0.1", "momentum": 0.9, "weight_decay": 0.0}, "lr"),
        ("momentum", {"lr": 0.1, "momentum": "0.9", "weight_decay": 0.0}, "momentum"),
        ("momentum", {"lr": 0.1, "momentum": 0.9, "weight_decay": "0"}, "weight_decay"),
    ],
)
def test_sgd_and_momentum_updates_name_a_scalar_that_is_not_a_number(update, scalars, name):
    value, grad, buffer = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([0.1, 0.2])
    shown = re.escape(repr(scalars[name]))
    with pytest.raises(
        TypeError, match=rf"^{update}_update: {name} must be a real number, got {shown} \(str\)$"
    ):
        if update == "sgd":
            sgd_update(value, grad, **scalars, scratch=np.empty(2))
        else:
            momentum_update(value, grad, buffer, **scalars, nesterov=False, scratch=np.empty(2))
    np.testing.assert_array_equal(value, [1.0, 2.0])
    np.testing.assert_array_equal(buffer, [0.1, 0.2])


def test_update_functions_still_accept_numpy_scalars_and_ints():
    value, scratch = np.array([1.0, 2.0]), np.empty(2)
    sgd_update(value, np.ones(2), lr=np.float32(0.5), weight_decay=0, scratch=scratch)
    np.testing.assert_array_equal(value, [0.5, 1.5])
    m, v = np.zeros(2), np.zeros(2)
    adam_update(
        value,
        np.ones(2),
        m,
        v,
        step=np.int64(1),
        lr=1,
        beta1=np.float64(0.5),
        beta2=0,
        eps=np.float32(1e-8),
        weight_decay=0,
        decoupled=True,
        scratch=scratch,
    )
    np.testing.assert_allclose(value, [-0.5, 0.5], rtol=1e-7)


def test_update_functions_re_raise_errors_that_are_not_about_their_scalars():
    with pytest.raises(TypeError, match=r"ufunc 'multiply'"):  # NumPy's own: the arrays
        sgd_update(np.ones(2), np.array(["a", "b"]), lr=0.1, weight_decay=0.0, scratch=np.empty(2))


def test_adam_update_re_raises_errors_that_are_not_about_its_scalars():
    value, grad, m, v = adam_arrays()
    with pytest.raises(TypeError, match=r"ufunc 'add' did not contain a loop"):  # the gradient's
        adam_update(
            value,
            grad.astype(str),
            m,
            v,
            **ADAM_SCALARS,
            weight_decay=0.1,
            decoupled=False,
            scratch=np.empty(2),
        )
    start_value, _, start_m, start_v = adam_arrays()
    for got, start in zip((value, m, v), (start_value, start_m, start_v), strict=True):
        np.testing.assert_array_equal(got, start)


def test_a_state_dict_with_odd_keys_is_refused_with_a_short_message():
    opt, _ = trained(FACTORIES["adam"], seed=43, steps=1)
    saved = opt.state_dict()
    saved["state"][0] = {**saved["state"][0], 10**5000: 1}
    with pytest.raises(
        ValueError,
        match=r"^optimizer state of parameter 0 has keys \['a huge integer', 'm', 'step', 'v'\]",
    ):
        opt.load_state_dict(saved)
    saved = opt.state_dict()
    saved["hyperparameters"] = {**saved["hyperparameters"], 10**400: 0}
    with pytest.raises(ValueError, match=r"unexpected \['a huge integer'\]$"):
        opt.load_state_dict(saved)
