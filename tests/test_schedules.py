"""Learning-rate schedules: values against their formulas written out here, the slides' step
loop, PyTorch's StepLR / ExponentialLR / CosineAnnealingLR / MultiStepLR / PolynomialLR /
CosineAnnealingWarmRestarts / OneCycleLR as oracles, warm-up, monotonicity, argument errors and
reprs.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.schedules import (
    Constant,
    CosineDecay,
    CosineWarmRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LinearWarmup,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    Schedule,
    StepDecay,
)

REL = 1e-12

# -- strategies -----------------------------------------------------------------------------

lrs = st.one_of(st.just(0.0), st.floats(1e-6, 10.0))  # no subnormals: they lose precision
positive_lrs = st.floats(1e-6, 10.0)
ts = st.integers(0, 5_000)
small_ts = st.integers(0, 400)
decay_factors = st.floats(0.05, 1.0)
counts = st.integers(1, 300)


# -- values against the formulas ------------------------------------------------------------


@given(lr=lrs, t=ts)
def test_constant_is_the_same_for_every_t(lr, t):
    assert Constant(lr)(t) == lr
    assert isinstance(Constant(lr)(t), float)


@given(lr=lrs, factor=st.floats(0.05, 1.0), every=counts, t=ts)
def test_step_decay_formula(lr, factor, every, t):
    expected = lr * factor ** math.floor(t / every)
    assert StepDecay(lr, factor, every)(t) == pytest.approx(expected, rel=REL, abs=0.0)


@given(lr=lrs, factor=decay_factors, every=counts, t=ts)
def test_step_decay_is_flat_within_a_step_and_drops_by_factor_at_its_end(lr, factor, every, t):
    schedule = StepDecay(lr, factor, every)
    start = (t // every) * every  # first count of t's step
    assert schedule(t) == schedule(start)
    dropped = schedule(start) * factor
    assert schedule(start + every) == pytest.approx(dropped, rel=REL, abs=1e-300)  # subnormals


@given(lr=lrs, factor=st.floats(1.0, 2.0), every=counts, t=st.integers(0, 500))
def test_step_decay_formula_with_a_growing_factor(lr, factor, every, t):
    expected = lr * factor ** math.floor(t / every)
    assert StepDecay(lr, factor, every)(t) == pytest.approx(expected, rel=REL, abs=0.0)


def test_step_decay_docstring_values():
    schedule = StepDecay(0.1, factor=0.9, every=100)
    assert schedule(0) == 0.1
    assert schedule(99) == 0.1
    assert schedule(100) == pytest.approx(0.09, rel=REL, abs=0)
    assert schedule(199) == pytest.approx(0.09, rel=REL, abs=0)
    assert schedule(250) == pytest.approx(0.081, rel=REL, abs=0)


def test_step_decay_reproduces_the_slides_loop():
    # the slides: lr = 0.1; every epoch: if epoch % 100 == 0: lr *= 0.9 (then train with lr)
    schedule = StepDecay(0.1, 0.9, 100)
    lr = 0.1
    for epoch in range(1000):
        if epoch % 100 == 0:
            lr *= 0.9
        assert schedule(epoch) * 0.9 == pytest.approx(lr, rel=REL, abs=0), epoch


@given(lr=lrs, gamma=st.floats(0.05, 1.5), t=small_ts)
def test_exponential_decay_formula(lr, gamma, t):
    expected = lr
    for _ in range(t):  # gamma ** t as t multiplications
        expected *= gamma
    assert ExponentialDecay(lr, gamma)(t) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_exponential_decay_values():
    assert ExponentialDecay(1.0, gamma=0.5)(3) == 0.125
    assert ExponentialDecay(2.0, gamma=0.1)(0) == 2.0
    assert ExponentialDecay(1.0, gamma=1.0)(1000) == 1.0


@given(lr=lrs, decay_rate=st.floats(0.0, 10.0), t=ts)
def test_inverse_time_decay_formula(lr, decay_rate, t):
    expected = lr / (1.0 + decay_rate * t)
    assert InverseTimeDecay(lr, decay_rate)(t) == pytest.approx(expected, rel=REL, abs=0.0)


def test_inverse_time_decay_values():
    schedule = InverseTimeDecay(0.2, decay_rate=1.0)
    assert [schedule(t) for t in range(4)] == pytest.approx(
        [0.2, 0.1, 0.2 / 3, 0.05], rel=REL, abs=0
    )
    assert InverseTimeDecay(0.3, decay_rate=0.0)(10_000) == 0.3


@given(lr=lrs, final_lr=lrs, total=counts, t=ts)
def test_cosine_decay_formula(lr, final_lr, total, t):
    # the half-angle form: (1 + cos(pi x)) / 2 = cos(pi x / 2) ** 2
    x = min(t, total) / total
    expected = final_lr + (lr - final_lr) * math.cos(math.pi * x / 2) ** 2
    got = CosineDecay(lr, total, final_lr)(t)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-14 * max(lr, final_lr, 1e-300))


def test_cosine_decay_docstring_values():
    schedule = CosineDecay(1.0, total=10)
    assert (schedule(0), schedule(5), schedule(10), schedule(20)) == (1.0, 0.5, 0.0, 0.0)
    schedule = CosineDecay(2.0, total=4, final_lr=1.0)
    expected = [2.0, 1.5 + 0.5 * math.sqrt(0.5), 1.5, 1.5 - 0.5 * math.sqrt(0.5), 1.0]
    assert [schedule(t) for t in range(5)] == pytest.approx(expected, rel=REL, abs=0)


@given(lr=lrs, final_lr=lrs, total=counts, extra=st.integers(0, 10_000))
def test_cosine_decay_ends_exactly_at_final_lr_and_stays(lr, final_lr, total, extra):
    schedule = CosineDecay(lr, total, final_lr)
    assert schedule(0) == pytest.approx(lr, rel=REL, abs=1e-15 * max(lr, final_lr))
    assert schedule(total) == final_lr  # exactly, not approximately
    assert schedule(total + extra) == final_lr


# -- warm-up --------------------------------------------------------------------------------


@given(
    peak=positive_lrs,
    warmup=st.integers(1, 50),
    start_factor=st.floats(0.0, 1.0),
    t=st.integers(0, 200),
)
def test_linear_warmup_formula_with_a_constant(peak, warmup, start_factor, t):
    schedule = LinearWarmup(peak, warmup, start_factor)  # a float 'then' means constant
    if t < warmup:
        expected = peak * (start_factor + (1.0 - start_factor) * t / warmup)
    else:
        expected = peak
    assert schedule(t) == pytest.approx(expected, rel=REL, abs=0.0)


@given(
    lr=positive_lrs,
    total=st.integers(1, 50),
    warmup=st.integers(1, 50),
    start_factor=st.floats(0.0, 1.0),
)
def test_linear_warmup_rises_to_the_peak_then_follows_the_shifted_schedule(
    lr, total, warmup, start_factor
):
    inner = CosineDecay(lr, total, final_lr=lr / 10)
    schedule = LinearWarmup(inner, warmup, start_factor)
    assert schedule(0) == pytest.approx(start_factor * lr, rel=REL, abs=0.0)
    assert schedule(warmup) == inner(0) == pytest.approx(lr, rel=REL, abs=0)
    rising = [schedule(t) for t in range(warmup + 1)]
    assert all(b >= a for a, b in itertools.pairwise(rising))
    if start_factor < 0.99:
        assert all(b > a for a, b in itertools.pairwise(rising))
    if start_factor == 1:
        assert rising == pytest.approx([lr] * (warmup + 1), rel=REL, abs=0)
    for t in range(warmup, warmup + total + 5):
        assert schedule(t) == inner(t - warmup)


def test_linear_warmup_docstring_values():
    schedule = LinearWarmup(CosineDecay(1.0, total=4), warmup=2)
    half = math.sqrt(0.5) / 2
    expected = [0.0, 0.5, 1.0, 0.5 + half, 0.5, 0.5 - half, 0.0]
    assert [schedule(t) for t in range(7)] == pytest.approx(expected, rel=REL, abs=1e-15)


def test_linear_warmup_wraps_a_float_in_constant():
    schedule = LinearWarmup(0.3, warmup=4, start_factor=0.5)
    assert isinstance(schedule.then, Constant)
    assert [schedule(t) for t in range(7)] == pytest.approx(
        [0.15, 0.1875, 0.225, 0.2625, 0.3, 0.3, 0.3], rel=REL, abs=0
    )


# -- PyTorch as an oracle -------------------------------------------------------------------


def torch_lrs(torch, make_scheduler, lr, epochs):
    """The learning rate a torch SGD optimizer trains with in each of ``epochs`` epochs."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        rate = optimizer.param_groups[0]["lr"]
        assert scheduler.get_last_lr() == [rate]
        rates.append(rate)
        optimizer.step()
        scheduler.step()
    return rates


