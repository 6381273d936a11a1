"""How large a batch's gradients can be, from the parameters' norms alone.

:class:`~minigrad.optim.SafeStep` proves a step finite from an upper bound on each gradient's
norm. Measuring ||g|| means reading every gradient once more per step, a few percent of the
step; bounding it costs a few float operations per layer instead. For a model built from
minigrad's own layers the bounds follow from the chain rule and ||A B|| <= ||A|| ||B|| (all
norms Frobenius, over the whole batch of m rows)::

    Dense        y = x W^T + b:  ||y|| <= ||W|| ||x|| + sqrt(m) ||b||
                 ||dL/dW|| <= ||g|| ||x||,  ||dL/db|| <= sqrt(m) ||g||,  ||dL/dx|| <= ||W|| ||g||
    ReLU, Tanh   ||y|| <= ||x||,  ||dL/dx|| <= ||g||    (LeakyReLU: times max(1, |slope|))
    Sigmoid      ||y|| <= sqrt(entries),  ||dL/dx|| <= ||g|| / 4
    Softmax      ||y|| <= sqrt(entries),  ||dL/dx|| <= ||g||   (its Jacobian has norm <= 1)
    Normalization ||y|| <= (||x|| + sqrt(m) ||mean||) / min(std),  ||dL/dx|| <= ||g|| / min(std)

with g = dL/dy, and at the top the loss's own gradient: ||dL/dz|| <= sqrt(2 / m) for
CrossEntropy (each row of softmax minus target has norm <= sqrt 2, divided by m),
2 sqrt(L / N) for MSE (exactly, from the loss value L over N entries), 1 / sqrt(N) for
BinaryCrossEntropy on logits and 1 / (eps (1 - eps) sqrt(N)) on probabilities clipped to
[eps, 1 - eps] (with float64's eps, the smallest). The
input's norm is at most sqrt(m) times the largest row norm of the data, measured once.

The bounds are loose (a product of norms over the layers) but they only have to stay below
float32's 3.4e38 / 16; in a healthy run they are smaller by tens of orders of magnitude. A
model with any other layer, or another loss, has no bounds here (``supported`` is False) and
its gradients are measured instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad._validation import check_integer, check_real
from minigrad.layers import Dense, LeakyReLU, Normalization, ReLU, Sigmoid, Softmax, Tanh
from minigrad.layers.base import Layer
from minigrad.losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss
from minigrad.optim.safe_step import norm
from minigrad.parameter import Parameter
from minigrad.sequential import Sequential

__all__ = ["GradientBounds"]

#: Rounding in float arithmetic can make a computed norm exceed the exact one by a hair.
SLACK = 1.001


class GradientBounds:
    """Upper bounds on the norm of every parameter's gradient for one batch.

    Parameters
    ----------
    model : Layer
        A Sequential (nested ones too) of Dense, ReLU, LeakyReLU, Tanh, Sigmoid, Softmax and
        Normalization layers, or one such layer; anything else makes ``supported`` False.
    loss : Loss
        CrossEntropy, MSE or BinaryCrossEntropy (exactly those classes).
    row_norm : float
        The largest Euclidean norm of a row of the training inputs.
    input_width : int
        The number of features of a row of the inputs.

    Examples
    --------
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.ReLU(), mg.Dense(3, 2, rng=1))
    >>> x, y = np.array([[1.0, 2.0], [0.5, -1.0]], np.float32), np.array([0, 1])
    >>> bounds = GradientBounds(model, mg.CrossEntropy(), row_norm=float(np.hypot(1, 2)),
    ...                         input_width=2)
    >>> loss = mg.CrossEntropy()
    >>> value = loss(model(x), y)
    >>> model.backward(loss.backward())
    >>> limits = bounds(parameter_norms(model.parameters()), rows=2, loss_value=value)
    >>> all(norm(p.grad) <= limits[id(p)] for p in model.parameters())
    True
    """

    def __init__(self, model: Layer, loss: Loss, row_norm: float, input_width: int) -> None:
        given_model: object = model  # both checked for callers without a type checker
        given_loss: object = loss
        if not isinstance(given_model, Layer):
            raise TypeError(f"GradientBounds model must be a Layer, got {type(model).__name__}")
        if not isinstance(given_loss, Loss):
            what = f"the class {loss.__name__}" if isinstance(loss, type) else type(loss).__name__
            raise TypeError(f"GradientBounds loss must be a Loss instance, got {what}")
        self.row_norm = check_real("GradientBounds row_norm", row_norm, minimum=0)
        self.input_width = check_integer("GradientBounds input_width", input_width, minimum=0)
        self.loss = loss
        self.loss_bound = _LOSS_BOUNDS.get(type(loss))
        self.layers = list(_leaves(model))
        self.supported = self.loss_bound is not None and all(
            type(layer) in _KINDS for layer in self.layers
        )
        self._plan: list[tuple[Any, ...]] = []
        # key -> (params, the grad_bounds function for_step made for it)
        self._for_step: dict[tuple[Any, ...], tuple[list[Parameter], Callable[..., Any]]] = {}
        self.resync()

    def resync(self) -> None:
        """Read what the bounds treat as constants (slopes, Normalization's statistics)."""
        if not self.supported:
            return
        self._plan = [_KINDS[type(layer)](layer) for layer in self.layers]

    def __call__(
        self, value_norms: dict[int, float], rows: int, loss_value: float, entries: int = 0
    ) -> dict[int, float] | None:
        """Bounds on ||dL/dp|| by ``id(p)`` for a batch of ``rows`` rows, or None if the
        model is not supported.

        ``value_norms`` maps ``id(p)`` to a bound on ||p|| for every parameter of the model;
        ``entries`` is the number of entries of the model's output (MSE and
        BinaryCrossEntropy average over them; default rows x the last width).
        """
        if not self.supported:
            return None
        if rows < 1:
            raise ValueError(f"GradientBounds needs a batch of at least one row, got {rows}")
        root = math.sqrt(rows)
        a, width = root * self.row_norm, self.input_width
        inputs = []  # (||x||, width of x) of each layer, going forward
        for kind, first, second, third in self._plan:
            inputs.append((a, width))
            if kind == DENSE:  # first: weight id, second: bias id or None, third: out width
                a = value_norms[first] * a + (0.0 if second is None else root * value_norms[second])
                width = third
            elif kind == SCALED:  # first: the Lipschitz constant
                a *= first
            elif kind == BOUNDED:  # outputs in [-1, 1]
                a = math.sqrt(rows * width)
            else:  # NORMALIZATION: first: ||mean||, second: min(std), third: width
                a = (a + root * first) / second
                width = third
        # not None: __call__ is reached only for a supported loss
        g = self.loss_bound(self.loss, loss_value, rows, entries or rows * width)  # type: ignore[misc]
        bounds: dict[int, float] = {}
        for (kind, first, second, _), (a, _) in zip(
            reversed(self._plan), reversed(inputs), strict=True
        ):
            if kind == DENSE:
                bounds[first] = g * a * SLACK
                if second is not None:
                    bounds[second] = root * g * SLACK
                g *= value_norms[first]
            elif kind == NORMALIZATION:
                g /= second
            else:  # SCALED: first is also the bound on |f'|; BOUNDED: first is that bound
                g *= first
        return bounds

    def for_step(
        self, params: list[Parameter], rows: int, loss_value: float, entries: int = 0
    ) -> Callable[[dict[int, float]], list[float]] | None:
        """The ``grad_bounds`` function :meth:`~minigrad.optim.SafeStep.step` takes for this
        batch: bounds on ||g|| for each of ``params``, in order; None if the model is not
        supported.

        The function's ``key`` attribute says what the bounds depend on besides the norms
        (the batch's size, and the loss value for MSE): SafeStep reuses a proof across
        batches of one key. Call :meth:`resync` (and SafeStep's) after changing what the
        bounds treat as constants.
        """
        if not self.supported:
            return None
        # What the bounds depend on besides the norms: two batches with the same key have
        # the same bound function (MSE's depends on the loss value too), made once
        key = (id(params), rows, entries, loss_value if type(self.loss) is MSE else None)
        made = self._for_step.get(key)
        if made is not None and made[0] is params:
            return made[1]

        def grad_bounds(value_norms: dict[int, float]) -> list[float]:
            try:
                limits = self(value_norms, rows, loss_value, entries)
                # a dict: the bounds are made only for a supported model
                return [limits[id(p)] for p in params]  # type: ignore[index]
            except KeyError:
                raise ValueError(
                    "GradientBounds: a parameter of the model has no norm in value_norms, or "
                    "a parameter given is not one of the model's"
                ) from None

        # an attribute set on the function object, which Callable types do not declare
        grad_bounds.key = (id(self), *key)  # type: ignore[attr-defined]
        if len(self._for_step) > 16:  # MSE's keys change every step: keep a few
            self._for_step.clear()
        self._for_step[key] = (params, grad_bounds)
        return grad_bounds


def _leaves(layer: Layer) -> Iterator[Layer]:
    if type(layer) is Sequential:
        for child in layer:
            yield from _leaves(child)
    else:
        yield layer


# -- what each layer contributes: (kind, three numbers the bounds above use) --------------------

DENSE, SCALED, BOUNDED, NORMALIZATION = range(4)


def _dense(layer: Dense) -> tuple[Any, ...]:
    return (
        DENSE,
        id(layer.weight),
        None if layer.bias is None else id(layer.bias),
        layer.out_features,
    )


def _normalization(layer: Normalization) -> tuple[Any, ...]:
    smallest_std = float(np.min(layer.std.value))
    return NORMALIZATION, norm(layer.mean.value), smallest_std, layer.num_features


_KINDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    Dense: _dense,
    ReLU: lambda layer: (SCALED, 1.0, None, None),  # |f(z)| <= |z|, |f'| <= 1
    Tanh: lambda layer: (SCALED, 1.0, None, None),
    LeakyReLU: lambda layer: (SCALED, max(1.0, abs(layer.negative_slope)), None, None),
    Sigmoid: lambda layer: (BOUNDED, 0.25, None, None),  # outputs in (0, 1), |f'| <= 1/4
    Softmax: lambda layer: (BOUNDED, 1.0, None, None),  # outputs in [0, 1], Jacobian norm <= 1
    Normalization: _normalization,
}


