"""One MLP training step as users write it: minigrad against PyTorch eager, the BLAS floor and
hand-written NumPy.

- minigrad: the loop the README shows, ``value = loss(model(x), y)``,
  ``model.backward(loss.backward())``, ``optimizer.step()``, on a Sequential of Dense + ReLU
  with CrossEntropy and SGD / Momentum / Adam, float32, with the optimizers' defaults (their
  fused one-pass kernels when numba is installed, the ``fast`` extra).
- minigrad + zero_grad: the same loop with ``optimizer.zero_grad()`` first, as PyTorch users
  write it.
- minigrad, NumPy update: the README loop with ``fused=False``, what an install without the
  ``fast`` extra runs (measured only when the fused kernels are the default).
- torch: the same model, loss and optimizer in PyTorch eager mode (when torch is installed),
  ``zero_grad()``, forward, ``backward()``, ``step()``.
- floor: only the matrix products the step needs (forward, weight gradients, input gradients
  of every layer but the first), into preallocated arrays: no framework can beat it.
- numpy: a hand-written NumPy step, as the seeds' lesson writes it (fresh arrays every step).

Each setting is timed twice, the implementations taking turns so that all see the same
machine noise (each time is the median of the turns, each ratio the median of ratios taken
turn by turn): interleaved, all in one process, and isolated, each in a process of its own
(minigrad's without PyTorch imported), since a library's thread pool keeps spinning after its
last call and can slow whatever runs next in its process. When the two disagree, the
isolated numbers are the ones to quote.

Also measured: step time against batch size and against width, and the peak memory of a
training step (minigrad's against its own budget of parameters + gradients + optimizer
buffers + activations, and both frameworks' peak resident memory). The BLAS library, its
kernel and the thread counts are recorded with the results.

Run:  python benchmarks/step_benchmark.py            (about ten minutes; prints the tables)
      python benchmarks/step_benchmark.py --write    (the same, and updates benchmarks/results/)
      python benchmarks/step_benchmark.py --smoke    (seconds; checks that everything runs)
Results are written only when asked: --write puts step.json, step.md and step.png in
benchmarks/results/ (the files the README quotes), --out DIR in another folder.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np

import minigrad as mg

CONFIGS: dict[str, tuple[tuple[int, ...], int]] = {
    "xor": ((2, 3, 2), 4),
    "digits": ((64, 64, 10), 32),
    "mnist": ((784, 256, 128, 10), 128),
    "wide": ((1024, 2048, 2048, 10), 256),
}
OPTIMIZERS = ("sgd", "momentum", "adam")
HYPERPARAMETERS = {
    "sgd": {"lr": 0.01},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8},
}
#: the minigrad rows, all ratios are taken for them
OURS = ("minigrad", "minigrad_zero_grad", "minigrad_numpy_update")
LABELS = {
    "minigrad": "minigrad (README loop)",
    "minigrad_zero_grad": "minigrad + zero_grad",
    "minigrad_numpy_update": "minigrad, NumPy update",
    "torch": "PyTorch",
    "floor": "floor",
    "numpy": "hand-written NumPy",
}
WARMUP_SECONDS = 0.3
RESULTS = Path(__file__).resolve().parent / "results"

Step = Callable[[], None]


def load_torch():
    """PyTorch, imported on first use (None when it is not installed): the isolated minigrad
    processes never import it, so its threads cannot slow them."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def fused_by_default() -> bool:
    """Whether minigrad's optimizers use their fused kernels unless told not to."""
    if "fused" not in inspect.signature(mg.SGD).parameters:
        return False
    probe = mg.SGD([mg.Parameter(np.zeros(1, np.float32))])
    return bool(getattr(probe, "fused", False))


def implementations() -> list[str]:
    """The implementations this machine can run, in table order."""
    names = ["floor", "numpy", "torch", "minigrad", "minigrad_zero_grad"]
    if fused_by_default():
        names.append("minigrad_numpy_update")
    if load_torch() is None:
        names.remove("torch")
    return names


# -- the same problem for everyone --------------------------------------------------------


