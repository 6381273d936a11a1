"""Data-parallel training over MPI on 1, 2 and 4 ranks, and a cost model that extends it to
1024 ranks on a cluster.

Measured (``fit(..., distributed=DataParallel(comm))``, float32, CrossEntropy, SGD):

- mlp: 784-256-128-10 with ReLU (MNIST's shape), 0.94 MB of gradients a step;
- cnn: LeNet, Conv2d(1, 8, 5, padding=2), ReLU, MaxPool2d(2), Conv2d(8, 16, 5), ReLU,
  MaxPool2d(2), Flatten, Dense(400, 120), ReLU, Dense(120, 84), ReLU, Dense(84, 10) on
  1x28x28 images: more compute per sample and 0.25 MB of gradients.

Random data of MNIST's shape (fixed seed). Strong scaling: the global batch is fixed at 256,
so N ranks take ``batch_size=256 // N`` each and every N trains the same steps (the same
training, as tests/test_distributed.py checks); only then is "speed-up" a statement about
the same work. Each rank runs with one BLAS thread (one rank per core, as MPI jobs are
run), so 1 rank uses one of this machine's cores and 2 ranks both; 4 ranks are
oversubscribed (two ranks per core) and labelled so. Each launch trains one warm-up epoch
and then ``--repeats`` timed epochs of ``--steps`` steps; an epoch is timed from a barrier
at its start to its end (fit's checks of the data before training are left out). Rank 0
reports, per epoch, the slowest rank's time and the ranks' mean and least time inside
``Allreduce`` (:class:`minigrad.distributed.GradientBuckets`' counters; they include waiting
for the slowest rank, so the least, the last rank to arrive, is nearest to the transfer
alone), then the medians over epochs. The 1-rank launch also times every per-rank batch
the model needs, b = 256, 128, ..., 1 (more steps for the small ones), which calibrates
t_compute(b), the compute time of a step on one core, step time minus Allreduce. The time
per sample is not a constant: at small b, Python, the optimizer and fit's bookkeeping cost
the same whatever the batch; at large b the CNN's im2col buffers outgrow the caches. So the
model interpolates the measured t_compute(b) (log-log) instead of using t_sample * b.

This machine's MPI is calibrated with an Allreduce sweep over message sizes on 2 ranks,
fitted (relative least squares) with the ring model at N = 2: t = 2 latency + bytes / B.

The cost model (ring Allreduce, one call per gradient bucket):

    t_step(N) = t_compute(b(N)) + calls * 2 (N - 1) * latency + 2 (N - 1) / N * bytes / B

with b(N) = 256 / N (strong scaling, N <= 256) or 64 (weak scaling, a fixed per-rank batch,
N <= 1024), for a 10 Gbit/s Ethernet link (25 us latency, TCP) and a 100 Gbit/s InfiniBand
link (2 us), and for this machine's measured latency and bandwidth, compared with the
measured 1, 2 and 4 ranks (the compute term times N / cores when N ranks share fewer
cores). The cluster rows assume one of this machine's cores per rank.

Run:  python benchmarks/mpi_benchmark.py            (about a minute; prints the tables)
      python benchmarks/mpi_benchmark.py --write    (and writes benchmarks/results/mpi.*)
      python benchmarks/mpi_benchmark.py --smoke    (seconds; checks that everything runs)
Needs mpi4py and mpiexec (``pip install -e '.[bench,distributed]'``); this script starts
``mpiexec`` itself. Results are written only when asked: --write puts mpi.json, mpi.md and
mpi.png in benchmarks/results/ (the files the README quotes), --out DIR in another folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

import minigrad as mg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_benchmark import environment  # the shared environment line

RESULTS = Path(__file__).resolve().parent / "results"
GLOBAL_BATCH = 256
WEAK_BATCH = 64
RANKS = (1, 2, 4)
#: name: (bandwidth in bytes/s, latency in seconds)
LINKS = {
    "10 Gbit/s Ethernet": (10e9 / 8, 25e-6),
    "100 Gbit/s InfiniBand": (100e9 / 8, 2e-6),
}
#: the N of the prediction table
TABLE_RANKS = (1, 2, 4, 16, 64, 256, 1024)
LARGEST = 1024
THREADS = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
SWEEP = [8 * 8**k for k in range(8)]  # 8 B to 16 MiB


def build(name: str, smoke: bool = False) -> tuple[mg.Sequential, tuple[int, ...]]:
    """The model and the shape of one sample."""
    if name == "mlp":
        sizes = (20, 16, 10) if smoke else (784, 256, 128, 10)
        layers: list[mg.Layer] = []
        for index, (n_in, n_out) in enumerate(pairwise(sizes)):
            layers += [mg.Dense(n_in, n_out, rng=index), mg.ReLU()]
        return mg.Sequential(*layers[:-1]), (sizes[0],)
    if smoke:
        return mg.Sequential(
            mg.Conv2d(1, 2, 3, padding=1, rng=0),
            mg.ReLU(),
            mg.MaxPool2d(2),
            mg.Flatten(),
            mg.Dense(32, 10, rng=1),
        ), (1, 8, 8)
    return mg.Sequential(
        mg.Conv2d(1, 8, 5, padding=2, rng=0),
        mg.ReLU(),
        mg.MaxPool2d(2),
        mg.Conv2d(8, 16, 5, rng=1),
        mg.ReLU(),
        mg.MaxPool2d(2),
        mg.Flatten(),
        mg.Dense(400, 120, rng=2),
        mg.ReLU(),
        mg.Dense(120, 84, rng=3),
        mg.ReLU(),
        mg.Dense(84, 10, rng=4),
    ), (1, 28, 28)


# -- on every rank, under mpiexec -------------------------------------------------------------


class EpochTimer(mg.Callback):
    """Each epoch's seconds (from a barrier at its start) and its Allreduce counters."""

    def __init__(self, parallel) -> None:
        self.parallel, self.epochs = parallel, []

    def on_epoch_begin(self, state) -> None:
        buckets = self.parallel.buckets
        self.parallel.comm.Barrier()
        self.before = (time.perf_counter(), buckets.seconds, buckets.bytes, buckets.calls)

    def on_epoch_end(self, state, logs) -> None:
        buckets = self.parallel.buckets
        now = (time.perf_counter(), buckets.seconds, buckets.bytes, buckets.calls)
        self.epochs.append([b - a for a, b in zip(self.before, now, strict=True)])