@given(lr=positive_lrs, factor=decay_factors, every=st.integers(1, 40))
def test_step_decay_matches_torch_step_lr(torch, lr, factor, every):
    epochs = 6 * every + 3
    expected = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=every, gamma=factor),
        lr,
        epochs,
    )
    schedule = StepDecay(lr, factor, every)
    np.testing.assert_allclose([schedule(e) for e in range(epochs)], expected, rtol=1e-12)


@given(lr=positive_lrs, gamma=st.floats(0.5, 1.0))
def test_exponential_decay_matches_torch_exponential_lr(torch, lr, gamma):
    epochs = 300
    expected = torch_lrs(
        torch, lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma), lr, epochs
    )
    schedule = ExponentialDecay(lr, gamma)
    np.testing.assert_allclose([schedule(e) for e in range(epochs)], expected, rtol=1e-12)


@given(lr=positive_lrs, total=counts, final_fraction=st.sampled_from([0.0, 0.01, 0.5, 0.99]))
def test_cosine_decay_matches_torch_cosine_annealing_lr(torch, lr, total, final_fraction):
    final_lr = lr * final_fraction
    epochs = total + 1  # torch's schedule rises again after T_max; CosineDecay stays flat
    expected = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=final_lr),
        lr,
        epochs,
    )
    schedule = CosineDecay(lr, total, final_lr)
    # near t = total both compute 1 + cos(x) with x close to pi, which cancels: an absolute
    # error of an ulp of lr, whatever the relative error in the tiny result
    np.testing.assert_allclose(
        [schedule(e) for e in range(epochs)], expected, rtol=1e-12, atol=1e-15 * lr
    )


# -- monotonicity ---------------------------------------------------------------------------