def problem(sizes: tuple[int, ...], batch: int, seed: int = 0):
    """A float32 batch, integer labels and He-initialised float32 weights (W, b) per layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], size=batch)
    weights = [
        (
            (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32),
            (rng.standard_normal(n_out) * 0.01).astype(np.float32),
        )
        for n_in, n_out in pairwise(sizes)
    ]
    return x, y, weights


def minigrad_step(
    sizes, weights, x, y, optimizer: str, *, zero_grad: bool = False, fused: bool | None = None
) -> Step:
    """The README's loop; with ``zero_grad``, ``optimizer.zero_grad()`` first; ``fused=False``
    for the NumPy update."""
    layers: list[mg.Layer] = []
    for index, (w, b) in enumerate(weights):
        dense = mg.Dense(w.shape[1], w.shape[0])
        dense.weight.value[...] = w
        dense.bias.value[...] = b
        layers.append(dense)
        if index < len(weights) - 1:
            layers.append(mg.ReLU())
    model = mg.Sequential(*layers)
    loss = mg.CrossEntropy()
    make = {"sgd": mg.SGD, "momentum": mg.Momentum, "adam": mg.Adam}[optimizer]
    settings = dict(HYPERPARAMETERS[optimizer])
    if fused is not None:
        settings["fused"] = fused
    opt = make(model.parameters(), **settings)

    if zero_grad:

        def step() -> None:
            opt.zero_grad()
            loss(model(x), y)
            model.backward(loss.backward())
            opt.step()

    else:

        def step() -> None:
            loss(model(x), y)
            model.backward(loss.backward())
            opt.step()

    step.model, step.optimizer = model, opt  # type: ignore[attr-defined]
    return step


def torch_step(sizes, weights, x, y, optimizer: str) -> Step | None:
    torch = load_torch()
    if torch is None:
        return None
    modules = []
    for index, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if index < len(weights) - 1:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    settings = dict(HYPERPARAMETERS[optimizer])
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), **settings)
    else:
        opt = torch.optim.SGD(model.parameters(), **settings)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tx), ty).backward()
        opt.step()

    step.model = model  # type: ignore[attr-defined]
    return step


def make_step(name: str, sizes, batch: int, optimizer: str) -> Step | None:
    """Implementation ``name``'s step on the configuration's problem."""
    x, y, weights = problem(sizes, batch)
    if name == "minigrad":
        return minigrad_step(sizes, weights, x, y, optimizer)
    if name == "minigrad_zero_grad":
        return minigrad_step(sizes, weights, x, y, optimizer, zero_grad=True)
    if name == "minigrad_numpy_update":
        return minigrad_step(sizes, weights, x, y, optimizer, fused=False)
    if name == "torch":
        return torch_step(sizes, weights, x, y, optimizer)
    if name == "floor":
        return floor_step(sizes, weights, x)
    if name == "numpy":
        return numpy_step(sizes, weights, x, y, optimizer)
    raise ValueError(f"unknown implementation {name!r}")


def floor_step(sizes, weights, x) -> Step:
    """Only the products: z_l = a_l W_l^T, dW_l = g_l^T a_l, g_(l-1) = g_l W_l (l > first)."""
    batch = x.shape[0]
    acts = [x] + [np.empty((batch, w.shape[0]), np.float32) for w, _ in weights]
    grads = [np.empty((batch, w.shape[1]), np.float32) for w, _ in weights]
    grad_out = np.full((batch, sizes[-1]), 1e-3, np.float32)
    weight_grads = [np.empty_like(w) for w, _ in weights]

    def step() -> None:
        for index, (w, _) in enumerate(weights):
            np.matmul(acts[index], w.T, out=acts[index + 1])
        g = grad_out
        for index in range(len(weights) - 1, -1, -1):
            w = weights[index][0]
            np.matmul(g.T, acts[index], out=weight_grads[index])
            if index > 0:
                np.matmul(g, w, out=grads[index])
                g = grads[index]

    return step


def numpy_step(sizes, weights, x, y, optimizer: str) -> Step:
    """A hand-written step in plain NumPy, allocating as straightforward code does."""
    params = [p.copy() for pair in weights for p in pair]
    velocity = [np.zeros_like(p) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    settings = HYPERPARAMETERS[optimizer]
    lr = settings["lr"]
    count = [0]
    rows = np.arange(len(y))

    def step() -> None:
        acts = [x]
        for index in range(0, len(params), 2):
            z = acts[-1] @ params[index].T + params[index + 1]
            acts.append(np.maximum(z, 0) if index < len(params) - 2 else z)
        logits = acts.pop()
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        step.loss = -np.log(probs[rows, y]).mean()  # type: ignore[attr-defined]
        g = probs
        g[rows, y] -= 1
        g /= len(y)
        grads = [None] * len(params)
        for index in range(len(params) - 2, -1, -2):
            a = acts[index // 2]
            grads[index] = g.T @ a
            grads[index + 1] = g.sum(axis=0)
            if index > 0:
                g = (g @ params[index]) * (a > 0)
        count[0] += 1
        for i, (p, dp) in enumerate(zip(params, grads, strict=True)):
            if optimizer == "sgd":
                p -= lr * dp
            elif optimizer == "momentum":
                velocity[i] = settings["momentum"] * velocity[i] + dp
                p -= lr * velocity[i]
            else:
                b1, b2 = settings["betas"]
                m[i] = b1 * m[i] + (1 - b1) * dp
                v[i] = b2 * v[i] + (1 - b2) * dp * dp
                m_hat = m[i] / (1 - b1 ** count[0])
                v_hat = v[i] / (1 - b2 ** count[0])
                p -= lr * m_hat / (np.sqrt(v_hat) + settings["eps"])

    step.params = params  # type: ignore[attr-defined]
    return step


# -- timing ---------------------------------------------------------------------------------


def step_times(
    steps: dict[str, Step],
    rounds: int,
    round_seconds: float,
    passes: int = 3,
    warmup: float = WARMUP_SECONDS,
) -> dict[str, list[float]]:
    """Seconds per step of each implementation: one median per pass.

    The implementations take turns, ``passes`` times, in rotated order. Each turn starts
    with ``warmup`` seconds of untimed steps: the thread pools of OpenBLAS and PyTorch keep
    spinning for a while after their last call, and the library that ran before must go
    quiet before the next one is timed. Then ``rounds`` timed rounds of about
    ``round_seconds`` each, whose median is the turn's figure.
    """
    names = list(steps)
    per_pass: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(passes):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            step = steps[name]
            start = time.perf_counter()
            warm = 0
            while time.perf_counter() - start < warmup or warm < 3:
                step()
                warm += 1
            per_round = max(1, round(warm * round_seconds / (time.perf_counter() - start)))
            samples = []
            for _ in range(rounds):
                begin = time.perf_counter()
                for _ in range(per_round):
                    step()
                samples.append((time.perf_counter() - begin) / per_round)
            per_pass[name].append(statistics.median(samples))
    return per_pass


def summary(per_pass: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Median step seconds, and each minigrad row's ratio to every other implementation.

    The ratios are medians of ratios taken pass by pass: the machine's speed drifts over
    minutes; within one pass every implementation sees nearly the same machine, so the
    median of per-pass ratios is steadier than a ratio of medians. Keys read
    ``"ours/theirs"``.
    """
    seconds = {name: statistics.median(values) for name, values in per_pass.items()}
    ratios = {}
    for ours in (name for name in OURS if name in per_pass):
        for other in (name for name in per_pass if name != ours):
            pairs = zip(per_pass[ours], per_pass[other], strict=True)
            ratios[f"{ours}/{other}"] = statistics.median(a / b for a, b in pairs)
    return {"seconds": seconds, "ratios": ratios}


