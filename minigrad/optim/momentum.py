"""SGD with momentum (heavy ball) and Nesterov momentum."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad._validation import check_bool
from minigrad.optim import fused as fused_kernels
from minigrad.optim.base import (
    HyperparameterChecks,
    Optimizer,
    check_fraction,
    check_non_negative,
    decayed_gradient,
    raise_for_scalars,
)
from minigrad.optim.safe_step import state_norms
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["Momentum", "momentum_update"]


def momentum_update(
    value: FloatArray,
    grad: FloatArray,
    buffer: FloatArray,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    scratch: FloatArray,
) -> None:
    """One momentum step in place (torch.optim.SGD's form, dampening 0).

    g <- g + wd p;  b <- mu b + g;  p <- p - lr (g + mu b) if nesterov else p - lr b.

    Shape: value, grad, buffer (the velocity b) and scratch all of one shape (any); value
    and buffer are updated in place, grad is left unchanged.

    This runs inside every step and checks nothing that would cost time: the scalars must be
    real numbers, lr and weight_decay >= 0 and momentum in [0, 1) (what :class:`Momentum`
    checks on assignment); one that is not a number raises a TypeError naming it.

    Examples
    --------
    >>> value, grad, velocity = np.array([1.0]), np.array([1.0]), np.zeros(1)
    >>> for _ in range(2):  # b = 1, then 1.5; p moves by 0.1 (1 + 0.5 b) each time
    ...     momentum_update(value, grad, velocity, lr=0.1, momentum=0.5, nesterov=True,
    ...                     weight_decay=0.0, scratch=np.empty(1))
    >>> value, velocity
    (array([0.675]), array([1.5]))
    """
    try:
        # a Python product first: it fails for a string before any array is written
        lr_momentum = lr * momentum
        direction = decayed_gradient(value, grad, weight_decay, scratch)
    except TypeError:  # NumPy's error names a dtype ('<U3'), not the argument
        raise_for_scalars("momentum_update", lr=lr, momentum=momentum, weight_decay=weight_decay)
        raise
    buffer *= momentum
    buffer += direction
    if nesterov:
        np.multiply(direction, lr, out=scratch)  # direction may be scratch: fine in place
        value -= scratch
        np.multiply(buffer, lr_momentum, out=scratch)
    else:
        np.multiply(buffer, lr, out=scratch)
    value -= scratch


class Momentum(Optimizer):
    """SGD with momentum, as torch.optim.SGD(momentum=mu) computes it.

    Update, per parameter p with gradient g and velocity buffer b (zeros at the start):

        g <- g + weight_decay * p
        b <- mu * b + g
        p <- p - lr * b                   (nesterov=False)
        p <- p - lr * (g + mu * b)        (nesterov=True)

    Notes
    -----
    The slides write momentum as v <- mu v + lr g; p <- p - v. With a constant learning
    rate the two are the same trajectory (v = lr * b). They differ only when lr changes
    between steps: here a new lr scales the whole accumulated velocity at once, in the
    slides' form it affects only new gradients. minigrad follows PyTorch so that a schedule
    gives the same trajectory in both frameworks.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float, default 0.01
    momentum : float in [0, 1), default 0.9
    nesterov : bool, default False
    weight_decay : float, default 0.0
    fused : bool or None, default None, keyword only
        The one-pass numba kernels of :mod:`minigrad.optim.fused` (same bits as the NumPy
        update): None when numba is installed, True always, False never; see
        :class:`~minigrad.optim.Optimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Parameter
    >>> p = Parameter(np.array([1.0]))
    >>> opt = Momentum([p], lr=0.1, momentum=0.5)
    >>> p.grad[:] = 1.0
    >>> opt.step(); opt.step()    # b = 1, then 1.5
    >>> p.value
    array([0.75])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "momentum": check_fraction,
        "nesterov": check_bool,
        "weight_decay": check_non_negative,
    }

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            fused=fused,
        )

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        return {"velocity": self._zeros(param)}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        momentum_update(
            value,
            grad,
            state["velocity"],
            lr=group["lr"],
            momentum=group["momentum"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
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
        fused_kernels.momentum_update(
            value,
            grad,
            buffers["velocity"],
            lr=group["lr"],
            momentum=group["momentum"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
        )

    def state_norms(self) -> dict[str, list[float]]:
        """||b|| of each velocity buffer, for :class:`~minigrad.optim.SafeStep`."""
        return state_norms(self, ("velocity",))

    def state_caps(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> dict[str, list[float]]:
        """Bounds on ||b|| for every later step, for :class:`~minigrad.optim.SafeStep`,
        while ||g|| and ||p|| stay within ``grad_norms`` and ``value_norms``.

        With d = ||g|| + wd ||p||, ||b'|| <= mu ||b|| + d, and a bound B >= d / (1 - mu)
        keeps itself: mu B + d <= B. So max(||b||, d / (1 - mu)), made a millionth larger
        against rounding, holds now and after any number of such steps.
        """
        return {
            "velocity": [
                max(b, (g + wd * v) / (1.0 - mu) * (1.0 + 1e-6))
                for g, v, b, mu, wd in zip(
                    grad_norms,
                    value_norms,
                    state_norms["velocity"],
                    self._per_parameter("momentum"),
                    self._per_parameter("weight_decay"),
                    strict=True,
                )
            ]
        }

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """Bounds for :class:`~minigrad.optim.SafeStep`, from ||g||, ||p|| and ||b||.

        With g' = g + wd p and b' = mu b + g': ||b'|| <= mu ||b|| + ||g'||, and the change is
        lr b' (lr (g' + mu b') with Nesterov). Returns (change, peak, state norms).
        """
        change, peak, velocity = [], [], []
        for index, group in enumerate(self._settings):
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            d = grad_norms[index] + wd * value_norms[index]
            b = mu * state_norms["velocity"][index] + d
            c = lr * (d + mu * b) if group["nesterov"] else lr * b
            change.append(c)
            peak.append(max(d, b, c))
            velocity.append(b)
        return change, peak, {"velocity": velocity}
