"""Runs under ``mpiexec -n N python tests/mpi_scenarios.py GROUP FOLDER`` for
tests/test_distributed.py: each rank runs the group's scenarios and writes what it saw to
``FOLDER/<scenario>.<rank>.json``. Several checks share one launch, since starting MPI and
importing minigrad cost more than the training here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.distributed import DataParallel

OPTIMIZERS = {
    "sgd": lambda params: mg.SGD(params, lr=0.1),
    "momentum": lambda params: mg.Momentum(params, lr=0.05, momentum=0.9),
    "adam": lambda params: mg.Adam(params, lr=0.01),
}


def data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 3))
    return x, np.sin(x @ np.array([[1.0], [-2.0], [0.5]]))


def model(hidden: int = 5) -> mg.Sequential:
    return mg.Sequential(
        mg.Dense(3, hidden, rng=1, dtype=np.float64),
        mg.Tanh(),
        mg.Dense(hidden, 1, rng=2, dtype=np.float64),
    )


def train(optimizer: str, batch_size: int, distributed: bool, **options):
    net = model()
    x, y = data()
    history = mg.fit(
        net,
        mg.MSE(),
        OPTIMIZERS[optimizer](net.parameters()),
        x,
        y,
        epochs=options.pop("epochs", 3),
        batch_size=batch_size,
        seed=0,
        metrics=["mae"],
        progress=False,
        distributed=distributed,
        **options,
    )
    return net, dict(history)


def flat(net: mg.Layer) -> np.ndarray:
    return np.concatenate([p.value.ravel() for p in net.parameters()])


def write(folder: Path, name: str, rank: int, result: dict) -> None:
    (folder / f"{name}.{rank}.json").write_text(json.dumps(result))


def outcome(function) -> dict:
    """What a scenario raised: its type and message, or nothing."""
    try:
        function()
    except Exception as error:
        return {"raised": type(error).__name__, "message": str(error)}
    return {"raised": None}


def training(folder: Path, parallel: DataParallel, checkpoint: Path | None) -> None:
    """Equivalence with one process and N times the batch, determinism, the logs, files."""
    rank, size = parallel.rank, parallel.size
    b = 4
    for name in OPTIMIZERS:
        net, history = train(name, b, True)
        again, history_again = train(name, b, True)
        single, history_single = train(name, size * b, False)  # one process, N b a batch
        everyone = parallel.comm.allgather(flat(net))
        difference = np.abs(flat(net) - flat(single)).max() / np.abs(flat(single)).max()
        write(
            folder,
            f"equivalence-{name}",
            rank,
            {
                "relative_difference": float(difference),
                "same_on_every_rank": all(np.array_equal(p, everyone[0]) for p in everyone),
                "deterministic": bool(np.array_equal(flat(net), flat(again)))
                and history == history_again,
                "history": history,
                "history_single": history_single,
            },
        )
    # only rank 0 writes files; resuming gives the run that was never interrupted
    own = folder / f"written-by-{rank}.safetensors"
    net, full = train("adam", b, True, epochs=4, callbacks=[mg.ModelCheckpoint(own)])
    part = folder / f"part{size}.safetensors"
    train("adam", b, True, epochs=2, callbacks=[mg.ModelCheckpoint(part)])
    resumed, history = train("adam", b, True, epochs=4, resume_from=part)
    result = {
        "own_file": own.exists(),
        "resumed_exactly": bool(np.array_equal(flat(net), flat(resumed))) and history == full,
    }
    if checkpoint is not None:  # written by a run on another number of ranks
        _, other = train("adam", b, True, epochs=4, resume_from=checkpoint)
        result["resumed_other"] = len(other["loss"])
    write(folder, "files", rank, result)
    # n not a multiple of N b: padded as DistributedSampler, every rank the same batches
    x, y = data(25)
    net = model()
    history = mg.fit(net, mg.MSE(), mg.SGD(net.parameters()), x, y, epochs=2, batch_size=3,
                     seed=0, progress=False, distributed=True)  # fmt: skip
    write(folder, "uneven", rank, {"loss": history["loss"], "parameters": flat(net).tolist()})


class FailAt(mg.Callback):
    """Raises on one rank: before batch ``batch`` (a bad batch) or as an epoch begins."""

    def __init__(self, rank: int, hook: str, batch: int = 0) -> None:
        self.rank, self.hook, self.batch = rank, hook, batch

    def on_batch_begin(self, state):
        if self.hook == "batch" and state.rank == self.rank and state.batch == self.batch:
            raise ValueError(f"a bad batch on rank {state.rank}, on purpose")

    def on_epoch_begin(self, state):
        if self.hook == "epoch" and state.rank == self.rank and state.epoch == 1:
            raise ValueError(f"an epoch begins badly on rank {state.rank}, on purpose")


def faults(folder: Path, parallel: DataParallel) -> None:
    """Errors that every rank raises together; then one that only MPI_Abort can stop."""
    rank = parallel.rank
    x, y = data()

    def mismatch():
        net = mg.Sequential(mg.Dense(3, 5 + (rank == 1), rng=0), mg.Dense(5 + (rank == 1), 1))
        mg.fit(net, mg.MSE(), mg.SGD(net.parameters()), x, y, epochs=1, progress=False,
               distributed=True)  # fmt: skip

    def bad_batch():
        train("sgd", 4, True, callbacks=[FailAt(1, "batch", batch=1)])

    def bad_data():
        broken = y.copy()
        if rank == 1:
            broken[3] = np.nan
        net = model()
        mg.fit(net, mg.MSE(), mg.SGD(net.parameters()), x, broken, epochs=1, progress=False,
               distributed=True)  # fmt: skip

    for scenario in (mismatch, bad_batch, bad_data):
        write(folder, scenario.__name__, rank, outcome(scenario))
    # nothing to agree on: rank 1 aborts the job, which must end within the test's timeout
    train("sgd", 4, True, callbacks=[FailAt(1, "epoch")])
    write(folder, "not_aborted", rank, {})


if __name__ == "__main__":
    group, folder = sys.argv[1], Path(sys.argv[2])
    parallel = DataParallel()
    if group == "training":
        training(folder, parallel, Path(sys.argv[3]) if len(sys.argv) > 3 else None)
    else:
        faults(folder, parallel)