DECAYS = {
    "step": st.builds(StepDecay, lrs, decay_factors, counts),
    "exponential": st.builds(ExponentialDecay, lrs, st.floats(0.05, 1.0)),
    "inverse_time": st.builds(InverseTimeDecay, lrs, st.floats(0.0, 10.0)),
    "cosine": st.tuples(lrs, lrs, counts).map(
        lambda a: CosineDecay(max(a[0], a[1]), a[2], final_lr=min(a[0], a[1]))
    ),
    "constant": st.builds(Constant, lrs),
}


@pytest.mark.parametrize("name", sorted(DECAYS))
def test_decays_never_increase(name):
    @given(schedule=DECAYS[name], start=st.integers(0, 2_000))
    def check(schedule, start):
        rates = [schedule(t) for t in range(start, start + 400)]
        assert all(b <= a for a, b in itertools.pairwise(rates)), schedule
        assert all(r >= 0 for r in rates)

    check()


@given(lr=positive_lrs, factor=st.floats(0.05, 0.95), every=st.integers(1, 20))
def test_step_decay_strictly_drops_at_each_step(lr, factor, every):
    schedule = StepDecay(lr, factor, every)
    drops = [schedule(k * every) for k in range(10)]
    assert all(b < a for a, b in itertools.pairwise(drops))


# -- argument errors ------------------------------------------------------------------------

NAN = float("nan")
INF = float("inf")

BAD_ARGUMENTS = {
    "constant negative lr": lambda: Constant(-0.1),
    "constant nan lr": lambda: Constant(NAN),
    "constant inf lr": lambda: Constant(INF),
    "step negative lr": lambda: StepDecay(-0.1, 0.9, 100),
    "step nan lr": lambda: StepDecay(NAN, 0.9, 100),
    "step factor 0": lambda: StepDecay(0.1, 0.0, 100),
    "step negative factor": lambda: StepDecay(0.1, -0.5, 100),
    "step nan factor": lambda: StepDecay(0.1, NAN, 100),
    "step every 0": lambda: StepDecay(0.1, 0.9, 0),
    "step negative every": lambda: StepDecay(0.1, 0.9, -5),
    "exponential negative lr": lambda: ExponentialDecay(-1.0, 0.9),
    "exponential gamma 0": lambda: ExponentialDecay(0.1, 0.0),
    "exponential nan gamma": lambda: ExponentialDecay(0.1, NAN),
    "inverse negative lr": lambda: InverseTimeDecay(-0.1, 1.0),
    "inverse negative rate": lambda: InverseTimeDecay(0.1, -1.0),
    "inverse nan rate": lambda: InverseTimeDecay(0.1, NAN),
    "cosine negative lr": lambda: CosineDecay(-0.1, 10),
    "cosine nan lr": lambda: CosineDecay(NAN, 10),
    "cosine total 0": lambda: CosineDecay(0.1, 0),
    "cosine negative final": lambda: CosineDecay(0.1, 10, final_lr=-0.01),
    "cosine nan final": lambda: CosineDecay(0.1, 10, final_lr=NAN),
    "warmup negative lr": lambda: LinearWarmup(-0.1, 5),
    "warmup 0": lambda: LinearWarmup(0.1, 0),
    "warmup start_factor > 1": lambda: LinearWarmup(0.1, 5, start_factor=1.5),
    "warmup negative start_factor": lambda: LinearWarmup(0.1, 5, start_factor=-0.1),
    "warmup nan start_factor": lambda: LinearWarmup(0.1, 5, start_factor=NAN),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_arguments_raise_value_error(name):
    with pytest.raises(ValueError, match=r"must (be|lie)"):
        BAD_ARGUMENTS[name]()


# Python coerces: float("0.1") is 0.1 and float(True) is 1.0; the schedules check types instead
WRONG_TYPES = {
    "step str lr": (lambda: StepDecay("0.1"), r"^lr must be a real number, got '0\.1' \(str\)$"),
    "step bool lr": (lambda: StepDecay(True), r"^lr must be a real number, got True \(bool\)$"),
    "step str factor": (lambda: StepDecay(0.1, "0.9"), r"^factor must be a real number"),
    "step float every": (lambda: StepDecay(0.1, 0.9, 2.5), r"^every must be an integer, got 2\.5"),
    "step bool every": (lambda: StepDecay(0.1, 0.9, True), r"^every must be an integer, got True"),
    "constant str lr": (lambda: Constant("0.1"), r"^lr must be a real number"),
    "constant none lr": (lambda: Constant(None), r"^lr must be a real number, got None"),
    "exponential str gamma": (lambda: ExponentialDecay(0.1, "0.9"), r"^gamma must be a real"),
    "inverse str rate": (lambda: InverseTimeDecay(0.1, "1"), r"^decay_rate must be a real"),
    "cosine float total": (lambda: CosineDecay(0.1, 10.0), r"^total must be an integer, got 10\.0"),
    "cosine str total": (lambda: CosineDecay(0.1, "10"), r"^total must be an integer, got '10'"),
    "cosine str final": (lambda: CosineDecay(0.1, 10, "0"), r"^final_lr must be a real number"),
    "warmup float": (lambda: LinearWarmup(0.1, 1.5), r"^warmup must be an integer, got 1\.5"),
    "warmup str start": (lambda: LinearWarmup(0.1, 2, "0"), r"^start_factor must be a real"),
    "warmup str then": (
        lambda: LinearWarmup("0.1", 2),
        r"^then must be a Schedule \(such as CosineDecay\(0\.1, total=90\)\) or a number, "
        r"got '0\.1' \(str\)$",
    ),
    "warmup class then": (
        lambda: LinearWarmup(CosineDecay, 2),
        r"^then must be a schedule instance or a number, got the class CosineDecay",
    ),
}


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_arguments_of_the_wrong_type_raise_type_error_naming_them(name):
    make, pattern = WRONG_TYPES[name]
    with pytest.raises(TypeError, match=pattern):
        make()


def test_numpy_integers_and_floats_are_accepted_wherever_python_ones_are():
    assert StepDecay(np.float32(0.5), np.float64(0.5), np.int64(10))(np.int64(25)) == 0.125
    assert CosineDecay(1.0, total=np.int32(10))(np.uint8(5)) == pytest.approx(0.5)
    assert LinearWarmup(np.float64(1.0), warmup=np.int16(4))(2) == 0.5
    assert ExponentialDecay(1, gamma=1)(3) == 1.0  # Python ints are real numbers too
    assert type(StepDecay(np.float32(0.5)).lr) is float


def test_an_lr_too_large_for_a_float_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"^lr must be a finite number"):
        Constant(10**400)