def compare(
    sizes: tuple[int, ...], batch: int, optimizer: str, timing: dict[str, float], names: list[str]
) -> dict[str, dict[str, float]]:
    """Interleaved: every implementation in ``names`` in this process, taking turns."""
    steps = {name: make_step(name, sizes, batch, optimizer) for name in names}
    available = {name: step for name, step in steps.items() if step is not None}
    return summary(step_times(available, **timing))


def compare_isolated(
    config: str, optimizer: str, timing: dict[str, float], names: list[str]
) -> dict[str, dict[str, float]]:
    """Isolated: each implementation in a process of its own, the processes taking turns
    (see :func:`isolated_turns`)."""
    commands = {
        name: [sys.executable, __file__, "--worker", name, config, optimizer] for name in names
    }
    return summary(isolated_turns(commands, timing))


def isolated_turns(commands: dict[str, list[str]], timing: dict[str, float]) -> dict[str, list]:
    """Seconds per step of each implementation, one per pass, each timed in a worker process
    of its own started with ``commands[name]``.

    Each worker builds its step once (minigrad's never imports PyTorch); then, pass after
    pass in rotated order, each worker is told to time one turn while the others wait on
    their input, idle. Turns are paired pass by pass as in :func:`compare`, without one
    library's threads in the other's process.
    """
    names = list(commands)
    workers = {}
    try:
        for name, command in commands.items():
            workers[name] = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        per_pass: dict[str, list[float]] = {name: [] for name in names}
        one_turn = json.dumps({**timing, "passes": 1})
        for turn in range(int(timing["passes"])):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                worker = workers[name]
                worker.stdin.write(one_turn + "\n")  # type: ignore[union-attr]
                worker.stdin.flush()  # type: ignore[union-attr]
                answer = worker.stdout.readline()  # type: ignore[union-attr]
                if not answer:
                    raise RuntimeError(f"the {name} worker stopped (exit {worker.wait()})")
                per_pass[name].append(float(answer))
    finally:
        for worker in workers.values():
            worker.stdin.close()  # type: ignore[union-attr]
            worker.wait()
            worker.stdout.close()  # type: ignore[union-attr]
    return per_pass