def train(comm, name: str, batch: int, steps: int, repeats: int, smoke: bool) -> dict:
    """A warm-up epoch and ``repeats`` timed ones of ``steps`` steps of ``batch`` per rank;
    on rank 0, the medians over the timed epochs."""
    from minigrad.distributed import DataParallel

    size = comm.Get_size()
    model, shape = build(name, smoke)
    rng = np.random.default_rng(1)
    n = steps * batch * size
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=n)
    parallel = DataParallel(comm)
    timer = EpochTimer(parallel)
    mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters(), lr=0.01), x, y,
           epochs=1 + repeats, batch_size=batch, seed=0, progress=False,
           distributed=parallel, callbacks=[timer])  # fmt: skip
    everyone = comm.gather(timer.epochs[1:], root=0)
    if comm.Get_rank() != 0:
        return {}
    turns = [
        {
            "step_seconds": max(rank[turn][0] for rank in everyone) / steps,
            "allreduce_seconds_per_step": statistics.fmean(rank[turn][1] for rank in everyone)
            / steps,
            "least_allreduce_seconds_per_step": min(rank[turn][1] for rank in everyone) / steps,
            "bytes_per_step": everyone[0][turn][2] / steps,
            "calls_per_step": everyone[0][turn][3] / steps,
        }
        for turn in range(repeats)
    ]
    row = {key: statistics.median(t[key] for t in turns) for key in turns[0]}
    return {
        "model": name,
        "ranks": size,
        "per_rank_batch": batch,
        **row,
        "samples_per_second": batch * size / row["step_seconds"],
        "turns": turns,
    }