ALL_SCHEDULES = {
    "constant": Constant(0.1),
    "step": StepDecay(0.1, 0.9, 10),
    "exponential": ExponentialDecay(0.1, 0.9),
    "inverse": InverseTimeDecay(0.1, 0.5),
    "cosine": CosineDecay(0.1, 10),
    "warmup": LinearWarmup(CosineDecay(0.1, 10), 3),
}


@pytest.mark.parametrize("name", sorted(ALL_SCHEDULES))
@pytest.mark.parametrize(
    ("t", "error", "pattern"),
    [
        (-1, ValueError, r"t must be >= 0, got -1"),
        (1.5, TypeError, r"t must be an integer, got 1\.5 \(float\)"),
        (2.0, TypeError, r"t must be an integer, got 2\.0 \(float\)"),
        (True, TypeError, r"t must be an integer, got True \(bool\)"),
        ("3", TypeError, r"t must be an integer, got '3' \(str\)"),
        (None, TypeError, r"t must be an integer, got None"),
    ],
)
def test_a_bad_t_is_an_error_naming_the_schedule_and_t(name, t, error, pattern):
    schedule = ALL_SCHEDULES[name]
    with pytest.raises(error, match=re.escape(repr(schedule)) + ": " + pattern):
        schedule(t)


@pytest.mark.parametrize("name", sorted(ALL_SCHEDULES))
def test_every_schedule_returns_a_python_float(name):
    assert all(type(ALL_SCHEDULES[name](t)) is float for t in (0, np.int64(3), 10**6))


@pytest.mark.parametrize(
    ("schedule", "t", "named"),
    [
        # 1.01 ** 100000 is an OverflowError in Python
        (
            ExponentialDecay(0.1, gamma=1.01),
            100_000,
            "ExponentialDecay(lr=0.1, gamma=1.01) at t=100000",
        ),
        (
            StepDecay(0.1, factor=2.0, every=1),
            2_000,
            "StepDecay(lr=0.1, factor=2.0, every=1) at t=2000",
        ),
        # a finite power, an infinite product
        (
            ExponentialDecay(1e300, gamma=10.0),
            10,
            "ExponentialDecay(lr=1e+300, gamma=10.0) at t=10",
        ),
        # the schedule that overflows is named, at its own t
        (
            LinearWarmup(ExponentialDecay(0.1, gamma=2.0), 2),
            5_000,
            "ExponentialDecay(lr=0.1, gamma=2.0) at t=4998",
        ),
    ],
)
def test_a_learning_rate_that_overflows_is_a_value_error_naming_schedule_and_t(schedule, t, named):
    with pytest.raises(ValueError, match=re.escape(f"{named}: the learning rate overflows")):
        schedule(t)


def test_a_learning_rate_that_underflows_is_zero():
    assert ExponentialDecay(0.1, gamma=0.5)(100_000) == 0.0
    assert ExponentialDecay(0.1, gamma=0.99)(10**9) == 0.0
    assert StepDecay(0.1, factor=0.5, every=1)(100_000) == 0.0


@pytest.mark.parametrize(
    ("value", "error", "pattern"),
    [
        (float("nan"), ValueError, r"the learning rate is nan"),
        (-0.5, ValueError, r"the learning rate is -0\.5"),
        ("0.1", TypeError, r"must return a real number, got '0\.1'"),
        (None, TypeError, r"must return a real number, got None"),
    ],
)
def test_a_user_schedule_returning_a_bad_rate_is_an_error(value, error, pattern):
    class Fixed(Schedule):
        def rate(self, t):
            return value

    with pytest.raises(error, match=r"Fixed\(\).*" + pattern):
        Fixed()(0)


def test_boundary_arguments_are_accepted():
    assert Constant(0.0)(5) == 0.0
    assert StepDecay(0.1, 1.0, 1)(50) == 0.1
    assert CosineDecay(0.1, 1)(1) == 0.0
    assert LinearWarmup(0.1, 1, start_factor=1.0)(0) == 0.1
    assert LinearWarmup(0.1, 1, start_factor=0.0)(0) == 0.0


def test_base_schedule_is_abstract():
    with pytest.raises(NotImplementedError, match=r"Schedule must implement rate\(t\)"):
        Schedule()(0)


# -- reprs ----------------------------------------------------------------------------------

