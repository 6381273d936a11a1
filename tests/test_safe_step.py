"""SafeStep: steps proven safe are plain optimizer steps; the others are checked and undone.

minigrad/optim/safe_step.py: the bounds each optimizer gives must really bound its step (a
hypothesis property), a guarded run equals an unguarded one bit for bit, and a step that
would overflow or that meets a NaN gradient changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.optim import SafeStep
from minigrad.optim.safe_step import norm

OPTIMIZERS = {
    "sgd": lambda params: mg.SGD(params, lr=0.1),
    "sgd-wd": lambda params: mg.SGD(params, lr=0.1, weight_decay=0.01),
    "momentum": lambda params: mg.Momentum(params, lr=0.05, momentum=0.9),
    "nesterov": lambda params: mg.Momentum(
        params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1
    ),
    "adam": lambda params: mg.Adam(params, lr=0.01),
    "adam-wd": lambda params: mg.Adam(params, lr=0.01, weight_decay=0.1),
    "adamw": lambda params: mg.AdamW(params, lr=0.01, weight_decay=0.1),
}


def problem(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    model = mg.Sequential(
        mg.Dense(5, 8, rng=seed, dtype=dtype), mg.Tanh(), mg.Dense(8, 3, rng=seed + 1, dtype=dtype)
    )
    x = rng.standard_normal((16, 5)).astype(dtype)
    y = rng.integers(0, 3, 16)
    return model, x, y


def gradients(model, x, y):
    loss = mg.CrossEntropy()
    loss(model(x), y)
    model.backward(loss.backward())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_guarded_run_equals_an_unguarded_one_bit_for_bit(name):
    (plain, x, y), (guarded, _, _) = problem(), problem()
    plain_opt, guarded_opt = (
        OPTIMIZERS[name](plain.parameters()),
        OPTIMIZERS[name](guarded.parameters()),
    )
    guard = SafeStep(guarded_opt)
    taken = []
    guard._careful_step = lambda: taken.append("careful")  # a safe run never needs it
    for _ in range(30):
        gradients(plain, x, y)
        plain_opt.step()
        gradients(guarded, x, y)
        guard.step()
    assert taken == []
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(guarded.state_dict()[key], value)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    scale=st.floats(1e-3, 1e3),
    lr=st.floats(1e-4, 10.0),
    steps=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_the_bounds_hold_for_every_step(name, scale, lr, steps, seed):
    """||p'|| <= the tracked bound and ||p' - p|| <= the change bound, step after step."""
    rng = np.random.default_rng(seed)
    params = [mg.Parameter(rng.standard_normal(shape)) for shape in ((4, 3), (3,))]
    optimizer = OPTIMIZERS[name](params)
    optimizer.lr = lr
    guard = SafeStep(optimizer)
    guard.resync()
    for _ in range(steps):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape) * scale
        before = [p.value.copy() for p in params]
        grad_norms = [norm(p.grad) for p in params]
        change, peak, _ = optimizer.step_bound(grad_norms, guard._value_norms, guard._state_norms)
        guard.step()
        for p, old, bound, value_bound, top in zip(
            params, before, change, guard._value_norms, peak, strict=True
        ):
            moved = float(np.linalg.norm(p.value - old))
            assert moved <= bound * (1 + 1e-9) + 1e-300
            assert float(np.linalg.norm(p.value)) <= value_bound * (1 + 1e-9)
            assert bound <= top


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_a_step_that_would_overflow_changes_nothing(name):
    p = mg.Parameter(np.array([3.39e38, 1.0], dtype=np.float32))  # float32's largest: 3.403e38
    q = mg.Parameter(np.array([[0.5, -0.5]], dtype=np.float32))
    optimizer = OPTIMIZERS[name]([q, p])
    adam = name.startswith("adam")
    optimizer.lr = 1e37 if adam else 100.0  # q's own step stays finite
    p.grad[...] = [-1.0 if adam else -1e37, 0.0]  # Adam moves each entry by about lr
    q.grad[...] = [[1.0, 1.0]]
    before_values = [v.copy() for v in (q.value, p.value)]
    before_state = optimizer.state_dict()
    with pytest.raises(mg.DivergenceError, match="would make parameter 1 non-finite"):
        SafeStep(optimizer).step()
    np.testing.assert_array_equal(q.value, before_values[0])  # the first one too
    np.testing.assert_array_equal(p.value, before_values[1])
    after_state = optimizer.state_dict()
    for saved, now in zip(before_state["state"], after_state["state"], strict=True):
        for key, value in saved.items():
            np.testing.assert_array_equal(now[key], value)  # Adam's step counts included


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_gradient_is_refused_before_any_change(bad):
    model, x, y = problem()
    optimizer = mg.Adam(model.parameters(), lr=0.01)
    gradients(model, x, y)
    model[2].bias.grad[1] = bad
    before = model.state_dict()
    with pytest.raises(mg.DivergenceError, match="gradient of parameter 3 holds NaN or inf"):
        SafeStep(optimizer).step()
    for key, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)
    assert all(state["step"] == 0 for state in optimizer.state.values())


def test_an_optimizer_without_bounds_is_checked_after_each_step():
    class SignSGD(mg.Optimizer):
        def _update(self, value, grad, state, work):
            value -= self.lr * np.sign(grad)

    p = mg.Parameter(np.array([1.0, 3.4e38], dtype=np.float32))
    optimizer = SignSGD([p], lr=1e37)
    guard = SafeStep(optimizer, names=["'w'"])
    p.grad[...] = [1.0, 0.0]
    guard.step()  # 1 - 1e37: finite
    assert p.value[0] == np.float32(1 - 1e37)
    p.grad[...] = [0.0, -1.0]
    with pytest.raises(mg.DivergenceError, match="would make 'w' non-finite"):
        guard.step()
    assert p.value[1] == np.float32(3.4e38)


def test_values_set_to_nan_outside_the_step_are_reported():
    model, _, _ = problem()
    guard = SafeStep(mg.SGD(model.parameters()))
    model[0].weight.value[0, 0] = np.nan
    with pytest.raises(mg.DivergenceError, match="parameter 0 holds NaN or infinite values"):
        guard.resync()


def test_norm_is_the_euclidean_norm_and_overflows_to_inf():
    assert norm(np.array([[3.0, 4.0]], dtype=np.float16)) == 5.0
    with np.errstate(over="ignore"):
        assert norm(np.full(4, 1e30, dtype=np.float32)) == math.inf
    assert math.isnan(norm(np.array([np.nan])))


def test_bad_arguments():
    with pytest.raises(TypeError, match="SafeStep takes an Optimizer, got list"):
        SafeStep([mg.Parameter(np.zeros(1))])
    with pytest.raises(ValueError, match="1 names for 2 parameters"):
        SafeStep(mg.SGD([mg.Parameter(np.zeros(1)), mg.Parameter(np.zeros(1))]), names=["a"])


def test_given_gradient_bounds_are_tried_first_then_after_measuring_the_parameters():
    model, x, y = problem()
    optimizer = mg.SGD(model.parameters(), lr=0.1)
    guard = SafeStep(optimizer)
    guard.resync()
    seen = []

    def too_wide_until_measured(value_norms):
        seen.append(dict(value_norms))
        return [1e40 if len(seen) == 1 else 1.0 for _ in guard.params]  # 1e40: not provable

    gradients(model, x, y)
    before, measured = model.state_dict(), parameter_norms_of(guard)
    guard.step(too_wide_until_measured)
    assert len(seen) == 2  # the second try after resync() measured the parameters again
    assert seen[1] == measured
    changed = [key for key, value in model.state_dict().items() if (value != before[key]).any()]
    assert changed  # the step was taken


def parameter_norms_of(guard):
    return {id(p): norm(p.value) for p in guard.params}


def test_frozen_parameters_are_measured_for_the_bounds():
    model, _, _ = problem()
    head = model[2].parameters()
    guard = SafeStep(mg.SGD(head), other_params=model[0].parameters())
    guard.resync()
    assert set(guard.value_norms) == {id(p) for p in model.parameters()}


def test_bad_names_other_params_and_bound_lists_are_refused():
    p = mg.Parameter(np.zeros(2))
    with pytest.raises(TypeError, match="names must be a list of strings"):
        SafeStep(mg.SGD([p]), names="a")
    with pytest.raises(TypeError, match=r"other_params\[0\] must be a Parameter, got ndarray"):
        SafeStep(mg.SGD([p]), other_params=[np.zeros(2)])
    with pytest.raises(ValueError, match="2 gradient norms for 1 parameters"):
        SafeStep(mg.SGD([p])).try_step([1.0, 1.0])


def test_adams_second_moment_never_overflows_to_inf():
    """g^2 beyond float32's range would make v inf, and the parameter would stop learning
    without a word: such a step is refused like one that makes a parameter non-finite."""
    p = mg.Parameter(np.array([1.0, 2.0], dtype=np.float32))
    optimizer = mg.Adam([p], lr=0.1)
    guard = SafeStep(optimizer)
    p.grad[...] = [1e20, 1.0]  # finite, but 1e40 overflows float32
    with pytest.raises(mg.DivergenceError, match="'v' buffer of parameter 0 non-finite"):
        guard.step()
    np.testing.assert_array_equal(p.value, [1.0, 2.0])
    assert optimizer.state[p]["step"] == 0 and not optimizer.state[p]["v"].any()


def test_a_non_finite_optimizer_state_is_reported_at_resync():
    p = mg.Parameter(np.array([1.0, 2.0]))
    optimizer = mg.Momentum([p], lr=0.1)
    optimizer.state[p]["velocity"][0] = np.nan
    with pytest.raises(mg.DivergenceError, match="'velocity' buffer of parameter 0 holds NaN"):
        SafeStep(optimizer).resync()


# -- steps proven at once ----------------------------------------------------------------------


def bounded_problem(name, seed=0, lr=None):
    model, x, y = problem(seed)
    optimizer = OPTIMIZERS[name](model.parameters())
    if lr is not None:
        optimizer.lr = lr
    loss = mg.CrossEntropy()
    row_norm = float(np.linalg.norm(x, axis=1).max())
    bounds = mg.gradient_bounds.GradientBounds(model, loss, row_norm, x.shape[1])
    guard = SafeStep(optimizer)
    guard.resync()

    def step(rows=16):
        value = loss(model(x[:rows]), y[:rows])
        model.backward(loss.backward())
        guard.step(bounds.for_step(guard.params, rows, value, rows * 3))

    return model, optimizer, guard, step


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    lr=st.floats(1e-4, 3.0),
    steps=st.integers(1, 40),
    seed=st.integers(0, 1000),
)
def test_the_bounds_hold_through_steps_proven_at_once(name, lr, steps, seed):
    """The tracked bounds on ||p|| and on the optimizer's state are upper bounds after
    every step, whether it was proven alone or with the ones before it."""
    _, optimizer, guard, step = bounded_problem(name, seed, lr)
    for _ in range(steps):
        step()
        for p, bound in zip(guard.params, guard._value_norms, strict=True):
            assert norm(p.value) <= bound * (1 + 1e-9)
        for key, bounds in guard._state_norms.items():
            for p, bound in zip(guard.params, bounds, strict=True):
                assert norm(optimizer.state[p][key]) <= bound * (1 + 1e-9)


@pytest.mark.parametrize("name", ["sgd", "sgd-wd", "momentum", "nesterov"])
def test_steps_are_proven_at_once_and_are_the_plain_steps(name):
    model, _, guard, step = bounded_problem(name, lr=0.003)
    plain, x, y = problem()
    plain_opt = OPTIMIZERS[name](plain.parameters())
    plain_opt.lr = 0.003
    proofs = []
    step_bound = guard.optimizer.step_bound
    guard.optimizer.step_bound = lambda *args: proofs.append(1) or step_bound(*args)
    for _ in range(50):
        step()
        gradients(plain, x, y)
        plain_opt.step()
    assert len(proofs) < 25  # most of the 50 steps were proven in advance
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], value)


def test_adam_proves_each_step_on_its_own():
    _, _, guard, step = bounded_problem("adam")
    for _ in range(5):
        step()
        assert guard.certified_steps == 0


def test_a_hyperparameter_change_ends_the_proof():
    _, optimizer, guard, step = bounded_problem("sgd", lr=0.003)
    step()
    assert guard.certified_steps > 10
    proofs = []
    step_bound = optimizer.step_bound
    optimizer.step_bound = lambda *args: proofs.append(1) or step_bound(*args)
    step()
    assert proofs == []  # within the proof
    optimizer.lr = 0.003  # any assignment, even of the same value, is proven again
    step()
    assert proofs


def test_resync_and_another_batch_size_end_the_proof():
    _, optimizer, guard, step = bounded_problem("momentum", lr=0.003)
    step()
    assert guard.certified_steps > 0
    guard.resync()
    assert guard.certified_steps == 0
    step()
    proofs = []
    step_bound = optimizer.step_bound
    optimizer.step_bound = lambda *args: proofs.append(1) or step_bound(*args)
    step(rows=5)  # another key: proven again
    assert proofs


@pytest.mark.parametrize("name", ["sgd", "momentum"])
def test_no_more_steps_are_proven_than_the_caps_allow(name):
    """A tight case: each step moves ||p|| by exactly the bound on its change, so a proof of
    one step too many would leave ||p|| above the tracked bound."""
    p = mg.Parameter(np.array([1.0]))
    optimizer = mg.SGD([p], lr=1.0) if name == "sgd" else mg.Momentum([p], lr=1.0, momentum=0.0)
    guard = SafeStep(optimizer)

    def grad_bounds(norms):
        return [1.0]  # |g| = 1 exactly, whatever the norms

    grad_bounds.key = "constant"
    for _ in range(12):
        p.grad[...] = -1.0
        guard.step(grad_bounds)
        assert norm(p.value) <= guard._value_norms[0]
    assert p.value[0] == 13.0
