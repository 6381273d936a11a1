"""Plots with matplotlib (``pip install 'minigrad-nn[plot]'``): training curves and decision
boundaries. Each function draws on the axes it is given (or new ones) and returns the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_integer, check_real
from minigrad.errors import ShapeError
from minigrad.layers.base import Layer
from minigrad.metrics import predicted_classes
from minigrad.training import predict

if TYPE_CHECKING:  # matplotlib is optional: its types are needed by type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["plot_decision_boundary", "plot_history"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "minigrad's plots need matplotlib: pip install 'minigrad-nn[plot]' "
            "(or pip install matplotlib)"
        ) from None
    return plt


@overload
def plot_history(
    history: Mapping[str, Sequence[float] | NDArray[Any]], axes: None = None
) -> Figure: ...
@overload
def plot_history(
    history: Mapping[str, Sequence[float] | NDArray[Any]],
    axes: Axes | Sequence[Axes] | NDArray[Any],
) -> Figure | SubFigure: ...
def plot_history(
    history: Mapping[str, Sequence[float] | NDArray[Any]],
    axes: Axes | Sequence[Axes] | NDArray[Any] | None = None,
) -> Figure | SubFigure:
    """Loss curves on the left, every other metric (accuracy, ...) on the right.

    Training numbers are solid lines, validation numbers (``val_`` keys) dashed, both
    against the epoch (from 1). Returns the matplotlib Figure (the SubFigure, for axes
    given in one), laid out tightly unless it is a SubFigure, whose layout belongs to the
    figure that holds it.

    Shape: each history entry is a list with one number per epoch; "lr" is not drawn.

    Examples
    --------
    The lines that need matplotlib (an optional package) are skipped:

    >>> history = {"loss": [0.9, 0.5], "val_loss": [1.0, 0.6], "accuracy": [0.6, 0.8]}
    >>> figure = plot_history(history)
    >>> [axes.get_ylabel() for axes in figure.axes]
    ['loss', 'metric']
    >>> [line.get_label() for line in figure.axes[0].lines]
    ['loss', 'val_loss']
    """
    if not isinstance(history, Mapping):
        raise TypeError(
            "plot_history needs a History or a dict of per-epoch lists, got "
            f"{type(history).__name__}"
        )
    for name, values in history.items():
        if not isinstance(name, str):
            raise TypeError(f"plot_history: history keys must be names (str), got {name!r:.80}")
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
            raise TypeError(
                f"plot_history: history[{name!r:.80}] must be a list of one number per epoch, "
                f"got {type(values).__name__}"
            )
    plt = _pyplot()
    names = [k for k in history if not k.startswith("val_") and k != "lr"]
    if "loss" not in names:
        raise ValueError(f"the history has no 'loss' entry; it holds {sorted(history)}")
    for name in history:
        if len(history[name]) != len(history["loss"]):
            raise ShapeError(
                f"history[{name!r}] has {len(history[name])} values but history['loss'] has "
                f"{len(history['loss'])}: every entry holds one number per epoch"
            )
    metrics = [k for k in names if k != "loss"]
    if axes is not None and not all(
        hasattr(ax, "plot") for ax in np.atleast_1d(np.asarray(axes, dtype=object))
    ):
        raise TypeError(
            f"plot_history: axes must be matplotlib Axes (one, or one per panel), got "
            f"{type(axes).__name__}"
        )
    if axes is None:
        _, axes = plt.subplots(1, 1 + bool(metrics), figsize=(5 + 4.5 * bool(metrics), 3.6))
    given: Any = axes  # one Axes or several, which NumPy's types do not see as array-like
    panels = np.atleast_1d(given)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, group, label in ((panels[0], ["loss"], "loss"), (panels[-1], metrics, "metric")):
        for name in group:
            (line,) = ax.plot(epochs, history[name], label=name)
            if f"val_{name}" in history:
                ax.plot(
                    epochs,
                    history[f"val_{name}"],
                    "--",
                    color=line.get_color(),
                    label=f"val_{name}",
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    from matplotlib.figure import SubFigure  # matplotlib is optional: imported when plotting

    figure: Figure | SubFigure = panels[0].figure
    if not isinstance(figure, SubFigure):  # a SubFigure has no tight_layout of its own
        figure.tight_layout()
    return figure


@overload
def plot_decision_boundary(
    model: Layer,
    x: ArrayLike,
    y: ArrayLike,
    axes: None = None,
    resolution: int = 200,
    threshold: float = 0.5,
) -> Figure: ...
@overload
def plot_decision_boundary(
    model: Layer,
    x: ArrayLike,
    y: ArrayLike,
    axes: Axes,
    resolution: int = 200,
    threshold: float = 0.5,
) -> Figure | SubFigure: ...
def plot_decision_boundary(
    model: Layer,
    x: ArrayLike,
    y: ArrayLike,
    axes: Axes | None = None,
    resolution: int = 200,
    threshold: float = 0.5,
) -> Figure | SubFigure:
    """The class a model picks at every point of the plane around 2-D data, with the data.

    The model is evaluated (in eval mode) on a ``resolution`` x ``resolution`` grid (an
    integer >= 2; ``threshold`` a finite number) that covers the finite points with a
    margin; each region is coloured by its predicted class (see
    :func:`~minigrad.metrics.predicted_classes`; binary outputs are cut at ``threshold``),
    and the points are drawn on top, coloured by their label. Returns the Figure.

    Each grid point u gets the class predicted_classes(model(u)): the argmax of the outputs,
    or output > ``threshold`` for one binary output.

    Shape: x (n, 2) points, y (n,) or (n, 1) labels; the model maps (m, 2) to (m, C) or
    (m, 1).

    Examples
    --------
    One axes holding two collections, the coloured regions and the points; the lines that
    need matplotlib (an optional package) are skipped:

    >>> import minigrad as mg
    >>> x, y = mg.data.make_xor()
    >>> model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
    >>> figure = plot_decision_boundary(model, x, y, resolution=50)
    >>> len(figure.axes), len(figure.axes[0].collections)
    (1, 2)
    """
    resolution = check_integer("resolution", resolution, minimum=2)
    threshold = check_real("threshold", threshold)
    plt = _pyplot()
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ShapeError(f"plot_decision_boundary needs 2-D points (n, 2), got shape {x.shape}")
    if len(y) != len(x):
        raise ShapeError(f"x has {len(x)} points but y has {len(y)} labels")
    if not np.isfinite(x).all():
        raise ValueError("x holds NaN or infinite coordinates; the plot needs finite points")
    low, high = x.min(axis=0), x.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-3)
    u = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    v = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_u, grid_v = np.meshgrid(u, v)
    grid = np.stack([grid_u.ravel(), grid_v.ravel()], axis=1).astype(x.dtype)
    regions = predicted_classes(predict(model, grid, batch_size=4096), threshold)
    if axes is None:
        _, axes = plt.subplots(figsize=(5, 4.5))
    classes = int(max(regions.max(), y.max())) + 1
    axes.pcolormesh(
        grid_u,
        grid_v,
        regions.reshape(grid_u.shape),
        shading="auto",
        cmap="coolwarm",
        vmin=0,
        vmax=max(classes - 1, 1),
        alpha=0.3,
    )
    axes.scatter(
        x[:, 0],
        x[:, 1],
        c=y,
        cmap="coolwarm",
        vmin=0,
        vmax=max(classes - 1, 1),
        s=12,
        edgecolors="k",
        linewidths=0.3,
    )
    axes.set_xlim(u[0], u[-1])
    axes.set_ylim(v[0], v[-1])
    axes.set_aspect("equal")
    return axes.figure
