"""Numerical gradient checks by central finite differences."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_integer, check_real, shown
from minigrad.layers._checks import as_array, real_array
from minigrad.layers.base import Layer
from minigrad.losses import Loss
from minigrad.typing import FloatArray

__all__ = ["GradientCheckError", "GradientReport", "check_gradients", "numerical_gradient"]


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate.

    Raised by :func:`check_gradients` for the first entry where |analytic - numeric| >
    atol + rtol |numeric|, naming the array, the entry and both values. A subclass of
    AssertionError, so a failed check reads as a failed test.

    Examples
    --------
    A layer y = x^3 whose backward forgets the 3 of dy/dx = 3 x^2:

    >>> from minigrad import Layer
    >>> class Cube(Layer):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x**3
    ...     def backward(self, grad_output):
    ...         return 2 * self.x**2 * grad_output
    >>> check_gradients(Cube(), np.array([[1.0, 2.0]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.testing.gradcheck.GradientCheckError: gradient of 'input' at ...: analytic ...
    """


@dataclass
class GradientReport:
    """The largest disagreement found for each checked array.

    ``errors[name]`` is max |analytic - numeric| / (atol + rtol |numeric|) over the array's
    entries: a value <= 1 passes. An entry whose tolerance is 0 (``atol=0`` and a numeric
    gradient of 0) counts 0 when both gradients are 0 and inf otherwise. Names are
    ``"input"``, ``"pred"`` or parameter keys such as ``"0.weight"``.

    Examples
    --------
    >>> from minigrad import Tanh
    >>> report = check_gradients(Tanh(), np.array([[0.5, -1.0]]))
    >>> list(report.errors), report.worst <= 1
    (['input'], True)
    >>> GradientReport({"input": 0.01, "0.weight": 0.2}).worst
    0.2
    """

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        """The largest error over all checked arrays (0.0 when none was checked)."""
        return max(self.errors.values(), default=0.0)


def numerical_gradient(
    f: Callable[[], float | FloatArray], x: FloatArray, eps: float = 1e-6
) -> NDArray[np.float64]:
    """Estimate df/dx by central differences, perturbing ``x`` in place entry by entry.

    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every entry i, where the step is the
    one actually taken once x_i +- eps is rounded to x's dtype; ``x`` is restored after
    each entry. ``f`` takes no argument, must read ``x`` (for example through a layer that
    owns it) and return a real number, so the same estimate works for inputs and for
    parameters.

    Shape: x (any shape, contiguous) -> float64 array of x's shape.

    Raises
    ------
    TypeError
        ``f`` is not callable or returns something other than a real number; ``x`` is not
        a floating-point NumPy array.
    ValueError
        ``x`` is read-only or not contiguous (it could not be perturbed in place), or
        ``eps`` is so small against an entry of ``x`` that x_i +- eps rounds back to x_i
        in x's dtype (eps=1e-6 in float16 would give a gradient of zeros).

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> numerical_gradient(lambda: float((x ** 3).sum()), x).round(6)
    array([ 3., 12.])
    """
    if not callable(f):
        raise TypeError(f"numerical_gradient needs a function f() -> float, got {type(f).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(
            "numerical_gradient perturbs x in place, so x must be a floating-point NumPy "
            f"array, got {x.dtype if isinstance(x, np.ndarray) else type(x).__name__}"
        )
    eps = check_real("eps", eps, above=0)
    grad = np.zeros(x.shape, dtype=np.float64)
    if x.size == 0:
        return grad
    if not x.flags.writeable:
        raise ValueError(
            "numerical_gradient perturbs x in place, so x must be writeable, got a "
            "read-only array: perturb a copy (x.copy()) that f reads"
        )
    flat_x = x.reshape(-1)  # a view: x must be contiguous so that writes reach it
    if not np.shares_memory(flat_x, x):
        raise ValueError(
            f"numerical_gradient perturbs x in place, so x must be contiguous, got a strided "
            f"view of shape {x.shape}: perturb np.ascontiguousarray(x), which f must read"
        )
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        plus, f_plus = flat_x[i], _value(f)
        flat_x[i] = original - eps
        minus, f_minus = flat_x[i], _value(f)
        flat_x[i] = original
        if plus == original or minus == original:
            index = tuple(int(k) for k in np.unravel_index(i, x.shape))
            raise ValueError(
                f"numerical_gradient: eps={eps!r} does not change x{list(index)} = "
                f"{original:g} in {x.dtype} (the perturbed value rounds back to it), so "
                f"the estimate would be 0: use a larger eps"
                + (" or float64" if x.dtype != np.float64 else "")
            )
        flat_grad[i] = (f_plus - f_minus) / (float(plus) - float(minus))
    return grad


def _value(f: Callable[[], object]) -> float:
    """``f()`` as a float, or TypeError: it must return one real number."""
    value = f()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        described = (
            f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else shown(value)
        )
        raise TypeError(
            f"numerical_gradient: f() must return a real number (the scalar to "
            f"differentiate), got {described} ({type(value).__name__})"
        )
    return float(value)


