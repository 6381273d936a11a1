"""``python -m minigrad`` (or ``minigrad``): train a small MLP or CNN and report its accuracy.

Problems end in one ``minigrad: error: ...`` line on stderr that says the fix, never a
traceback. Exit status 2: the command cannot start (a bad option value, as argparse reports
it with the usage line; a ``--data`` folder without MNIST files; a missing optional package).
Exit status 1: the run started and failed (training diverged, the model could not be
written, out of memory). 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from minigrad import (
    SGD,
    Adam,
    Conv2d,
    CrossEntropy,
    Dense,
    Flatten,
    MaxPool2d,
    Momentum,
    Normalization,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from minigrad.callbacks import LearningRateScheduler
from minigrad.data import (
    load_digits,
    load_mnist,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    train_test_split,
)
from minigrad.errors import DistributedError, DivergenceError
from minigrad.layers import LeakyReLU
from minigrad.layers.base import Layer
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
NAMES = [*BUILT_IN, "digits"]
MODELS = ("mlp", "cnn")

#: Exit statuses: the command could not start (argparse's own status for a bad option), the run
#: started and failed, and Ctrl-C (128 + SIGINT, as shells report it).
USAGE_ERROR, RUN_ERROR, INTERRUPTED = 2, 1, 130


class CommandError(Exception):
    """A problem the user can fix, reported as one ``minigrad: error: ...`` line."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def load(data: str, seed: int) -> tuple[np.ndarray, ...]:
    """x_train, x_test, y_train, y_test for a data set name or an MNIST folder, as they come
    (the model standardises them itself, see build_model)."""
    if data == "digits":
        try:
            x, y = load_digits()
        except ImportError:
            raise CommandError(
                "--data digits needs scikit-learn, which ships the 8x8 digits: "
                "pip install 'minigrad-nn[digits]' (or pip install scikit-learn)",
                USAGE_ERROR,
            ) from None
    elif data in BUILT_IN:
        x, y = BUILT_IN[data](seed)
    else:
        # the first 80% of the folder's set (8,000 of MNIST's test images) trains, the rest tests
        split = "train" if any(Path(data).glob("train-images*")) else "test"
        try:
            x, y = load_mnist(data, split)
            return train_test_split(x, y, test_size=0.2, shuffle=False)
        except (OSError, ValueError) as error:
            raise CommandError(
                f"--data {data}: {_one_line(error)}; the folder must hold MNIST's IDX files "
                "(train-images-idx3-ubyte and train-labels-idx1-ubyte, or the t10k- test "
                "files, raw or .gz)",
                USAGE_ERROR,
            ) from None
    return train_test_split(x, y, test_size=0.2, seed=seed)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum, or an error that says so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _learning_rate(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _data(text: str) -> str:
    """An argparse type: a data set name or an existing folder (its files are read later)."""
    if text in NAMES or Path(text).is_dir():
        return text
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(NAMES)} or a folder of MNIST IDX files, got {text!r}, "
        + ("which is a file, not a folder" if Path(text).exists() else "which does not exist")
    )


def _save_path(text: str) -> str:
    """An argparse type: a file path minigrad can create (checked before training starts)."""
    try:
        return _checked_save_path(text)
    except OSError as error:  # a name too long for the file system, a folder we cannot read
        raise argparse.ArgumentTypeError(
            f"cannot write {_shown(text)}: {error.strerror or _one_line(error)}"
        ) from None