def worker(name: str, config: str, optimizer: str) -> None:
    """Run in a child process: build one implementation's step, then for each line of
    timing settings on stdin time one turn and print its seconds per step."""
    sizes, batch = CONFIGS[config]
    step = make_step(name, sizes, batch, optimizer)
    for line in sys.stdin:
        (seconds,) = step_times({name: step}, **json.loads(line))[name]
        print(seconds, flush=True)


# -- memory ---------------------------------------------------------------------------------


def minigrad_memory(sizes: tuple[int, ...], batch: int, optimizer: str) -> dict[str, int]:
    """Peak bytes NumPy holds during one step, against the step's budget.

    budget = parameters + gradients + optimizer buffers + the batch + activations (every
    layer's output, ReLU masks and the loss's probabilities). A parameter-sized temporary
    made during the step would push the peak above it by a whole parameter's size.
    """
    x, y, weights = problem(sizes, batch)
    tracemalloc.start()
    try:
        step = minigrad_step(sizes, weights, x, y, optimizer)
        step()
        step()
        model, opt = step.model, step.optimizer  # type: ignore[attr-defined]
        params = sum(p.value.nbytes for p in model.parameters())
        buffers = sum(
            value.nbytes
            for state in opt.state.values()
            for value in state.values()
            if isinstance(value, np.ndarray)
        ) + sum(work.nbytes for work in opt._work.values())
        outputs = sum(batch * n * 4 for n in sizes[1:])  # Dense outputs (the last: logits)
        relu = sum(batch * n * (4 + 1) for n in sizes[1:-1])  # ReLU outputs and masks
        probabilities = batch * sizes[-1] * 4
        budget = 2 * params + buffers + x.nbytes + outputs + relu + probabilities
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"budget": budget, "peak": peak, "held_before_step": before}


def resident_memory(framework: str, config: str, optimizer: str) -> int | None:
    """Peak resident bytes added by building and training, in a fresh process (Linux only)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    command = [sys.executable, __file__, "--probe", framework, config, optimizer]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return int(result.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe(framework: str, config: str, optimizer: str) -> None:
    """Run in a child process: print the peak resident bytes that training adds."""
    sizes, batch = CONFIGS[config]
    x, y, weights = problem(sizes, batch)
    make = minigrad_step if framework == "minigrad" else torch_step
    # one-off costs first, on a tiny model: PyTorch's allocations, numba and the fused
    # kernels (about 100 MiB of compiler, paid once per process when numba is installed)
    tiny = problem((2, 2), 1)
    make((2, 2), tiny[2], tiny[0], tiny[1], optimizer)()
    Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark from here
    baseline = _status_kib("VmRSS")
    step = make(sizes, weights, x, y, optimizer)
    for _ in range(5):
        step()
    print((_status_kib("VmHWM") - baseline) * 1024)


# -- the report -----------------------------------------------------------------------------


def environment() -> dict[str, object]:
    """The machine, the versions, the BLAS library, its kernel and the thread counts."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": _processor(),
        "cpus": os.cpu_count(),
        "openblas_variables": sorted(k for k in os.environ if k.startswith("OPENBLAS")),
        "minigrad_fused_update": fused_by_default(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["thread_pools"] = [
            {k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "architecture")}
            for pool in threadpool_info()
        ]
    except ImportError:
        pass
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    torch = load_torch()
    info["torch"] = None if torch is None else torch.__version__
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    return info