def check_gradients(
    module: Layer | Loss,
    x: ArrayLike,
    target: ArrayLike | None = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    seed: int = 0,
) -> GradientReport:
    """Check a layer's, model's or loss's backward against central finite differences.

    For a Layer (a whole Sequential included) the scalar checked is L = sum(forward(x) * r)
    for a fixed random r, so that dL/dy = r exercises every output; the input gradient and
    every parameter's ``.grad`` are compared with finite differences of L. The analytic
    gradients come from ``backward_input`` (``backward`` for a layer of your own, and
    ``backward(g, input_grad=True)`` for a Sequential). Forward and backward run twice first
    and must give the same gradients, since backward overwrites ``.grad``. For a Loss, the
    gradient of ``loss(x, target)`` with respect to ``x`` (the prediction) is checked.

    The layer is checked in the mode it is in: a BatchNorm in training mode through its
    batch statistics, in evaluation mode with its running ones. Every forward pass of the
    check sees the same random numbers: the layers' generators (see
    :meth:`~minigrad.Layer.named_generators`) are rewound to their state at the start
    before each one, so Dropout draws one mask throughout. When the check ends, the
    generators and the buffers (BatchNorm's running statistics, which every training-mode
    forward pass updates) are as they were before it.

    An integer ``x`` is taken as indices (an Embedding's input), as PyTorch's gradcheck
    leaves integer inputs alone: it is passed as it is, only the parameters' gradients
    are checked (through ``backward_parameters``) and the report has no ``"input"``.

    Work in float64 (``dtype=np.float64`` for Dense): float32 rounding swamps finite
    differences. Keep inputs away from kinks (ReLU at 0), where no derivative exists.

    Shape: x (batch, ...) as ``module`` takes it; for a Loss, x and ``target`` as the loss
    takes them. Each checked gradient has the shape of its array.

    Parameters
    ----------
    module : Layer or Loss
    x : array
        The input batch (for a Loss: the prediction). Converted to float64, except integer
        indices given to a Layer.
    target : array, required for a Loss
    eps : float
        The finite-difference step, in (0, 1]: a larger step measures a secant, not the
        derivative, and the failure would be blamed on the layer.
    atol, rtol : float
        An entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
    seed : int
        Seed of the random output weighting r.

    Returns
    -------
    GradientReport
        The worst relative error per checked array.

    Raises
    ------
    GradientCheckError
        An entry fails; the message names the array, the entry and both values.
    ValueError
        ``x`` is empty (there would be nothing to check), ``x`` holds indices for a layer
        without parameters (nothing to check either), or ``eps`` does not change an entry
        (see :func:`numerical_gradient`).

    Examples
    --------
    >>> from minigrad import Dense, Tanh, Sequential, MSE
    >>> model = Sequential(Dense(3, 4, rng=0, dtype=np.float64), Tanh())
    >>> report = check_gradients(model, np.random.default_rng(1).normal(size=(2, 3)))
    >>> sorted(report.errors)
    ['0.bias', '0.weight', 'input']
    >>> report = check_gradients(MSE(), np.array([[0.5, 1.0]]), np.array([[0.0, 2.0]]))
    """
    if isinstance(module, type) and issubclass(module, (Layer, Loss)):
        raise TypeError(
            f"check_gradients takes a Layer or a Loss instance, got the class "
            f"{module.__name__}; pass {module.__name__}(...)"
        )
    eps = check_real("eps", eps, above=0)
    if eps > 1:
        raise ValueError(
            f"eps must be <= 1, got {eps:g}: a finite-difference step that large measures a "
            "secant, not the derivative, and the check would blame the layer"
        )
    atol = check_real("atol", atol, minimum=0)
    rtol = check_real("rtol", rtol, minimum=0)
    seed = check_integer("seed", seed, minimum=0)
    array = as_array(x, "check_gradients x")
    indices = isinstance(module, Layer) and array.dtype.kind in "iu"
    if indices:
        array = array.copy()  # a private copy, left as integers
    else:
        array = real_array(array, None, "check_gradients x").astype(np.float64)  # a private copy
    if array.size == 0:
        raise ValueError(
            f"check_gradients needs at least one input value, got x of shape {array.shape}: "
            "an empty batch would pass without checking anything"
        )
    if isinstance(module, Loss):
        if target is None:
            raise ValueError("check_gradients on a Loss needs a target")
        return _check_loss(module, array, target, eps, atol, rtol)
    if isinstance(module, Layer):
        return _check_layer(module, array, eps, atol, rtol, seed, indices)
    raise TypeError(f"check_gradients takes a Layer or a Loss, got {type(module).__name__}")


def _check_loss(
    loss: Loss, pred: FloatArray, target: ArrayLike, eps: float, atol: float, rtol: float
) -> GradientReport:
    loss(pred, target)
    analytic = np.array(loss.backward(), dtype=np.float64)
    numeric = numerical_gradient(lambda: loss(pred, target), pred, eps)
    report = GradientReport()
    report.errors["pred"] = _compare("pred", analytic, numeric, atol, rtol)
    return report


