"""``python -m minigrad`` (or ``minigrad``): train a small MLP and report its accuracy."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from minigrad import SGD, Adam, CrossEntropy, Dense, Momentum, ReLU, Sequential, Sigmoid, Tanh
from minigrad.callbacks import LearningRateScheduler
from minigrad.data import (
    Standardizer,
    load_digits,
    load_mnist,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    train_test_split,
)
from minigrad.layers import LeakyReLU
from minigrad.optim import Optimizer
from minigrad.schedules import CosineDecay
from minigrad.serialization import save
from minigrad.training import evaluate, fit

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU}
BUILT_IN: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
    "spirals": lambda seed: make_spirals(1000, noise=0.02, seed=seed),
    "xor": lambda seed: make_xor(400, noise=0.15, seed=seed),
    "moons": lambda seed: make_moons(1000, noise=0.15, seed=seed),
    "circles": lambda seed: make_circles(1000, noise=0.05, seed=seed),
    "blobs": lambda seed: make_blobs(1000, centers=4, spread=1.5, seed=seed),
}


def load(data: str, seed: int) -> tuple[np.ndarray, ...]:
    """x_train, x_test, y_train, y_test for a data set name or an MNIST folder."""
    if data == "digits":
        x, y = load_digits()
    elif data in BUILT_IN:
        x, y = BUILT_IN[data](seed)
    elif Path(data).is_dir():
        # the first 8,000 images of the folder's set train, the last 2,000 test
        split = "train" if any(Path(data).glob("train-images*")) else "test"
        x, y = load_mnist(data, split)
        return train_test_split(x, y, test_size=0.2, shuffle=False)
    else:
        raise SystemExit(
            f"minigrad: --data must be one of {', '.join([*BUILT_IN, 'digits'])} or a folder "
            f"of MNIST IDX files; {data!r} is neither"
        )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=seed)
    scaler = Standardizer().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="Train a small MLP with minigrad and print its train and test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        default="spirals",
        help=f"data set: {', '.join([*BUILT_IN, 'digits'])} (digits needs scikit-learn), "
        "or a folder of MNIST IDX files (its first 80%% trains, the last 20%% tests)",
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden widths")
    parser.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation"
    )
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    parser.add_argument(
        "--cosine", action="store_true", help="decay the learning rate to 0 along a cosine"
    )
    parser.add_argument("--epochs", type=int, default=40, help="passes over the training data")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per step")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, weights, shuffling")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--save",
        metavar="PATH",
        help="write the trained model to PATH (.safetensors; load it with minigrad.load). "
        "It takes inputs scaled as this command scales them: standardised with the training "
        "set's mean and deviation, or MNIST pixels in [0, 1]",
    )
    args = parser.parse_args(argv)
    if args.epochs < 0 or args.batch_size < 1 or min(args.hidden) < 1 or args.lr < 0:
        parser.error("--epochs and --lr must be >= 0, --batch-size and --hidden widths >= 1")
    if args.save and importlib.util.find_spec("safetensors") is None:
        parser.error("--save needs the safetensors package: pip install 'minigrad[files]'")
    return args


def build_model(widths: list[int], activation: str, rng: np.random.Generator) -> Sequential:
    init = "he_normal" if activation in ("relu", "leaky_relu") else "xavier_uniform"
    layers = []
    for fan_in, fan_out in pairwise(widths[:-1]):
        layers += [Dense(fan_in, fan_out, init=init, rng=rng), ACTIVATIONS[activation]()]
    return Sequential(*layers, Dense(widths[-2], widths[-1], rng=rng))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = load(args.data, args.seed)
    classes = int(max(y_train.max(), y_test.max())) + 1
    rng = np.random.default_rng(args.seed)
    model = build_model([x_train.shape[1], *args.hidden, classes], args.activation, rng)
    loss = CrossEntropy()
    optimizer = OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    callbacks = [LearningRateScheduler(CosineDecay(args.lr, args.epochs))] if args.cosine else []
    print(f"{args.data}: {len(x_train)} training and {len(x_test)} test samples, {classes} classes")
    print(model)

    start = time.perf_counter()
    history = fit(
        model,
        loss,
        optimizer,
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        seed=args.seed,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    train = evaluate(model, loss, x_train, y_train)
    test = evaluate(model, loss, x_test, y_test)
    print(
        f"trained {len(history.epochs)} epochs in {seconds:.1f} s: "
        f"train accuracy {train['accuracy']:.4f}, test accuracy {test['accuracy']:.4f}"
    )
    if args.save:
        save(model, args.save)
        print(f"saved the model to {args.save}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
