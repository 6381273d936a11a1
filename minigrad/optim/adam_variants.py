"""Adam's variants: Adamax (the infinity norm), NAdam (Nesterov momentum) and RAdam (the
rectified warm-up), as torch.optim computes them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad.optim.adam import check_betas
from minigrad.optim.adaptive import _CountedSteps, _lerp, _positive
from minigrad.optim.base import (
    HyperparameterChecks,
    Optimizer,
    _first_bad,
    check_non_negative,
    decayed_gradient,
)
from minigrad.optim.safe_step import state_norms
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["Adamax", "NAdam", "RAdam", "adamax_update", "nadam_update", "radam_update"]

_ADAM_LIKE: HyperparameterChecks = {
    **Optimizer.hyperparameter_checks,
    "betas": check_betas,
    "eps": _positive,
    "weight_decay": check_non_negative,
}


def _moments(
    direction: FloatArray,
    m: FloatArray,
    v: FloatArray,
    beta1: float,
    beta2: float,
    scratch: FloatArray,
) -> None:
    """m <- lerp(m, g, 1 - b1) and v <- b2 v + (1 - b2) g^2, as torch's Adam variants."""
    _lerp(m, direction, 1.0 - beta1, scratch)
    np.multiply(direction, direction, out=scratch)
    scratch *= 1.0 - beta2
    v *= beta2
    v += scratch


# -- Adamax ---------------------------------------------------------------------------------


def adamax_update(
    value: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    u: FloatArray,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    scratch: FloatArray,
    scratch2: FloatArray,
) -> None:
    """One Adamax step in place; ``step`` counts from 1 and includes this step.

    g <- g + wd p;  m <- b1 m + (1 - b1) g;  u <- max(b2 u, |g| + eps);
    p <- p - lr / (1 - b1^t) m / u.

    Shape: value, grad, m, u and the scratch arrays of one shape (any).

    >>> value, grad, m, u = np.array([1.0]), np.array([-2.0]), np.zeros(1), np.zeros(1)
    >>> adamax_update(value, grad, m, u, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
    ...               weight_decay=0.0, scratch=np.empty(1), scratch2=np.empty(1))
    >>> value.round(6), u.round(6)  # the first step moves by lr against the sign
    (array([1.1]), array([2.]))
    """
    clr = lr / (1.0 - beta1**step)
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    _lerp(m, direction, 1.0 - beta1, scratch2)
    u *= beta2
    np.abs(direction, out=scratch2)
    scratch2 += eps
    np.maximum(u, scratch2, out=u)
    np.divide(m, u, out=scratch2)
    scratch2 *= clr
    value -= scratch2


