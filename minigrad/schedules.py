"""Learning-rate schedules: the learning rate as a function of the epoch or step count.

A schedule is a callable ``schedule(t) -> lr`` for t = 0, 1, 2, ... (epochs or optimizer
steps completed). :class:`~minigrad.callbacks.LearningRateScheduler` applies one during
``fit``; in a hand-written loop set ``optimizer.lr = schedule(epoch)`` yourself. A rate
that follows a monitored number instead of the count is the callback
:class:`~minigrad.callbacks.ReduceLROnPlateau`.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

from minigrad._validation import Setting, _given, _shortened, check_bool, check_integer
from minigrad.optim.base import check_non_negative, real

__all__ = [
    "Constant",
    "CosineDecay",
    "CosineWarmRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LinearWarmup",
    "MultiStepDecay",
    "OneCycle",
    "PolynomialDecay",
    "Schedule",
    "StepDecay",
]


def _positive(name: str, value: Any) -> float:
    return real(name, value, above=0.0)


def _count(name: str, value: Any, minimum: int = 1) -> int:
    return check_integer(name, value, minimum=minimum)


def _then(name: str, then: Any) -> Schedule:
    """LinearWarmup's ``then``: a Schedule, or a number made a Constant."""
    if isinstance(then, type):
        raise TypeError(
            f"{name} must be a schedule instance or a number, got the class {then.__name__}; "
            f"create one, e.g. {then.__name__}(...)"
        )
    if isinstance(then, Schedule):
        return then
    try:
        return Constant(then)
    except TypeError:
        raise TypeError(
            f"{name} must be a Schedule (such as CosineDecay(0.1, total=90)) or a number, "
            f"got {_given(then)}"
        ) from None


def _power(base: float, exponent: int) -> float:
    """base ** exponent for base > 0 and an integer exponent >= 0, as 0.0 or inf where the
    result leaves float range (Python raises OverflowError for that, and for any exponent
    beyond float range, even where the result is 0.0 or 1.0)."""
    if base == 1.0:
        return 1.0
    try:
        return base**exponent
    except OverflowError:
        return 0.0 if base < 1.0 else math.inf


def _decayed(lr: float, base: float, exponent: int) -> float:
    """lr * base ** exponent, which is 0.0 for lr = 0 even where the power overflows."""
    return 0.0 if lr == 0.0 else lr * _power(base, exponent)


class Schedule:
    """Base class: ``schedule(t)`` returns the learning rate lr(t) for a count t >= 0.

    A subclass stores its settings as attributes (they make the repr) and writes
    ``rate(t)``. Calling the schedule checks t (an integer >= 0: Python or NumPy, not a
    bool, a float or a string) and the rate, which must be a finite number >= 0: a
    learning rate that overflows (``ExponentialDecay(1.0, gamma=1.01)(100_000)``) is an
    error naming the schedule and t, while one that underflows to 0.0 is returned. The
    built-in schedules check their settings on every assignment too
    (``schedule.every = 0`` is the same ValueError as ``StepDecay(0.1, every=0)``).

    Shape: t (an int >= 0) -> lr (a float >= 0).

    Examples
    --------
    >>> class Halving(Schedule):
    ...     def __init__(self, lr):
    ...         self.lr = lr
    ...     def rate(self, t):
    ...         return self.lr / 2**t
    >>> schedule = Halving(0.4)
    >>> schedule, [schedule(t) for t in range(3)]
    (Halving(lr=0.4), [0.4, 0.2, 0.1])
    >>> schedule(-1)
    Traceback (most recent call last):
        ...
    ValueError: Halving(lr=0.4): t must be >= 0, got -1
    """

    def __call__(self, t: int) -> float:
        try:
            t = check_integer("t", t, minimum=0)
        except (TypeError, ValueError) as error:  # the count's own error, naming the schedule
            raise type(error)(f"{self!r}: {error}") from None
        rate: Callable[[int], object] = self.rate  # a subclass's rate may return anything
        try:
            lr = rate(t)
        except OverflowError:  # float ** int beyond float range raises instead of giving inf
            lr = math.inf
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(
                f"{self!r}.rate({_shortened(t)}) must return a real number, got {_given(lr)}"
            )
        lr = float(lr)
        if not (math.isfinite(lr) and lr >= 0.0):
            problem = "overflows float range" if lr == math.inf else f"is {lr}"
            raise ValueError(
                f"{self!r} at t={_shortened(t)}: the learning rate {problem}; a learning rate "
                "must be a finite number >= 0"
            )
        return lr

    def rate(self, t: int) -> float:
        """The learning rate at count ``t`` (already checked: an int >= 0)."""
        raise NotImplementedError(f"{type(self).__name__} must implement rate(t)")

    def __repr__(self) -> str:
        # an integer of more than 4300 digits has no repr at all (Python refuses it)
        settings = ", ".join(
            f"{k}={_shortened(v) if isinstance(v, (int, tuple)) else repr(v)}"
            for k, v in vars(self).items()
        )
        return f"{type(self).__name__}({settings})"