REPRS = [
    (Constant(0.5), "Constant(lr=0.5)"),
    (StepDecay(0.1, 0.9, 100), "StepDecay(lr=0.1, factor=0.9, every=100)"),
    (ExponentialDecay(1.0, 0.5), "ExponentialDecay(lr=1.0, gamma=0.5)"),
    (InverseTimeDecay(0.2, 1.0), "InverseTimeDecay(lr=0.2, decay_rate=1.0)"),
    (CosineDecay(1.0, 10, 0.1), "CosineDecay(lr=1.0, total=10, final_lr=0.1)"),
    (
        LinearWarmup(CosineDecay(1.0, 4), 2),
        "LinearWarmup(then=CosineDecay(lr=1.0, total=4, final_lr=0.0), warmup=2, start_factor=0.0)",
    ),
    (LinearWarmup(0.3, 4), "LinearWarmup(then=Constant(lr=0.3), warmup=4, start_factor=0.0)"),
]


@pytest.mark.parametrize(("schedule", "text"), REPRS, ids=[text for _, text in REPRS])
def test_repr_is_readable_and_rebuilds_the_schedule(schedule, text):
    assert repr(schedule) == text
    namespace = {
        cls.__name__: cls
        for cls in (Constant, StepDecay, ExponentialDecay, InverseTimeDecay, CosineDecay)
    }
    namespace["LinearWarmup"] = LinearWarmup
    rebuilt = eval(text, namespace)
    assert repr(rebuilt) == text
    assert [rebuilt(t) for t in range(12)] == [schedule(t) for t in range(12)]


# -- settings changed after construction ----------------------------------------------------

# each setting assigned after construction, with the error its constructor argument gives
SETTERS = [
    (lambda: StepDecay(0.1), "every", 0, ValueError, r"^every must be >= 1, got 0$"),
    (lambda: StepDecay(0.1), "every", 2.5, TypeError, r"^every must be an integer, got 2\.5"),
    (lambda: StepDecay(0.1), "factor", "0.9", TypeError, r"^factor must be a real number"),
    (lambda: StepDecay(0.1), "lr", -1.0, ValueError, r"^lr must be a finite number >= 0"),
    (lambda: CosineDecay(0.1, 10), "total", 0, ValueError, r"^total must be >= 1, got 0$"),
    (lambda: CosineDecay(0.1, 10), "final_lr", NAN, ValueError, r"^final_lr must be a finite"),
    (lambda: ExponentialDecay(0.1, 0.5), "gamma", "0.5", TypeError, r"^gamma must be a real"),
    (lambda: ExponentialDecay(0.1, 0.5), "gamma", 0.0, ValueError, r"^gamma must be a finite"),
    (lambda: InverseTimeDecay(0.1, 1.0), "decay_rate", -1, ValueError, r"^decay_rate must be"),
    (lambda: Constant(0.1), "lr", True, TypeError, r"^lr must be a real number, got True"),
    (lambda: LinearWarmup(0.1, 5), "warmup", 0, ValueError, r"^warmup must be >= 1, got 0$"),
    (lambda: LinearWarmup(0.1, 5), "start_factor", 2.0, ValueError, r"^start_factor must be"),
    (lambda: LinearWarmup(0.1, 5), "then", "0.1", TypeError, r"^then must be a Schedule"),
    (lambda: LinearWarmup(0.1, 5), "then", CosineDecay, TypeError, r"^then must be a schedule"),
]


@pytest.mark.parametrize(
    ("make", "name", "value", "error", "pattern"),
    SETTERS,
    ids=[f"{name}={value!r}" for _, name, value, _, _ in SETTERS],
)
def test_a_setting_assigned_later_is_checked_as_in_the_constructor(
    make, name, value, error, pattern
):
    schedule = make()
    before, text = getattr(schedule, name), repr(schedule)
    with pytest.raises(error, match=pattern):
        setattr(schedule, name, value)
    assert getattr(schedule, name) is before and repr(schedule) == text


def test_a_valid_setting_assigned_later_is_normalised_and_shown_in_the_repr():
    schedule = StepDecay(0.1, factor=0.5, every=10)
    schedule.every = np.int64(2)
    schedule.factor = np.float32(0.25)
    assert type(schedule.every) is int and type(schedule.factor) is float
    assert repr(schedule) == "StepDecay(lr=0.1, factor=0.25, every=2)"
    assert schedule(4) == 0.1 * 0.25**2
    warmup = LinearWarmup(0.1, 4)
    warmup.then = 0.2  # a number is a Constant, as in the constructor
    assert repr(warmup) == "LinearWarmup(then=Constant(lr=0.2), warmup=4, start_factor=0.0)"
    assert warmup(4) == 0.2


