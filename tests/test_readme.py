"""The README's commands, code examples and claims stay true, and so does the packaging they
describe (the distribution's name, its extras, its license, the Pythons CI runs)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def code_blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def requirement_names(extra: str) -> set[str]:
    return {
        re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()
        for requirement in PYPROJECT["project"]["optional-dependencies"][extra]
    }


# -- the first two commands -------------------------------------------------------------------


def test_readme_opens_with_the_two_commands():
    train, test = code_blocks("bash")[:2]
    assert train.strip().endswith("pip install -e '.[progress,digits]' && python -m minigrad")
    assert test.strip().endswith("pip install -e '.[test]' && pytest")


def test_the_first_command_installs_what_the_demo_and_digits_need():
    """After the first command, `--data digits` runs ("needs no files"): scikit-learn is in."""
    extras = re.search(r"pip install -e '\.\[([a-z,]+)\]'", code_blocks("bash")[0]).group(1)
    installed = set().union(*(requirement_names(extra) for extra in extras.split(",")))
    assert {"tqdm", "scikit-learn"} <= installed
    assert "torch" not in installed  # no multi-GB download on the first run
    assert "`--data digits` needs no files" in README


def test_ci_runs_the_readmes_test_command():
    test_command = code_blocks("bash")[1].strip().split(" && ", 2)[-1]
    assert test_command == "pip install -e '.[test]' && pytest"
    ci_lines = [line.strip() for line in CI.splitlines()]
    assert f"({test_command}) || status=$?" in ci_lines


# -- the distribution: its name, its license, its extras --------------------------------------


def test_the_distribution_is_minigrad_nn_and_every_install_hint_says_so():
    """`minigrad` on PyPI is another project: `pip install 'minigrad[...]'` installs it."""
    assert PYPROJECT["project"]["name"] == "minigrad-nn"
    assert PYPROJECT["project"]["scripts"] == {"minigrad": "minigrad.__main__:main"}
    old_hint = re.compile(r"""pip install ['"]?minigrad[\[\s'"]""")
    files = [
        "README.md",
        "CONTRIBUTING.md",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "minigrad").rglob("*.py")),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py")),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb")),
    ]
    found = [name for name in files if old_hint.search((ROOT / name).read_text())]
    assert not found, f"install hints naming the wrong distribution in {found}"
    assert "pip install 'minigrad-nn[files]'" in README


def test_the_license_is_mit_and_declared_for_the_wheel():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert re.search(r"Copyright \(c\) \d{4} the minigrad authors", text)
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert "[LICENSE](LICENSE)" in README


def test_the_wheel_carries_the_license(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building needs setuptools >= 77 (the test extra brings it)")
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "minigrad", source / "minigrad", ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--quiet", "--wheel-dir", str(tmp_path / "wheels"), str(source)),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    assert wheel.name.startswith("minigrad_nn-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        license_name = f"{dist_info}/licenses/LICENSE"
        assert license_name in names
        assert archive.read(license_name).decode() == (ROOT / "LICENSE").read_text()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "Name: minigrad-nn\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    assert "License-File: LICENSE\n" in metadata
    assert "minigrad/__main__.py" in names and "minigrad/py.typed" in names


def test_the_notebooks_extra_brings_what_fits_progress_bar_needs_in_jupyter():
    """fit's bar is tqdm's; in Jupyter it needs ipywidgets, or tqdm warns (TqdmWarning)."""
    assert {"jupyterlab", "tqdm", "ipywidgets"} <= requirement_names("notebooks")
    assert "ipywidgets" in requirement_names("test")  # the tests run the notebooks with it


def test_the_test_extra_brings_all_the_others():
    assert requirement_names("all") | {"pytest", "hypothesis", "ruff"} <= requirement_names("test")


# -- PyTorch: the CPU build ---------------------------------------------------------------------


def test_torch_install_hints_give_the_cpu_build():
    """A plain `pip install torch` on Linux fetches the CUDA build from PyPI (about 2.7 GB)."""
    for name, text in (("README.md", README), ("CONTRIBUTING.md", CONTRIBUTING)):
        commands = re.findall(r"pip install[^\n`]*torch==[^\n`]*", text)
        assert commands, f"{name} says how to install PyTorch"
        for command in commands:
            assert CPU_INDEX in command, f"{name}: {command!r} fetches the CUDA build"
    # CI keeps the plain pin, which its machines resolve to a local CPU wheel
    assert "python -m pip install --quiet torch==2.13.0" in CI
    assert CPU_INDEX not in CI


# -- the Pythons CI runs --------------------------------------------------------------------------


def test_ci_runs_the_oldest_supported_python_and_the_readme_says_which():
    (line,) = [line for line in CI.splitlines() if line.startswith("PYTHONS=(")]
    versions = line.removeprefix("PYTHONS=(").removesuffix(")").split()
    oldest = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert versions[0] == oldest == "3.10"
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    assert "3.11" in versions  # the PyTorch run
    assert f"Python {oldest} or newer" in README
    shown = ", ".join(versions[:-1]) + " and " + versions[-1]
    assert f"CI runs the tests on {shown}" in README


def test_ci_fails_loudly_when_a_python_it_needs_is_missing(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pyenv").write_text("#!/bin/sh\nexit 1\n")  # a pyenv that knows none
    (tmp_path / "bin" / "pyenv").chmod(0o755)
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        },
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "CI: Python 3.10 is missing: CI runs the tests on 3.10 3.11 3.13; "
        "install it with 'pyenv install 3.10'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ci", "bin"]  # nothing installed


