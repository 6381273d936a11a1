"""One CNN training step as users write it: minigrad against PyTorch eager, the GEMM floor and
hand-written NumPy.

Configs (float32, batch 64, CrossEntropy, SGD lr 0.01):

- lenet: 1x28x28 images (MNIST's shape); Conv2d(1, 8, 5, padding=2), ReLU, MaxPool2d(2),
  Conv2d(8, 16, 5), ReLU, MaxPool2d(2), Flatten, Dense(400, 120), ReLU, Dense(120, 84), ReLU,
  Dense(84, 10).
- vgg: 3x32x32 images (CIFAR's shape); two 3x3 convolutions of 32 channels (padding 1), ReLU
  after each, MaxPool2d(2), two of 64 channels, MaxPool2d(2), Flatten, Dense(4096, 10).

Implementations:

- minigrad: the README's loop, ``loss(model(x), y)``, ``model.backward(loss.backward())``,
  ``optimizer.step()``.
- torch: the same network in PyTorch eager mode (``zero_grad``, forward, ``backward``,
  ``step``), with the same initial weights.
- floor: only the matrix products of the step (each convolution as one GEMM on an im2col
  matrix prepared once, its weight gradient, and its input gradient except for the first
  layer; the Dense products), into preallocated arrays.
- numpy: a hand-written NumPy step: im2col through ``sliding_window_view``, one GEMM per
  convolution, col2im by kh*kw strided adds, pooling by reshapes.

Each is timed as in step_benchmark.py: the implementations take turns (each ratio is the
median of ratios paired turn by turn), once all in one process (interleaved) and once each in
a process of its own (isolated; quote these when the two disagree). Also measured: the peak
memory NumPy holds during one minigrad step, against a budget of parameters + gradients +
optimizer state + the batch + every layer's output + one im2col buffer (the largest).

Run:  python benchmarks/cnn_benchmark.py            (a few minutes; prints the tables)
      python benchmarks/cnn_benchmark.py --write    (and updates benchmarks/results/cnn.*)
      python benchmarks/cnn_benchmark.py --smoke    (seconds; checks that everything runs)
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import minigrad as mg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_benchmark import (  # the shared timing and reporting
    _blas,
    environment,
    isolated_turns,
    load_torch,
    step_times,
    summary,
)

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 64
LR = 0.01

#: ("conv", in, out, kernel, padding) | ("pool",) | ("flatten",) | ("dense", in, out) | ("relu",)
LAYOUTS: dict[str, tuple[tuple[int, int, int], list[tuple]]] = {
    "lenet": (
        (1, 28, 28),
        [
            ("conv", 1, 8, 5, 2),
            ("relu",),
            ("pool",),
            ("conv", 8, 16, 5, 0),
            ("relu",),
            ("pool",),
            ("flatten",),
            ("dense", 400, 120),
            ("relu",),
            ("dense", 120, 84),
            ("relu",),
            ("dense", 84, 10),
        ],
    ),
    "vgg": (
        (3, 32, 32),
        [
            ("conv", 3, 32, 3, 1),
            ("relu",),
            ("conv", 32, 32, 3, 1),
            ("relu",),
            ("pool",),
            ("conv", 32, 64, 3, 1),
            ("relu",),
            ("conv", 64, 64, 3, 1),
            ("relu",),
            ("pool",),
            ("flatten",),
            ("dense", 4096, 10),
        ],
    ),
}
#: the tiny network of --smoke
SMOKE = (
    (2, 8, 8),
    [("conv", 2, 3, 3, 1), ("relu",), ("pool",), ("flatten",), ("dense", 48, 10)],
)
IMPLEMENTATIONS = ("floor", "numpy", "torch", "minigrad")
LABELS = {
    "minigrad": "minigrad (README loop)",
    "torch": "PyTorch",
    "floor": "GEMM floor",
    "numpy": "hand-written NumPy",
}


def problem(layout, batch: int = BATCH, seed: int = 0):
    """A float32 batch, labels, and He-initialised float32 (weight, bias) per conv and dense."""
    image, layers = layout
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *image)).astype(np.float32)
    y = rng.integers(0, 10, size=batch)
    weights = []
    for spec in layers:
        if spec[0] == "conv":
            _, c_in, c_out, k, _ = spec
            shape, fan_in = (c_out, c_in, k, k), c_in * k * k
        elif spec[0] == "dense":
            _, n_in, n_out = spec
            shape, fan_in = (n_out, n_in), n_in
        else:
            continue
        w = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(shape[0]) * 0.01).astype(np.float32)
        weights.append((w, b))
    return x, y, weights


# -- minigrad and PyTorch ---------------------------------------------------------------------


def minigrad_model(layout, weights) -> mg.Sequential:
    layers, params = [], iter(weights)
    for spec in layout[1]:
        if spec[0] == "conv":
            _, c_in, c_out, k, pad = spec
            layer = mg.Conv2d(c_in, c_out, k, padding=pad)
        elif spec[0] == "dense":
            layer = mg.Dense(spec[1], spec[2])
        else:
            layers.append(
                {"relu": mg.ReLU, "pool": lambda: mg.MaxPool2d(2), "flatten": mg.Flatten}[spec[0]]()
            )
            continue
        w, b = next(params)
        layer.weight.value[...] = w
        layer.bias.value[...] = b
        layers.append(layer)
    return mg.Sequential(*layers)


def minigrad_step(layout, weights, x, y):
    """The README's loop."""
    model = minigrad_model(layout, weights)
    loss = mg.CrossEntropy()
    optimizer = mg.SGD(model.parameters(), lr=LR)

    def step() -> None:
        loss(model(x), y)
        model.backward(loss.backward())
        optimizer.step()

    step.model, step.optimizer = model, optimizer  # type: ignore[attr-defined]
    return step


