"""Fused update rules: each optimizer's whole update in one pass over its arrays (numba).

The NumPy update functions (:func:`~minigrad.optim.sgd_update`,
:func:`~minigrad.optim.momentum_update`, :func:`~minigrad.optim.adam_update`) are the
reference: each is a handful of whole-array passes, one NumPy call each. They are bound by
memory, not by arithmetic: Adam reads and writes about thirteen arrays' worth of memory per
step where one pass over value, grad, m and v would do, and each call costs the same fixed
overhead however small the array. The kernels here do the same arithmetic element by element,
in one loop compiled by numba (``pip install 'minigrad-nn[fast]'``). Optimizers use them by
default when numba is installed (their ``fused`` argument); numba is imported the first time
an optimizer asks for it, never by ``import minigrad``.

Each kernel gives the reference's result **bit for bit**, in the value and in every state
buffer. Floating-point arithmetic is not associative, so that needs the same operations, on
values of the same dtype, in the same order, as the reference:

- Scalars are cast to the arrays' dtype before they meet an array, as NumPy does with a
  Python float (``m *= beta1`` multiplies by float32(beta1) for float32 arrays). The
  scalars that NumPy code derives in Python (``1 - beta2``, ``lr * momentum``,
  ``lr / (1 - beta1**t)``) are derived here by the same Python expressions, in float64,
  and then cast.
- Each line of a kernel is one line of its reference, with the reference's grouping:
  Adam's ``m -= g; m *= beta1; m += g`` is ``(m - g) * beta1 + g`` here, not the equal
  (in exact arithmetic) ``beta1 * m + (1 - beta1) * g``, which differs in the last bit of
  about one entry in a thousand.
- A branch the reference takes in Python (``weight_decay == 0`` skips the decay, so that
  ``0 * inf`` never makes a NaN and ``-0.0`` keeps its sign) is decided in Python and
  passed to the kernel as a flag.
- No fast-math: every operation rounds as IEEE 754 says, without fused multiply-adds
  (which round once where the reference rounds twice). Division by zero gives inf or NaN as
  in NumPy, not Python's ZeroDivisionError (numba's ``error_model="numpy"``).

The updates, per entry, with g the gradient and p the value (``decay`` means
``weight_decay != 0``):

SGD::

    d = p * wd + g   if decay else g
    p = p - d * lr

Momentum (b the velocity; torch.optim.SGD's form)::

    d = p * wd + g   if decay else g
    b = b * mu + d
    p = (p - d * lr) - b * (lr * mu)   if nesterov else p - b * lr

Adam and AdamW (t the step, counting from 1; c1 = 1 - beta1**t, c2 = 1 - beta2**t)::

    p = p * (1 - lr * wd)                   AdamW (decoupled), when decay
    d = p * wd + g   if decay else g        Adam (coupled); AdamW: d = g
    m = (m - d) * beta1 + d
    v = v * beta2 + (d * d) * (1 - beta2)
    p = p - (m / (sqrt(v) * (1 / sqrt(c2)) + eps)) * (lr / c1)

The kernels are serial. A multi-threaded kernel was measured erratic, up to ten times slower,
right after BLAS matrix products, whose idle worker threads keep spinning on the cores.

Compiling a kernel for a dtype takes a fraction of a second, the first time it runs.
numba keeps the machine code in a cache on disk (``cache=True``: next to this file, or in
the user's cache directory when the package directory is read-only, or in
``NUMBA_CACHE_DIR``), so that later processes load it instead of compiling again. Where no
directory is writable, every process compiles its kernels once.

Every function here takes 1-D C-contiguous arrays of one dtype, float32 or float64 (an
optimizer passes the flattened arrays of a parameter and its state), updates them in place,
and checks nothing: the optimizer has checked the arrays and the hyperparameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np

from minigrad._validation import _given
from minigrad.typing import FloatArray

__all__ = ["INSTALL_HINT", "adam_update", "available", "momentum_update", "sgd_update"]

INSTALL_HINT = "pip install 'minigrad-nn[fast]' (or pip install numba)"

#: The dtypes the kernels are compiled for; float16 parameters keep the NumPy update.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def available() -> bool:
    """Whether numba can be imported, so that the fused kernels can run.

    >>> isinstance(available(), bool)
    True
    """
    return not isinstance(_numba(), Exception)


def require(what: str) -> None:
    """Raise ImportError, with the install command, unless numba can be imported."""
    numba = _numba()
    if isinstance(numba, Exception):
        raise ImportError(
            f"{what} needs numba for its fused kernels: {INSTALL_HINT}; or pass fused=False "
            f"for the NumPy update ({type(numba).__name__}: {numba})"
        ) from numba


def resolve(fused: Any, has_kernel: bool, dtypes: list[np.dtype], what: str) -> bool:
    """Whether an optimizer uses the fused kernels, from its ``fused`` argument.

    None: when numba is installed, the optimizer has kernels (``has_kernel``) and at least
    one of its parameters has a dtype they are compiled for. True: the same, or an error
    saying which is missing. False: never.
    """
    if fused is not None and not isinstance(fused, (bool, np.bool_)):
        raise TypeError(f"{what}: fused must be True, False or None, got {_given(fused)}")
    if fused is not None and not fused:
        return False
    usable = any(np.dtype(dtype) in DTYPES for dtype in dtypes)
    if fused is None:
        return has_kernel and usable and available()
    if not has_kernel:
        raise ValueError(
            f"{what} has no fused kernel: its update rule (_update) is its own; "
            "pass fused=False (or leave fused unset)"
        )
    if not usable:
        raise ValueError(
            f"{what}: fused=True needs float32 or float64 parameters, got only "
            f"{', '.join(sorted({np.dtype(d).name for d in dtypes}))}; these are updated "
            "by the NumPy rule, so pass fused=False (or leave fused unset)"
        )
    require(what)
    return True


@functools.cache
def _numba() -> Any:
    """The numba module, or the exception that importing it raised."""
    try:
        import numba
    except (ImportError, OSError) as error:  # OSError: llvmlite's library failed to load
        return error
    return numba


# -- the kernels, as plain Python: numba compiles them on first use -------------------------

#: a scalar cast to the arrays' dtype (``value.dtype.type(lr)``)
_Scalar: TypeAlias = np.floating[Any]


def _sgd_kernel(
    value: FloatArray, grad: FloatArray, lr: _Scalar, weight_decay: _Scalar, decay: bool
) -> None:
    for i in range(value.size):
        direction = value[i] * weight_decay + grad[i] if decay else grad[i]
        value[i] = value[i] - direction * lr


def _momentum_kernel(
    value: FloatArray,
    grad: FloatArray,
    velocity: FloatArray,
    lr: _Scalar,
    momentum: _Scalar,
    lr_momentum: _Scalar,
    nesterov: bool,
    weight_decay: _Scalar,
    decay: bool,
) -> None:
    for i in range(value.size):
        direction = value[i] * weight_decay + grad[i] if decay else grad[i]
        velocity[i] = velocity[i] * momentum + direction
        if nesterov:
            value[i] = (value[i] - direction * lr) - velocity[i] * lr_momentum
        else:
            value[i] = value[i] - velocity[i] * lr


def _adam_kernel(
    value: FloatArray,
    grad: FloatArray,
    m: FloatArray,
    v: FloatArray,
    step_size: _Scalar,
    beta1: _Scalar,
    beta2: _Scalar,
    one_minus_beta2: _Scalar,
    denominator_scale: _Scalar,
    eps: _Scalar,
    weight_decay: _Scalar,
    decay: bool,
    shrink: _Scalar,
    decoupled: bool,
) -> None:
    for i in range(value.size):
        p = value[i] * shrink if decoupled else value[i]
        direction = p * weight_decay + grad[i] if decay else grad[i]
        m[i] = (m[i] - direction) * beta1 + direction
        v[i] = v[i] * beta2 + (direction * direction) * one_minus_beta2
        value[i] = p - (m[i] / (np.sqrt(v[i]) * denominator_scale + eps)) * step_size


@functools.cache
def _compiled(kernel: Callable[..., None]) -> Callable[..., None]:
    """``kernel`` compiled by numba (serial, IEEE arithmetic, cached on disk when a cache
    directory is writable)."""
    numba = _numba()
    if isinstance(numba, Exception):
        require("minigrad.optim.fused")
    options = {"error_model": "numpy", "fastmath": False, "parallel": False}
    compiled: Callable[..., None]  # numba's dispatcher, called as the kernel is
    try:
        compiled = numba.njit(cache=True, **options)(kernel)
    except RuntimeError:  # no writable cache directory at all: compile in every process
        compiled = numba.njit(cache=False, **options)(kernel)
    return compiled


# -- what the optimizers call: the reference's scalars, cast, then one kernel call ----------


def sgd_update(value: FloatArray, grad: FloatArray, *, lr: float, weight_decay: float) -> None:
    """:func:`~minigrad.optim.sgd_update` in one pass: value -= lr * (grad + wd * value).

    Examples
    --------
    >>> from minigrad.optim import sgd_update as reference
    >>> value, grad = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    >>> expected = value.copy()
    >>> reference(expected, grad, lr=0.1, weight_decay=0.1, scratch=np.empty(2))
    >>> sgd_update(value, grad, lr=0.1, weight_decay=0.1)
    >>> value, value.tobytes() == expected.tobytes()
    (array([0.94, 2.08]), True)
    """
    cast = value.dtype.type
    _compiled(_sgd_kernel)(value, grad, cast(lr), cast(weight_decay), weight_decay != 0)


def momentum_update(
    value: FloatArray,
    grad: FloatArray,
    velocity: FloatArray,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    """:func:`~minigrad.optim.momentum_update` in one pass (``velocity`` is its buffer).

    Examples
    --------
    >>> value, grad, velocity = np.array([1.0]), np.array([1.0]), np.zeros(1)
    >>> for _ in range(2):  # b = 1, then 1.5; p moves by 0.1 (1 + 0.5 b) each time
    ...     momentum_update(value, grad, velocity, lr=0.1, momentum=0.5, nesterov=True,
    ...                     weight_decay=0.0)
    >>> value, velocity
    (array([0.675]), array([1.5]))
    """
    cast = value.dtype.type
    _compiled(_momentum_kernel)(
        value,
        grad,
        velocity,
        cast(lr),
        cast(momentum),
        cast(lr * momentum),
        bool(nesterov),
        cast(weight_decay),
        weight_decay != 0,
    )


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
) -> None:
    """:func:`~minigrad.optim.adam_update` in one pass; ``step`` counts from 1.

    Examples
    --------
    >>> value, grad = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> m, v = np.zeros(2), np.zeros(2)
    >>> adam_update(value, grad, m, v, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
    ...             weight_decay=0.0, decoupled=False)
    >>> value, m, v  # the first step moves each entry by lr against its gradient's sign
    (array([ 0.9, -2.1]), array([0.05, 0.05]), array([0.00025, 0.00025]))
    """
    cast = value.dtype.type
    # the scalars as adam_update computes them, in Python floats
    correction1, correction2 = 1.0 - beta1**step, 1.0 - beta2**step
    step_size, denominator_scale = lr / correction1, 1.0 / math.sqrt(correction2)
    shrink = 1.0 - lr * weight_decay if decoupled else 1.0
    _compiled(_adam_kernel)(
        value,
        grad,
        m,
        v,
        cast(step_size),
        cast(beta1),
        cast(beta2),
        cast(1.0 - beta2),
        cast(denominator_scale),
        cast(eps),
        cast(weight_decay),
        weight_decay != 0 and not decoupled,
        cast(shrink),
        weight_decay != 0 and decoupled,
    )