def _check_layer(
    layer: Layer, x: NDArray[Any], eps: float, atol: float, rtol: float, seed: int, indices: bool
) -> GradientReport:
    for key, p in [*layer.named_parameters(), *layer.named_buffers()]:
        if p.dtype.kind == "f" and p.dtype != np.float64:  # an int64 count is no float
            raise TypeError(
                f"check_gradients needs float64 parameters and buffers, but {key!r} is "
                f"{p.dtype}: build the layer with dtype=np.float64"
            )
    if indices and not layer.parameters():
        raise ValueError(
            f"check_gradients takes an integer x as indices, whose gradient is not checked, "
            f"and {type(layer).__name__} has no parameters: nothing would be checked; pass x "
            "as floats (x.astype(np.float64)) to check the input gradient"
        )
    # Every forward pass must draw the same random numbers (one Dropout mask) and the check
    # must leave no trace: the generators are rewound before each pass, and the buffers
    # (running statistics that training-mode passes update) restored at the end
    generators = [(g, g.bit_generator.state) for _, g in layer.named_generators()]
    buffers = [(b, b.value.copy()) for _, b in layer.named_buffers()]

    def forward() -> FloatArray:
        for generator, state in generators:
            generator.bit_generator.state = state
        return layer.forward(x)

    try:
        return _compare_layer(layer, x, forward, eps, atol, rtol, seed, indices)
    finally:
        for generator, state in generators:
            generator.bit_generator.state = state
        for buffer, value in buffers:
            np.copyto(buffer.value, value)


def _compare_layer(
    layer: Layer,
    x: NDArray[Any],
    forward: Callable[[], FloatArray],
    eps: float,
    atol: float,
    rtol: float,
    seed: int,
    indices: bool,
) -> GradientReport:
    out = forward()
    weights = np.random.default_rng(seed).standard_normal(np.shape(out))

    def objective() -> float:
        return float(np.sum(forward() * weights))

    # Twice: backward must overwrite .grad, so a second pass has to give the same gradients
    # (a backward that adds into .grad, PyTorch-style, fails here).
    passes = []
    for _ in range(2):
        forward()
        if indices:  # no gradient with respect to indices: the parameters' only
            layer.backward_parameters(weights.copy())
            grad_input = None
        else:
            # backward_input: dL/dx from every Layer, a Sequential's (returned only when
            # asked) included
            grad_input = np.array(layer.backward_input(weights.copy()), dtype=np.float64)
        passes.append((grad_input, {key: p.grad.copy() for key, p in layer.named_parameters()}))
    (analytic_input, analytic_params), (second_input, second_params) = passes
    for key, first in {"input": analytic_input, **analytic_params}.items():
        second = second_input if key == "input" else second_params[key]
        # second is an array where first is: both passes asked for the same gradients
        if first is not None and not np.array_equal(first, second, equal_nan=True):  # type: ignore[arg-type]
            raise GradientCheckError(
                f"gradient of {key!r} changed between two identical forward/backward passes: "
                "backward must overwrite .grad (p.grad[...] = ...), not add to it"
            )

    report = GradientReport()
    if analytic_input is not None:
        report.errors["input"] = _compare(
            "input", analytic_input, numerical_gradient(objective, x, eps), atol, rtol
        )
    for key, p in layer.named_parameters():
        numeric = numerical_gradient(objective, p.value, eps)
        report.errors[key] = _compare(key, analytic_params[key], numeric, atol, rtol)
    return report


def _compare(
    name: str, analytic: NDArray[np.float64], numeric: NDArray[np.float64], atol: float, rtol: float
) -> float:
    if analytic.shape != numeric.shape:
        raise GradientCheckError(
            f"gradient of {name!r} has shape {analytic.shape}, expected {numeric.shape}"
        )
    if analytic.size == 0:
        return 0.0
    # |a - n| / (atol + rtol |n|) per entry, without a 0 / 0: an entry of zero tolerance
    # passes only when both are equal, and a non-finite entry never passes
    with np.errstate(over="ignore", invalid="ignore"):
        difference = np.abs(analytic - numeric)
        tolerance = atol + rtol * np.abs(numeric)
        finite = np.isfinite(analytic) & np.isfinite(numeric)
        ratio = np.where(finite & (difference == 0), 0.0, np.inf)
        np.divide(difference, tolerance, out=ratio, where=finite & (tolerance > 0))
    worst = int(np.argmax(ratio))
    if not ratio.flat[worst] <= 1:
        index = np.unravel_index(worst, analytic.shape)
        raise GradientCheckError(
            f"gradient of {name!r} at {tuple(int(i) for i in index)}: analytic "
            f"{analytic.flat[worst]:.10g}, finite difference {numeric.flat[worst]:.10g} "
            f"(tolerance atol={atol}, rtol={rtol})"
        )
    return float(ratio.max())
