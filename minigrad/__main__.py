"""``python -m minigrad``: train a small MLP on two interleaved spirals and report accuracy."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from minigrad import SGD, Adam, CrossEntropy, Dense, Momentum, ReLU, Sequential, Tanh
from minigrad.optim import Optimizer

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


def two_spirals(n_per_class: int, noise: float, rng: np.random.Generator):
    """Two interleaved spirals in the plane: x (2n, 2) float32, labels (2n,) in {0, 1}."""
    t = np.sqrt(rng.uniform(0.0, 1.0, n_per_class)) * 3.0 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3.0 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * n_per_class, 2))
    y = np.repeat(np.array([0, 1]), n_per_class)
    return x.astype(np.float32), y


def accuracy(model: Sequential, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model(x).argmax(axis=1) == y))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="Train a small MLP on two interleaved spirals and print its accuracy.",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[32, 32],
        help="hidden layer widths (default: 32 32)",
    )
    parser.add_argument(
        "--activation",
        choices=sorted(ACTIVATIONS),
        default="relu",
        help="hidden activation (default: relu)",
    )
    parser.add_argument(
        "--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="optimizer (default: adam)"
    )
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    parser.add_argument(
        "--epochs", type=int, default=200, help="passes over the data (default: 200)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling")
    args = parser.parse_args(argv)
    if args.epochs < 0 or args.batch_size < 1 or min(args.hidden) < 1:
        parser.error("--epochs must be >= 0, --batch-size and --hidden widths >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x, y = two_spirals(500, noise=0.02, rng=rng)
    order = rng.permutation(len(x))
    train, test = order[:800], order[800:]

    widths = [2, *args.hidden]
    layers = []
    for fan_in, fan_out in pairwise(widths):
        layers += [
            Dense(fan_in, fan_out, init="he_normal", rng=rng),
            ACTIVATIONS[args.activation](),
        ]
    model = Sequential(*layers, Dense(widths[-1], 2, rng=rng))
    loss = CrossEntropy()
    optimizer = OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    print(model)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        total = 0.0
        for first in range(0, len(train), args.batch_size):
            batch = train[first : first + args.batch_size]
            total += loss(model(x[batch]), y[batch]) * len(batch)
            model.backward(loss.backward(), input_grad=False)
            optimizer.step()
        if epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs:
            print(
                f"epoch {epoch:4d}  loss {total / len(train):.4f}  "
                f"train accuracy {accuracy(model, x[train], y[train]):.3f}"
            )
    seconds = time.perf_counter() - start
    print(
        f"trained in {seconds:.1f} s: train accuracy {accuracy(model, x[train], y[train]):.3f}, "
        f"test accuracy {accuracy(model, x[test], y[test]):.3f}"
    )


if __name__ == "__main__":
    main()