def _shown(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _checked_save_path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is a folder; give a file path such as "
            f"{_shown(str(path / 'model.safetensors'))}"
        )
    if path.exists() and not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a regular file (a device, a pipe or a socket); give a path "
            "for a model file"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # save creates the missing folders below the first existing one
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot create {_shown(text)}: {_shown(str(folder))} is not a folder"
        )
    limit = os.pathconf(folder, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(os.fsencode(path.name)) > limit:
        raise argparse.ArgumentTypeError(
            f"cannot write {_shown(text)}: its name is {len(os.fsencode(path.name))} bytes, "
            f"longer than the {limit} this file system allows"
        )
    try:
        # a real write, not os.access: as root access() says yes to places that refuse files
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot write {_shown(text)}: {_shown(str(folder))} does not accept new files "
            f"({_one_line(error)})"
        ) from None
    return text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="Train a small MLP or CNN with minigrad and print its train and test accuracy.",
        epilog="Exit status: 0 on success; 2 when the command cannot start (a bad option, a "
        "--data folder without MNIST files, a missing optional package); 1 when the run "
        "fails (training diverged, the model cannot be written, out of memory); 130 on "
        "Ctrl-C. Errors are one 'minigrad: error: ...' line on stderr that says the fix.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        default="spirals",
        type=_data,
        help=f"data set: {', '.join(NAMES)} (digits needs scikit-learn), "
        "or a folder of MNIST IDX files (its first 80%% trains, the last 20%% tests)",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp: Dense layers of the --hidden widths; cnn (image data: digits or MNIST): two "
        "convolution + max-pooling stages (8 and 16 channels, 5x5 kernels) before them",
    )
    parser.add_argument(
        "--hidden", type=_integer(1), nargs="+", default=[64, 64], help="hidden widths"
    )
    parser.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation"
    )
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=_learning_rate, default=0.01, help="initial learning rate")
    parser.add_argument(
        "--cosine", action="store_true", help="decay the learning rate to 0 along a cosine"
    )
    parser.add_argument(
        "--epochs", type=_integer(0), default=40, help="passes over the training data"
    )
    parser.add_argument("--batch-size", type=_integer(1), default=32, help="samples per step")
    parser.add_argument(
        "--seed", type=_integer(0), default=0, help="seed for data, weights, shuffling"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel over MPI, on every process of mpiexec -n N python -m "
        "minigrad --distributed (each rank --batch-size samples a step; rank 0 prints and "
        "saves); needs pip install 'minigrad-nn[distributed]'",
    )
    parser.add_argument(
        "--save",
        metavar="PATH",
        type=_save_path,
        help="write the trained model to PATH (.safetensors; load it with minigrad.load). "
        "An mlp takes the data's raw inputs (its first layer standardises them with the "
        "training set's mean and deviation), or for MNIST pixels in [0, 1] as "
        "minigrad.data.load_mnist gives them; a cnn takes images of shape (1, side, side) "
        "with pixels in [0, 1]",
    )
    args = parser.parse_args(argv)
    if args.model == "cnn" and args.data in BUILT_IN:
        parser.error(
            f"--model cnn needs image data: --data digits or a folder of MNIST files, not "
            f"--data {args.data} (points in the plane; use --model mlp)"
        )
    if args.distributed and importlib.util.find_spec("mpi4py") is None:
        parser.error(
            "--distributed needs mpi4py and an MPI library: pip install "
            "'minigrad-nn[distributed]' (or pip install mpi4py mpich)"
        )
    if args.save is not None and importlib.util.find_spec("safetensors") is None:
        parser.error(
            "--save needs the safetensors package: pip install 'minigrad-nn[files]' "
            "(or pip install safetensors)"
        )
    return args


def build_model(
    widths: list[int], activation: str, rng: np.random.Generator, x_train: np.ndarray | None = None
) -> Sequential:
    """The MLP; with ``x_train``, a Normalization layer adapted to it comes first, so that the
    model (and a file it is saved to) takes raw inputs and standardises them itself."""
    init = "he_normal" if activation in ("relu", "leaky_relu") else "xavier_uniform"
    layers: list[Layer] = [] if x_train is None else [Normalization(widths[0]).adapt(x_train)]
    for fan_in, fan_out in pairwise(widths[:-1]):
        layers += [Dense(fan_in, fan_out, init=init, rng=rng), ACTIVATIONS[activation]()]
    return Sequential(*layers, Dense(widths[-2], widths[-1], rng=rng))


