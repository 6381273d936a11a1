"""What the divergence check costs: a training step with SafeStep against the plain step.

``fit`` takes every optimizer step through :class:`minigrad.optim.SafeStep`, which proves the
step cannot make a parameter NaN or infinite before taking it (one dot product per gradient
and a few float operations per parameter). This measures that cost at the step benchmark's
mnist and wide sizes (784-256-128-10 at batch 128, 1024-2048-2048-10 at batch 256; float32,
Dense + ReLU, CrossEntropy) for SGD, Momentum and Adam: the same model takes turns of plain
steps (forward, loss, backward, ``optimizer.step()``) and of guarded steps (the same with
``SafeStep.step()``), interleaved; the overhead is the median of the per-turn ratios.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/safe_step_benchmark.py
      (about two minutes; --smoke for a few seconds, --turns N for more turns)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from itertools import pairwise

import numpy as np

import minigrad as mg
from minigrad.optim import SafeStep

CONFIGS = {
    "mnist": ((784, 256, 128, 10), 128, 0.25),  # sizes, batch, seconds per turn
    "wide": ((1024, 2048, 2048, 10), 256, 1.5),
}
OPTIMIZERS: dict[str, Callable[[list[mg.Parameter]], mg.Optimizer]] = {
    "sgd": lambda params: mg.SGD(params, lr=0.01),
    "momentum": lambda params: mg.Momentum(params, lr=0.01, momentum=0.9),
    "adam": lambda params: mg.Adam(params, lr=1e-3),
}


def setup(sizes: tuple[int, ...], batch: int, optimizer: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)
    layers: list[mg.Layer] = []
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(mg.Dense(n_in, n_out, init="he_normal", rng=index))
        if index < len(sizes) - 2:
            layers.append(mg.ReLU())
    model = mg.Sequential(*layers)
    opt = OPTIMIZERS[optimizer](model.parameters())
    return model, mg.CrossEntropy(), opt, x, y


def turn(step: Callable[[], None], seconds: float) -> float:
    """The median time of one step over a turn of about ``seconds``."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, optimizer: str, turns: int, scale: float) -> dict[str, float]:
    sizes, batch, seconds = CONFIGS[name]
    model, loss, opt, x, y = setup(sizes, batch, optimizer)
    guard = SafeStep(opt)

    def forward_backward() -> None:
        loss(model(x), y)
        model.backward(loss.backward(), input_grad=False)

    def plain() -> None:
        forward_backward()
        opt.step()

    def guarded() -> None:
        forward_backward()
        guard.step()

    turn(plain, seconds * scale)  # warm up
    turn(guarded, seconds * scale)
    plain_times, guarded_times = [], []
    for index in range(turns):
        pair = [(plain, plain_times), (guarded, guarded_times)]
        for step, times in pair if index % 2 == 0 else pair[::-1]:
            times.append(turn(step, seconds * scale))
    ratios = [g / p for g, p in zip(guarded_times, plain_times, strict=True)]
    return {
        "plain_us": statistics.median(plain_times) * 1e6,
        "guarded_us": statistics.median(guarded_times) * 1e6,
        "overhead_percent": (statistics.median(ratios) - 1) * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=9, help="paired turns per setting")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: checks it runs")
    args = parser.parse_args()
    turns, scale = (2, 0.02) if args.smoke else (args.turns, 1.0)
    print("| config | optimizer | plain step (us) | with SafeStep (us) | overhead |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name in CONFIGS:
        for optimizer in OPTIMIZERS:
            result = measure(name, optimizer, turns, scale)
            print(
                f"| {name} | {optimizer} | {result['plain_us']:,.0f} | "
                f"{result['guarded_us']:,.0f} | {result['overhead_percent']:+.2f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