def allreduce_sweep(comm, sizes: list[int], seconds: float, repeats: int) -> list[dict]:
    """The median time of one in-place float64 Allreduce of each size (bytes), on rank 0."""
    from mpi4py import MPI

    rows = []
    for nbytes in sizes:
        buffer = np.ones(nbytes // 8)
        for _ in range(3):
            comm.Allreduce(MPI.IN_PLACE, buffer)
        turns = []
        for _ in range(repeats):
            comm.Barrier()
            start, calls = time.perf_counter(), 0
            while True:  # every rank runs the calls rank 0 decides on
                for _ in range(8):
                    comm.Allreduce(MPI.IN_PLACE, buffer)
                calls += 8
                done = comm.bcast(time.perf_counter() - start > seconds, root=0)
                if done:
                    break
            turns.append((time.perf_counter() - start) / calls)
        rows.append({"bytes": nbytes, "seconds": statistics.median(turns)})
    return rows


def rank_main(settings: dict) -> None:
    """Under mpiexec: the trainings (and on 2 ranks the sweep); rank 0 prints JSON."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    size, smoke = comm.Get_size(), settings["smoke"]
    out: dict = {"runs": [], "mpi": " ".join(MPI.Get_library_version().split()[:3])}
    if size == 2:
        out["sweep"] = allreduce_sweep(
            comm, settings["sweep"], settings["sweep_seconds"], settings["repeats"]
        )
    batches = [settings["global_batch"] // size]
    if size == 1:  # every per-rank batch of the model, 256 / 2^k: t_compute(b)
        batches = calibration_batches(settings["global_batch"])
    for name in ("mlp", "cnn"):
        for batch in batches:  # small batches: more steps, for epochs long enough to time
            steps = settings["steps"][name] * min(8, settings["global_batch"] // batch)
            run = train(comm, name, batch, steps, settings["repeats"], smoke)
            out["runs"].append(run)
    if comm.Get_rank() == 0:
        print(json.dumps(out), flush=True)


# -- the launcher -------------------------------------------------------------------------------


def mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def launch(ranks: int, settings: dict) -> dict:
    """This script on ``ranks`` ranks, one BLAS thread each, with the minigrad this process
    imported; what rank 0 printed."""
    command = [mpiexec() or "mpiexec", "-n", str(ranks)]
    version = subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        command.append("--oversubscribe")  # more ranks than cores: MPICH needs no flag
    here = str(Path(mg.__file__).resolve().parent.parent)
    paths = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [*command, sys.executable, __file__, "--rank", json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=settings["timeout"],
        env={**os.environ, **THREADS, "PYTHONPATH": paths},
    )
    if result.returncode != 0:
        raise RuntimeError(f"mpiexec -n {ranks} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the cost model ---------------------------------------------------------------------------


def fit_network(sweep: list[dict]) -> dict:
    """Latency and bandwidth from t = 2 latency + bytes / B (ring, N = 2), least squares on
    relative errors (so the small messages count as much as the large)."""
    t = np.array([row["seconds"] for row in sweep])
    m = np.array([row["bytes"] for row in sweep], dtype=float)
    (a, c), *_ = np.linalg.lstsq(np.stack([1 / t, m / t], axis=1), np.ones_like(t), rcond=None)
    return {"latency_seconds": a / 2, "bandwidth_bytes_per_second": 1 / c}


def calibration_batches(global_batch: int) -> list[int]:
    """global_batch, its half, ... down to 1."""
    return [global_batch >> k for k in range(global_batch.bit_length()) if global_batch >> k]


def measure_compute(runs: list[dict]) -> dict:
    """t_compute(b) from the 1-rank runs: step time minus Allreduce time."""
    runs = sorted(runs, key=lambda run: run["per_rank_batch"])
    seconds = [run["step_seconds"] - run["allreduce_seconds_per_step"] for run in runs]
    batches = [run["per_rank_batch"] for run in runs]
    return {
        "per_rank_batch": batches,
        "seconds": seconds,
        "seconds_per_sample": [t / b for t, b in zip(seconds, batches, strict=True)],
    }


def compute_time(compute: dict, batch) -> np.ndarray:
    """t_compute(b), interpolated between the measured batches in log-log."""
    log_b = np.log(np.asarray(batch, dtype=float))
    return np.exp(np.interp(log_b, np.log(compute["per_rank_batch"]), np.log(compute["seconds"])))


def step_model(
    compute: dict, nbytes: float, calls: float, ranks, batch, bandwidth: float, latency: float
):
    """The step's (compute, communication) seconds on ``ranks`` ranks of ``batch`` each."""
    ranks = np.asarray(ranks, dtype=float)
    work = compute_time(compute, batch)
    talk = calls * 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * nbytes / bandwidth
    return work, talk


def per_rank_batches(regime: str, global_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """N = 1..N_max and each rank's batch: strong scaling up to one sample a rank."""
    if regime == "strong":
        ranks = np.arange(1, global_batch + 1)
        return ranks, global_batch / ranks
    ranks = np.arange(1, LARGEST + 1)
    return ranks, np.full(LARGEST, float(WEAK_BATCH))


def predictions(compute: dict, nbytes: float, calls: float, links: dict, global_batch: int) -> dict:
    """For each link and regime: the step time on a grid of N from 1 to N_max (the table's N
    and 48 more, evenly spaced in log N) and the first N at which communication takes
    longer than compute."""
    out = {}
    for link, (bandwidth, latency) in links.items():
        regimes = {}
        for regime in ("strong", "weak"):
            ranks, batch = per_rank_batches(regime, global_batch)
            work, talk = step_model(compute, nbytes, calls, ranks, batch, bandwidth, latency)
            dominated = np.flatnonzero(talk > work)
            grid = np.geomspace(1, len(ranks), 48).round().astype(int)
            grid = np.union1d(grid, [n for n in TABLE_RANKS if n <= len(ranks)]) - 1
            regimes[regime] = {
                "ranks": ranks[grid].tolist(),
                "step_seconds": (work + talk)[grid].tolist(),
                "communication_seconds": talk[grid].tolist(),
                "communication_dominates_from": int(ranks[dominated[0]])
                if len(dominated)
                else None,
            }
        out[link] = regimes
    return out


def analyse(launches: dict[int, dict], settings: dict) -> dict:
    """The tables' numbers: calibration, measured rows with the model beside, predictions."""
    network = fit_network(launches[2]["sweep"])
    runs = [run for launch in launches.values() for run in launch["runs"]]
    cores = settings["cores"]
    results: dict = {
        "network": {"sweep": launches[2]["sweep"], **network},
        "compute": {},
        "measured": [],
        "predictions": {},
    }
    for name in ("mlp", "cnn"):
        ones = [r for r in runs if r["model"] == name and r["ranks"] == 1]
        compute = measure_compute(ones)
        results["compute"][name] = compute
        strong = sorted(
            (r for r in runs if r["model"] == name and r["per_rank_batch"] * r["ranks"]
             == settings["global_batch"]),
            key=lambda r: r["ranks"],
        )  # fmt: skip
        base = strong[0]["samples_per_second"]
        for run in strong:
            n = run["ranks"]
            work, talk = step_model(
                compute, run["bytes_per_step"], run["calls_per_step"], n,
                run["per_rank_batch"], network["bandwidth_bytes_per_second"],
                network["latency_seconds"],
            )  # fmt: skip
            work, talk = float(work * max(1.0, n / cores)), float(talk)
            results["measured"].append(
                {
                    **{k: v for k, v in run.items() if k != "turns"},
                    "oversubscribed": n > cores,
                    "speed_up": run["samples_per_second"] / base,
                    "predicted_step_seconds": work + talk,
                    "predicted_compute_seconds": work,
                    "predicted_allreduce_seconds": talk,
                    "error": (work + talk) / run["step_seconds"] - 1,
                    "turns": run["turns"],
                }
            )
        links = {
            **LINKS,
            "this machine": (network["bandwidth_bytes_per_second"], network["latency_seconds"]),
        }
        results["predictions"][name] = predictions(
            compute,
            strong[0]["bytes_per_step"],
            strong[0]["calls_per_step"],
            links,
            settings["global_batch"],
        )
    return results


# -- the report -------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    env, settings, network = results["environment"], results["settings"], results["network"]
    pools = [pool for pool in env.get("thread_pools", []) if pool.get("user_api") == "blas"]
    blas = ", ".join(f"{p['internal_api']} {p['architecture']}" for p in pools) or "BLAS unknown"
    lines = [
        f"{env['processor']}, {env['cpus']} CPUs; Python {env['python']}, NumPy {env['numpy']} "
        f"({blas}, 1 thread a rank), {results['mpi']}, float32, SGD. "
        f"Global batch {settings['global_batch']} (strong scaling: N ranks take "
        f"{settings['global_batch']}/N each). Times: median of {settings['repeats']} epochs of "
        f"{settings['steps']['mlp']} (mlp) and {settings['steps']['cnn']} (cnn) steps, the "
        "slowest rank's; Allreduce: the ranks' mean time in it (waiting for the slowest rank "
        "included) and the least (the last to arrive). Model: the ring cost model with this "
        "machine's MPI (below), compute x N/cores when oversubscribed.",
        "",
        "| model | ranks | per-rank batch | step (ms) | samples/s | speed-up | Allreduce "
        "(ms/step): mean, least | Allreduce share | MB/step | model: compute + Allreduce (ms) "
        "| model error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["measured"]:
        ranks = f"{row['ranks']} (oversubscribed)" if row["oversubscribed"] else str(row["ranks"])
        lines.append(
            f"| {row['model']} | {ranks} | {row['per_rank_batch']} "
            f"| {row['step_seconds'] * 1e3:.2f} | {row['samples_per_second']:,.0f} "
            f"| {row['speed_up']:.2f} | {row['allreduce_seconds_per_step'] * 1e3:.3f}, "
            f"{row['least_allreduce_seconds_per_step'] * 1e3:.3f} "
            f"| {row['allreduce_seconds_per_step'] / row['step_seconds']:.0%} "
            f"| {row['bytes_per_step'] / 1e6:.3f} "
            f"| {row['predicted_compute_seconds'] * 1e3:.2f} + "
            f"{row['predicted_allreduce_seconds'] * 1e3:.3f} | {row['error']:+.0%} |"
        )
    compute = results["compute"]
    lines += [
        "",
        f"Calibration: this machine's MPI (Allreduce sweep, 8 B to 16 MiB on 2 ranks): latency "
        f"{network['latency_seconds'] * 1e6:.2f} us, bandwidth "
        f"{network['bandwidth_bytes_per_second'] / 1e9:.2f} GB/s. Compute per sample on one "
        "core, t_compute(b) / b, at per-rank batch b: "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{t * 1e6:.1f} us (b={b})"
                for b, t in zip(c["per_rank_batch"], c["seconds_per_sample"], strict=True)
                if b in (max(c["per_rank_batch"]), 64, 8, 1)
            )
            for name, c in compute.items()
        )
        + ".",
        "",
        "Predicted step time (ms) on a cluster, one such core a rank: strong scaling (global "
        f"batch {settings['global_batch']}) and weak scaling ({WEAK_BATCH} a rank); the last "
        "column is the first N at which the Allreduce takes longer than the compute.",
        "",
        "| model | link | scaling | "
        + " | ".join(f"N={n}" for n in TABLE_RANKS)
        + " | communication > compute from N |",
        "| --- | --- | --- |" + " ---: |" * (len(TABLE_RANKS) + 1),
    ]
    for name, links in results["predictions"].items():
        for link, regimes in links.items():
            if link not in LINKS:
                continue
            label = f"{link} ({LINKS[link][1] * 1e6:g} us)"
            for regime, numbers in regimes.items():
                times = dict(zip(numbers["ranks"], numbers["step_seconds"], strict=True))
                cells = [f"{times[n] * 1e3:.2f}" if n in times else "-" for n in TABLE_RANKS]
                first = numbers["communication_dominates_from"]
                lines.append(
                    f"| {name} | {label} | {regime} | "
                    + " | ".join(cells)
                    + f" | {'-' if first is None else first} |"
                )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    styles = {"10 Gbit/s Ethernet": "--", "100 Gbit/s InfiniBand": "-", "this machine": ":"}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    for row, name in enumerate(("mlp", "cnn")):
        compute = results["compute"][name]
        for column, regime in enumerate(("strong", "weak")):
            ax = axes[row][column]
            for link, numbers in results["predictions"][name].items():
                times = np.array(numbers[regime]["step_seconds"]) * 1e3
                ax.plot(numbers[regime]["ranks"], times, styles[link], label=link)
            ranks, batch = per_rank_batches(regime, results["settings"]["global_batch"])
            work = compute_time(compute, batch)
            ax.plot(ranks, work * 1e3, color="grey", lw=0.8, label="compute alone")
            if regime == "strong":
                for measured in (r for r in results["measured"] if r["model"] == name):
                    ax.plot(
                        measured["ranks"],
                        measured["step_seconds"] * 1e3,
                        "o",
                        color="black",
                        mfc="none" if measured["oversubscribed"] else "black",
                        label="measured"
                        if measured["ranks"] == 1
                        else ("measured, oversubscribed" if measured["oversubscribed"] else None),
                    )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            batch_note = (
                f"global batch {results['settings']['global_batch']}"
                if regime == "strong"
                else f"{WEAK_BATCH} a rank"
            )
            ax.set_title(f"{name}, {regime} scaling ({batch_note})")
            ax.set_ylabel("step time (ms)")
            if row == 1:
                ax.set_xlabel("ranks N")
            ax.legend(fontsize=7)
    fig.suptitle("Data-parallel step time: ring Allreduce cost model and measured points")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict, folder: Path) -> None:
    """mpi.json, mpi.md and mpi.png (when matplotlib is there) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mpi.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "mpi.md").write_text(markdown(results))
    plot(results, folder / "mpi.png")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per launch")
    parser.add_argument("--mlp-steps", type=int, default=100, help="steps per mlp epoch")
    parser.add_argument("--cnn-steps", type=int, default=12, help="steps per cnn epoch")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--write",
        dest="out",
        action="store_const",
        const=RESULTS,
        help="write mpi.json, mpi.md and mpi.png to benchmarks/results/ (tracked files)",
    )
    where.add_argument("--out", type=Path, help="write the results to this folder instead")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 and 2 ranks")
    parser.add_argument("--rank", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.repeats, args.mlp_steps, args.cnn_steps) < 1:
        parser.error(
            "--repeats, --mlp-steps and --cnn-steps must be >= 1, got "
            f"{args.repeats}, {args.mlp_steps} and {args.cnn_steps}"
        )
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.rank:
        rank_main(json.loads(args.rank))
        return {}
    settings = {
        "smoke": args.smoke,
        "global_batch": GLOBAL_BATCH,
        "ranks": list(RANKS),
        "steps": {"mlp": args.mlp_steps, "cnn": args.cnn_steps},
        "repeats": args.repeats,
        "sweep": SWEEP,
        "sweep_seconds": 0.05,
        "cores": os.cpu_count() or 1,
        "timeout": 600,
    }
    if args.smoke:
        settings.update(
            global_batch=8, ranks=[1, 2], steps={"mlp": 2, "cnn": 2}, repeats=1,
            sweep=[8, 4096], sweep_seconds=0.001, timeout=120,
        )  # fmt: skip
    launches = {}
    for ranks in settings["ranks"]:
        launches[ranks] = launch(ranks, settings)
        runs = launches[ranks]["runs"]
        times = [
            f"{r['model']} b={r['per_rank_batch']} {r['step_seconds'] * 1e3:.2f} ms" for r in runs
        ]
        print(f"{ranks} rank(s):", *times, flush=True)
    results = {
        "environment": environment(),
        "mpi": launches[1]["mpi"],
        "settings": {k: v for k, v in settings.items() if k not in ("timeout", "smoke")},
        "links": {
            k: {"bandwidth_bytes_per_second": b, "latency_seconds": t}
            for k, (b, t) in LINKS.items()
        },
        **analyse(launches, settings),
    }
    if args.out is not None:
        write(results, args.out)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