def _processor() -> str:
    """The CPU model name (Linux), else what the platform module says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _blas(env: dict) -> str:
    pools = [pool for pool in env.get("thread_pools", []) if pool.get("user_api") == "blas"]
    return ", ".join(
        f"{pool['internal_api']} {pool['architecture']} x{pool['num_threads']}" for pool in pools
    )


def markdown(results: dict) -> str:
    env = results["environment"]
    names = [name for name in LABELS if name in results["steps"][0]["interleaved"]["seconds"]]
    torch_note = (
        f"PyTorch {env['torch']} ({env.get('torch_blas')}, {env.get('torch_threads')} threads)"
        if env.get("torch")
        else "PyTorch not installed"
    )
    update = (
        "fused (numba " + str(env.get("numba")) + ")" if env["minigrad_fused_update"] else "NumPy"
    )
    lines = [
        f"{env['processor']}, {env['cpus']} CPUs; Python {env['python']}, NumPy {env['numpy']} "
        f"({_blas(env) or 'BLAS unknown'}), {torch_note}; minigrad's optimizer update: {update}. "
        f"float32. Times: median of {results['timing']['passes']} turns x "
        f"{results['timing']['rounds']} rounds, each implementation in a process of its own "
        "(isolated) and all in one process taking turns (interleaved).",
        "",
        "Step time in microseconds (isolated):",
        "",
        "| config | optimizer | " + " | ".join(LABELS[name] for name in names) + " |",
        "| --- | --- |" + " ---: |" * len(names),
    ]

    def us(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value * 1e6:,.0f}" if value >= 1e-4 else f"{value * 1e6:.1f}"

    def r(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in results["steps"]:
        t = row["isolated"]["seconds"]
        cells = " | ".join(us(t.get(name)) for name in names)
        lines.append(f"| {row['config']} | {row['optimizer']} | {cells} |")
    columns = [
        ("minigrad/torch", "isolated", "minigrad / PyTorch"),
        ("minigrad/torch", "interleaved", "minigrad / PyTorch (interleaved)"),
        ("minigrad_zero_grad/torch", "isolated", "+ zero_grad / PyTorch"),
        ("minigrad_numpy_update/torch", "isolated", "NumPy update / PyTorch"),
        ("minigrad/floor", "isolated", "minigrad / floor"),
        ("minigrad/numpy", "isolated", "minigrad / hand-written NumPy"),
    ]
    present = results["steps"][0]["isolated"]["ratios"]
    columns = [column for column in columns if column[0] in present]
    lines += [
        "",
        "Ratios (medians of ratios paired turn by turn):",
        "",
        "| config | optimizer | " + " | ".join(label for *_, label in columns) + " |",
        "| --- | --- |" + " ---: |" * len(columns),
    ]
    for row in results["steps"]:
        cells = " | ".join(r(row[mode]["ratios"].get(key)) for key, mode, _ in columns)
        lines.append(f"| {row['config']} | {row['optimizer']} | {cells} |")
    if results.get("memory"):
        lines += [
            "",
            "| config | optimizer | minigrad peak / budget | minigrad peak RSS (MiB) "
            "| PyTorch peak RSS (MiB) |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for row in results["memory"]:
            mib = {k: "-" if v is None else f"{v / 2**20:.1f}" for k, v in row["resident"].items()}
            lines.append(
                f"| {row['config']} | {row['optimizer']} "
                f"| {row['minigrad']['peak'] / row['minigrad']['budget']:.2f} "
                f"| {mib['minigrad']} | {mib['torch']} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in (
        (axes[0], "batch", "batch size (784-256-128-10)"),
        (axes[1], "width", "hidden width w (784-w-w-10, batch 128)"),
    ):
        rows = results["scaling"][key]
        xs = [row[key] for row in rows]
        for name, style in (
            ("minigrad", "o-"),
            ("torch", "s--"),
            ("floor", "^:"),
            ("numpy", "x-."),
        ):
            ys = [row["seconds"].get(name) for row in rows]
            if all(v is not None for v in ys):
                ax.loglog(xs, [v * 1e6 for v in ys], style, label=name, base=2)
        ax.set_xlabel(label)
        ax.set_ylabel("step time (us), SGD")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("One training step, float32, median of turns")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per turn")
    parser.add_argument("--passes", type=int, default=7, help="turns of each implementation")
    parser.add_argument("--round-seconds", type=float, default=0.03, help="length of a round")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--write",
        dest="out",
        action="store_const",
        const=RESULTS,
        help="write step.json, step.md and step.png to benchmarks/results/ (tracked files)",
    )
    where.add_argument("--out", type=Path, help="write the results to this folder instead")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and rounds: checks only")
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.passes < 1 or not args.round_seconds > 0:
        parser.error(
            "--rounds and --passes must be >= 1 and --round-seconds > 0, got "
            f"{args.rounds}, {args.passes} and {args.round_seconds}"
        )
    return args


def write(results: dict, folder: Path) -> None:
    """step.json, step.md and step.png (when matplotlib is there) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "step.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "step.md").write_text(markdown(results))
    plot(results, folder / "step.png")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.probe:
        probe(*args.probe)
        return {}
    if args.worker:
        worker(*args.worker)
        return {}

    configs = {name: CONFIGS[name] for name in args.configs}
    timing = {"rounds": args.rounds, "round_seconds": args.round_seconds, "passes": args.passes}
    scaling_timing = {**timing, "passes": max(1, args.passes // 2)}
    batches, widths = [16, 32, 64, 128, 256, 512, 1024], [64, 128, 256, 512, 1024, 2048]
    memory_configs = [name for name in ("mnist", "wide") if name in configs]
    if args.smoke:
        configs = {"xor": CONFIGS["xor"], "digits": CONFIGS["digits"]}
        timing = {"rounds": 2, "round_seconds": 0.001, "passes": 1, "warmup": 0.0}
        scaling_timing = timing
        batches, widths, memory_configs = [8, 16], [16, 32], ["digits"]

    names = implementations()
    results: dict = {"environment": environment(), "timing": timing, "steps": [], "memory": []}
    for config, (sizes, batch) in configs.items():
        for optimizer in args.optimizers:
            row = {
                "config": config,
                "optimizer": optimizer,
                "isolated": compare_isolated(config, optimizer, timing, names),
                "interleaved": compare(sizes, batch, optimizer, timing, names),
            }
            results["steps"].append(row)
            print(
                f"{config:7s} {optimizer:9s}",
                *(f"{name} {row['isolated']['seconds'][name] * 1e6:9.1f} us" for name in names),
                flush=True,
            )
    for config in memory_configs:
        sizes, batch = CONFIGS[config]
        for optimizer in args.optimizers:
            resident = {"minigrad": resident_memory("minigrad", config, optimizer)}
            resident["torch"] = (
                resident_memory("torch", config, optimizer) if "torch" in names else None
            )
            results["memory"].append(
                {
                    "config": config,
                    "optimizer": optimizer,
                    "minigrad": minigrad_memory(sizes, batch, optimizer),
                    "resident": resident,
                }
            )
    scaling_names = [name for name in ("minigrad", "torch", "floor", "numpy") if name in names]
    results["scaling"] = {
        "batch": [
            {"batch": b, **compare((784, 256, 128, 10), b, "sgd", scaling_timing, scaling_names)}
            for b in batches
        ],
        "width": [
            {"width": w, **compare((784, w, w, 10), 128, "sgd", scaling_timing, scaling_names)}
            for w in widths
        ],
    }
    if args.out is not None:
        write(results, args.out)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
