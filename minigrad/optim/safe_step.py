"""Optimizer steps that never make a parameter NaN or infinite.

A diverging run overflows: the parameters grow at every step until one of them passes the
largest float32 (3.4e38) and becomes inf, often while the loss, computed in float64, is still
finite. Checked after the fact, the damage is done: the model holds inf and any file written
since holds it too. :class:`SafeStep` checks *before* the step instead, so that a step that
would make anything non-finite is never taken and the model keeps its last finite values.

Proving a step safe needs a bound on each gradient's norm ||g||: measured with one dot
product per gradient, g.g, or given by the caller (``fit`` derives one from the parameters'
norms with :class:`~minigrad.gradient_bounds.GradientBounds`, which costs far less than
reading every gradient again). With ||p|| bounded by what earlier steps did, each optimizer
bounds its own step from ||g|| (its ``step_bound`` method; an SGD step moves p by
lr ||g + wd p||), and a step whose bound keeps every array it computes far below the dtype's
largest value cannot overflow:

    ||p'|| <= ||p|| + ||p' - p|| <= bound on ||p|| + bound on the change.

That holds for every healthy run, so the step is taken as usual. A step that cannot be
proven safe (the bounds grew near the limit, an optimizer without ``step_bound``, a gradient
that is not finite) is taken carefully instead: parameters and optimizer state are copied,
the step is taken, and every parameter is checked; if any became non-finite, everything is
copied back and :class:`~minigrad.errors.DivergenceError` is raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from minigrad.errors import DivergenceError
from minigrad.optim.base import Optimizer
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["SafeStep", "norm", "state_norms"]

#: Bounds must stay below the dtype's largest value divided by this, a margin for rounding.
HEADROOM = 16.0
#: The most steps proven at once (fit proves them again at every epoch anyway).
MAX_CERTIFIED = 100_000


def norm(array: FloatArray) -> float:
    """sqrt(sum(array ** 2)) as a float: inf when that overflows, NaN when ``array`` holds NaN.

    Computed as one BLAS dot product in the array's own precision, which is fast enough to
    run every step; float16 is widened to float32 first. Call it where NumPy's overflow
    warnings are off (``np.errstate(over="ignore", invalid="ignore")``): an overflow is an
    answer here, not a problem.

    >>> norm(np.array([3.0, 4.0], dtype=np.float32))
    5.0
    >>> with np.errstate(over="ignore"):
    ...     norm(np.array([3e38], dtype=np.float32))
    inf
    """
    flat = array.reshape(-1)
    if flat.dtype == np.float16:
        flat = flat.astype(np.float32)
    return math.sqrt(float(np.dot(flat, flat)))


def state_norms(optimizer: Optimizer, keys: tuple[str, ...]) -> dict[str, list[float]]:
    """The norm of each parameter's state buffer ``key``, for each key (0.0 for a parameter
    without state yet: frozen since construction), what an optimizer's ``state_norms``
    returns.

    >>> import minigrad as mg
    >>> p = mg.Parameter(np.zeros(2))
    >>> p.grad[:] = [3.0, 4.0]
    >>> optimizer = mg.Momentum([p], lr=0.1, momentum=0.9)
    >>> optimizer.step()
    >>> state_norms(optimizer, ("velocity",))
    {'velocity': [5.0]}
    """
    states = [optimizer.state.get(p) for p in optimizer.params]
    return {key: [0.0 if state is None else norm(state[key]) for state in states] for key in keys}


class SafeStep:
    """Take ``optimizer.step()`` only when it leaves every parameter finite.

    ``fit`` takes every step through one of these; in a hand-written loop, use
    ``SafeStep(optimizer).step()`` in place of ``optimizer.step()``.

    Parameters
    ----------
    optimizer : Optimizer
    names : list of str, optional
        A name per parameter of the optimizer, for messages (``fit`` passes the state_dict
        keys); default ``"parameter <index>"``.
    other_params : list of Parameter, optional
        Parameters the optimizer does not step (frozen ones) whose norms ``grad_bounds``
        functions need: measured with the others by :meth:`resync`.

    Attributes
    ----------
    value_norms : dict
        ``id(p)`` -> an upper bound on ||p|| for every parameter of the optimizer (kept up to
        date step by step) and of ``other_params``.

    Notes
    -----
    Each step needs a bound on ||g|| for every gradient: from the ``grad_bounds`` function
    given to :meth:`step` (again after :meth:`resync` if the first bounds do not prove the
    step: the bounds on ||p|| only grow between measurements), else measured (one dot
    product each). When
    ``optimizer.step_bound(grad_norms, value_norms, state_norms)`` returns bounds that keep
    every array the step computes below ``finfo(dtype).max / 16``, the step is taken
    directly and the bound on each ||p|| grows by the bound on its change. Otherwise the
    step is taken with copies of everything kept, and undone if it fails (see the module
    docstring). :meth:`resync` recomputes the bounds from the actual arrays; call it after
    changing parameters or optimizer state outside ``step()`` (``fit`` calls it at the
    start of every epoch).

    With a ``grad_bounds`` function that has a ``key`` (``GradientBounds.for_step`` gives
    one) and an optimizer that bounds its state for all later steps (``state_caps``: SGD
    and Momentum), one proof covers several steps: while the norms stay below caps of
    twice their bounds, the gradients' bounds at the caps hold, and so does each step's
    change bound at the caps; the steps that cannot carry ||p|| past its cap are proven
    together (see ``_certify``), and those steps cost one comparison each. A change of a
    hyperparameter, of the key or a :meth:`resync` ends such a proof.

    Examples
    --------
    >>> import minigrad as mg
    >>> p = mg.Parameter(np.array([3e38], dtype=np.float32))
    >>> p.grad[:] = -1e38
    >>> guarded = SafeStep(mg.SGD([p], lr=10.0))
    >>> guarded.step()  # 3e38 + 1e39 overflows float32  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.errors.DivergenceError: the step would make parameter 0 non-finite ...
    >>> p.value  # unchanged
    array([3.e+38], dtype=float32)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        names: list[str] | tuple[str, ...] | None = None,
        other_params: Sequence[Parameter] = (),
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"SafeStep takes an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.params = list(optimizer.params)
        if names is None:
            names = [f"parameter {index}" for index in range(len(self.params))]
        given: object = names  # checked for callers without a type checker
        if isinstance(given, str) or not all(isinstance(name, str) for name in names):
            raise TypeError("SafeStep names must be a list of strings, one per parameter")
        self.names = list(names)
        if len(self.names) != len(self.params):
            raise ValueError(
                f"SafeStep got {len(self.names)} names for {len(self.params)} parameters"
            )
        self.other_params = list(other_params)
        for index, param in enumerate(self.other_params):
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"SafeStep other_params[{index}] must be a Parameter, got "
                    f"{type(param).__name__}"
                )
        self.limits = [float(np.finfo(p.dtype).max) / HEADROOM for p in self.params]
        self.value_norms: dict[int, float] = {}
        self._value_norms: list[float] | None = None
        self._state_norms: dict[str, list[float]] = {}
        # steps proven in advance, for grad_bounds of this key and this optimizer revision
        self.certified_steps = 0
        self._certificate: tuple[object, object, frozenset[int]] | None = None
        # after proofs of several steps fail, steps proven alone before the next attempt
        self._skipped_proofs = self._backoff = 0

    def resync(self) -> None:
        """Recompute the norms of the parameters and the optimizer state from the arrays.

        Raises
        ------
        DivergenceError
            A parameter or an optimizer state buffer already holds NaN or inf (it was
            changed outside ``step()``, or loaded so).
        """
        self.certified_steps = 0
        with np.errstate(over="ignore", invalid="ignore"):
            norms = [norm(p.value) for p in self.params]
        for name, param, value in zip(self.names, self.params, norms, strict=True):
            if not math.isfinite(value) and not np.isfinite(param.value).all():
                raise DivergenceError(
                    f"{name} holds NaN or infinite values: they were set outside the optimizer step"
                )
        self._set_value_norms(norms)
        with np.errstate(over="ignore", invalid="ignore"):
            self.value_norms.update((id(p), norm(p.value)) for p in self.other_params)
        state_norms = self._optimizer_state_norms()
        for key, values in state_norms.items():
            for name, param, value in zip(self.names, self.params, values, strict=True):
                if (
                    not math.isfinite(value)
                    and not np.isfinite(self._state_array(param, key)).all()
                ):
                    raise DivergenceError(
                        f"the optimizer's {key!r} buffer of {name} holds NaN or infinite "
                        "values: they were set outside the optimizer step"
                    )
        self._state_norms = state_norms

    def _state_array(self, param: Parameter, key: str) -> FloatArray:
        return np.asarray(self.optimizer.state.get(param, {}).get(key, 0.0))

    def _frozen(self) -> frozenset[int]:
        """The indices of the frozen parameters (``requires_grad`` False), which the
        optimizer does not step."""
        return frozenset(i for i, p in enumerate(self.params) if not p.requires_grad)

    def _set_value_norms(self, norms: list[float]) -> None:
        self._value_norms = norms
        for param, value in zip(self.params, norms, strict=True):
            self.value_norms[id(param)] = value

    def _optimizer_state_norms(self) -> dict[str, list[float]]:
        state_norms = getattr(self.optimizer, "state_norms", None)
        if state_norms is None:
            return {}
        with np.errstate(over="ignore", invalid="ignore"):
            norms: dict[str, list[float]] = state_norms()
        return norms

    def step(
        self, grad_bounds: Callable[[dict[int, float]], list[float] | None] | None = None
    ) -> None:
        """``optimizer.step()``, unless it would make a parameter non-finite.

        ``grad_bounds(value_norms)``, if given, returns upper bounds on ||g|| for each of the
        optimizer's parameters, in order, from bounds on every parameter's norm (or None);
        they are tried first, then again after :meth:`resync`, before the gradients' norms
        are measured.

        Raises
        ------
        DivergenceError
            A gradient holds NaN or inf, or the step would make a parameter non-finite. The
            parameters and the optimizer state are left as they were before the call.
        """
        if self._value_norms is None:
            self.resync()
        if len(self.optimizer.params) != len(self.params):
            raise ValueError(
                f"SafeStep: the optimizer now has {len(self.optimizer.params)} parameters, "
                f"{len(self.params)} when this SafeStep was built (add_param_group since); "
                "build a new SafeStep"
            )
        if grad_bounds is not None:
            if self.certified_steps and self._certificate == (
                getattr(grad_bounds, "key", None),
                getattr(self.optimizer, "revision", None),
                self._frozen(),
            ):
                self.certified_steps -= 1
                self.optimizer.step()
                return
            for attempt in range(2):
                if attempt:
                    self.resync()
                if self._skipped_proofs:
                    self._skipped_proofs -= 1
                elif self._certify(grad_bounds):  # this step and the next ones
                    self._backoff = 0
                    self.certified_steps -= 1
                    self.optimizer.step()
                    return
                else:  # loose bounds: try again after 1, 3, 7, ... steps, at most 63
                    self._backoff = min(2 * self._backoff + 1, 63)
                    self._skipped_proofs = self._backoff
                bounds = grad_bounds(self.value_norms)
                if bounds is None:
                    break
                if self.try_step(bounds):
                    return
        # Python floats, not arrays: with a handful of parameters the bookkeeping costs less
        # than a single NumPy call per operation would
        with np.errstate(over="ignore", invalid="ignore"):
            measured = [norm(p.grad) if p.requires_grad else 0.0 for p in self.params]
        if not self.try_step(measured):
            self._careful_step()

    def try_step(self, grad_norms: list[float]) -> bool:
        """Take the step if ``grad_norms`` (upper bounds on each ||g||) prove it finite;
        return whether it was taken. Nothing changes when it was not."""
        if self._value_norms is None:
            self.resync()
        if len(grad_norms) != len(self.params):
            raise ValueError(
                f"SafeStep: {len(grad_norms)} gradient norms for {len(self.params)} parameters"
            )
        step_bound = getattr(self.optimizer, "step_bound", None)
        if step_bound is None:
            return False
        frozen = self._frozen()
        if frozen:
            grad_norms = [0.0 if i in frozen else g for i, g in enumerate(grad_norms)]
        bound = step_bound(grad_norms, self._value_norms, self._state_norms)
        if bound is None:
            return False
        change, peak, state_norms = _without_frozen(bound, frozen, self._state_norms)
        assert self._value_norms is not None, "resync() sets the norms"
        values = [v + c for v, c in zip(self._value_norms, change, strict=True)]
        # NaN and inf fail these comparisons: such steps are not proven
        if not all(
            v <= limit and top <= limit
            for v, top, limit in zip(values, peak, self.limits, strict=True)
        ):
            return False
        self.optimizer.step()
        self._set_value_norms(values)
        self._state_norms = state_norms
        return True

    def _certify(self, grad_bounds: Callable[[dict[int, float]], list[float] | None]) -> bool:
        """Prove this step and the next ones at once, for batches of the same
        ``grad_bounds.key``; whether at least this step was proven.

        Caps each ||p|| at 4 (||p|| + 1), four times its current bound plus four (larger
        caps prove more steps at once, as far as the bounds' growth with them allows);
        ``grad_bounds`` at the caps bounds every gradient while the norms stay below them
        (the bounds grow with the norms), the optimizer's ``state_caps`` bound its state for
        every later step, and
        ``step_bound`` at those caps bounds each step's change c. A step that starts below
        the caps is then finite, and k steps move ||p|| by at most k c: the
        floor((cap - ||p||) / c) steps from this one are proven. The bounds on ||p|| and
        the state become their values after those steps, which also hold during them. Any
        change of a hyperparameter (the optimizer's ``revision``), of the key, or
        :meth:`resync` ends the proof. The caps' bounds are looser than those at the
        current norms, so a step this cannot prove may still be proven on its own.
        """
        state_caps = getattr(self.optimizer, "state_caps", None)
        key = getattr(grad_bounds, "key", None)
        revision = getattr(self.optimizer, "revision", None)
        if state_caps is None or key is None or self._value_norms is None:
            return False
        values = self._value_norms
        caps = [4.0 * v + 4.0 for v in values]
        norms = dict(self.value_norms)
        norms.update((id(p), cap) for p, cap in zip(self.params, caps, strict=True))
        grads = grad_bounds(norms)
        if grads is None:
            return False
        frozen = self._frozen()
        grads = [0.0 if i in frozen else g for i, g in enumerate(grads)]
        states = state_caps(grads, caps, self._state_norms)
        bound = self.optimizer.step_bound(grads, caps, states)
        if bound is None:
            return False
        change, peak, after = _without_frozen(bound, frozen, states)
        for name, capped in states.items():
            for new, cap, limit in zip(after[name], capped, self.limits, strict=True):
                if not (new <= cap <= limit):  # NaN fails too
                    return False
        steps = math.inf
        for value, cap, step, top, limit in zip(
            values, caps, change, peak, self.limits, strict=True
        ):
            if not (cap <= limit and top <= limit and step >= 0):
                return False
            if step > 0:
                steps = min(steps, (cap - value) / step * (1 - 1e-9))  # rounded down
        steps = int(min(steps, MAX_CERTIFIED))
        if steps < 1:
            return False
        self._set_value_norms(
            [min(cap, v + steps * c) for v, cap, c in zip(values, caps, change, strict=True)]
        )
        self._state_norms = states
        self.certified_steps = steps
        self._certificate = (key, revision, frozen)
        return True

    def _refuse_gradients(self) -> None:
        """Raise DivergenceError naming the first gradient that holds NaN or inf, if any."""
        for name, param in zip(self.names, self.params, strict=True):
            if param.requires_grad and not np.isfinite(param.grad).all():
                raise DivergenceError(
                    f"the gradient of {name} holds NaN or infinite values; the step was not taken"
                )

    def _careful_step(self) -> None:
        """Step with copies kept; undo everything if a parameter or a state buffer becomes
        non-finite."""
        self._refuse_gradients()
        values = [p.value.copy() for p in self.params]
        state = self.optimizer.state_dict()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.optimizer.step()
        for name, param in zip(self.names, self.params, strict=True):
            buffers = [
                (f"the optimizer's {key!r} buffer of {name}", array)
                for key, array in self.optimizer.state.get(param, {}).items()
                if isinstance(array, np.ndarray)
            ]
            for what, array in [(name, param.value), *buffers]:
                if not np.isfinite(array).all():
                    for saved, p in zip(values, self.params, strict=True):
                        np.copyto(p.value, saved)
                    self.optimizer.load_state_dict(state)
                    raise DivergenceError(
                        f"the step would make {what} non-finite (an overflow: the values "
                        "grew beyond the dtype's range); the step was not taken"
                    )
        self.resync()

    def __repr__(self) -> str:
        return f"SafeStep({self.optimizer!r})"


def _without_frozen(
    bound: tuple[list[float], list[float], dict[str, list[float]]],
    frozen: frozenset[int],
    before: dict[str, list[float]],
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """A ``step_bound`` answer with the frozen parameters' entries made exact: they do not
    move, compute nothing, and keep their state (bounded by ``before``)."""
    change, peak, after = bound
    if not frozen:
        return change, peak, after
    change = [0.0 if i in frozen else c for i, c in enumerate(change)]
    peak = [0.0 if i in frozen else top for i, top in enumerate(peak)]
    after = {
        key: [before[key][i] if i in frozen and key in before else v for i, v in enumerate(values)]
        for key, values in after.items()
    }
    return change, peak, after