# -- the Python examples: each block on its own ----------------------------------------------------


def run_block(index: int, block: str) -> tuple[str, dict]:
    """Run one README block in a fresh namespace, as a reader pasting it alone would."""
    namespace: dict = {"__name__": f"readme_block_{index}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)
    return out.getvalue(), namespace


PYTHON_BLOCKS = code_blocks("python")


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_each_python_example_runs_on_its_own(index):
    block = PYTHON_BLOCKS[index]
    torch = None
    if "import torch" in block:
        torch = pytest.importorskip("torch", reason="the PyTorch round trip needs PyTorch")
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)  # as a fresh session has it (the oracle
        # tests switch to float64)
    try:
        out, namespace = run_block(index, block)
    finally:
        if torch is not None:
            torch.set_default_dtype(default_dtype)
    for name, value in namespace.items():
        if name.startswith("test_") and callable(value):
            value()  # the README's property test runs too
    # what each block prints, as its comments say
    if "# XOR" in block:
        assert "[False  True  True False]" in out
    if "validation accuracy" in block:
        assert "validation accuracy 1.00" in out
    if "resume_from" in block:
        assert out == "resumed run == uninterrupted run\n"
    if "import torch" in block:
        assert out == "True\n"
    if "accumulated batches" in block:
        assert out == "4 accumulated batches of 16 == one batch of 64: True\n"
    if "mg.Conv2d" in block:
        assert "4.block.0 (Conv2d)     (batch, 16, 4, 4)         2,320" in out  # the summary
        assert out.endswith("test accuracy 0.994\n")


def test_the_examples_cover_what_the_readme_promises():
    joined = "\n".join(PYTHON_BLOCKS)
    for needed in (
        "# XOR",
        "validation accuracy",
        "resume_from",
        "import torch",
        "@given",
        "mg.Conv2d",
        "accumulated batches",
    ):
        assert needed in joined


def test_error_examples_are_the_real_messages():
    import numpy as np

    import minigrad as mg

    (block,) = code_blocks("text")
    lines = block.strip().splitlines()
    assert len(lines) == 6
    for call, shown in zip(lines[::2], lines[1::2], strict=True):
        name, message = shown.split(": ", 1)
        with pytest.raises(getattr(mg, name)) as error:
            eval(call.removeprefix(">>> "), {"mg": mg, "np": np})
        assert str(error.value) == message


# -- the performance claims are the benchmark's file ----------------------------------------------


def test_the_performance_table_is_the_benchmarks_latest_results():
    table = (ROOT / "benchmarks" / "results" / "step.md").read_text().strip()
    assert table in README


def test_the_cnn_performance_table_is_the_cnn_benchmarks_latest_results():
    table = (ROOT / "benchmarks" / "results" / "cnn.md").read_text().strip()
    assert table in README
    assert "python benchmarks/cnn_benchmark.py --write" in README


def test_the_mpi_scaling_table_is_the_mpi_benchmarks_latest_results():
    table = (ROOT / "benchmarks" / "results" / "mpi.md").read_text().strip()
    assert table in README
    assert "python benchmarks/mpi_benchmark.py --write" in README
    assert "![" in README and "(benchmarks/results/mpi.png)" in README


def test_the_performance_notes_are_the_numbers_of_that_run():
    steps = json.loads((ROOT / "benchmarks" / "results" / "step.json").read_text())["steps"]
    wide = {row["optimizer"]: row["isolated"] for row in steps if row["config"] == "wide"}
    extra = [
        f"{round((wide[o]['seconds']['minigrad'] - wide[o]['seconds']['floor']) * 1e6):,} us"
        for o in ("sgd", "momentum", "adam")
    ]
    assert (
        f"takes {extra[0]} more than the floor with\nSGD, {extra[1]} with Momentum and "
        f"{extra[2]} with Adam" in README
    )
    ours = [f"{wide[o]['ratios']['minigrad/floor']:.2f}x" for o in ("sgd", "momentum", "adam")]
    torch = [
        f"{wide[o]['seconds']['torch'] / wide[o]['seconds']['floor']:.2f}x"
        for o in ("sgd", "momentum", "adam")
    ]
    assert (
        f"SGD is {ours[0]} the floor, Momentum {ours[1]} and\nAdam {ours[2]} "
        f"(PyTorch: {torch[0]}, {torch[1]} and {torch[2]})" in README
    )


def test_the_performance_table_measures_the_readmes_loop():
    """The benchmark's main minigrad row is the loop the README shows, word for word."""
    source = (ROOT / "benchmarks" / "step_benchmark.py").read_text()
    minigrad_step = source[source.index("def minigrad_step(") : source.index("def torch_step(")]
    for line in ("loss(model(x), y)", "model.backward(loss.backward())", "opt.step()"):
        assert line in minigrad_step
    assert "input_grad" not in minigrad_step and "backward_parameters" not in minigrad_step
    assert "value = loss(model(x), y)" in README
    assert "model.backward(loss.backward())" in README
