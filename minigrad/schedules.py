"""Learning-rate schedules: the learning rate as a function of the epoch or step count.

A schedule is a callable ``schedule(t) -> lr`` for t = 0, 1, 2, ... (epochs or optimizer
steps completed). :class:`~minigrad.callbacks.LearningRateScheduler` applies one during
``fit``; in a hand-written loop set ``optimizer.lr = schedule(epoch)`` yourself.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from minigrad._validation import _given, check_integer
from minigrad.optim.base import check_non_negative, real

__all__ = [
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LinearWarmup",
    "Schedule",
    "StepDecay",
]


def _positive(name: str, value: Any) -> float:
    return real(name, value, above=0.0)


def _count(name: str, value: Any, minimum: int = 1) -> int:
    return check_integer(name, value, minimum=minimum)


class Schedule:
    """Base class: ``schedule(t)`` returns the learning rate lr(t) for a count t >= 0.

    A subclass stores its settings as attributes (they make the repr) and writes
    ``rate(t)``. Calling the schedule checks t (an integer >= 0: Python or NumPy, not a
    bool, a float or a string) and the rate, which must be a finite number >= 0: a
    learning rate that overflows (``ExponentialDecay(1.0, gamma=1.01)(100_000)``) is an
    error naming the schedule and t, while one that underflows to 0.0 is returned.

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
        try:
            lr = self.rate(t)
        except OverflowError:  # float ** int beyond float range raises instead of giving inf
            lr = math.inf
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"{self!r}.rate({t}) must return a real number, got {_given(lr)}")
        lr = float(lr)
        if not (math.isfinite(lr) and lr >= 0.0):
            problem = "overflows float range" if lr == math.inf else f"is {lr}"
            raise ValueError(
                f"{self!r} at t={t}: the learning rate {problem}; a learning rate must be a "
                "finite number >= 0"
            )
        return lr

    def rate(self, t: int) -> float:
        """The learning rate at count ``t`` (already checked: an int >= 0)."""
        raise NotImplementedError(f"{type(self).__name__} must implement rate(t)")

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class Constant(Schedule):
    """lr(t) = lr, for every t (what ``LinearWarmup`` follows when ``then`` is a number).

    Examples
    --------
    >>> schedule = Constant(0.05)
    >>> schedule, schedule(0), schedule(1000)
    (Constant(lr=0.05), 0.05, 0.05)
    """

    def __init__(self, lr: float) -> None:
        self.lr = check_non_negative("lr", lr)

    def rate(self, t: int) -> float:
        """lr."""
        return self.lr


class StepDecay(Schedule):
    """lr(t) = lr * factor ** floor(t / every): multiply by ``factor`` every ``every`` counts.

    The slides' "learning_rate *= 0.9 every 100 epochs" is ``StepDecay(lr, 0.9, 100)`` (the
    slides also apply the first decay at epoch 0, so their rate is this one times 0.9).
    Same as torch.optim.lr_scheduler.StepLR(step_size=every, gamma=factor).

    >>> schedule = StepDecay(0.1, factor=0.9, every=100)
    >>> [round(schedule(t), 4) for t in (0, 99, 100, 250)]
    [0.1, 0.1, 0.09, 0.081]
    """

    def __init__(self, lr: float, factor: float = 0.9, every: int = 100) -> None:
        self.lr = check_non_negative("lr", lr)
        self.factor = _positive("factor", factor)
        self.every = _count("every", every)

    def rate(self, t: int) -> float:
        """lr * factor ** floor(t / every)."""
        return self.lr * self.factor ** (t // self.every)


class ExponentialDecay(Schedule):
    """lr(t) = lr * gamma ** t (torch's ExponentialLR).

    >>> ExponentialDecay(1.0, gamma=0.5)(3)
    0.125
    """

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = check_non_negative("lr", lr)
        self.gamma = _positive("gamma", gamma)

    def rate(self, t: int) -> float:
        """lr * gamma ** t."""
        return self.lr * self.gamma**t


class InverseTimeDecay(Schedule):
    """lr(t) = lr / (1 + decay_rate * t), the classic 1/t decay.

    >>> InverseTimeDecay(0.2, decay_rate=1.0)(3)
    0.05
    """

    def __init__(self, lr: float, decay_rate: float) -> None:
        self.lr = check_non_negative("lr", lr)
        self.decay_rate = check_non_negative("decay_rate", decay_rate)

    def rate(self, t: int) -> float:
        """lr / (1 + decay_rate * t)."""
        return self.lr / (1.0 + self.decay_rate * t)


class CosineDecay(Schedule):
    """Half a cosine from ``lr`` down to ``final_lr`` over ``total`` counts, then flat:

        lr(t) = final_lr + (lr - final_lr) (1 + cos(pi min(t, total) / total)) / 2

    (torch's CosineAnnealingLR with T_max=total, eta_min=final_lr, without restarts).

    >>> schedule = CosineDecay(1.0, total=10)
    >>> schedule(0), schedule(5), schedule(10), schedule(20)
    (1.0, 0.5, 0.0, 0.0)
    """

    def __init__(self, lr: float, total: int, final_lr: float = 0.0) -> None:
        self.lr = check_non_negative("lr", lr)
        self.total = _count("total", total)
        self.final_lr = check_non_negative("final_lr", final_lr)

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

    def __init__(self, then: Schedule | float, warmup: int, start_factor: float = 0.0) -> None:
        if isinstance(then, type):
            raise TypeError(
                f"then must be a schedule instance or a number, got the class {then.__name__}; "
                f"create one, e.g. {then.__name__}(...)"
            )
        if not isinstance(then, Schedule):
            try:
                then = Constant(then)
            except TypeError:
                raise TypeError(
                    f"then must be a Schedule (such as CosineDecay(0.1, total=90)) or a "
                    f"number, got {_given(then)}"
                ) from None
        self.then = then
        self.warmup = _count("warmup", warmup)
        self.start_factor = real("start_factor", start_factor, minimum=0.0, maximum=1.0)

    def rate(self, t: int) -> float:
        """The warm-up ramp to then(0), then then(t - warmup)."""
        if t < self.warmup:
            fraction = self.start_factor + (1.0 - self.start_factor) * t / self.warmup
            return self.then(0) * fraction
        return self.then(t - self.warmup)
