"""``python -m minigrad``: it trains and reports, and its options are checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from minigrad.__main__ import main

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def accuracies(output: str) -> tuple[float, float]:
    line = output.strip().splitlines()[-1]
    assert line.startswith("trained ")
    train = float(line.split("train accuracy ")[1].split(",")[0])
    test = float(line.split("test accuracy ")[1])
    return train, test


def test_the_default_run_learns_the_spirals(capsys):
    main(["--quiet", "--epochs", "30"])
    out = capsys.readouterr().out
    assert out.startswith("spirals: 800 training and 200 test samples, 2 classes")
    train, test = accuracies(out)
    assert train > 0.97 and test > 0.95


@pytest.mark.parametrize("data", ["xor", "moons", "circles", "blobs"])
def test_every_built_in_data_set_trains(capsys, data):
    main(["--data", data, "--epochs", "15", "--quiet", "--optimizer", "momentum", "--cosine"])
    _, test = accuracies(capsys.readouterr().out)
    assert test > 0.85


@pytest.mark.skipif(not MNIST.is_dir(), reason="the MNIST files are not beside the repository")
def test_a_folder_of_mnist_files_trains(capsys):
    main(["--data", str(MNIST), "--hidden", "128", "--epochs", "3", "--quiet"])
    out = capsys.readouterr().out
    assert "8000 training and 2000 test samples, 10 classes" in out
    assert accuracies(out)[1] > 0.9


def test_bad_options_exit_with_a_message(capsys):
    with pytest.raises(SystemExit, match="--data must be one of"):
        main(["--data", "nonsense", "--quiet"])
    with pytest.raises(SystemExit):
        main(["--batch-size", "0"])
    assert "--batch-size and --hidden widths >= 1" in capsys.readouterr().err


def test_the_module_and_help_run_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "minigrad", "--help"], capture_output=True, text=True, check=True
    )
    for option in (
        "--data",
        "--hidden",
        "--activation",
        "--optimizer",
        "--lr",
        "--epochs",
        "--batch-size",
        "--seed",
    ):
        assert option in result.stdout
