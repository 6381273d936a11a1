"""Plots: the curves hold the History's numbers, the regions hold the model's predictions."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import make_moons

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minigrad.plots import plot_decision_boundary, plot_history  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_history_curves_hold_the_numbers():
    history = {
        "loss": [1.0, 0.5, 0.25],
        "accuracy": [0.5, 0.7, 0.9],
        "val_loss": [1.1, 0.6, 0.4],
        "val_accuracy": [0.4, 0.6, 0.8],
        "lr": [0.1, 0.1, 0.1],
    }
    figure = plot_history(history)
    left, right = figure.axes
    lines = {line.get_label(): line for ax in figure.axes for line in ax.get_lines()}
    assert set(lines) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    for name, line in lines.items():
        assert list(line.get_xdata()) == [1, 2, 3]
        assert list(line.get_ydata()) == history[name]
    assert lines["val_loss"].get_linestyle() == "--"
    assert lines["val_loss"] in left.get_lines() and lines["accuracy"] in right.get_lines()


def test_a_loss_only_history_gets_one_panel_and_a_history_without_loss_is_refused():
    assert len(plot_history({"loss": [1.0, 0.5]}).axes) == 1
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_history({"accuracy": [1.0]})


def test_decision_regions_are_the_model_predictions():
    x, y = make_moons(200, noise=0.1, seed=0)
    model = mg.Sequential(mg.Dense(2, 16, rng=0), mg.Tanh(), mg.Dense(16, 2, rng=1))
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.Adam(model.parameters(), lr=0.05),
        x,
        y,
        epochs=30,
        progress=False,
    )
    figure = plot_decision_boundary(model, x, y, resolution=50)
    (ax,) = figure.axes
    mesh, scatter = ax.collections
    # the coloured regions are the model's classes on the grid around the data
    low, high = x.min(axis=0), x.max(axis=0)
    margin = 0.1 * (high - low)
    assert ax.get_xlim() == pytest.approx((low[0] - margin[0], high[0] + margin[0]), rel=1e-6)
    u = np.linspace(low[0] - margin[0], high[0] + margin[0], 50)
    v = np.linspace(low[1] - margin[1], high[1] + margin[1], 50)
    grid = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2).astype(np.float32)
    predicted = model(grid).argmax(axis=1)
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).ravel(), predicted)
    assert 0.2 < predicted.mean() < 0.8  # both classes own a region
    np.testing.assert_array_equal(scatter.get_offsets(), x)
    np.testing.assert_array_equal(scatter.get_array(), y)


def test_decision_boundary_checks_its_input():
    model = mg.Sequential(mg.Dense(3, 2, rng=0))
    with pytest.raises(ValueError, match=r"2-D points \(n, 2\), got shape \(4, 3\)"):
        plot_decision_boundary(model, np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="4 points but y has 3"):
        plot_decision_boundary(model, np.zeros((4, 2)), np.zeros(3))


def test_without_matplotlib_the_error_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # as if not installed
    for draw in (
        lambda: plot_history({"loss": [1.0]}),
        lambda: plot_decision_boundary(mg.Sequential(mg.Dense(2, 2)), np.zeros((2, 2)), [0, 1]),
    ):
        with pytest.raises(ImportError) as info:
            draw()
        assert str(info.value) == (
            "minigrad's plots need matplotlib: pip install 'minigrad-nn[plot]' "
            "(or pip install matplotlib)"
        )


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"resolution": 1}, ValueError, "resolution must be >= 2, got 1"),
        ({"resolution": 1.5}, TypeError, r"resolution must be an integer, got 1.5 \(float\)"),
        ({"resolution": "50"}, TypeError, r"resolution must be an integer, got '50' \(str\)"),
        ({"resolution": True}, TypeError, r"resolution must be an integer, got True \(bool\)"),
        ({"threshold": float("nan")}, ValueError, "threshold must be a finite number, got nan"),
        ({"threshold": "0.5"}, TypeError, r"threshold must be a real number, got '0.5' \(str\)"),
    ],
)
def test_decision_boundary_names_a_bad_resolution_or_threshold(arguments, error, message):
    x, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(error, match=message):
        plot_decision_boundary(mg.Sequential(mg.Dense(2, 1, rng=0)), x, y, **arguments)


def test_decision_boundary_accepts_numpy_integers_and_refuses_nan_points():
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    figure = plot_decision_boundary(model, np.eye(2), [0, 1], resolution=np.int64(5))
    assert np.asarray(figure.axes[0].collections[0].get_array()).size == 25
    with pytest.raises(ValueError, match="x holds NaN or infinite coordinates"):
        plot_decision_boundary(model, np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1])


def test_plot_history_names_an_entry_of_the_wrong_length_or_a_wrong_type():
    with pytest.raises(mg.ShapeError, match=r"history\['val_loss'\] has 1 values but history"):
        plot_history({"loss": [1.0, 0.5], "val_loss": [1.0]})
    with pytest.raises(TypeError, match="a History or a dict of per-epoch lists, got list"):
        plot_history([("loss", [1.0])])


@pytest.mark.parametrize(
    ("history", "axes", "message"),
    [
        ({"loss": [1.0]}, "x", "axes must be matplotlib Axes"),
        ({1: [1.0], "loss": [1.0]}, None, "history keys must be names"),
        ({"loss": 5}, None, r"history\['loss'\] must be a list of one number per epoch"),
    ],
)
def test_plot_history_names_bad_arguments(history, axes, message):
    with pytest.raises(TypeError, match=message):
        plot_history(history, axes=axes)


def test_plot_history_draws_into_the_axes_of_a_subfigure():
    figure = plt.figure()
    left, _ = figure.subfigures(1, 2)
    axes = left.subplots(1, 2)
    drawn = plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}, axes=axes)
    assert drawn is left
    assert [ax.get_ylabel() for ax in axes] == ["loss", "metric"]
    plt.close(figure)
