"""Data-parallel training over MPI (minigrad/distributed.py).

The MPI tests launch ``mpiexec -n 2`` and ``-n 3`` on tests/mpi_scenarios.py, three launches
in all (about a second each), and read what each rank wrote. Each launch has a timeout, so a
hang fails the test instead of hanging the run. They are skipped when mpi4py or mpiexec is
missing: ``pip install 'minigrad-nn[distributed]'`` installs both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.distributed import DataParallel, DistributedLoader, parallel_from, shard

SCENARIOS = Path(__file__).with_name("mpi_scenarios.py")
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for one launch; each takes about one


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install 'minigrad-nn[distributed]'",
)


def this_minigrad() -> dict[str, str]:
    """The environment, with this checkout's minigrad first on the path."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def launch(ranks: int, *arguments: str) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python arguments`` (tests/mpi_scenarios.py ... unless they start
    with "-m") with this minigrad."""
    assert MPIEXEC is not None
    command = [MPIEXEC, "-n", str(ranks)]
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        command.append("--oversubscribe")  # more ranks than cores: MPICH needs no flag
    return subprocess.run(
        [*command, sys.executable, *([] if arguments[0] == "-m" else [str(SCENARIOS)]), *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=this_minigrad(),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three launches: training on 2 ranks, on 3 (resuming the 2-rank checkpoint too), and
    the faults on 2, which ends with MPI_Abort."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("two", "three", "faults")}
    two = launch(2, "training", str(folders["two"]))
    assert two.returncode == 0, two.stderr
    three = launch(3, "training", str(folders["three"]), str(folders["two"] / "part2.safetensors"))
    assert three.returncode == 0, three.stderr
    faults = launch(2, "faults", str(folders["faults"]))
    (folders["faults"] / "stderr.txt").write_text(faults.stderr)
    (folders["faults"] / "returncode.txt").write_text(str(faults.returncode))
    return folders


def results(folder: Path, name: str, ranks: int) -> list[dict]:
    return [json.loads((folder / f"{name}.{rank}.json").read_text()) for rank in range(ranks)]


# -- on MPI --------------------------------------------------------------------------------


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_n_ranks_take_the_steps_of_one_process_with_n_times_the_batch(runs, ranks, optimizer):
    folder = runs["two" if ranks == 2 else "three"]
    for result in results(folder, f"equivalence-{optimizer}", ranks):
        assert result["relative_difference"] < 1e-12
        assert result["same_on_every_rank"]  # bit for bit
        assert result["deterministic"]  # the same seed and ranks: the same run, bit for bit
        # the logs are sample-weighted means over every rank's samples
        for name, values in result["history"].items():
            np.testing.assert_allclose(values, result["history_single"][name], rtol=1e-12)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_only_rank_0_writes_files_and_resuming_is_exact(runs, ranks):
    seen = results(runs["two" if ranks == 2 else "three"], "files", ranks)
    assert [result["own_file"] for result in seen] == [True] + [False] * (ranks - 1)
    assert all(result["resumed_exactly"] for result in seen)
    if ranks == 3:  # a checkpoint written on 2 ranks goes on training on 3
        assert all(result["resumed_other"] == 4 for result in seen)


@needs_mpi
def test_uneven_data_is_padded_and_every_rank_ends_with_the_same_parameters(runs):
    for folder, ranks in ((runs["two"], 2), (runs["three"], 3)):
        seen = results(folder, "uneven", ranks)
        assert all(result == seen[0] for result in seen)


@needs_mpi
def test_an_architecture_mismatch_is_an_error_on_every_rank(runs):
    for result in results(runs["faults"], "mismatch", 2):
        assert result["raised"] == "ValueError"
        assert "rank 1's model or settings differ from rank 0's" in result["message"]
        assert "shape (5, 3)" in result["message"] and "shape (6, 3)" in result["message"]


@needs_mpi
@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("bad_batch", "ValueError: a bad batch on rank 1, on purpose"),
        ("bad_data", "ValueError: fit: y holds NaN or infinite values"),
    ],
)
def test_an_error_on_one_rank_stops_every_rank_with_its_message(runs, scenario, message):
    zero, one = results(runs["faults"], scenario, 2)
    assert one["raised"] == "ValueError"
    assert zero["raised"] == "DistributedError"
    assert zero["message"].startswith(f"rank 1 of 2 failed, so every rank stopped: {message}")


@needs_mpi
def test_an_error_no_rank_can_agree_on_aborts_every_rank(runs):
    folder = runs["faults"]
    assert (folder / "returncode.txt").read_text() != "0"
    assert not list(folder.glob("not_aborted.*"))  # neither rank went on
    stderr = (folder / "stderr.txt").read_text()
    assert "rank 1 of 2 failed; stopping every rank (MPI_Abort)" in stderr
    assert "an epoch begins badly on rank 1, on purpose" in stderr


@needs_mpi
def test_the_command_on_two_ranks_trains_as_one_process_with_twice_the_batch():
    options = ["--epochs", "3", "--quiet", "--seed", "1"]
    two = launch(2, "-m", "minigrad", "--distributed", "--batch-size", "16", *options)
    assert two.returncode == 0, two.stderr
    one = subprocess.run(
        [sys.executable, "-m", "minigrad", "--batch-size", "32", *options],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=this_minigrad(),
    )
    assert "on 2 ranks (MPI)" in two.stdout and two.stdout.count("trained 3 epochs") == 1
    accuracy = two.stdout.splitlines()[-1].split(": ", 1)[1]  # "train accuracy ..., test ..."
    assert one.stdout.splitlines()[-1].endswith(accuracy)


# -- without MPI ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size"), [(7, 3), (12, 4), (5, 8), (1, 2)])
def test_shards_cover_the_order_with_the_same_count_on_every_rank(n, size):
    order = np.random.default_rng(0).permutation(n)
    shards = [shard(order, rank, size) for rank in range(size)]
    assert {len(piece) for piece in shards} == {-(-n // size)}
    assert set(np.concatenate(shards)) == set(order)
    padded = np.concatenate([order, np.resize(order, -n % size)])
    np.testing.assert_array_equal(np.stack(shards, axis=1).ravel(), padded)


def test_batches_of_all_ranks_together_are_the_single_process_batches():
    x = np.arange(24)[:, None]
    loaders = [DistributedLoader(x, x, rank, 3, batch_size=2, seed=5) for rank in range(3)]
    single = mg.DataLoader(x, x, batch_size=6, seed=5)
    assert {len(loader) for loader in loaders} == {len(single)}
    for together, (whole, _) in zip(zip(*loaders, strict=True), single, strict=True):
        rows = np.concatenate([xb for xb, _ in together])
        np.testing.assert_array_equal(np.sort(rows.ravel()), np.sort(whole.ravel()))


def test_distributed_must_be_a_flag_or_a_dataparallel():
    assert parallel_from(False) is None
    with pytest.raises(TypeError, match="distributed must be True, False or a minigrad"):
        parallel_from("yes")


def test_without_mpi4py_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    model = mg.Dense(1, 1, rng=0)
    with pytest.raises(ImportError, match=r"pip install 'minigrad-nn\[distributed\]'"):
        mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), [[1.0]], [[1.0]], epochs=1,
               progress=False, distributed=True)  # fmt: skip


X = np.zeros((10, 2), np.float32)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: DistributedLoader(X, X, "0", 2), TypeError, r"rank must be an integer, got '0'"),
        (lambda: DistributedLoader(X, X, True, 2), TypeError, r"rank must be an integer, got True"),
        (lambda: DistributedLoader(X, X, -1, 2), ValueError, r"rank must be >= 0, got -1"),
        (lambda: DistributedLoader(X, X, 2, 2), ValueError, r"size must be >= 3, got 2"),
        (lambda: DistributedLoader(X, X, 0, 2.0), TypeError, r"size must be an integer, got 2\.0"),
        (lambda: DataParallel(bucket_bytes="1"), TypeError, r"bucket_bytes must be an integer"),
        (lambda: DataParallel(bucket_bytes=True), TypeError, r"bucket_bytes must be an integer"),
        (lambda: DataParallel(bucket_bytes=0), ValueError, r"bucket_bytes must be >= 1, got 0"),
        (lambda: DataParallel(comm="world"), TypeError, r"comm must be an mpi4py communicator"),
    ],
)
def test_loader_and_data_parallel_arguments_are_checked_before_mpi_starts(make, error, message):
    with pytest.raises(error, match=message):
        make()