def build_cnn(
    side: int, classes: int, hidden: list[int], activation: str, rng: np.random.Generator
) -> Sequential:
    """A LeNet for (batch, 1, side, side) images: two stages of a 5x5 convolution (8, then
    16 channels, padded to keep the size), the activation and 2x2 max pooling, then Dense
    layers of the ``hidden`` widths."""
    init = "he_normal" if activation in ("relu", "leaky_relu") else "xavier_uniform"
    layers: list[Layer] = []
    for c_in, c_out in ((1, 8), (8, 16)):
        layers += [
            Conv2d(c_in, c_out, 5, padding=2, init=init, rng=rng),
            ACTIVATIONS[activation](),
            MaxPool2d(2),
        ]
    widths = [16 * (side // 4) ** 2, *hidden, classes]
    layers.append(Flatten())
    for fan_in, fan_out in pairwise(widths[:-1]):
        layers += [Dense(fan_in, fan_out, init=init, rng=rng), ACTIVATIONS[activation]()]
    return Sequential(*layers, Dense(widths[-2], widths[-1], rng=rng))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv``, train, report; on a problem print one error line and exit non-zero."""
    try:
        run(parse_args(argv))
        _flush_output()
    except CommandError as error:
        message, status = f"minigrad: error: {error}", error.status
    except KeyboardInterrupt:
        message, status = "minigrad: interrupted", INTERRUPTED
    except BrokenPipeError:
        # whoever read the output stopped reading (| head): nothing more to say, and nothing
        # left to flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(RUN_ERROR) from None
    except OSError as error:  # the output cannot be written (a full disk, /dev/full)
        message, status = f"minigrad: error: cannot write the output: {_one_line(error)}", 1
    else:
        return
    # printed outside the except clauses, once fit's progress bar has closed its line
    try:
        _flush_output()
    except OSError:
        pass
    if sys.stderr is not None:
        print(message, file=sys.stderr)
    raise SystemExit(status)


def _flush_output() -> None:
    if sys.stdout is not None:  # None when the command runs with its output closed (>&-)
        sys.stdout.flush()


def run(args: argparse.Namespace) -> None:
    """Load the data, train, evaluate, save; problems the user can fix become CommandError.
    With ``--distributed`` every rank trains; rank 0 alone prints and saves."""
    parallel = None
    if args.distributed:
        from minigrad.distributed import DataParallel

        parallel = DataParallel()
    say = print if parallel is None or parallel.rank == 0 else _silent
    x_train, x_test, y_train, y_test = load(args.data, args.seed)
    classes = int(max(y_train.max(), y_test.max())) + 1
    rng = np.random.default_rng(args.seed)
    try:
        if args.model == "cnn":
            # images, (batch, 1, side, side), pixels in [0, 1] as the loaders give them
            side = math.isqrt(x_train.shape[1])
            x_train = x_train.reshape(-1, 1, side, side)
            x_test = x_test.reshape(-1, 1, side, side)
            model = build_cnn(side, classes, args.hidden, args.activation, rng)
        else:
            # MNIST pixels in [0, 1] train as they are; other data sets are standardised
            # inside the model, with the training set's mean and deviation
            standardise = args.data in NAMES
            model = build_model(
                [x_train.shape[1], *args.hidden, classes],
                args.activation,
                rng,
                x_train if standardise else None,
            )
    except MemoryError as error:
        raise CommandError(
            f"out of memory building the model ({_one_line(error)}); use smaller --hidden widths",
            RUN_ERROR,
        ) from None
    loss = CrossEntropy()
    optimizer = OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    callbacks = (
        [LearningRateScheduler(CosineDecay(args.lr, args.epochs))]
        if args.cosine and args.epochs > 0
        else []
    )
    say(f"{args.data}: {len(x_train)} training and {len(x_test)} test samples, {classes} classes")
    say(model if parallel is None else f"{model}\non {parallel.size} ranks (MPI)")

    start = time.perf_counter()
    failure = None
    try:
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
            distributed=parallel or False,
        )
    except DivergenceError as error:
        failure = f"{_one_line(error)} (--lr {args.lr / 10:g})"
    except DistributedError as error:  # another rank failed; its error says why
        failure = _one_line(error)
    except MemoryError as error:
        failure = (
            f"out of memory while training ({_one_line(error)}); use a smaller --batch-size "
            "or smaller --hidden widths"
        )
    if failure is not None:
        # raised outside the except clause, so that nothing keeps fit's frames (and its
        # progress bar) alive: the bar closes its line before the error line is printed
        raise CommandError(failure, RUN_ERROR)
    seconds = time.perf_counter() - start
    train = evaluate(model, loss, x_train, y_train)
    test = evaluate(model, loss, x_test, y_test)
    say(
        f"trained {len(history.epochs)} epochs in {seconds:.1f} s: "
        f"train accuracy {train['accuracy']:.4f}, test accuracy {test['accuracy']:.4f}"
    )
    if args.save is not None and (parallel is None or parallel.rank == 0):
        try:
            save(model, args.save)
        except (OSError, ValueError) as error:
            raise CommandError(
                f"could not save the model to {args.save}: {_one_line(error)}; "
                "choose another --save path",
                RUN_ERROR,
            ) from None
        say(f"saved the model to {args.save}")


def _silent(*args: object) -> None:
    """print, on the ranks other than 0."""


if __name__ == "__main__":
    main()
