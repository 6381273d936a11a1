"""``python -m minigrad``: it trains and reports, and its options are checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg
from minigrad.__main__ import main

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


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


def test_the_readme_demo_ends_with_the_line_the_docs_show(capsys):
    """The first command's run (40 epochs, every default) reaches the accuracies that the
    README and the getting-started page print for it: 1.0000 on both, at least 0.99 here."""
    main(["--quiet"])
    train, test = accuracies(capsys.readouterr().out)
    assert train >= 0.99 and test >= 0.99
    shown = "train accuracy 1.0000, test accuracy 1.0000"
    docs = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
    assert shown in docs.read_text()


@pytest.mark.parametrize("data", ["xor", "moons", "circles", "blobs"])
def test_every_built_in_data_set_trains(capsys, data):
    main(["--data", data, "--epochs", "15", "--quiet", "--optimizer", "momentum", "--cosine"])
    _, test = accuracies(capsys.readouterr().out)
    assert test > 0.85


def test_digits_reach_the_accuracy_the_readme_states_for_each_seed_it_names(capsys):
    """The README's sentence, read back: its numbers are this test's numbers."""
    pytest.importorskip("sklearn")
    claim = re.search(
        r"`python -m minigrad --data digits` .*? reaches ([\d.]+)% test accuracy with the "
        r"default\s+`--seed 0`, and ([\d.]+)% to ([\d.]+)% over `--seed 0` to `--seed (\d)`",
        " ".join(README.split()),
    )
    assert claim, "the README states what --data digits reaches"
    seed_0, low, high = (float(claim.group(i)) / 100 for i in (1, 2, 3))
    seeds = range(int(claim.group(4)) + 1)
    tests = []
    for seed in seeds:
        main(["--data", "digits", "--quiet", "--seed", str(seed)])
        out = capsys.readouterr().out
        assert out.startswith("digits: 1437 training and 360 test samples, 10 classes")
        tests.append(accuracies(out)[1])
    one_image = 1 / 360  # BLAS differences between machines may flip an image or so
    assert tests[0] == pytest.approx(seed_0, abs=one_image)
    assert min(tests) == pytest.approx(low, abs=one_image)
    assert max(tests) == pytest.approx(high, abs=one_image)


@pytest.mark.skipif(not MNIST.is_dir(), reason="the MNIST files are not beside the repository")
def test_a_folder_of_mnist_files_trains(capsys):
    main(["--data", str(MNIST), "--hidden", "128", "--epochs", "3", "--quiet"])
    out = capsys.readouterr().out
    assert "8000 training and 2000 test samples, 10 classes" in out
    assert accuracies(out)[1] > 0.9


def error_line(capsys, argv: list[str], status: int) -> str:
    """Run the command, expect it to exit with ``status``; its last stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "-1"], "argument --epochs: expected an integer >= 0, got -1"),
        (["--epochs", "1.5"], "argument --epochs: expected an integer >= 0, got '1.5'"),
        (["--hidden", "0"], "argument --hidden: expected an integer >= 1, got 0"),
        (["--hidden", "64", "-3"], "argument --hidden: expected an integer >= 1, got -3"),
        (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
        (["--lr", "nan"], "argument --lr: expected a finite number >= 0, got nan"),
        (["--lr", "inf"], "argument --lr: expected a finite number >= 0, got inf"),
        (["--lr", "-0.1"], "argument --lr: expected a finite number >= 0, got -0.1"),
        (["--lr", "fast"], "argument --lr: expected a number >= 0, got 'fast'"),
        (
            ["--data", "nonsense"],
            "argument --data: expected one of spirals, xor, moons, circles, blobs, digits or a "
            "folder of MNIST IDX files, got 'nonsense', which does not exist",
        ),
        (["--save", ""], "argument --save: expected a file path, got ''"),
    ],
)
def test_a_bad_option_value_is_one_error_line_naming_the_option(capsys, argv, message):
    assert error_line(capsys, [*argv, "--quiet"], status=2) == f"minigrad: error: {message}"


