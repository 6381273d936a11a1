"""The cost of ``fit`` itself: fit against a bare hand-written loop over the same batches.

Model 64-64-10 (ReLU), CrossEntropy, SGD, batch 32, on the 8x8 digits (1,797 samples; random
data of that shape when scikit-learn is missing). The bare loop iterates the same DataLoader
and does only what the README's loop does (forward, loss, backward, step); fit adds the
accuracy metric, the checked step, the per-epoch bookkeeping and, in the second variant, the
tqdm progress bar (written to a string, not a terminal). Variants take turns of EPOCHS epochs
each (fit's checks before the first step are paid once per call, as in real use); each ratio
is the median of ratios over the turns.

Run:  python benchmarks/fit_benchmark.py [--turns 31]   (prints the numbers)
      python benchmarks/fit_benchmark.py --write        (and updates benchmarks/results/fit.json)
Results are written only when asked: --write to benchmarks/results/, --out DIR elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.data import DataLoader

RESULTS = Path(__file__).resolve().parent / "results"
EPOCHS = 10


def digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        return mg.data.load_digits()
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.random((1797, 64), dtype=np.float32), rng.integers(0, 10, 1797)


def model_and_optimizer(seed: int = 0):
    model = mg.Sequential(
        mg.Dense(64, 64, init="he_normal", rng=seed), mg.ReLU(), mg.Dense(64, 10, rng=seed + 1)
    )
    return model, mg.SGD(model.parameters(), lr=0.01)


def bare_epochs(x, y):
    model, optimizer = model_and_optimizer()
    loss = mg.CrossEntropy()
    loader = DataLoader(x, y, batch_size=32, seed=0)

    def epochs() -> None:
        for _ in range(EPOCHS):
            for x_batch, y_batch in loader:
                loss(model(x_batch), y_batch)
                model.backward(loss.backward())
                optimizer.step()

    return epochs


def fit_epochs(x, y, progress: bool):
    model, optimizer = model_and_optimizer()
    loss = mg.CrossEntropy()
    sink = io.StringIO()

    def epochs() -> None:
        with contextlib.redirect_stderr(sink):
            mg.fit(
                model,
                loss,
                optimizer,
                x,
                y,
                epochs=EPOCHS,
                batch_size=32,
                seed=0,
                progress=progress,
            )
        sink.seek(0)
        sink.truncate()

    return epochs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=15, help="turns of each variant")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--write",
        dest="out",
        action="store_const",
        const=RESULTS,
        help="write fit.json to benchmarks/results/ (a tracked file)",
    )
    where.add_argument("--out", type=Path, help="write fit.json to this folder instead")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error(f"--turns must be >= 1, got {args.turns}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    x, y = digits()
    variants = {
        "bare loop": bare_epochs(x, y),
        "fit": fit_epochs(x, y, progress=False),
        "fit + progress bar": fit_epochs(x, y, progress=True),
    }
    for run in variants.values():  # warm up
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.turns):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    batches = len(DataLoader(x, y, batch_size=32)) * EPOCHS
    results = {
        "batches_per_turn": batches,
        "microseconds_per_batch": {
            name: statistics.median(t) / batches * 1e6 for name, t in times.items()
        },
        "ratio_to_bare_loop": {
            name: statistics.median(a / b for a, b in zip(t, times["bare loop"], strict=True))
            for name, t in times.items()
            if name != "bare loop"
        },
    }
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "fit.json").write_text(json.dumps(results, indent=2) + "\n")
    for name, value in results["microseconds_per_batch"].items():
        ratio = results["ratio_to_bare_loop"].get(name)
        print(f"{name:20s} {value:7.1f} us per batch" + (f"  x{ratio:.3f}" if ratio else ""))
    return results


if __name__ == "__main__":
    main()
