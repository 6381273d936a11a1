"""What the divergence check costs: a training step as fit takes it against the plain step.

``fit`` takes every optimizer step through :class:`minigrad.optim.SafeStep`, which proves the
step cannot make a parameter NaN or infinite before taking it, from bounds on the gradients'
norms that :class:`minigrad.gradient_bounds.GradientBounds` derives from the parameters'
norms (a few float operations per layer and parameter). This measures that cost at the step
benchmark's mnist and wide sizes (784-256-128-10 at batch 128, 1024-2048-2048-10 at batch
256; float32, Dense + ReLU, CrossEntropy) for SGD, Momentum and Adam: the same model takes
turns of plain steps (forward, loss, backward, ``optimizer.step()``) and of checked steps
(the same, the step taken as fit takes it), interleaved; the overhead is the median of the
per-turn ratios. The third column measures the gradients instead of bounding them (one dot
product per gradient), what a model with layers GradientBounds does not know costs.

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
from minigrad.gradient_bounds import GradientBounds, parameter_norms
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
    guard.resync()
    bounds = GradientBounds(model, loss, float(np.linalg.norm(x, axis=1).max()), x.shape[1])
    assert bounds.supported

    def forward_backward() -> float:
        value = loss(model(x), y)
        model.backward(loss.backward())
        return value

    def plain() -> None:
        forward_backward()
        opt.step()

    def bounded() -> None:  # what fit does
        value = forward_backward()
        guard.step(bounds.for_step(guard.params, len(x), value, len(x) * sizes[-1]))

    def measured() -> None:
        forward_backward()
        guard.step()

    steps = {"plain": plain, "fit": bounded, "measured": measured}
    for step in steps.values():
        turn(step, seconds * scale)  # warm up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(turns):
        order = list(steps) if index % 2 == 0 else list(steps)[::-1]
        for name in order:
            times[name].append(turn(steps[name], seconds * scale))
    guard.resync()  # the run stayed finite and its bounds held: nothing was refused
    assert set(guard.value_norms) == set(parameter_norms(opt.params))
    result = {f"{name}_us": statistics.median(values) * 1e6 for name, values in times.items()}
    for name in ("fit", "measured"):
        ratios = [a / b for a, b in zip(times[name], times["plain"], strict=True)]
        result[f"{name}_overhead"] = (statistics.median(ratios) - 1) * 100
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=9, help="paired turns per setting")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: checks it runs")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error(f"--turns must be >= 1, got {args.turns}")
    turns, scale = (2, 0.02) if args.smoke else (args.turns, 1.0)
    print(
        "| config | optimizer | plain step (us) | fit's checked step (us) | overhead | "
        "gradients measured instead (us) | overhead |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in CONFIGS:
        for optimizer in OPTIMIZERS:
            r = measure(name, optimizer, turns, scale)
            print(
                f"| {name} | {optimizer} | {r['plain_us']:,.0f} | {r['fit_us']:,.0f} | "
                f"{r['fit_overhead']:+.2f}% | {r['measured_us']:,.0f} | "
                f"{r['measured_overhead']:+.2f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
