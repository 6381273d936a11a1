"""Per-coordinate adaptive steps from running sums of squared gradients: Adagrad, RMSprop
and Adadelta, as torch.optim computes them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad._validation import check_bool
from minigrad.optim.base import (
    HyperparameterChecks,
    Optimizer,
    _first_bad,
    check_fraction,
    check_non_negative,
    decayed_gradient,
    real,
)
from minigrad.optim.safe_step import state_norms
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = [
    "Adadelta",
    "Adagrad",
    "RMSprop",
    "adadelta_update",
    "adagrad_update",
    "rmsprop_update",
]


def _positive(name: str, value: Any) -> float:
    return real(name, value, above=0.0)


class _CountedSteps(Optimizer):
    """An optimizer whose state counts its steps (``state["step"]``, from 1 in the update),
    and whose named buffers hold averages of squares (never negative)."""

    _squares: ClassVar[tuple[str, ...]] = ()

    def _begin_step(self) -> None:
        for state in self._active_states:
            state["step"] += 1

    def _buffer_problem(self, key: str, buffer: FloatArray) -> str | None:
        """Averages of squares must be finite and >= 0; other buffers finite."""
        if key in self._squares:
            return _first_bad(
                buffer, ~((buffer >= 0) & np.isfinite(buffer)), "negative, NaN or infinite values"
            )
        return super()._buffer_problem(key, buffer)


# -- Adagrad --------------------------------------------------------------------------------


def adagrad_update(
    value: FloatArray,
    grad: FloatArray,
    total: FloatArray,
    *,
    step: int,
    lr: float,
    lr_decay: float,
    eps: float,
    weight_decay: float,
    scratch: FloatArray,
    scratch2: FloatArray,
) -> None:
    """One Adagrad step in place; ``step`` counts from 1 and includes this step.

    g <- g + wd p;  s <- s + g^2;  p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps).

    Shape: value, grad, total (the sum s) and the scratch arrays all of one shape (any).

    >>> value, grad, total = np.array([1.0]), np.array([2.0]), np.zeros(1)
    >>> adagrad_update(value, grad, total, step=1, lr=0.1, lr_decay=0.0, eps=1e-10,
    ...                weight_decay=0.0, scratch=np.empty(1), scratch2=np.empty(1))
    >>> value, total  # the first step moves by lr: g / sqrt(g^2)
    (array([0.9]), array([4.]))
    """
    clr = lr / (1 + (step - 1) * lr_decay)
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    np.multiply(direction, direction, out=scratch2)
    total += scratch2
    np.sqrt(total, out=scratch2)
    scratch2 += eps
    np.divide(direction, scratch2, out=scratch2)
    scratch2 *= clr
    value -= scratch2


class Adagrad(_CountedSteps):
    """Adagrad (Duchi et al., 2011), as torch.optim.Adagrad computes it.

    Per parameter p with gradient g, sum s (``initial_accumulator_value`` at the start) and
    step t from 1::

        g <- g + weight_decay * p
        s <- s + g^2
        p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)

    Every entry's step shrinks as its squared gradients add up, so rare features keep large
    steps. eps is added outside the root, as in PyTorch (TensorFlow's Adagrad starts its
    accumulator at 0.1 instead and has no eps there).

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 0.01
    lr_decay : float >= 0, default 0
    weight_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    eps : float > 0, default 1e-10
    fused : bool or None, keyword only
        Adagrad has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0, -1.0]))
    >>> p.grad[:] = [3.0, -0.01]
    >>> Adagrad([p], lr=0.1).step()      # the first step moves each entry by lr
    >>> p.value.round(6)
    array([ 0.9, -0.9])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "lr_decay": check_non_negative,
        "weight_decay": check_non_negative,
        "initial_accumulator_value": check_non_negative,
        "eps": _positive,
    }
    _squares = ("sum",)

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            fused=fused,
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        total = self._zeros(param)
        total += self.initial_accumulator_value  # the group's
        return {"step": 0, "sum": total}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        (scratch2,) = self._extra_work(work, 1)
        adagrad_update(
            value,
            grad,
            state["sum"],
            step=state["step"],
            lr=group["lr"],
            lr_decay=group["lr_decay"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            scratch=work,
            scratch2=scratch2,
        )

    def state_norms(self) -> dict[str, list[float]]:
        """||s|| of each sum, for :class:`~minigrad.optim.SafeStep`."""
        return state_norms(self, ("sum",))

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """Bounds for :class:`~minigrad.optim.SafeStep`.

        Each entry's |g| is at most sqrt(s') (s' holds g^2), so it moves by at most clr =
        lr / (1 + (t - 1) lr_decay): ||p' - p|| <= clr min(sqrt(size), ||g'|| / eps), with
        g' = g + wd p; ||s'|| <= ||s|| + ||g'||^2.
        """
        change, peak, sums = [], [], []
        for index, p in enumerate(self.params):
            group = self._settings[index]
            t = self.state.get(p, {}).get("step", 0) + 1
            clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
            d = grad_norms[index] + group["weight_decay"] * value_norms[index]
            total = state_norms["sum"][index] + d * d
            c = clr * min(math.sqrt(p.size), d / group["eps"])
            change.append(c)
            peak.append(max(d, total, c, d / group["eps"] if d else 0.0))
            sums.append(total)
        return change, peak, {"sum": sums}


# -- RMSprop --------------------------------------------------------------------------------


def rmsprop_update(
    value: FloatArray,
    grad: FloatArray,
    square_avg: FloatArray,
    grad_avg: FloatArray,
    buffer: FloatArray,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    scratch: FloatArray,
    scratch2: FloatArray,
) -> None:
    """One RMSprop step in place (torch.optim.RMSprop's form).

    g <- g + wd p;  v <- alpha v + (1 - alpha) g^2;  with ``centered``, m <- m + (1 - alpha)
    (g - m) and a = sqrt(v - m^2), else a = sqrt(v); then b <- mu b + g / (a + eps),
    p <- p - lr b (with momentum mu > 0), or p <- p - lr g / (a + eps).

    Shape: every array of one shape (any); ``grad_avg`` (m) is read only when centered and
    ``buffer`` (b) only with momentum.

    >>> value, grad, v = np.array([1.0]), np.array([2.0]), np.zeros(1)
    >>> rmsprop_update(value, grad, v, np.zeros(1), np.zeros(1), lr=0.01, alpha=0.75,
    ...                eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
    ...                scratch=np.empty(1), scratch2=np.empty(1))
    >>> value.round(8), v  # v = 0.25 g^2: the step is lr g / (g / 2) = 2 lr
    (array([0.98]), array([1.]))
    """
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    np.multiply(direction, direction, out=scratch2)
    scratch2 *= 1.0 - alpha
    square_avg *= alpha
    square_avg += scratch2
    if centered:
        _lerp(grad_avg, direction, 1.0 - alpha, scratch2)
        np.multiply(grad_avg, grad_avg, out=scratch2)
        np.subtract(square_avg, scratch2, out=scratch2)
        np.sqrt(scratch2, out=scratch2)
    else:
        np.sqrt(square_avg, out=scratch2)
    scratch2 += eps
    np.divide(direction, scratch2, out=scratch2)
    if momentum > 0:
        buffer *= momentum
        buffer += scratch2
        np.multiply(buffer, lr, out=scratch2)
    else:
        scratch2 *= lr
    value -= scratch2


def _lerp(start: FloatArray, end: FloatArray, weight: float, scratch: FloatArray) -> None:
    """start <- start + weight (end - start), in place, rounded as torch's lerp_ rounds it
    (from the nearer end: end - (end - start)(1 - weight) when weight >= 0.5)."""
    np.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1.0 - weight
        np.subtract(end, scratch, out=start)


class RMSprop(_CountedSteps):
    """RMSprop (Hinton, 2012), as torch.optim.RMSprop computes it.

    Per parameter p with gradient g, square average v (zeros at the start)::

        g <- g + weight_decay * p
        v <- alpha v + (1 - alpha) g^2
        a = sqrt(v - m^2), m <- m + (1 - alpha)(g - m)    (centered: m averages g)
        a = sqrt(v)                                        (otherwise)
        b <- momentum b + g / (a + eps);  p <- p - lr b    (momentum > 0)
        p <- p - lr g / (a + eps)                          (momentum = 0)

    eps is added outside the square root, as in PyTorch (TensorFlow/Keras adds it inside).
    The state holds v, m and b for every parameter, so that ``centered`` and ``momentum``
    may change between steps.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 0.01
    alpha : float in [0, 1), default 0.99
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum : float in [0, 1), default 0
    centered : bool, default False
    fused : bool or None, keyword only
        RMSprop has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> p.grad[:] = 2.0
    >>> RMSprop([p], lr=0.01, alpha=0.75).step()   # v = 0.25 g^2: the step is 2 lr
    >>> p.value.round(8)
    array([0.98])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "alpha": check_fraction,
        "eps": _positive,
        "weight_decay": check_non_negative,
        "momentum": check_fraction,
        "centered": check_bool,
    }
    _squares = ("square_avg",)

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            fused=fused,
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {
            "step": 0,
            "square_avg": self._zeros(param),
            "grad_avg": self._zeros(param),
            "momentum_buffer": self._zeros(param),
        }

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        (scratch2,) = self._extra_work(work, 1)
        rmsprop_update(
            value,
            grad,
            state["square_avg"],
            state["grad_avg"],
            state["momentum_buffer"],
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            scratch=work,
            scratch2=scratch2,
        )

    def state_norms(self) -> dict[str, list[float]]:
        """||v||, ||m|| and ||b||, for :class:`~minigrad.optim.SafeStep`."""
        return state_norms(self, ("square_avg", "grad_avg", "momentum_buffer"))

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """Bounds for :class:`~minigrad.optim.SafeStep`.

        With g' = g + wd p, each entry of g' / (a + eps) is at most |g'| / eps, and, when not
        centered, at most 1 / sqrt(1 - alpha) (v' holds (1 - alpha) g'^2): its norm r is at
        most the smaller of ||g'|| / eps and sqrt(size / (1 - alpha)). Then ||b'|| <=
        mu ||b|| + r, the change is lr ||b'|| (lr r without momentum); ||v'|| <= alpha ||v||
        + (1 - alpha) ||g'||^2 and ||m'|| <= alpha ||m|| + (1 - alpha) ||g'||.
        """
        change, peak = [], []
        after: dict[str, list[float]] = {"square_avg": [], "grad_avg": [], "momentum_buffer": []}
        for index, p in enumerate(self.params):
            group = self._settings[index]
            alpha, mu = group["alpha"], group["momentum"]
            d = grad_norms[index] + group["weight_decay"] * value_norms[index]
            ratio = d / group["eps"]
            if not group["centered"]:
                ratio = min(ratio, math.sqrt(p.size / (1.0 - alpha)))
            square = alpha * state_norms["square_avg"][index] + (1 - alpha) * d * d
            mean = alpha * state_norms["grad_avg"][index] + (1 - alpha) * d
            buffer = state_norms["momentum_buffer"][index]
            if mu > 0:
                buffer = mu * buffer + ratio
            c = group["lr"] * (buffer if mu > 0 else ratio)
            change.append(c)
            peak.append(max(d, d * d, square, mean, buffer, ratio, c))
            after["square_avg"].append(square)
            after["grad_avg"].append(mean)
            after["momentum_buffer"].append(buffer)
        return change, peak, after


# -- Adadelta -------------------------------------------------------------------------------


def adadelta_update(
    value: FloatArray,
    grad: FloatArray,
    square_avg: FloatArray,
    acc_delta: FloatArray,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    scratch: FloatArray,
    scratch2: FloatArray,
    scratch3: FloatArray,
) -> None:
    """One Adadelta step in place (torch.optim.Adadelta's form).

    g <- g + wd p;  v <- rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) g;
    u <- rho u + (1 - rho) d^2;  p <- p - lr d.

    Shape: value, grad, square_avg (v), acc_delta (u) and the scratch arrays of one shape.

    >>> value, grad = np.array([1.0]), np.array([1.0])
    >>> v, u = np.zeros(1), np.zeros(1)
    >>> adadelta_update(value, grad, v, u, lr=1.0, rho=0.0, eps=1.0, weight_decay=0.0,
    ...                 scratch=np.empty(1), scratch2=np.empty(1), scratch3=np.empty(1))
    >>> value.round(6), v, u.round(6)  # d = sqrt(1) / sqrt(2) g
    (array([0.292893]), array([1.]), array([0.5]))
    """
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    np.multiply(direction, direction, out=scratch2)
    scratch2 *= 1.0 - rho
    square_avg *= rho
    square_avg += scratch2
    np.add(square_avg, eps, out=scratch2)
    np.sqrt(scratch2, out=scratch2)  # std
    np.add(acc_delta, eps, out=scratch3)
    np.sqrt(scratch3, out=scratch3)
    scratch3 /= scratch2
    scratch3 *= direction  # the step d
    np.multiply(scratch3, scratch3, out=scratch2)
    scratch2 *= 1.0 - rho
    acc_delta *= rho
    acc_delta += scratch2
    scratch3 *= lr
    value -= scratch3


class Adadelta(_CountedSteps):
    """Adadelta (Zeiler, 2012), as torch.optim.Adadelta computes it.

    Per parameter p with gradient g, averages v of g^2 and u of squared steps (zeros)::

        g <- g + weight_decay * p
        v <- rho v + (1 - rho) g^2
        d = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho u + (1 - rho) d^2
        p <- p - lr d

    The step's scale comes from past steps (u), so lr = 1 (the default) is the paper's
    method; eps is inside both roots, as in the paper and PyTorch.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 1.0
    rho : float in [0, 1), default 0.9
    eps : float > 0, default 1e-6
    weight_decay : float >= 0, default 0
    fused : bool or None, keyword only
        Adadelta has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> p.grad[:] = 1.0
    >>> Adadelta([p], rho=0.0, eps=1.0).step()   # d = sqrt(1) / sqrt(2) g
    >>> p.value.round(6)
    array([0.292893])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "rho": check_fraction,
        "eps": _positive,
        "weight_decay": check_non_negative,
    }
    _squares = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, fused=fused)

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {"step": 0, "square_avg": self._zeros(param), "acc_delta": self._zeros(param)}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        scratch2, scratch3 = self._extra_work(work, 2)
        adadelta_update(
            value,
            grad,
            state["square_avg"],
            state["acc_delta"],
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            scratch=work,
            scratch2=scratch2,
            scratch3=scratch3,
        )
