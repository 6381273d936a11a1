"""The notebooks run top to bottom, within their time limit, and are kept with their outputs."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: wall-clock seconds each notebook may take, kernel start included (they take 2-10 s here)
TIME_LIMIT = 120
#: the notebooks that draw: the committed files must show their plots
WITH_PLOTS = (
    "01-quickstart",
    "02-optimizers",
    "03-real-data",
    "04-your-own-layer",
    "06-convolutions",
    "07-fine-tuning",
)
NAMES = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))


def test_the_series_is_complete():
    assert NAMES == [
        "01-quickstart",
        "02-optimizers",
        "03-real-data",
        "04-your-own-layer",
        "05-under-the-hood",
        "06-convolutions",
        "07-fine-tuning",
    ]


@pytest.mark.skipif(
    os.environ.get("MINIGRAD_RUN_NOTEBOOKS") == "0",
    reason="MINIGRAD_RUN_NOTEBOOKS=0: CI executes the notebooks in its Python 3.11 run only",
)
@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_without_errors_within_its_time_limit(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=TIME_LIMIT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.monotonic()
    client.execute()  # raises CellExecutionError, naming the cell, on any exception
    seconds = time.monotonic() - start
    assert seconds < TIME_LIMIT, f"{name} took {seconds:.0f} s, over its {TIME_LIMIT} s limit"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"]


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_notebook_keeps_its_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), "run top to bottom once, then save"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    if name in WITH_PLOTS:
        assert images, f"{name} should be saved with its plots"
    text = "".join(o.get("text", "") for o in outputs)
    for local in (str(NOTEBOOKS.parent), tempfile.gettempdir()):
        assert local not in text, f"a path of the machine that ran {name} is in its outputs"


def test_fits_progress_bar_in_jupyter_is_a_widget_without_warnings():
    """In Jupyter, tqdm draws fit's bar as a widget; without ipywidgets it warns instead
    (TqdmWarning: IProgress not found), which is why the notebooks extra brings ipywidgets."""
    pytest.importorskip("tqdm")
    pytest.importorskip("ipywidgets", reason="the notebooks and test extras bring ipywidgets")
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import minigrad as mg\n"
            "x, y = mg.data.make_blobs(64, centers=3, seed=0)\n"
            "model = mg.Sequential(mg.Dense(2, 3, rng=0))\n"
            "history = mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=2)"
        )
    )
    nbclient.NotebookClient(notebook, timeout=TIME_LIMIT, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Warning" not in streams and "IProgress" not in streams
    bars = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(bars) == 2  # one bar per epoch, kept
