"""Small built-in data sets for demos and tests, and scikit-learn's 8x8 digits.

Every ``make_*`` function returns ``(x, y)``: x float32 of shape (n_samples, features) and y
int64 class labels of shape (n_samples,), drawn from the generator that ``seed`` makes (an
integer >= 0, a numpy Generator or None).

Arguments are checked before anything is made: counts (``n_samples``, ``classes``,
``centers``, ``features``) must be integers, Python or NumPy, and the settings (``noise``,
``spread``, ``factor``, ``turns``, ``box``) real numbers, not bools or strings; the error names
the argument. A data set that would not fit in this machine's memory is a MemoryError naming
``n_samples`` (and ``features`` for ``make_blobs``), raised before allocating it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._validation import _shortened, check_integer, check_real
from minigrad.data.loader import _generator

__all__ = ["load_digits", "make_blobs", "make_circles", "make_moons", "make_spirals", "make_xor"]

Dataset = tuple[NDArray[np.float32], NDArray[np.int64]]

#: float64 values held per sample and feature while a data set is made (coordinates, noise,
#: their sum, the float32 result and the labels), for the memory check
_BYTES_PER_VALUE = 40


def _samples(n_samples: object, classes: int = 1, what: str = "classes") -> int:
    """``n_samples`` as an int, at least one per class."""
    n_samples = check_integer("n_samples", n_samples, minimum=1)
    if n_samples < classes:
        raise ValueError(
            f"n_samples must be >= {_shortened(classes)}, got {n_samples}: a sample for each "
            f"of the {_shortened(classes)} {what}"
        )
    return n_samples


def _scale(name: str, value: object) -> float:
    """A noise level or spread: a finite real number >= 0 (not a bool, not a string)."""
    return check_real(name, value, minimum=0.0)


@contextlib.contextmanager
def _memory(
    what: str, n_samples: int, features: int, features_given: bool = False
) -> Iterator[None]:
    """Refuse before allocating a data set larger than this machine's memory; give a
    MemoryError raised while making one a message that names ``n_samples`` (and
    ``features`` when the caller chose them: ``features_given``)."""
    need = n_samples * (features + 1) * _BYTES_PER_VALUE
    arguments, fewer = f"n_samples={_shortened(n_samples)}", "fewer samples"
    if features_given:
        arguments += f", features={_shortened(features)}"
        fewer = "fewer samples or features"
    message = f"{what}({arguments}) needs about {_gib(need)} of memory; ask for {fewer}"
    total = _physical_memory()
    if total is not None and need > total:
        raise MemoryError(f"{message} (this machine has {_gib(total)})")
    try:
        yield
    except MemoryError as error:
        raise MemoryError(message) from error


def _gib(size: int) -> str:
    """``size`` bytes in GiB, for a message (beyond float range too)."""
    try:
        return f"{size / 2**30:.3g} GiB"
    except OverflowError:
        return f"2^{size.bit_length() - 31} GiB"


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


def _split(n_samples: int, classes: int) -> NDArray[np.int64]:
    """Labels 0..classes-1 in blocks as equal as possible (the first classes get the extra)."""
    sizes = np.full(classes, n_samples // classes)
    sizes[: n_samples % classes] += 1
    return np.repeat(np.arange(classes, dtype=np.int64), sizes)


def _finish(
    x: NDArray[Any], y: NDArray[Any], noise: float, rng: np.random.Generator, what: str
) -> Dataset:
    """Add Gaussian noise of standard deviation ``noise``; x as float32, y as int64. ``what``
    names the settings that scale x, for the error when x does not fit float32."""
    if noise:
        x = x + rng.normal(0.0, noise, x.shape)
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{what} too large: the data overflow float32 (largest 3.4e38)")
    return x, y.astype(np.int64)


def make_xor(
    n_samples: int = 4, noise: float = 0.0, *, seed: int | np.random.Generator | None = None
) -> Dataset:
    """The XOR problem: corners of the unit square, label a XOR b.

    Sample i sits at corner ``i % 4`` of (0, 0), (0, 1), (1, 0), (1, 1), plus Gaussian noise
    of standard deviation ``noise``. The defaults give the slides' truth table exactly.

    Shape: x (n_samples, 2) float32, y (n_samples,) int64.

    Examples
    --------
    >>> x, y = make_xor()
    >>> x.tolist(), y.tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    n_samples, noise = _samples(n_samples), _scale("noise", noise)
    rng = _generator(seed)
    with _memory("make_xor", n_samples, 2):
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        x = corners[np.arange(n_samples) % 4]
        y = (x[:, 0] != x[:, 1]).astype(np.int64)
        return _finish(x, y, noise, rng, f"noise={noise}")


def make_spirals(
    n_samples: int = 1000,
    noise: float = 0.02,
    *,
    classes: int = 2,
    turns: float = 1.5,
    seed: int | np.random.Generator | None = None,
) -> Dataset:
    """``classes`` interleaved spiral arms in the plane, each turning ``turns`` times.

    Arm k is r (cos(t + 2 pi k / classes), sin(...)) with r = t / t_max in (0, 1], t drawn
    so that points are spread evenly along the arm; the classes interleave. Gaussian noise
    of standard deviation ``noise`` is added to every coordinate.

    Shape: x (n_samples, 2) float32, y (n_samples,) int64 in [0, classes).

    Examples
    --------
    >>> x, y = make_spirals(300, noise=0.0, classes=3, seed=0)
    >>> x.shape, np.bincount(y).tolist()
    ((300, 2), [100, 100, 100])
    >>> bool(np.hypot(x[:, 0], x[:, 1]).max() <= 1.0)  # r = t / t_max <= 1
    True
    """
    classes = check_integer("classes", classes, minimum=2)
    n_samples, noise = _samples(n_samples, classes), _scale("noise", noise)
    # beyond a million turns the angles lose all precision (and 2 pi turns can overflow)
    turns = check_real("turns", turns, above=0.0, maximum=1e6)
    rng = _generator(seed)
    with _memory("make_spirals", n_samples, 2):
        y = _split(n_samples, classes)
        t_max = 2.0 * np.pi * turns
        t = np.sqrt(rng.uniform(0.0, 1.0, n_samples)) * t_max
        angle = t + 2.0 * np.pi * y / classes
        x = np.stack([np.cos(angle), np.sin(angle)], axis=1) * (t / t_max)[:, None]
        return _finish(x, y, noise, rng, f"noise={noise}")