# -- huge counts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "t", "rate"),
    [
        (ExponentialDecay(0.1, 0.5), 10**400, 0.0),  # 0.5 ** t underflows
        (ExponentialDecay(0.1, 1.0), 10**400, 0.1),
        (ExponentialDecay(0.0, 2.0), 10**6, 0.0),  # lr 0: 0 whatever the power
        (ExponentialDecay(0.0, 2.0), 10**400, 0.0),
        (StepDecay(0.1, 0.5, every=1), 10**400, 0.0),
        (StepDecay(0.0, 2.0, every=1), 10**400, 0.0),
        (StepDecay(0.1, 0.5, every=10**400), 10**400 - 1, 0.1),
        (InverseTimeDecay(0.1, 1.0), 10**400, 0.0),
        (InverseTimeDecay(0.1, 0.0), 10**400, 0.1),
        (CosineDecay(1.0, total=10**400), 10**400 // 2, 0.5),
        (LinearWarmup(0.1, warmup=10**400), 5, 0.0),  # 0.1 * 5 / 10**400
        (LinearWarmup(0.1, warmup=10**400, start_factor=0.5), 10**400 // 2, 0.075),
        (LinearWarmup(0.1, warmup=10**400), 10**400 + 7, 0.1),
    ],
    ids=lambda value: "huge" if isinstance(value, int) and value > 10**70 else None,
)
def test_huge_counts_give_the_true_rate(schedule, t, rate):
    assert schedule(t) == pytest.approx(rate, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (
            lambda: StepDecay(0.1, every=10**5000),
            "StepDecay(lr=0.1, factor=0.9, every=a huge integer)",
        ),
        (
            lambda: CosineDecay(0.1, total=10**400),
            "CosineDecay(lr=0.1, total=a huge integer, final_lr=0.0)",
        ),
        (
            lambda: LinearWarmup(0.1, warmup=10**5000),
            "LinearWarmup(then=Constant(lr=0.1), warmup=a huge integer, start_factor=0.0)",
        ),
    ],
)
def test_a_huge_setting_is_shortened_in_the_repr(make, shown):
    assert repr(make()) == shown


def test_a_huge_t_is_shortened_in_messages():
    with pytest.raises(
        ValueError,
        match=r"^ExponentialDecay\(lr=0\.1, gamma=2\.0\) at t=a huge integer: the learning rate "
        r"overflows float range",
    ):
        ExponentialDecay(0.1, 2.0)(10**5000)
    with pytest.raises(
        ValueError,
        match=r"^StepDecay\(lr=0\.1, factor=0\.9, every=a huge integer\): t must be >= 0, got a "
        r"huge integer$",
    ):
        StepDecay(0.1, every=10**5000)(-(10**5000))


# -- MultiStepDecay, PolynomialDecay, CosineWarmRestarts, OneCycle ------------------------------