def torch_step(layout, weights, x, y):
    torch = load_torch()
    if torch is None:
        return None
    nn, modules, params = torch.nn, [], iter(weights)
    for spec in layout[1]:
        if spec[0] == "conv":
            _, c_in, c_out, k, pad = spec
            module = nn.Conv2d(c_in, c_out, k, padding=pad, dtype=torch.float32)
        elif spec[0] == "dense":
            module = nn.Linear(spec[1], spec[2], dtype=torch.float32)
        else:
            modules.append(
                {"relu": nn.ReLU, "pool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten}[spec[0]]()
            )
            continue
        w, b = next(params)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(w))
            module.bias.copy_(torch.from_numpy(b))
        modules.append(module)
    model = nn.Sequential(*modules)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(tx), ty).backward()
        optimizer.step()

    step.model = model  # type: ignore[attr-defined]
    return step


# -- hand-written NumPy -----------------------------------------------------------------------


def im2col(x: np.ndarray, k: int, pad: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(N, C, H, W) -> (N*Ho*Wo, C*k*k), stride 1, zero padding ``pad``."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
    n, c, ho, wo = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k), (ho, wo)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int, pad: int, out: tuple[int, int]):
    """The adjoint of im2col: (N*Ho*Wo, C*k*k) -> (N, C, H, W), by k*k strided adds."""
    n, c, h, w = shape
    ho, wo = out
    patches = cols.reshape(n, ho, wo, c, k, k)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), cols.dtype)
    for i in range(k):
        for j in range(k):
            padded[:, :, i : i + ho, j : j + wo] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, pad : pad + h, pad : pad + w]


