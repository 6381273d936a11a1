"""Checks shared by layers, losses and metrics: real-number inputs (never coerced from
strings, complex numbers or objects), widths, parameter dtypes and gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import check_float_dtype, check_integer
from minigrad._validation import shown as shown  # re-exported: layers and metrics use it
from minigrad.errors import ShapeError
from minigrad.typing import FloatArray

#: dtype kinds that convert to floating point without losing anything but precision:
#: floating, signed and unsigned integers, booleans
REAL_KINDS = "fiub"


def real_array(x: ArrayLike, dtype: DTypeLike | None, what: str) -> FloatArray:
    """``x`` as a floating-point array: of ``dtype``, or (``dtype=None``) of its own float
    dtype, with integers and booleans converted to float64.

    Complex numbers (which would lose their imaginary part), strings (which NumPy would
    parse), objects (None would become NaN) and dates are refused with a TypeError naming
    the dtype. No copy is made when ``x`` already is such an array.
    """
    array = as_array(x, what)
    kind = array.dtype.kind
    if kind not in REAL_KINDS:
        raise TypeError(f"{what} must be a numeric array of real numbers, {refused(array)}")
    if dtype is None:
        return array if kind == "f" else array.astype(np.float64)
    return array if array.dtype == dtype else in_dtype(array, dtype)


def in_dtype(array: NDArray[Any], dtype: DTypeLike) -> NDArray[Any]:
    """``array`` converted to ``dtype``; values beyond its range become +-inf, as a cast
    makes them, without NumPy's overflow warning (float64 1e300 into float32, int 10^5 into
    float16).

    Silencing the warning costs about a microsecond (``np.errstate``), paid only by
    conversions that can overflow: to a narrower float, or from integers of 16 bits or
    more to float16. Integers into float32 or float64 cannot, and cost nothing extra.
    """
    target = np.dtype(dtype)
    source = array.dtype
    if (source.kind == "f" and source.itemsize > target.itemsize) or (
        target.itemsize == 2 and source.kind in "iu" and source.itemsize >= 2
    ):
        with np.errstate(over="ignore"):
            return array.astype(target)
    return array.astype(target)


def as_array(x: object, what: str) -> NDArray[Any]:
    """``np.asarray(x)``, with NumPy's error for what cannot be an array (ragged nested
    lists) turned into a TypeError that names ``what``."""
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} must be a numeric array, got {type(x).__name__} that NumPy cannot turn "
            f"into one: {error}"
        ) from None


def refused(array: NDArray[Any]) -> str:
    """``"got dtype ...; hint"`` for an array whose dtype is not a real number type."""
    kind = array.dtype.kind
    if kind == "c":
        hint = "; take .real or np.abs(x) explicitly (the imaginary part would be lost)"
    elif kind in "USO":
        hint = "; convert it explicitly to the numbers meant, with .astype(...)"
    else:
        hint = ""
    return f"got dtype {array.dtype}{hint}"


def layer_width(name: str, value: object) -> int:
    """A layer's width (``in_features``, ``num_features``, ...): a Python or NumPy integer
    >= 1. TypeError for another type (a bool, a float, a string), ValueError below 1."""
    try:
        return check_integer(name, value, minimum=1, maximum=np.iinfo(np.intp).max)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name} must be a positive integer, got {shown(value)}") from None


def parameter_dtype(owner: str, dtype: object) -> np.dtype[np.floating[Any]]:
    """``dtype`` as float16, float32 or float64, the dtypes model files and optimizers take.

    None is refused (NumPy would read it as float64), as are other kinds and float128.
    """
    return check_float_dtype(f"{owner} dtype", dtype)


def checked_config(owner: str, config: object, keys: Iterable[str]) -> dict[str, Any]:
    """``config`` if it is a dict with exactly ``keys``, its "dtype" (if it has one) the name
    of a parameter dtype; else a TypeError or ValueError naming ``owner``. The constructor
    checks the other values: this is what ``from_config`` runs on JSON from a file first."""
    article = "an" if owner[0] in "AEIOU" else "a"
    if not isinstance(config, dict):
        raise TypeError(f"{article} {owner} config is a dict, got {type(config).__name__}")
    expected = sorted(keys)
    if set(config) != set(expected):
        raise ValueError(f"{article} {owner} config has the keys {expected}, got {listed(config)}")
    if "dtype" in config and config["dtype"] not in ("float16", "float32", "float64"):
        raise ValueError(
            f"{owner} dtype must be 'float16', 'float32' or 'float64', got {shown(config['dtype'])}"
        )
    return config


def bad_gradient(layer: object, grad_output: object, shape: tuple[int, ...]) -> Exception:
    """The error for a ``grad_output`` that is not a float array of ``shape``."""
    name = f"{layer!r}.backward"
    if not isinstance(grad_output, np.ndarray):
        return TypeError(
            f"{name} takes the gradient as a NumPy array (what loss.backward() returns), "
            f"got {type(grad_output).__name__}"
        )
    if grad_output.dtype.kind != "f":
        return TypeError(f"{name} takes a floating-point gradient, got dtype {grad_output.dtype}")
    return ShapeError(
        f"{name} expected grad_output of shape {shape} (the forward output's), "
        f"got {grad_output.shape}"
    )


def listed(keys: Iterable[object], limit: int = 10) -> str:
    """The sorted names of ``keys`` for a message: the first ``limit`` and how many more."""
    names = sorted(_name(key) for key in keys)
    if len(names) <= limit:
        return repr(names)
    return f"{names[:limit]!r} and {len(names) - limit} more"


def _name(key: object) -> str:
    text = key if isinstance(key, str) else shown(key)
    return text if len(text) <= 40 else text[:37] + "..."