class Adamax(_CountedSteps):
    """Adamax (Kingma and Ba, 2015, section 7), as torch.optim.Adamax computes it.

    Adam with the infinity norm in place of the second moment, per parameter p with
    gradient g and step t from 1 (m and u zeros at the start)::

        g <- g + weight_decay * p
        m <- b1 m + (1 - b1) g
        u <- max(b2 u, |g| + eps)
        p <- p - lr / (1 - b1^t) * m / u

    eps is added to |g| inside the maximum, as in PyTorch (the paper has none).

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 0.002
    betas : (float, float), each in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    fused : bool or None, keyword only
        Adamax has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0, -1.0]))
    >>> p.grad[:] = [3.0, -0.01]
    >>> Adamax([p], lr=0.1).step()      # the first step moves each entry by about lr
    >>> p.value.round(6)
    array([ 0.9, -0.9])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = _ADAM_LIKE
    _squares = ("exp_inf",)

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {"step": 0, "exp_avg": self._zeros(param), "exp_inf": self._zeros(param)}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        (scratch2,) = self._extra_work(work, 1)
        adamax_update(
            value,
            grad,
            state["exp_avg"],
            state["exp_inf"],
            step=state["step"],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            scratch=work,
            scratch2=scratch2,
        )

    def state_norms(self) -> dict[str, list[float]]:
        """||m|| and ||u||, for :class:`~minigrad.optim.SafeStep`."""
        return state_norms(self, ("exp_avg", "exp_inf"))

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """Bounds for :class:`~minigrad.optim.SafeStep`.

        With g' = g + wd p: ||m'|| <= b1 ||m|| + (1 - b1) ||g'||, ||u'|| <= b2 ||u|| + ||g'||
        + eps sqrt(size), and every entry of u' is at least eps, so the change is at most
        lr / (1 - b1^t) ||m'|| / eps.
        """
        change, peak, means, norms = [], [], [], []
        for index, p in enumerate(self.params):
            group = self._settings[index]
            (b1, b2), eps = group["betas"], group["eps"]
            t = self.state.get(p, {}).get("step", 0) + 1
            d = grad_norms[index] + group["weight_decay"] * value_norms[index]
            m = b1 * state_norms["exp_avg"][index] + (1 - b1) * d
            u = b2 * state_norms["exp_inf"][index] + d + eps * math.sqrt(p.size)
            c = group["lr"] / (1 - b1**t) * m / eps
            change.append(c)
            peak.append(max(d, m, u, c, m / eps))
            means.append(m)
            norms.append(u)
        return change, peak, {"exp_avg": means, "exp_inf": norms}


# -- NAdam ----------------------------------------------------------------------------------


def nadam_update(
    value: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    mu_product: FloatArray,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    scratch: FloatArray,
    scratch2: FloatArray,
    scratch3: FloatArray,
) -> None:
    """One NAdam step in place; ``step`` counts from 1 and includes this step.

    mu_t = b1 (1 - 0.96^(t psi) / 2) (psi = momentum_decay), P <- P mu_t (``mu_product``,
    a 0-d float64 array); g <- g + wd p; m, v as Adam's; with d = sqrt(v / (1 - b2^t)) + eps:
    p <- p - lr (1 - mu_t) / (1 - P) g / d - lr mu_{t+1} / (1 - P mu_{t+1}) m / d.

    Shape: value, grad, m, v and the scratch arrays of one shape (any); mu_product 0-d.

    >>> value, grad = np.array([1.0]), np.array([1.0])
    >>> m, v, product = np.zeros(1), np.zeros(1), np.ones(())
    >>> nadam_update(value, grad, m, v, product, step=1, lr=0.1, beta1=0.9, beta2=0.999,
    ...              eps=1e-8, weight_decay=0.0, momentum_decay=0.004, scratch=np.empty(1),
    ...              scratch2=np.empty(1), scratch3=np.empty(1))
    >>> value.round(4), float(product.round(4))
    (array([0.8944]), 0.4501)
    """
    bias_correction2 = 1.0 - beta2**step
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product *= mu
    product = float(mu_product)
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    _moments(direction, m, v, beta1, beta2, scratch2)
    np.divide(v, bias_correction2, out=scratch2)
    np.sqrt(scratch2, out=scratch2)
    scratch2 += eps
    np.divide(direction, scratch2, out=scratch3)
    scratch3 *= -lr * (1.0 - mu) / (1.0 - product)
    value += scratch3
    np.divide(m, scratch2, out=scratch3)
    scratch3 *= (-lr * mu_next) / (1.0 - product * mu_next)
    value += scratch3


class NAdam(_CountedSteps):
    """NAdam (Dozat, 2016), Adam with Nesterov momentum, as torch.optim.NAdam computes it.

    Per parameter p with gradient g and step t from 1, psi = momentum_decay::

        mu_t = b1 (1 - 0.96^(t psi) / 2),   P_t = mu_1 ... mu_t
        g <- g + weight_decay * p
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        d = sqrt(v / (1 - b2^t)) + eps
        p <- p - lr (1 - mu_t) / (1 - P_t) g / d - lr mu_{t+1} / (1 - P_t mu_{t+1}) m / d

    The momentum schedule mu_t warms up towards b1; its running product P is kept per
    parameter (``state["mu_product"]``, a 0-d float64 array). Weight decay is L2 (coupled),
    torch's default.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 0.002
    betas : (float, float), each in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum_decay : float >= 0, default 0.004
    fused : bool or None, keyword only
        NAdam has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> p.grad[:] = 1.0
    >>> NAdam([p], lr=0.1).step()
    >>> p.value.round(4)
    array([0.8944])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **_ADAM_LIKE,
        "momentum_decay": check_non_negative,
    }
    _squares = ("exp_avg_sq",)

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 0.004,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            fused=fused,
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {
            "step": 0,
            "mu_product": np.ones((), np.float64),
            "exp_avg": self._zeros(param),
            "exp_avg_sq": self._zeros(param),
        }

    def _buffer_problem(self, key: str, buffer: FloatArray) -> str | None:
        """The momentum product lies in (0, 1]; the rest as for the other buffers."""
        if key == "mu_product":
            return _first_bad(buffer, ~((buffer > 0) & (buffer <= 1)), "a value outside (0, 1]")
        return super()._buffer_problem(key, buffer)

    def _begin_step(self) -> None:
        super()._begin_step()
        # the product advances once per step, not once per block of a large parameter
        self._products = {
            id(state["mu_product"]): float(state["mu_product"]) for state in self._active_states
        }

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        scratch2, scratch3 = self._extra_work(work, 2)
        product = state["mu_product"]
        product[...] = self._products[id(product)]  # each block multiplies it from there
        nadam_update(
            value,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            product,
            step=state["step"],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            scratch=work,
            scratch2=scratch2,
            scratch3=scratch3,
        )


