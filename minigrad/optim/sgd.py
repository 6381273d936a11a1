"""Plain stochastic gradient descent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from minigrad.optim import fused as fused_kernels
from minigrad.optim.base import (
    HyperparameterChecks,
    Optimizer,
    check_non_negative,
    decayed_gradient,
    raise_for_scalars,
)
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["SGD", "sgd_update"]


def sgd_update(
    value: FloatArray, grad: FloatArray, *, lr: float, weight_decay: float, scratch: FloatArray
) -> None:
    """One SGD step in place: value -= lr * (grad + weight_decay * value).

    ``scratch`` is a work array of ``value``'s shape and dtype; ``grad`` is left unchanged.
    This runs inside every step and checks nothing that would cost time: ``lr`` and
    ``weight_decay`` must be real numbers >= 0 (what :class:`SGD` checks on assignment). One
    that is not a number fails before ``value`` is written, with a TypeError naming it.

    Shape: value, grad and scratch all of one shape (any); value is updated in place.

    Examples
    --------
    >>> value, grad = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    >>> sgd_update(value, grad, lr=0.1, weight_decay=0.1, scratch=np.empty(2))
    >>> value  # 1 - 0.1 (0.5 + 0.1), 2 - 0.1 (-1 + 0.2)
    array([0.94, 2.08])
    """
    try:
        direction = decayed_gradient(value, grad, weight_decay, scratch)
        np.multiply(direction, lr, out=scratch)
    except TypeError:  # NumPy's error names a dtype ('<U3'), not the argument
        raise_for_scalars("sgd_update", lr=lr, weight_decay=weight_decay)
        raise
    value -= scratch


class SGD(Optimizer):
    """Stochastic gradient descent, the slides' update theta := theta - alpha d theta.

    Update, per parameter p with gradient g:

        g <- g + weight_decay * p      (when weight_decay > 0; L2 regularisation)
        p <- p - lr * g

    the same as torch.optim.SGD with momentum=0. Adding lambda * sum(p^2) to the loss adds
    2 lambda p to the gradient, so that L2 penalty is weight_decay = 2 lambda.

    Parameters
    ----------
    params : iterable of Parameter, or list of param-group dicts
    lr : float, default 0.01
    weight_decay : float, default 0.0
    fused : bool or None, default None, keyword only
        The one-pass numba kernels of :mod:`minigrad.optim.fused` (same bits as the NumPy
        update): None when numba is installed, True always, False never; see
        :class:`~minigrad.optim.Optimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Parameter
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> p.grad[:] = [0.5, -1.0]
    >>> SGD([p], lr=0.1).step()
    >>> p.value
    array([0.95, 2.1 ])
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        **Optimizer.hyperparameter_checks,
        "weight_decay": check_non_negative,
    }

    def __init__(
        self,
        params: Iterable[Parameter | Mapping[str, Any]],
        lr: float = 0.01,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, fused=fused)

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        group = self._updating()
        sgd_update(value, grad, lr=group["lr"], weight_decay=group["weight_decay"], scratch=work)

    def _fused_update(
        self,
        value: FloatArray,
        grad: FloatArray,
        state: dict[str, Any],
        buffers: dict[str, FloatArray],
    ) -> None:
        group = self._updating()
        fused_kernels.sgd_update(value, grad, lr=group["lr"], weight_decay=group["weight_decay"])

    def state_caps(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> dict[str, list[float]]:
        """Bounds on the state's norms for every later step (SGD keeps no state), for
        :class:`~minigrad.optim.SafeStep`."""
        return {}

    def step_bound(
        self, grad_norms: list[float], value_norms: list[float], state_norms: dict[str, list[float]]
    ) -> tuple[list[float], list[float], dict[str, list[float]]]:
        """Bounds for :class:`~minigrad.optim.SafeStep`, from ||g|| and ||p|| per parameter.

        The step is lr g' with g' = g + wd p, so ||p' - p|| <= lr (||g|| + wd ||p||); every
        array the step computes is bounded by g' or by that change. Returns (change, peak,
        state norms) per parameter.
        """
        direction = [
            g + wd * v
            for g, v, wd in zip(
                grad_norms, value_norms, self._per_parameter("weight_decay"), strict=True
            )
        ]
        change = [lr * d for lr, d in zip(self._per_parameter("lr"), direction, strict=True)]
        return change, [max(d, c) for d, c in zip(direction, change, strict=True)], {}