def numpy_step(layout, weights, x, y):
    """A hand-written step, allocating as straightforward code does."""
    params = [p.copy() for pair in weights for p in pair]
    specs = layout[1]
    rows = np.arange(len(y))

    def step() -> None:
        caches, a, index = [], x, 0
        for spec in specs:
            kind = spec[0]
            if kind == "conv":
                _, _, c_out, k, pad = spec
                w, b = params[index], params[index + 1]
                cols, (ho, wo) = im2col(a, k, pad)
                z = cols @ w.reshape(c_out, -1).T + b
                caches.append((cols, a.shape, (ho, wo), index))
                a = z.reshape(len(a), ho, wo, c_out).transpose(0, 3, 1, 2)
                index += 2
            elif kind == "dense":
                w, b = params[index], params[index + 1]
                caches.append((a, index))
                a = a @ w.T + b
                index += 2
            elif kind == "relu":
                caches.append(a > 0)
                a = np.maximum(a, 0)
            elif kind == "pool":
                n, c, h, w_ = a.shape
                blocks = a.reshape(n, c, h // 2, 2, w_ // 2, 2)
                pooled = blocks.max(axis=(3, 5))
                caches.append((blocks == pooled[:, :, :, None, :, None], a.shape))
                a = pooled
            else:  # flatten
                caches.append(a.shape)
                a = a.reshape(len(a), -1)
        e = np.exp(a - a.max(axis=1, keepdims=True))
        g = e / e.sum(axis=1, keepdims=True)
        g[rows, y] -= 1
        g /= len(y)
        grads = [None] * len(params)
        for position in range(len(specs) - 1, -1, -1):
            kind, cache = specs[position][0], caches[position]
            first = position == 0
            if kind == "conv":
                _, _, c_out, k, pad = specs[position]
                cols, shape, out, index = cache
                g2 = g.transpose(0, 2, 3, 1).reshape(-1, c_out)
                w = params[index]
                grads[index] = (g2.T @ cols).reshape(w.shape)
                grads[index + 1] = g2.sum(axis=0)
                if not first:
                    g = col2im(g2 @ w.reshape(c_out, -1), shape, k, pad, out)
            elif kind == "dense":
                a_in, index = cache
                grads[index] = g.T @ a_in
                grads[index + 1] = g.sum(axis=0)
                if not first:
                    g = g @ params[index]
            elif kind == "relu":
                g = g * cache
            elif kind == "pool":
                mask, shape = cache
                g = (mask * g[:, :, :, None, :, None]).reshape(shape)
            else:
                g = g.reshape(cache)
        for p, dp in zip(params, grads, strict=True):
            p -= LR * dp

    step.params = params  # type: ignore[attr-defined]
    return step


def floor_step(layout, weights, x, y):
    """Only the GEMMs: each convolution's forward product, weight gradient and (after the
    first layer) input gradient, and the Dense products, on arrays prepared once."""
    del y
    products = []  # (a, b, out) for np.matmul(a, b, out=out)
    shape, first = x.shape, True
    params = iter(weights)
    for spec in layout[1]:
        if spec[0] == "conv":
            _, c_in, c_out, k, pad = spec
            n, _, h, w_ = shape
            ho, wo = h + 2 * pad - k + 1, w_ + 2 * pad - k + 1
            w, _ = next(params)
            cols = np.ones((n * ho * wo, c_in * k * k), np.float32)
            wmat = w.reshape(c_out, -1)
            grad = np.full((n * ho * wo, c_out), 1e-3, np.float32)
            products.append((cols, wmat.T, np.empty((n * ho * wo, c_out), np.float32)))
            products.append((grad.T, cols, np.empty_like(wmat)))
            if not first:
                products.append((grad, wmat, np.empty_like(cols)))
            shape = (n, c_out, ho, wo)
        elif spec[0] == "dense":
            w, _ = next(params)
            n = shape[0]
            a = np.ones((n, w.shape[1]), np.float32)
            grad = np.full((n, w.shape[0]), 1e-3, np.float32)
            products.append((a, w.T, np.empty((n, w.shape[0]), np.float32)))
            products.append((grad.T, a, np.empty_like(w)))
            if not first:
                products.append((grad, w, np.empty_like(a)))
            shape = (n, w.shape[0])
        elif spec[0] == "pool":
            n, c, h, w_ = shape
            shape = (n, c, h // 2, w_ // 2)
        elif spec[0] == "flatten":
            shape = (shape[0], int(np.prod(shape[1:])))
        first = first and spec[0] not in ("conv", "dense")

    def step() -> None:
        for a, b, out in products:
            np.matmul(a, b, out=out)

    return step


def make_step(name: str, layout):
    x, y, weights = problem(layout, batch=BATCH if layout is not SMOKE else 4)
    maker = {"minigrad": minigrad_step, "torch": torch_step, "numpy": numpy_step}
    return maker.get(name, floor_step)(layout, weights, x, y)


# -- memory -----------------------------------------------------------------------------------


def minigrad_memory(layout) -> dict[str, int]:
    """Peak bytes NumPy holds during one minigrad step, against the budget: parameters +
    gradients + the batch + every layer's output + one im2col buffer (the largest). The
    peak counts everything the step holds, the convolutions' workspace included."""
    batch = BATCH if layout is not SMOKE else 4
    x, y, weights = problem(layout, batch)
    # the convolutions' scratch memory, allocated by earlier steps in this process, is
    # allocated again under the tracer: it is part of what a step holds
    mg.layers.free_workspace()
    tracemalloc.start()
    try:
        step = minigrad_step(layout, weights, x, y)
        step()
        step()
        model = step.model  # type: ignore[attr-defined]
        params = sum(p.value.nbytes for p in model.parameters())
        shape, outputs, largest_cols = x.shape, 0, 0
        for spec in layout[1]:
            if spec[0] == "conv":
                _, c_in, c_out, k, pad = spec
                n, _, h, w_ = shape
                shape = (n, c_out, h + 2 * pad - k + 1, w_ + 2 * pad - k + 1)
                largest_cols = max(largest_cols, n * shape[2] * shape[3] * c_in * k * k * 4)
            elif spec[0] == "dense":
                shape = (shape[0], spec[2])
            elif spec[0] == "pool":
                shape = (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
            elif spec[0] == "flatten":
                continue  # a view
            outputs += int(np.prod(shape)) * 4
        budget = 2 * params + x.nbytes + outputs + largest_cols
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"budget": budget, "peak": peak, "held_before_step": before}


# -- running ----------------------------------------------------------------------------------


def compare(layout, timing: dict, names: list[str]) -> dict:
    """Interleaved: all implementations in this process, taking turns."""
    steps = {name: make_step(name, layout) for name in names}
    return summary(step_times({k: v for k, v in steps.items() if v is not None}, **timing))


def compare_isolated(config: str, timing: dict, names: list[str]) -> dict:
    """Isolated: each implementation in a worker process of its own, taking turns."""
    commands = {name: [sys.executable, __file__, "--worker", name, config] for name in names}
    return summary(isolated_turns(commands, timing))


def worker(name: str, config: str) -> None:
    """In a child process: build one step, then time one turn per line of settings read."""
    step = make_step(name, SMOKE if config == "smoke" else LAYOUTS[config])
    for line in sys.stdin:
        (seconds,) = step_times({name: step}, **json.loads(line))[name]
        print(seconds, flush=True)


def markdown(results: dict) -> str:
    env = results["environment"]
    torch_note = (
        f"PyTorch {env['torch']} ({env.get('torch_blas')}, {env.get('torch_threads')} threads)"
        if env.get("torch")
        else "PyTorch not installed"
    )
    names = [n for n in LABELS if n in results["rows"][0]["isolated"]["seconds"]]
    lines = [
        f"{env['processor']}, {env['cpus']} CPUs; Python {env['python']}, NumPy {env['numpy']} "
        f"({_blas(env) or 'BLAS unknown'}), {torch_note}. float32, batch {results['batch']}, "
        f"SGD. Times: median of {results['timing']['passes']} turns x "
        f"{results['timing']['rounds']} rounds, isolated (each implementation in a process of "
        "its own); ratios: medians of ratios paired turn by turn.",
        "",
        "| config | "
        + " | ".join(f"{LABELS[n]} (ms)" for n in names)
        + " | minigrad / PyTorch | minigrad / PyTorch (interleaved) | minigrad / floor "
        "| minigrad / hand-written NumPy | minigrad peak / budget |",
        "| --- |" + " ---: |" * (len(names) + 5),
    ]
    for row in results["rows"]:
        seconds = row["isolated"]["seconds"]
        memory = row["memory"]

        def r(key: str, mode: str = "isolated", row: dict = row) -> str:
            value = row[mode]["ratios"].get(key)
            return "-" if value is None else f"{value:.2f}"

        cells = [f"{seconds[n] * 1e3:.2f}" for n in names] + [
            r("minigrad/torch"),
            r("minigrad/torch", "interleaved"),
            r("minigrad/floor"),
            r("minigrad/numpy"),
            f"{memory['peak'] / memory['budget']:.2f}",
        ]
        lines.append(f"| {row['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per turn")
    parser.add_argument("--passes", type=int, default=7, help="turns of each implementation")
    parser.add_argument("--round-seconds", type=float, default=0.2, help="length of a round")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--write",
        dest="out",
        action="store_const",
        const=RESULTS,
        help="write cnn.json and cnn.md to benchmarks/results/ (tracked files)",
    )
    where.add_argument("--out", type=Path, help="write the results to this folder instead")
    parser.add_argument("--smoke", action="store_true", help="a tiny network: checks only")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.passes < 1 or not args.round_seconds > 0:
        parser.error(
            "--rounds and --passes must be >= 1 and --round-seconds > 0, got "
            f"{args.rounds}, {args.passes} and {args.round_seconds}"
        )
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return {}
    timing = {"rounds": args.rounds, "round_seconds": args.round_seconds, "passes": args.passes}
    configs = {name: LAYOUTS[name] for name in args.configs}
    if args.smoke:
        configs = {"smoke": SMOKE}
        timing = {"rounds": 2, "round_seconds": 0.001, "passes": 1, "warmup": 0.0}
    names = [n for n in IMPLEMENTATIONS if n != "torch" or load_torch() is not None]
    results: dict = {
        "environment": environment(),
        "timing": timing,
        "batch": BATCH if not args.smoke else 4,
        "rows": [],
    }
    for config, layout in configs.items():
        row = {
            "config": config,
            "isolated": compare_isolated(config, timing, names),
            "interleaved": compare(layout, timing, names),
            "memory": minigrad_memory(layout),
        }
        results["rows"].append(row)
        print(
            f"{config:6s}",
            *(f"{n} {row['isolated']['seconds'][n] * 1e3:8.2f} ms" for n in names),
            flush=True,
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cnn.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "cnn.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