def torch_step_lrs(torch, make_scheduler, lr, steps):
    """torch_lrs for schedulers that construct with their own initial rate (OneCycleLR)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


milestone_lists = st.lists(st.integers(0, 120), max_size=6, unique=True).map(sorted)


@given(lr=positive_lrs, milestones=milestone_lists, factor=decay_factors)
def test_multi_step_decay_matches_torch_multi_step_lr(torch, lr, milestones, factor):
    expected = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=factor),
        lr,
        150,
    )
    schedule = MultiStepDecay(lr, milestones, factor)
    np.testing.assert_allclose([schedule(t) for t in range(150)], expected, rtol=1e-12)


@given(lr=positive_lrs, milestones=milestone_lists, factor=st.floats(0.05, 4.0), t=ts)
def test_multi_step_decay_formula(lr, milestones, factor, t):
    passed = sum(m <= t for m in milestones)
    assert MultiStepDecay(lr, milestones, factor)(t) == pytest.approx(lr * factor**passed)


def test_step_decay_is_multi_step_decay_with_even_milestones():
    even = MultiStepDecay(0.3, milestones=range(7, 700, 7), factor=0.8)
    step = StepDecay(0.3, factor=0.8, every=7)
    assert [even(t) for t in range(690)] == [step(t) for t in range(690)]


@given(lr=positive_lrs, total=st.integers(1, 80), power=st.floats(0.0, 4.0))
def test_polynomial_decay_matches_torch_polynomial_lr(torch, lr, total, power):
    epochs = total + 20  # torch's rate stays at 0 after total_iters, as this one does
    expected = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=total, power=power),
        lr,
        epochs,
    )
    schedule = PolynomialDecay(lr, total, power)
    # torch multiplies ratios step by step: a few ulps per step
    np.testing.assert_allclose(
        [schedule(t) for t in range(epochs)], expected, rtol=1e-11, atol=1e-15 * lr
    )


@given(lr=lrs, total=counts, power=st.floats(0.0, 4.0), t=ts)
def test_polynomial_decay_formula(lr, total, power, t):
    expected = lr * (1 - min(t, total) / total) ** power
    assert PolynomialDecay(lr, total, power)(t) == pytest.approx(expected, rel=REL)


@given(
    lr=positive_lrs,
    T_0=st.integers(1, 30),
    T_mult=st.integers(1, 3),
    eta_fraction=st.sampled_from([0.0, 0.01, 0.5]),
)
def test_cosine_warm_restarts_matches_torch(torch, lr, T_0, T_mult, eta_fraction):
    eta_min = lr * eta_fraction
    epochs = 400
    expected = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min
        ),
        lr,
        epochs,
    )
    schedule = CosineWarmRestarts(lr, T_0, T_mult, eta_min)
    np.testing.assert_allclose(
        [schedule(t) for t in range(epochs)], expected, rtol=1e-12, atol=1e-15 * lr
    )


@given(lr=positive_lrs, T_0=st.integers(1, 20), T_mult=st.integers(1, 3))
def test_cosine_warm_restarts_restart_at_lr_after_each_cycle(lr, T_0, T_mult):
    schedule = CosineWarmRestarts(lr, T_0, T_mult)
    start, length = 0, T_0
    for _ in range(5):
        assert schedule(start) == lr
        rates = [schedule(t) for t in range(start, start + length)]
        assert all(b <= a for a, b in itertools.pairwise(rates))
        start, length = start + length, length * T_mult


@given(
    max_lr=positive_lrs,
    total=st.integers(1, 300),
    pct_start=st.floats(0.0, 1.0),
    anneal=st.sampled_from(["cos", "linear"]),
    div_factor=st.floats(1.0, 100.0),
    final_div_factor=st.floats(1.0, 1e5),
    three_phase=st.booleans(),
)
def test_one_cycle_matches_torch_one_cycle_lr(
    torch, max_lr, total, pct_start, anneal, div_factor, final_div_factor, three_phase
):
    if three_phase:
        pct_start /= 2
    phases = [pct_start * total - 1, total - 1]
    if three_phase:
        phases.insert(1, 2 * pct_start * total - 2)
    # torch divides by zero in a phase of no length; this schedule gives the phase's end rate
    if any(a == b for a, b in itertools.pairwise([0.0, *phases])):
        return
    expected = torch_step_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=max_lr,
            total_steps=total,
            pct_start=pct_start,
            anneal_strategy=anneal,
            cycle_momentum=False,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
        ),
        max_lr,
        total,
    )
    schedule = OneCycle(
        max_lr, total, pct_start, anneal, div_factor, final_div_factor, three_phase=three_phase
    )
    rates = [schedule(t) for t in range(total)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15 * max_lr)
    assert schedule(total) == schedule(total + 1000) == rates[-1]  # flat afterwards


@given(max_lr=positive_lrs, total=st.integers(2, 300), pct_start=st.floats(0.05, 0.95))
def test_one_cycle_rises_to_max_lr_then_falls_to_the_final_rate(max_lr, total, pct_start):
    schedule = OneCycle(max_lr, total, pct_start)
    rates = [schedule(t) for t in range(total)]
    peak = rates.index(max(rates))
    assert all(b >= a for a, b in itertools.pairwise(rates[: peak + 1]))
    assert all(b <= a for a, b in itertools.pairwise(rates[peak:]))
    assert max(rates) <= max_lr * (1 + 1e-12)
    assert rates[-1] == pytest.approx(max_lr / 25 / 1e4, rel=1e-12)


def test_one_cycle_degenerate_phases_give_their_end_rate():
    # pct_start * total_steps = 1: the warm-up has no length (torch divides by zero)
    assert OneCycle(1.0, total_steps=10, pct_start=0.1)(0) == 1.0
    assert OneCycle(1.0, total_steps=1)(0) == pytest.approx(1 / 25 / 1e4)
    assert OneCycle(1.0, total_steps=1, pct_start=1.0)(0) == 1.0


def test_new_schedules_compose_with_warmup():
    schedule = LinearWarmup(MultiStepDecay(0.1, [2]), warmup=2)
    assert [schedule(t) for t in range(6)] == pytest.approx([0.0, 0.05, 0.1, 0.1, 0.01, 0.01])
    restarts = LinearWarmup(CosineWarmRestarts(1.0, T_0=2), warmup=1, start_factor=0.5)
    assert [restarts(t) for t in range(4)] == pytest.approx([0.5, 1.0, 0.5, 1.0])


NEW_BAD = {
    "multistep not increasing": (
        lambda: MultiStepDecay(0.1, [5, 5]),
        ValueError,
        r"^milestones must increase strictly, got 5 then 5 at positions 0 and 1$",
    ),
    "multistep negative": (
        lambda: MultiStepDecay(0.1, [-1]),
        ValueError,
        r"^milestones\[0\] must be >= 0, got -1$",
    ),
    "multistep float": (
        lambda: MultiStepDecay(0.1, [3, 4.5]),
        TypeError,
        r"^milestones\[1\] must be an integer, got 4\.5 \(float\)$",
    ),
    "multistep bool": (
        lambda: MultiStepDecay(0.1, [True]),
        TypeError,
        r"^milestones\[0\] must be an integer, got True \(bool\)$",
    ),
    "multistep str": (
        lambda: MultiStepDecay(0.1, "30"),
        TypeError,
        r"^milestones must be a list of counts in increasing order, such as \[30, 80\], "
        r"got '30' \(str\)$",
    ),
    "multistep int": (lambda: MultiStepDecay(0.1, 30), TypeError, r"^milestones must be a list"),
    "multistep factor 0": (
        lambda: MultiStepDecay(0.1, [3], 0.0),
        ValueError,
        r"^factor must be a finite number > 0",
    ),
    "multistep nan factor": (
        lambda: MultiStepDecay(0.1, [3], NAN),
        ValueError,
        r"^factor must be a finite",
    ),
    "polynomial total 0": (
        lambda: PolynomialDecay(0.1, 0),
        ValueError,
        r"^total_iters must be >= 1, got 0$",
    ),
    "polynomial negative power": (
        lambda: PolynomialDecay(0.1, 5, -1.0),
        ValueError,
        r"^power must be a finite number >= 0, got -1\.0$",
    ),
    "polynomial inf power": (
        lambda: PolynomialDecay(0.1, 5, INF),
        ValueError,
        r"^power must be a finite",
    ),
    "polynomial str power": (
        lambda: PolynomialDecay(0.1, 5, "2"),
        TypeError,
        r"^power must be a real number, got '2' \(str\)$",
    ),
    "restarts T_0 0": (
        lambda: CosineWarmRestarts(0.1, 0),
        ValueError,
        r"^T_0 must be >= 1, got 0$",
    ),
    "restarts float T_mult": (
        lambda: CosineWarmRestarts(0.1, 10, 1.5),
        TypeError,
        r"^T_mult must be an integer, got 1\.5 \(float\)$",
    ),
    "restarts T_mult 0": (
        lambda: CosineWarmRestarts(0.1, 10, 0),
        ValueError,
        r"^T_mult must be >= 1, got 0$",
    ),
    "restarts nan eta_min": (
        lambda: CosineWarmRestarts(0.1, 10, eta_min=NAN),
        ValueError,
        r"^eta_min must be a finite number >= 0, got nan$",
    ),
    "one cycle pct_start > 1": (
        lambda: OneCycle(0.1, 100, pct_start=1.5),
        ValueError,
        r"^pct_start must be a finite number >= 0 and <= 1, got 1\.5$",
    ),
    "one cycle three phases overlap": (
        lambda: OneCycle(0.1, 100, pct_start=0.6, three_phase=True),
        ValueError,
        r"^pct_start must be <= 0\.5 with three_phase=True",
    ),
    "one cycle strategy": (
        lambda: OneCycle(0.1, 100, anneal_strategy="cosine"),
        ValueError,
        r"^anneal_strategy must be 'cos' or 'linear', got 'cosine' \(str\)$",
    ),
    "one cycle str three_phase": (
        lambda: OneCycle(0.1, 100, three_phase="False"),
        TypeError,
        r"^three_phase must be True or False, got 'False' \(str\)$",
    ),
    "one cycle bool total": (
        lambda: OneCycle(0.1, True),
        TypeError,
        r"^total_steps must be an integer, got True \(bool\)$",
    ),
    "one cycle div_factor 0": (
        lambda: OneCycle(0.1, 100, div_factor=0),
        ValueError,
        r"^div_factor must be a finite number > 0, got 0$",
    ),
    "one cycle inf final_div_factor": (
        lambda: OneCycle(0.1, 100, final_div_factor=INF),
        ValueError,
        r"^final_div_factor must be a finite",
    ),
    "one cycle negative max_lr": (
        lambda: OneCycle(-0.1, 100),
        ValueError,
        r"^max_lr must be a finite number >= 0",
    ),
}


@pytest.mark.parametrize("name", sorted(NEW_BAD))
def test_new_schedules_check_their_arguments_naming_them(name):
    make, error, pattern = NEW_BAD[name]
    with pytest.raises(error, match=pattern):
        make()


def test_settings_assigned_later_are_checked():
    schedule = OneCycle(0.1, 100, pct_start=0.6)
    schedule.three_phase = True  # each setting alone is valid; together they are not
    with pytest.raises(ValueError, match=r"pct_start must be <= 0\.5 with three_phase=True"):
        schedule(0)
    with pytest.raises(ValueError, match=r"^milestones must increase strictly"):
        MultiStepDecay(0.1, [1, 2]).milestones = [2, 1]


NEW_REPRS = [
    (MultiStepDecay(0.1, [30, 80]), "MultiStepDecay(lr=0.1, milestones=(30, 80), factor=0.1)"),
    (MultiStepDecay(0.1, []), "MultiStepDecay(lr=0.1, milestones=(), factor=0.1)"),
    (PolynomialDecay(0.1), "PolynomialDecay(lr=0.1, total_iters=5, power=1.0)"),
    (CosineWarmRestarts(0.1, 10), "CosineWarmRestarts(lr=0.1, T_0=10, T_mult=1, eta_min=0.0)"),
    (
        OneCycle(0.1, 100),
        "OneCycle(max_lr=0.1, total_steps=100, pct_start=0.3, anneal_strategy='cos', "
        "div_factor=25.0, final_div_factor=10000.0, three_phase=False)",
    ),
]


@pytest.mark.parametrize(("schedule", "text"), NEW_REPRS, ids=[text for _, text in NEW_REPRS])
def test_new_reprs_rebuild_the_schedule(schedule, text):
    assert repr(schedule) == text
    namespace = {
        cls.__name__: cls for cls in (MultiStepDecay, PolynomialDecay, CosineWarmRestarts, OneCycle)
    }
    rebuilt = eval(text, namespace)
    assert [rebuilt(t) for t in range(120)] == [schedule(t) for t in range(120)]


@pytest.mark.parametrize(
    ("schedule", "t", "rate"),
    [
        (MultiStepDecay(0.1, [10**400], 0.5), 10**400 - 1, 0.1),
        (MultiStepDecay(0.1, [10**400], 0.5), 10**400, 0.05),
        (PolynomialDecay(0.1, 10**400), 10**400 // 2, 0.05),
        (CosineWarmRestarts(1.0, 10**400), 10**400 + 10**400 // 2, 0.5),
        (CosineWarmRestarts(1.0, 1, T_mult=2), 2**300 - 1, 1.0),  # a restart, 300 cycles in
        (OneCycle(1.0, 100), 10**400, 1.0 / 25 / 1e4),
    ],
    ids=lambda value: "huge" if isinstance(value, int) and value > 10**70 else None,
)
def test_new_schedules_at_huge_counts(schedule, t, rate):
    assert schedule(t) == pytest.approx(rate, rel=1e-12, abs=0)


def test_new_schedules_return_python_floats_and_refuse_a_bad_t():
    for schedule, _ in NEW_REPRS:
        assert all(type(schedule(t)) is float for t in (0, np.int64(3), 10**6))
        with pytest.raises(TypeError, match=re.escape(repr(schedule)) + r": t must be an integer"):
            schedule(1.0)
    assert MultiStepDecay(np.float32(0.5), np.array([2, 4]).tolist(), np.float64(0.5))(5) == 0.125