# -- RAdam ----------------------------------------------------------------------------------


def radam_update(
    value: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    scratch: FloatArray,
    scratch2: FloatArray,
) -> None:
    """One RAdam step in place; ``step`` counts from 1 and includes this step.

    g <- g + wd p; m, v as Adam's; rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 t b2^t /
    (1 - b2^t). When rho_t > 5: p <- p - lr m / (1 - b1^t) sqrt(1 - b2^t) / (sqrt(v) + eps)
    r_t with r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t));
    else (the first steps) p <- p - lr m / (1 - b1^t), plain momentum.

    Shape: value, grad, m, v and the scratch arrays of one shape (any).

    >>> value, grad, m, v = np.array([1.0]), np.array([2.0]), np.zeros(1), np.zeros(1)
    >>> radam_update(value, grad, m, v, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
    ...              weight_decay=0.0, scratch=np.empty(1), scratch2=np.empty(1))
    >>> value.round(6)  # rho_1 = 1: a momentum step, lr m / (1 - b1) = lr g
    array([0.8])
    """
    bias_correction1, bias_correction2 = 1.0 - beta1**step, 1.0 - beta2**step
    direction = decayed_gradient(value, grad, weight_decay, scratch)
    _moments(direction, m, v, beta1, beta2, scratch2)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    np.divide(m, bias_correction1, out=scratch)  # the direction is no longer needed
    scratch *= lr
    if rho_t > 5.0:
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
        np.sqrt(v, out=scratch2)
        scratch2 += eps
        np.divide(bias_correction2**0.5, scratch2, out=scratch2)
        scratch *= scratch2
        scratch *= rect
    value -= scratch


class RAdam(_CountedSteps):
    """RAdam (Liu et al., 2020), Adam with a rectified warm-up, as torch.optim.RAdam.

    Per parameter p with gradient g and step t from 1, m and v as in Adam::

        g <- g + weight_decay * p
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        p <- p - lr r_t m / (1 - b1^t) sqrt(1 - b2^t) / (sqrt(v) + eps)   (rho_t > 5)
        p <- p - lr m / (1 - b1^t)                                        (otherwise)

    with r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)):
    while v's estimate is too noisy (the first steps) RAdam takes momentum-SGD steps, then
    Adam's, scaled by r_t, which rises to 1. Weight decay is L2 (coupled), torch's default.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float >= 0, default 0.001
    betas : (float, float), each in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    fused : bool or None, keyword only
        RAdam has no fused kernel: None and False take the NumPy update.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> p.grad[:] = 2.0
    >>> RAdam([p], lr=0.1).step()        # a momentum step first: lr g
    >>> p.value.round(6)
    array([0.8])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = _ADAM_LIKE
    _squares = ("exp_avg_sq",)

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {"step": 0, "exp_avg": self._zeros(param), "exp_avg_sq": self._zeros(param)}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        (scratch2,) = self._extra_work(work, 1)
        radam_update(
            value,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            step=state["step"],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            scratch=work,
            scratch2=scratch2,
        )