def _cross_entropy(loss: CrossEntropy, value: float, m: int, n: int) -> float:
    # Each row of softmax - target has norm <= sqrt 2, and the mean divides by m: true for
    # the plain loss only. Class weights, ignored labels, label smoothing and sums divide
    # otherwise (their forward keeps per-row terms); their gradients are measured instead.
    if loss.reduction != "mean" or loss.weight is not None or loss._terms is not None:
        return math.inf
    return math.sqrt(2.0 / m)


def _mean_squared_error(loss: MSE, value: float, m: int, n: int) -> float:
    if loss.reduction != "mean":
        return math.inf
    return 2.0 * math.sqrt(value / n)


def _binary_cross_entropy(loss: BinaryCrossEntropy, value: float, m: int, n: int) -> float:
    if loss.reduction != "mean" or loss.weight is not None or loss.pos_weight is not None:
        return math.inf
    if loss.from_logits:
        return 1.0 / math.sqrt(n)
    # probabilities are clipped to [eps, 1 - eps] with the eps of their dtype; the smallest
    # (float64's) gives the largest bound, whatever the model's dtype
    eps = float(np.finfo(np.float64).eps)
    return 1.0 / (eps * (1 - eps) * math.sqrt(n))


#: the bound on ||dL/d output|| for a batch of m rows and n output entries, inf where the
#: loss's options make it unknown (SafeStep then measures the gradients)
_LOSS_BOUNDS: dict[type, Callable[[Any, float, int, int], float]] = {
    CrossEntropy: _cross_entropy,
    MSE: _mean_squared_error,
    BinaryCrossEntropy: _binary_cross_entropy,
}


def parameter_norms(params: list[Parameter]) -> dict[int, float]:
    """``{id(p): ||p||}`` for the given parameters, measured.

    >>> p = Parameter(np.array([3.0, 4.0]))
    >>> parameter_norms([p]) == {id(p): 5.0}
    True
    """
    return {id(p): norm(p.value) for p in params}