def test_save_refuses_a_folder_or_a_place_it_cannot_write_before_training(capsys, tmp_path):
    line = error_line(capsys, ["--save", str(tmp_path)], status=2)
    assert line == (
        f"minigrad: error: argument --save: {tmp_path} is a folder; give a file path such as "
        f"{tmp_path / 'model.safetensors'}"
    )
    line = error_line(capsys, ["--save", f"{tmp_path}/runs/"], status=2)
    assert line.endswith(
        f"{tmp_path}/runs/ is a folder; give a file path such as "
        f"{tmp_path / 'runs' / 'model.safetensors'}"
    )
    (tmp_path / "notes.txt").write_text("a file")
    line = error_line(capsys, ["--save", str(tmp_path / "notes.txt" / "m.safetensors")], 2)
    assert line.endswith(
        f"cannot create {tmp_path}/notes.txt/m.safetensors: {tmp_path}/notes.txt is not a folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # the probe left nothing


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_save_into_a_folder_that_refuses_files_is_refused_before_training(capsys):
    # /proc refuses new files even to root, for whom access() would say "writable"
    line = error_line(capsys, ["--save", "/proc/model.safetensors"], status=2)
    assert line.startswith(
        "minigrad: error: argument --save: cannot write /proc/model.safetensors: /proc does "
        "not accept new files ("
    )
    assert capsys.readouterr().out == ""  # nothing trained


def test_save_creates_missing_folders(capsys, tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "runs" / "today" / "model.safetensors"
    main(["--epochs", "1", "--quiet", "--save", str(path)])
    assert f"saved the model to {path}" in capsys.readouterr().out
    assert path.is_file()


def test_digits_without_scikit_learn_is_one_line_with_the_install_command(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if not installed
    assert error_line(capsys, ["--data", "digits", "--quiet"], status=2) == (
        "minigrad: error: --data digits needs scikit-learn, which ships the 8x8 digits: "
        "pip install 'minigrad-nn[digits]' (or pip install scikit-learn)"
    )
    assert capsys.readouterr().out == ""


def test_a_folder_without_mnist_files_is_one_line_that_says_what_it_needs(capsys, tmp_path):
    needs = (
        "the folder must hold MNIST's IDX files (train-images-idx3-ubyte and "
        "train-labels-idx1-ubyte, or the t10k- test files, raw or .gz)"
    )
    assert error_line(capsys, ["--data", str(tmp_path), "--quiet"], status=2) == (
        f"minigrad: error: --data {tmp_path}: no t10k-images-idx3-ubyte or "
        f"t10k-images-idx3-ubyte.gz in {tmp_path}; {needs}"
    )
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not idx")
    assert error_line(capsys, ["--data", str(tmp_path), "--quiet"], status=2) == (
        f"minigrad: error: --data {tmp_path}: {tmp_path}/train-images-idx3-ubyte is not an "
        f"IDX file: it must start with two zero bytes, got b'no'; {needs}"
    )


def test_a_diverging_run_is_one_line_that_points_at_the_learning_rate(capsys):
    line = error_line(capsys, ["--lr", "1000", "--optimizer", "sgd", "--quiet"], status=1)
    assert line.startswith("minigrad: error: training diverged at epoch 1, batch")
    assert line.endswith("the learning rate (1000) is probably too large; try 100 (--lr 100)")


def test_a_failed_save_after_training_is_one_line(capsys, monkeypatch, tmp_path):
    pytest.importorskip("safetensors")

    def full_disk(model, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("minigrad.__main__.save", full_disk)
    path = tmp_path / "model.safetensors"
    line = error_line(capsys, ["--epochs", "1", "--quiet", "--save", str(path)], status=1)
    assert line == (
        f"minigrad: error: could not save the model to {path}: [Errno 28] No space left on "
        f"device: '{path}'; choose another --save path"
    )


def test_out_of_memory_and_ctrl_c_end_with_one_line(capsys, monkeypatch):
    def too_big(*args):
        raise MemoryError("Unable to allocate 14.6 TiB")

    monkeypatch.setattr("minigrad.__main__.build_model", too_big)
    assert error_line(capsys, ["--quiet"], status=1) == (
        "minigrad: error: out of memory building the model (Unable to allocate 14.6 TiB); "
        "use smaller --hidden widths"
    )
    monkeypatch.undo()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("minigrad.__main__.fit", interrupted)
    assert error_line(capsys, ["--quiet"], status=130) == "minigrad: interrupted"


def test_the_program_prints_no_traceback(tmp_path):
    """As a user runs it: one error line on stderr and a non-zero status."""
    for argv, status in (
        (["--data", str(tmp_path)], 2),
        (["--lr", "1000", "--optimizer", "sgd"], 1),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "minigrad", "--quiet", *argv], capture_output=True, text=True
        )
        assert result.returncode == status
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("minigrad: error: ")


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


@pytest.mark.parametrize("data", ["digits", "moons"])
def test_a_saved_model_gives_the_reported_accuracy_on_raw_inputs(capsys, tmp_path, data):
    """The standardisation is part of the model (a Normalization layer first), so a model
    loaded from --save scores on the data as it comes what the command reported."""
    pytest.importorskip("safetensors")
    if data == "digits":
        pytest.importorskip("sklearn")
        x, y = mg.data.load_digits()
    else:
        x, y = mg.data.make_moons(1000, noise=0.15, seed=0)
    path = tmp_path / "model.safetensors"
    main(["--data", data, "--epochs", "5", "--quiet", "--save", str(path)])
    reported = float(re.search(r"test accuracy (\d\.\d+)", capsys.readouterr().out).group(1))
    _, x_test, _, y_test = mg.data.train_test_split(x, y, test_size=0.2, seed=0)
    model = mg.load(path)
    assert isinstance(model[0], mg.Normalization)
    assert mg.accuracy(mg.predict(model, x_test), y_test) == pytest.approx(reported, abs=5e-5)


def test_save_to_a_device_or_a_fifo_or_a_name_too_long_is_refused_before_training(capsys, tmp_path):
    import os

    line = error_line(capsys, ["--save", "/dev/null"], status=2)
    assert "/dev/null is not a regular file" in line
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is not a regular file" in error_line(capsys, ["--save", str(fifo)], status=2)
    line = error_line(capsys, ["--save", str(tmp_path / ("a" * 300))], status=2)
    assert "File name too long" in line and len(line) < 400


def test_zero_epochs_with_cosine_is_not_an_error(capsys):
    main(["--epochs", "0", "--cosine", "--quiet"])
    assert "trained 0 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("redirect", ["| head -c 1", ">&-", "> /dev/full"])
def test_output_that_cannot_be_written_is_never_a_traceback(redirect):
    command = f"{sys.executable} -m minigrad --epochs 1 --quiet {redirect}"
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert "Traceback" not in result.stderr
    if redirect == "> /dev/full":
        assert result.stderr.strip().endswith("No space left on device")
        assert result.stderr.startswith("minigrad: error: cannot write the output")


def test_model_cnn_trains_a_lenet_on_the_digits_and_refuses_points_in_the_plane(capsys):
    pytest.importorskip("sklearn")
    from minigrad.__main__ import main

    main(["--data", "digits", "--model", "cnn", "--epochs", "1", "--quiet", "--hidden", "16"])
    out = capsys.readouterr().out
    assert "Conv2d(1, 8, kernel_size=(5, 5)" in out and "test accuracy" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "spirals", "--model", "cnn"])
    assert exit_info.value.code == 2
    assert "--model cnn needs image data" in capsys.readouterr().err