class Constant(Schedule):
    """lr(t) = lr, for every t (what ``LinearWarmup`` follows when ``then`` is a number).

    Examples
    --------
    >>> schedule = Constant(0.05)
    >>> schedule, schedule(0), schedule(1000)
    (Constant(lr=0.05), 0.05, 0.05)
    """

    lr = Setting(check_non_negative)

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def rate(self, t: int) -> float:
        """lr."""
        return self.lr


class StepDecay(Schedule):
    """``lr(t) = lr * factor ** floor(t / every)``: multiply by ``factor`` every ``every`` counts.

    The slides' ``learning_rate *= 0.9`` every 100 epochs is ``StepDecay(lr, 0.9, 100)`` (the
    slides also apply the first decay at epoch 0, so their rate is this one times 0.9).
    Same as torch.optim.lr_scheduler.StepLR(step_size=every, gamma=factor).

    >>> schedule = StepDecay(0.1, factor=0.9, every=100)
    >>> [round(schedule(t), 4) for t in (0, 99, 100, 250)]
    [0.1, 0.1, 0.09, 0.081]
    """

    lr = Setting(check_non_negative)
    factor = Setting(_positive)
    every = Setting(_count)

    def __init__(self, lr: float, factor: float = 0.9, every: int = 100) -> None:
        self.lr, self.factor, self.every = lr, factor, every

    def rate(self, t: int) -> float:
        """lr * factor ** floor(t / every)."""
        return _decayed(self.lr, self.factor, t // self.every)


class ExponentialDecay(Schedule):
    """lr(t) = lr * gamma ** t (torch's ExponentialLR).

    >>> ExponentialDecay(1.0, gamma=0.5)(3)
    0.125
    """

    lr = Setting(check_non_negative)
    gamma = Setting(_positive)

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr, self.gamma = lr, gamma

    def rate(self, t: int) -> float:
        """lr * gamma ** t."""
        return _decayed(self.lr, self.gamma, t)


class InverseTimeDecay(Schedule):
    """lr(t) = lr / (1 + decay_rate * t), the classic 1/t decay.

    >>> InverseTimeDecay(0.2, decay_rate=1.0)(3)
    0.05
    """

    lr = Setting(check_non_negative)
    decay_rate = Setting(check_non_negative)

    def __init__(self, lr: float, decay_rate: float) -> None:
        self.lr, self.decay_rate = lr, decay_rate

    def rate(self, t: int) -> float:
        """lr / (1 + decay_rate * t)."""
        if self.decay_rate == 0.0:
            return self.lr
        try:
            count = float(t)
        except OverflowError:  # a count beyond float range: the rate is lr / inf = 0
            count = math.inf
        return self.lr / (1.0 + self.decay_rate * count)


class CosineDecay(Schedule):
    """Half a cosine from ``lr`` down to ``final_lr`` over ``total`` counts, then flat:

        lr(t) = final_lr + (lr - final_lr) (1 + cos(pi min(t, total) / total)) / 2

    (torch's CosineAnnealingLR with T_max=total, eta_min=final_lr, without restarts).

    >>> schedule = CosineDecay(1.0, total=10)
    >>> schedule(0), schedule(5), schedule(10), schedule(20)
    (1.0, 0.5, 0.0, 0.0)
    """

    lr = Setting(check_non_negative)
    total = Setting(_count)
    final_lr = Setting(check_non_negative)

    def __init__(self, lr: float, total: int, final_lr: float = 0.0) -> None:
        self.lr, self.total, self.final_lr = lr, total, final_lr

    def rate(self, t: int) -> float:
        """final_lr + (lr - final_lr) (1 + cos(pi min(t, total) / total)) / 2."""
        progress = min(t, self.total) / self.total
        return self.final_lr + (self.lr - self.final_lr) * (1.0 + math.cos(math.pi * progress)) / 2


class LinearWarmup(Schedule):
    """Rise linearly for ``warmup`` counts, then follow ``then`` (a schedule or a constant):

        lr(t) = peak (start_factor + (1 - start_factor) t / warmup)   for t < warmup
        lr(t) = then(t - warmup)                                       afterwards

    where peak = then(0). The schedule after the warm-up starts from its own t = 0.

    >>> schedule = LinearWarmup(CosineDecay(1.0, total=4), warmup=2)
    >>> [round(schedule(t), 4) for t in range(7)]
    [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    then = Setting(_then)
    warmup = Setting(_count)
    start_factor = Setting(lambda name, value: real(name, value, minimum=0.0, maximum=1.0))

    def __init__(self, then: Schedule | float, warmup: int, start_factor: float = 0.0) -> None:
        self.then, self.warmup, self.start_factor = then, warmup, start_factor

    def rate(self, t: int) -> float:
        """The warm-up ramp to then(0), then then(t - warmup)."""
        if t < self.warmup:
            # t / warmup first: two integers divide exactly even beyond float range
            fraction = self.start_factor + (1.0 - self.start_factor) * (t / self.warmup)
            return self.then(0) * fraction
        return self.then(t - self.warmup)


def _milestones(name: str, value: Any) -> tuple[int, ...]:
    """MultiStepDecay's ``milestones``: counts >= 0 in increasing order, as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, range)):
        raise TypeError(
            f"{name} must be a list of counts in increasing order, such as [30, 80], got "
            f"{_given(value)}"
        )
    counts = tuple(check_integer(f"{name}[{i}]", v, minimum=0) for i, v in enumerate(value))
    for i in range(1, len(counts)):
        if counts[i] <= counts[i - 1]:
            raise ValueError(
                f"{name} must increase strictly, got {_shortened(counts[i - 1])} then "
                f"{_shortened(counts[i])} at positions {i - 1} and {i}"
            )
    return counts


class MultiStepDecay(Schedule):
    """Multiply by ``factor`` at each milestone:

        lr(t) = lr * factor ** #{m in milestones : m <= t}

    (torch's MultiStepLR with gamma=factor). ``milestones`` are counts in strictly
    increasing order; :class:`StepDecay` is the case of evenly spaced ones.

    Examples
    --------
    >>> schedule = MultiStepDecay(0.1, milestones=[3, 5], factor=0.5)
    >>> schedule
    MultiStepDecay(lr=0.1, milestones=(3, 5), factor=0.5)
    >>> [schedule(t) for t in range(7)]
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    """

    lr = Setting(check_non_negative)
    milestones = Setting(_milestones)
    factor = Setting(_positive)

    def __init__(self, lr: float, milestones: list[int], factor: float = 0.1) -> None:
        self.lr, self.milestones, self.factor = lr, milestones, factor

    def rate(self, t: int) -> float:
        """lr * factor ** (the number of milestones <= t)."""
        return _decayed(self.lr, self.factor, bisect.bisect_right(self.milestones, t))


class PolynomialDecay(Schedule):
    """A polynomial decay from ``lr`` to 0 over ``total_iters`` counts, then 0:

        lr(t) = lr (1 - min(t, total_iters) / total_iters) ** power

    (torch's PolynomialLR; ``power=1`` is a straight line).

    Examples
    --------
    >>> schedule = PolynomialDecay(1.0, total_iters=4, power=2.0)
    >>> [schedule(t) for t in range(6)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """

    lr = Setting(check_non_negative)
    total_iters = Setting(_count)
    power = Setting(check_non_negative)

    def __init__(self, lr: float, total_iters: int = 5, power: float = 1.0) -> None:
        self.lr, self.total_iters, self.power = lr, total_iters, power

    def rate(self, t: int) -> float:
        """lr (1 - min(t, total_iters) / total_iters) ** power."""
        remaining: float = (1.0 - min(t, self.total_iters) / self.total_iters) ** self.power
        return self.lr * remaining


class CosineWarmRestarts(Schedule):
    """Cosine decays from ``lr`` to ``eta_min`` that restart at ``lr`` (SGDR, Loshchilov and
    Hutter 2017), the i-th lasting T_i = T_0 T_mult^i counts:

        lr(t) = eta_min + (lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2

    where T_cur counts from 0 within the current cycle (torch's CosineAnnealingWarmRestarts,
    stepped once per count).

    Examples
    --------
    >>> schedule = CosineWarmRestarts(1.0, T_0=2, T_mult=2)
    >>> [round(schedule(t), 4) for t in range(8)]
    [1.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 1.0, 0.9619]
    """

    lr = Setting(check_non_negative)
    T_0 = Setting(_count)
    T_mult = Setting(_count)
    eta_min = Setting(check_non_negative)

    def __init__(self, lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        self.lr, self.T_0, self.T_mult, self.eta_min = lr, T_0, T_mult, eta_min

    def rate(self, t: int) -> float:
        """eta_min + (lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2."""
        cycle, within = self.T_0, t
        if self.T_mult == 1:
            within = t % cycle
        else:  # the cycles grow geometrically: a few hundred turns even for t = 10**100
            while within >= cycle:
                within -= cycle
                cycle *= self.T_mult
        progress = within / cycle  # exact for integers beyond float range too
        return self.eta_min + (self.lr - self.eta_min) * (1.0 + math.cos(math.pi * progress)) / 2


def _anneal_strategy(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in ("cos", "linear"):
        raise ValueError(f"{name} must be 'cos' or 'linear', got {_given(value)}")
    return value


def _fraction(name: str, value: Any) -> float:
    return real(name, value, minimum=0.0, maximum=1.0)


class OneCycle(Schedule):
    """The 1cycle policy (Smith and Topin 2018) over ``total_steps`` counts: up from
    max_lr / div_factor to ``max_lr`` over the first ``pct_start`` of them, then down to
    max_lr / (div_factor final_div_factor), as torch's OneCycleLR computes it.

    Phases, each annealed from its start rate to its end rate (``anneal_strategy``):

        cos:     end + (start - end) (1 + cos(pi p)) / 2,   linear:  start + (end - start) p

    where p in [0, 1] is the fraction of the phase done. Two phases: initial -> max_lr up to
    t = pct_start total_steps - 1, then max_lr -> final up to total_steps - 1. With
    ``three_phase`` (which needs pct_start <= 0.5): initial -> max_lr, max_lr -> initial
    over as many counts, then initial -> final. After total_steps the rate stays at its
    last value (torch raises there). A phase of no length, which torch divides by zero on
    (pct_start total_steps = 1), gives its end rate.

    Use it per step: ``LearningRateScheduler(OneCycle(0.1, total_steps=epochs * batches),
    per="step")``. torch's OneCycleLR also cycles momentum (0.95 -> 0.85 -> 0.95); this
    schedule sets the learning rate only.

    Examples
    --------
    >>> schedule = OneCycle(1.0, total_steps=10, pct_start=0.5, div_factor=10.0,
    ...                     final_div_factor=100.0, anneal_strategy="linear")
    >>> [round(schedule(t), 4) for t in range(11)]
    [0.1, 0.325, 0.55, 0.775, 1.0, 0.8002, 0.6004, 0.4006, 0.2008, 0.001, 0.001]
    """

    max_lr = Setting(check_non_negative)
    total_steps = Setting(_count)
    pct_start = Setting(_fraction)
    anneal_strategy = Setting(_anneal_strategy)
    div_factor = Setting(_positive)
    final_div_factor = Setting(_positive)
    three_phase = Setting(check_bool)

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.max_lr, self.total_steps, self.pct_start = max_lr, total_steps, pct_start
        self.anneal_strategy, self.div_factor = anneal_strategy, div_factor
        self.final_div_factor, self.three_phase = final_div_factor, three_phase
        self._phases()

    def _phases(self) -> list[tuple[float, float, float]]:
        """(last count, start rate, end rate) of each phase, as torch's OneCycleLR sets them."""
        if self.three_phase and self.pct_start > 0.5:
            raise ValueError(
                f"pct_start must be <= 0.5 with three_phase=True (the first two phases take "
                f"2 pct_start of the steps), got {self.pct_start}"
            )
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise = float(self.pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if self.three_phase:
            fall = float(2 * self.pct_start * self.total_steps) - 2
            return [
                (rise, initial, self.max_lr),
                (fall, self.max_lr, initial),
                (last, initial, final),
            ]
        return [(rise, initial, self.max_lr), (last, self.max_lr, final)]

    def rate(self, t: int) -> float:
        """The rate of the phase t falls in, annealed by the fraction of it done."""
        t = min(t, self.total_steps - 1)
        phases = self._phases()
        start = 0.0
        for index, (end, begin_lr, end_lr) in enumerate(phases):
            if t <= end or index == len(phases) - 1:
                if end == start:
                    return end_lr
                fraction = (t - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return end_lr + (begin_lr - end_lr) / 2.0 * (math.cos(math.pi * fraction) + 1)
                return (end_lr - begin_lr) * fraction + begin_lr
            start = end
        raise AssertionError("unreachable: the last phase takes every t")  # pragma: no cover
