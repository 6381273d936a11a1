"""Adam and AdamW."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad._validation import _given, _shortened
from minigrad.optim import fused as fused_kernels
from minigrad.optim.base import (
    HyperparameterChecks,
    Optimizer,
    _first_bad,
    check_fraction,
    check_non_negative,
    decayed_gradient,
    raise_for_scalars,
    real,
    state_dtype,
)
from minigrad.optim.safe_step import state_norms
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["Adam", "AdamW", "adam_update"]


def check_betas(name: str, betas: Any) -> tuple[float, float]:
    """``betas`` as a pair of floats, each in [0, 1): TypeError unless it is a tuple or a list
    of two real numbers, ValueError for another length or a value outside [0, 1)."""
    if not isinstance(betas, (tuple, list)):
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {_given(betas)}")
    if len(betas) != 2:
        try:
            shown = _shortened(betas)
        except ValueError:  # Python gives no repr for an integer of more than 4300 digits
            shown = "a huge integer among them"
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {len(betas)} values: {shown}")
    return (check_fraction(f"{name}[0]", betas[0]), check_fraction(f"{name}[1]", betas[1]))


def adam_update(
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
    decoupled: bool,
    scratch: FloatArray,
) -> None:
    """One Adam step in place; ``step`` counts from 1 and includes this step.

    ::

        decoupled (AdamW): p <- p (1 - lr wd), then the Adam step on g.
        coupled (Adam):    g <- g + wd p, then the Adam step on g.
        Adam step: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
                   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).

    Shape: value, grad, m, v and scratch all of one shape (any); value, m and v are updated
    in place, grad is left unchanged.

    This runs inside every step, so it checks only what costs nothing, before any array is
    written: the bias corrections 1 - b^t must be > 0 (a step >= 1 and betas in [0, 1)) and
    eps > 0, else a ValueError; a scalar that is not a number is a TypeError naming it. The
    caller keeps the rest (what :class:`Adam` checks on assignment): lr, weight_decay >= 0,
    an eps that is not 0 in the arrays' dtype (or 0 / 0 gives NaN), v >= 0.

    Examples
    --------
    >>> value, grad = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> m, v = np.zeros(2), np.zeros(2)
    >>> adam_update(value, grad, m, v, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
    ...             weight_decay=0.0, decoupled=False, scratch=np.empty(2))
    >>> value, m, v  # the first step moves each entry by lr against its gradient's sign
    (array([ 0.9, -2.1]), array([0.05, 0.05]), array([0.00025, 0.00025]))
    """
    # the scalars first (those computed here are needed anyway): a bad one fails before any
    # array is written
    try:
        correction1, correction2 = 1.0 - beta1**step, 1.0 - beta2**step
        if not (correction1 > 0.0 and correction2 > 0.0 and eps > 0.0):
            raise _invalid_scalars(step, beta1, beta2, eps)
        step_size, denominator_scale = lr / correction1, 1.0 / math.sqrt(correction2)
        if decoupled:
            if weight_decay:
                value *= 1.0 - lr * weight_decay
            direction = grad
        else:
            direction = decayed_gradient(value, grad, weight_decay, scratch)
    except (TypeError, OverflowError, ZeroDivisionError) as error:
        scalars = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}
        raise_for_scalars("adam_update", step=step, weight_decay=weight_decay, **scalars)
        if isinstance(error, TypeError):  # not a scalar's: the arrays'
            raise
        raise _invalid_scalars(step, beta1, beta2, eps) from error  # numbers beyond float range
    # m <- b1 (m - g) + g  ==  b1 m + (1 - b1) g, without a temporary and keeping g intact
    m -= direction
    m *= beta1
    m += direction
    np.multiply(direction, direction, out=scratch)  # g is no longer needed
    scratch *= 1.0 - beta2
    v *= beta2
    v += scratch
    # denominator sqrt(v) / sqrt(1 - b2^t) + eps, then the step (lr / (1 - b1^t)) m / denom
    np.sqrt(v, out=scratch)
    scratch *= denominator_scale
    scratch += eps
    np.divide(m, scratch, out=scratch)
    scratch *= step_size
    value -= scratch


def _invalid_scalars(step: Any, beta1: Any, beta2: Any, eps: Any) -> ValueError:
    """The error for adam_update's scalars that are numbers but leave no valid step."""
    if not 0.0 < eps < math.inf:
        return ValueError(f"adam_update: eps must be > 0 (0 / 0 gives NaN), got {_shortened(eps)}")
    return ValueError(
        "adam_update: the bias corrections 1 - beta**step must be > 0, so step must count "
        f"from 1 and the betas lie in [0, 1); got step={_shortened(step)}, "
        f"beta1={_shortened(beta1)}, beta2={_shortened(beta2)}"
    )


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), as torch.optim.Adam computes it.

    Update at step t (counting from 1) for parameter p with gradient g, moments m and v
    starting at zero:

        g <- g + weight_decay * p            (L2, coupled: decay goes through the moments)
        m <- b1 m + (1 - b1) g
        v <- b2 v + (1 - b2) g^2
        p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    eps is added to sqrt(v_hat), outside the square root, as in PyTorch and the paper (optax
    also offers eps inside; TensorFlow adds it to sqrt(v) before bias correction). Each
    parameter keeps its own step count. For float16 parameters m and v are float32 and the
    update is computed in float32 (in float16, eps = 1e-8 rounds to 0 and a zero gradient
    gives 0/0 = NaN, as torch.optim.Adam on float16 tensors does).

    eps must be > 0 and must not round to 0 in the dtype the update computes in (float32
    for float16 and float32 parameters: eps = 1e-50 is 0 there). torch.optim.Adam accepts
    eps = 0 and then turns a parameter NaN wherever a gradient entry has been 0 since the
    first step (0 / 0); minigrad refuses it instead.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float, default 1e-3
    betas : (float, float), each in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0.0
    fused : bool or None, default None, keyword only
        The one-pass numba kernels of :mod:`minigrad.optim.fused` (same bits as the NumPy
        update): None when numba is installed, True always, False never; see
        :class:`~minigrad.optim.Optimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Parameter
    >>> p = Parameter(np.array([1.0, -1.0]))
    >>> p.grad[:] = [3.0, -0.01]
    >>> Adam([p], lr=0.1).step()          # the first step moves each entry by about lr
    >>> p.value.round(6)
    array([ 0.9, -0.9])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "betas": check_betas,
        "eps": lambda name, value: real(name, value, above=0.0),
        "weight_decay": check_non_negative,
    }
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused
        )

    def _buffer_problem(self, key: str, buffer: FloatArray) -> str | None:
        """v is a mean of squared gradients: >= 0, and +inf where a square overflowed (Adam's
        own steps reach that, and it only stops that entry: m / inf = 0)."""
        if key == "v":
            return _first_bad(buffer, ~(buffer >= 0), "negative or NaN values")
        return super()._buffer_problem(key, buffer)

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {"step": 0, "m": self._zeros(param), "v": self._zeros(param)}

    def _begin_step(self) -> None:
        for state in self._active_states:
            state["step"] += 1

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        adam_update(
            value,
            grad,
            state["m"],
            state["v"],
            step=state["step"],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled=self.decoupled_weight_decay,
            scratch=work,
        )

    def _fused_update(
        self,
        value: FloatArray,
        grad: FloatArray,
        state: dict[str, Any],
        buffers: dict[str, FloatArray],
    ) -> None:
        group = self._updating()
        fused_kernels.adam_update(
            value,
            grad,
            buffers["m"],
            buffers["v"],
            step=state["step"],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled=self.decoupled_weight_decay,
        )

    def state_norms(self) -> dict[str, list[float]]:
        """||m|| and ||v|| of each moment buffer, for :class:`~minigrad.optim.SafeStep`."""
        return state_norms(self, ("m", "v"))

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]] | None:
        """Bounds for :class:`~minigrad.optim.SafeStep`, from ||g||, ||p|| and ||m||.

        Each entry moves by lr |m_hat| / (sqrt(v_hat) + eps) <= lr |m| / ((1 - b1^t) eps). And
        since m and v average the same gradients, |m| <= C sqrt(v) with
        C = (1 - b1) / (sqrt(1 - b2) (1 - b1 / sqrt(b2))) when b1 < sqrt(b2), so an entry
        also moves by at most lr C sqrt(1 - b2^t) / (1 - b1^t) (plus what rounding in v's
        smallest values can add, about C sqrt(tiny / (1 - b2)) / eps). The change is the
        smaller of sqrt(size) times that and lr ||m'|| / ((1 - b1^t) eps), plus lr wd ||p||
        for AdamW's decay; ||m'|| <= b1 ||m|| + (1 - b1) ||g'|| and
        ||v'|| <= b2 ||v|| + (1 - b2) ||g'||^2, both kept below the limit too (an infinite v
        would stop the parameter learning without a word). None when eps is 0 (0 / 0 is
        possible).
        """
        decoupled = self.decoupled_weight_decay
        change, peak, moment, second = [], [], [], []
        for index, p in enumerate(self.params):
            group = self._settings[index]
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if eps == 0:
                return None  # 0 / 0 is possible
            g, value = grad_norms[index], value_norms[index]
            d = g if decoupled else g + wd * value
            m_old = state_norms["m"][index]
            m = b1 * m_old + (1 - b1) * d
            v = b2 * state_norms["v"][index] + (1 - b2) * d * d
            ratio = math.inf
            if b1 < math.sqrt(b2) and b2 < 1:
                ratio = (1 - b1) / (math.sqrt(1 - b2) * (1 - b1 / math.sqrt(b2)))
            t = self.state.get(p, {}).get("step", 0) + 1
            correction = lr / (1 - b1**t)
            step = correction * m / eps
            if ratio < math.inf:
                tiny = _SMALLEST[state_dtype(p.dtype)]
                per_entry = ratio * (
                    math.sqrt(1 - b2**t) * 1.001 + math.sqrt(tiny / (1 - b2)) / eps
                )
                step = min(step, math.sqrt(p.size) * correction * per_entry)
            if decoupled:
                step += lr * wd * value
            change.append(step)
            peak.append(max(d + m_old, m, step, v))
            moment.append(m)
            second.append(v)
        return change, peak, {"m": moment, "v": second}


#: The smallest positive values of the dtypes Adam computes in (the rounding of v's tiniest
#: entries, in step_bound).
_SMALLEST = {
    np.dtype(dtype): float(np.finfo(dtype).smallest_subnormal) for dtype in (np.float32, np.float64)
}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as torch.optim.AdamW.

    Each step first shrinks the parameter, p <- p (1 - lr * weight_decay), then applies the
    Adam update to the raw gradient: the decay does not pass through the moments, so it acts
    the same on parameters with large and small gradients.

    Parameters are those of :class:`Adam` (``fused`` included), with ``weight_decay``
    defaulting to 0.01 as in PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Parameter
    >>> p = Parameter(np.array([2.0]))
    >>> AdamW([p], lr=0.1, weight_decay=0.5).step()     # zero gradient: only the decay acts
    >>> p.value
    array([1.9])
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused
        )