def make_moons(
    n_samples: int = 200, noise: float = 0.1, *, seed: int | np.random.Generator | None = None
) -> Dataset:
    """Two interleaving half circles (scikit-learn's moons): class 0 above, class 1 below.

    With a ~ U(0, pi): class 0 at (cos a, sin a), class 1 at (1 - cos a, 1/2 - sin a), plus
    Gaussian noise of standard deviation ``noise``.

    Shape: x (n_samples, 2) float32, y (n_samples,) int64 in {0, 1}.

    Examples
    --------
    >>> x, y = make_moons(200, noise=0.0, seed=0)
    >>> x.shape, np.bincount(y).tolist()
    ((200, 2), [100, 100])
    >>> upper, lower = x[y == 0], x[y == 1] - [1.0, 0.5]  # both on unit circles
    >>> np.allclose(np.hypot(*upper.T), 1, atol=1e-6), np.allclose(np.hypot(*lower.T), 1, atol=1e-6)
    (True, True)
    """
    n_samples, noise = _samples(n_samples, 2), _scale("noise", noise)
    rng = _generator(seed)
    with _memory("make_moons", n_samples, 4):
        y = _split(n_samples, 2)
        angle = rng.uniform(0.0, np.pi, n_samples)
        upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
        x = np.where((y == 0)[:, None], upper, lower)
        return _finish(x, y, noise, rng, f"noise={noise}")


def make_circles(
    n_samples: int = 200,
    noise: float = 0.05,
    *,
    factor: float = 0.5,
    seed: int | np.random.Generator | None = None,
) -> Dataset:
    """Two concentric circles: class 0 of radius 1, class 1 of radius ``factor`` < 1.

    x = r (cos a, sin a) with a ~ U(0, 2 pi) and r = 1 or ``factor``, plus Gaussian noise of
    standard deviation ``noise``.

    Shape: x (n_samples, 2) float32, y (n_samples,) int64 in {0, 1}.

    Examples
    --------
    >>> x, y = make_circles(6, noise=0.0, seed=0)
    >>> np.hypot(x[:, 0], x[:, 1]).round(6).tolist(), y.tolist()
    ([1.0, 1.0, 1.0, 0.5, 0.5, 0.5], [0, 0, 0, 1, 1, 1])
    """
    n_samples, noise = _samples(n_samples, 2), _scale("noise", noise)
    factor = check_real("factor", factor, above=0.0, below=1.0)
    rng = _generator(seed)
    with _memory("make_circles", n_samples, 2):
        y = _split(n_samples, 2)
        angle = rng.uniform(0.0, 2.0 * np.pi, n_samples)
        radius = np.where(y == 0, 1.0, factor)
        x = np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius[:, None]
        return _finish(x, y, noise, rng, f"noise={noise}")


def make_blobs(
    n_samples: int = 300,
    centers: int = 3,
    *,
    features: int = 2,
    spread: float = 1.0,
    box: float = 10.0,
    seed: int | np.random.Generator | None = None,
) -> Dataset:
    """Gaussian blobs: ``centers`` centres drawn uniformly in [-box, box]^features, each
    class a Gaussian of standard deviation ``spread`` around its centre.

    x_i = c_(y_i) + N(0, spread^2 I), with c_k ~ U(-box, box)^features.

    Shape: x (n_samples, features) float32, y (n_samples,) int64 in [0, centers).

    Examples
    --------
    >>> x, y = make_blobs(300, centers=3, spread=0.5, seed=0)
    >>> x.shape, np.bincount(y).tolist()
    ((300, 2), [100, 100, 100])
    >>> round(float(x[y == 0].std(axis=0).mean()), 1)  # the spread around a centre
    0.5
    """
    centers = check_integer("centers", centers, minimum=1)
    features = check_integer("features", features, minimum=1)
    n_samples = _samples(n_samples, centers, "centers")
    spread = _scale("spread", spread)
    # uniform(-box, box) needs 2 box to be a finite float
    box = check_real("box", box, above=0.0, maximum=float(np.finfo(np.float64).max) / 2)
    rng = _generator(seed)
    with _memory("make_blobs", n_samples, features, features_given=True):
        y = _split(n_samples, centers)
        middle = rng.uniform(-box, box, (centers, features))
        return _finish(middle[y], y, spread, rng, f"box={box} or spread={spread}")


def load_digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels: x (1797, 64) in [0, 1], y (1797,).

    Needs scikit-learn (``pip install 'minigrad-nn[digits]'``), which ships the data with it.
    The pixels, 0 to 16 in scikit-learn, are scaled to x = pixel / 16.

    Shape: x (1797, 64) float32, y (1797,) int64 digits 0-9.

    Examples
    --------
    >>> x, y = load_digits()
    >>> x.shape, x.dtype, float(x.max()), y[:5].tolist()
    ((1797, 64), dtype('float32'), 1.0, [0, 1, 2, 3, 4])
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "load_digits needs scikit-learn, which ships the data set: "
            "pip install 'minigrad-nn[digits]' (or pip install scikit-learn)"
        ) from None
    bunch = sklearn_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
