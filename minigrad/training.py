"""The training loop: ``fit``, ``evaluate`` and ``predict``, and the History they keep.

``fit`` is the loop people write around a model, a loss and an optimizer every time: shuffle
the data into mini-batches, forward, loss, backward, step, keep the numbers per epoch,
validate, and let callbacks stop early or change the learning rate. Written once here, with
the inputs checked before the first step, a progress bar, and no cost per batch beyond the
step itself worth measuring (benchmarks/fit_benchmark.py).
"""

from __future__ import annotations

import inspect
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._accumulate import GradientMean
from minigrad._files import quoted, shortened
from minigrad._interrupts import DeferredInterrupts
from minigrad._validation import check_bool, check_integer, check_real
from minigrad.callbacks import Callback, learning_rate_advice
from minigrad.data.loader import DataLoader
from minigrad.distributed import AGREED, DataParallel, DistributedLoader, parallel_from
from minigrad.errors import DivergenceError
from minigrad.gradient_bounds import GradientBounds
from minigrad.layers import Sequential, Sigmoid, Softmax
from minigrad.layers.base import Layer
from minigrad.losses import BinaryCrossEntropy, CrossEntropy, Loss
from minigrad.metrics import METRICS, accuracy
from minigrad.optim.base import Optimizer
from minigrad.optim.clip import clip_grad_norm
from minigrad.optim.safe_step import SafeStep
from minigrad.serialization.checkpoints import Checkpoint, load_checkpoint
from minigrad.typing import FloatArray, Metric

__all__ = ["History", "TrainingState", "evaluate", "fit", "predict"]


class History(dict[str, list[float]]):
    """Per-epoch numbers of a ``fit``: ``history["loss"][e]`` is epoch e's mean training loss.

    Keys: "loss", one per metric ("accuracy"), the same with a ``val_`` prefix when
    validation data is given, and "lr", the learning rate the epoch ended with (the first
    param group's, where the optimizer's groups have their own).
    ``history.epochs`` counts the epochs from 1.

    Shape: each value is a list with one float per epoch done.

    Examples
    --------
    >>> history = History()
    >>> history.append({"loss": 0.9, "lr": 0.1})
    >>> history.append({"loss": 0.4, "lr": 0.1})
    >>> history, history.epochs, history["loss"]
    (History(epochs=2, last: loss=0.4, lr=0.1), [1, 2], [0.9, 0.4])
    """

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers, counted from 1: ``[1, 2, ..., len(history["loss"])]``."""
        return list(range(1, len(self.get("loss", [])) + 1))

    def append(self, logs: dict[str, float]) -> None:
        """Add one epoch's numbers, ``logs[name]`` at the end of ``history[name]``."""
        for name, value in logs.items():
            self.setdefault(name, []).append(value)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.items() if v)
        return f"History(epochs={len(self.epochs)}{', last: ' + last if last else ''})"


@dataclass
class TrainingState:
    """What callbacks see and may change during ``fit``.

    ``epoch`` counts from 0 and ``batch`` within the epoch from 0; ``step`` is the number of
    optimizer steps done so far (one per batch, or per group of batches with
    ``fit(accumulate=k)``). Setting ``stop_training`` ends training after this epoch.
    ``error`` is None, or the exception that is ending training (seen by ``on_train_end``).
    ``rank`` and ``world_size``: this process's rank and the number of ranks in a
    distributed ``fit`` (0 and 1 otherwise); callbacks that write files write on rank 0 only.

    Examples
    --------
    >>> from minigrad import MSE, SGD, Dense
    >>> model = Dense(1, 1, rng=0)
    >>> state = TrainingState(model, MSE(), SGD(model.parameters()), epochs=3)
    >>> state.epoch, state.batch, state.step, state.stop_training, state.history, state.error
    (0, 0, 0, False, History(epochs=0), None)
    >>> state.rank, state.world_size
    (0, 1)
    """

    model: Layer
    loss: Loss
    optimizer: Optimizer
    epochs: int
    loader: DataLoader | None = None
    history: History = field(default_factory=History)
    epoch: int = 0
    batch: int = 0
    step: int = 0
    stop_training: bool = False
    error: BaseException | None = None
    rank: int = 0
    world_size: int = 1


# -- checks at the boundary -----------------------------------------------------------------

#: Pre-flight checks look at the data in pieces of about this many values, so that checking a
#: large data set costs no more memory than a few batches.
CHUNK_VALUES = 1 << 20


def _check_objects(model: Any, loss: Any, optimizer: Any, what: str) -> None:
    """TypeError unless model, loss (and optimizer) are instances of the right classes."""
    expected: list[tuple[str, object, type]] = [("model", model, Layer), ("loss", loss, Loss)]
    if optimizer is not None:
        expected.append(("optimizer", optimizer, Optimizer))
    for name, value, cls in expected:
        if isinstance(value, cls):
            continue
        if isinstance(value, type) and issubclass(value, cls):
            hint = f"; pass an instance, {value.__name__}(...), not the class"
        else:
            hint = f"; pass a minigrad {cls.__name__}"
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(
            f"{what}: {name} must be {article} {cls.__name__} instance, got {_describe(value)}"
            f"{hint}"
        )
    reduction = getattr(loss, "reduction", "mean")
    if reduction not in ("mean", "batchmean"):
        raise ValueError(
            f"{what}: the loss must average over the batch (reduction='mean'), got "
            f"{type(loss).__name__} with reduction={reduction!r}: fit and evaluate report "
            "per-sample means, and a summed loss scales the gradients with the batch size"
        )


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return type(value).__name__


def _parameter_names(model: Layer, optimizer: Optimizer) -> list[str]:
    """A name, "parameter '<key>'", for each of the optimizer's parameters; ValueError when
    the optimizer holds parameters this model does not own (it was built on another model,
    say by re-running a notebook cell that builds a new model)."""
    keys = {id(p): key for key, p in model.named_parameters()}
    foreign = [index for index, p in enumerate(optimizer.params) if id(p) not in keys]
    if foreign:
        first = optimizer.params[foreign[0]]
        raise ValueError(
            f"fit: {len(foreign)} of the optimizer's {len(optimizer.params)} parameters are not "
            f"parameters of this model (the first: position {foreign[0]}, {first!r}), so "
            "training would never change them; build the optimizer on this model: "
            f"{type(optimizer).__name__}(model.parameters(), ...)"
        )
    return [f"parameter {keys[id(p)]!r}" for p in optimizer.params]


def _rows(n: int, row_values: int) -> Iterable[slice]:
    """Slices over n rows of ``row_values`` values each, about CHUNK_VALUES values a piece."""
    step = max(1, CHUNK_VALUES // max(1, row_values))
    return (slice(start, min(start + step, n)) for start in range(0, n, step))


def _check_values(array: NDArray[Any], name: str, what: str, dtype: np.dtype | None) -> None:
    """ValueError naming the first NaN or infinite entry of a float array, or saying that its
    values exceed the largest number of ``dtype`` (the model's), piece by piece."""
    if array.dtype.kind not in "biuf":
        return
    limit = None if dtype is None else float(np.finfo(dtype).max)
    row_values = int(np.prod(array.shape[1:], dtype=np.int64))
    largest = 0.0
    for rows in _rows(len(array), row_values):
        piece = array[rows]
        if array.dtype.kind == "f":
            finite = np.isfinite(piece)
            if not finite.all():
                bad = np.argwhere(~finite)[0]
                bad[0] += rows.start
                index = tuple(int(i) for i in bad)
                raise ValueError(
                    f"{what}: {name} holds NaN or infinite values, the first at index "
                    f"{index if len(index) > 1 else index[0]} ({array[index]})"
                )
        if limit is not None and piece.size:  # two reductions, no float64 copy of the piece
            largest = max(largest, abs(float(piece.max())), abs(float(piece.min())))
    if limit is not None and largest > limit:
        raise ValueError(
            f"{what}: {name} holds values up to {largest:.3g}, beyond the largest {dtype} "
            f"({limit:.3g}) that the model computes in; scale the data (standardise it, "
            "for example with a minigrad.Normalization layer) or build the model in float64"
        )


def _model_dtype(model: Layer) -> np.dtype | None:
    """The dtype the model's first parameter (so its first layer) computes in, if any."""
    for _, param in model.named_parameters():
        return param.dtype
    return None


def _checked_data(
    model: Layer, loss: Loss, x: ArrayLike, y: ArrayLike, what: str, names: tuple[str, str]
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """x and y as arrays, after checking everything a training run would trip over later,
    and the model's output for the first two samples."""
    x_name, y_name = names
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{what}: {x_name} and {y_name} must be arrays of samples, got shapes {x.shape}, "
            f"{y.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"{what}: {x_name} and {y_name} must have the same number of samples, got "
            f"{len(x)} and {len(y)}"
        )
    if len(x) == 0:
        raise ValueError(f"{what}: the data is empty (0 samples)")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{what}: {x_name} must hold real numbers, got dtype {x.dtype}")
    _check_values(x, x_name, what, _model_dtype(model))
    if y.dtype.kind == "c":
        raise TypeError(f"{what}: {y_name} must hold real numbers, got dtype {y.dtype}")
    # Run the model on two samples and the loss on every target, piece by piece, so that a
    # width mismatch or a label the loss cannot take fails now, in the loss's own words,
    # not mid-training. (Two: a BatchNorm without running statistics normalises with the
    # batch's own even in evaluation mode, and one sample has no variance.)
    try:
        with _in_mode(model, training=False), np.errstate(all="ignore"):
            output = np.asarray(model(x[:2]))
    except (ValueError, TypeError) as error:
        kind = ValueError if isinstance(error, ValueError) else TypeError
        raise kind(
            f"{what}: {x_name} of shape {x.shape} does not fit the model: {error}"
        ) from error
    _check_values(y, y_name, what, output.dtype if output.dtype.kind == "f" else None)
    stand_in = np.zeros(output.shape[1:], dtype=output.dtype)
    if isinstance(loss, BinaryCrossEntropy) and not loss.from_logits:
        stand_in += 0.5
    for rows in _rows(len(y), stand_in.size):
        batch = np.broadcast_to(stand_in, (rows.stop - rows.start, *stand_in.shape))
        try:
            with np.errstate(all="ignore"):
                loss(batch, y[rows])
        except (ValueError, TypeError) as error:
            where = (
                ""
                if rows.start == 0 and rows.stop == len(y)
                else (
                    f" (in samples {rows.start} to {rows.stop - 1}; indices below count from "
                    f"{rows.start})"
                )
            )
            raise ValueError(
                f"{what}: the targets {y_name} do not fit {loss!r}{where}: {error}"
            ) from error
    return x, y, output


def _default_metrics(loss: Loss) -> tuple[str, ...]:
    """Accuracy for the classification losses, nothing for the others (MSE...), as Keras
    reports only the loss unless metrics are asked for."""
    from minigrad.losses import CrossEntropy, MultiMarginLoss, NLLLoss

    classifiers = (CrossEntropy, BinaryCrossEntropy, NLLLoss, MultiMarginLoss)
    return ("accuracy",) if isinstance(loss, classifiers) else ()


def _metric_functions(metrics: Any, loss: Loss) -> dict[str, Metric]:
    """Metric functions by name; binary accuracy thresholds logits at 0, probabilities at 0.5."""
    if metrics is None:
        metrics = _default_metrics(loss)
    elif isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    elif not isinstance(metrics, (list, tuple)):
        raise TypeError(
            "metrics must be a list of metric names and functions (or None for the loss's "
            f"default), got {_describe(metrics)}"
        )
    threshold = 0.0 if isinstance(loss, BinaryCrossEntropy) and loss.from_logits else 0.5
    functions: dict[str, Metric] = {}
    for index, metric in enumerate(metrics):
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(
                    f"unknown metric {quoted(metric)}; known: {sorted(METRICS)} or a function"
                )
            name, function = metric, _registered(metric, loss, threshold)
        elif callable(metric):
            name = getattr(metric, "__name__", type(metric).__name__)
            if not isinstance(name, str):
                name = type(metric).__name__
            function = metric
        else:
            raise TypeError(
                f"metrics[{index}] must be a metric name or a function metric(pred, target), "
                f"got {_describe(metric)}"
            )
        if name in functions or name in ("loss", "lr") or name.startswith("val_"):
            problem = (
                "another metric has that name"
                if name in functions
                else "the History keeps the loss, the learning rate and the validation numbers "
                "under such names"
            )
            raise ValueError(
                f"metrics[{index}] is named {quoted(name)}: {problem}; give the function "
                "another __name__ (functools.partial objects and lambdas need one)"
            )
        functions[name] = function
    return functions


def _registered(name: str, loss: Loss, threshold: float) -> Metric:
    """METRICS[name] with the options the loss decides, where it takes them: the threshold
    for binary outputs, and after BinaryCrossEntropy the positive class's precision, recall
    and F1 (``average="binary"``, as Keras and scikit-learn report them)."""
    function = METRICS[name]
    takes = inspect.signature(function).parameters
    options: dict[str, Any] = {"threshold": threshold} if "threshold" in takes else {}
    if "average" in takes and isinstance(loss, BinaryCrossEntropy):
        options["average"] = "binary"
    return partial(function, **options)


def _score(name: str, metric: Metric, pred: NDArray[Any], target: NDArray[Any]) -> float:
    """``metric(pred, target)`` as a float, or TypeError naming the metric."""
    value = metric(pred, target)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"metric {quoted(name)} must return a number, got {type(value).__name__}")
    return float(value)


def _check_metrics(
    functions: dict[str, Metric], output: NDArray[Any], target: NDArray[Any], what: str
) -> None:
    """Each metric on the first sample's output and target, so that a metric that cannot
    score these targets (accuracy on a regression's) fails now, naming it. (A NaN output is
    left to the first step, which reports a divergence.)"""
    if output.dtype.kind == "f" and not np.isfinite(output).all():
        return
    for name, metric in functions.items():
        try:
            with np.errstate(all="ignore"):
                _score(name, metric, output, target)
        except (ValueError, TypeError) as error:
            raise type(error)(
                f"{what}: the metric {quoted(name)} cannot score these targets: {error}; "
                "choose metrics= that fit the loss (metrics=None picks the loss's default)"
            ) from error


def _callback_list(callbacks: Any) -> list[Callback]:
    """``callbacks`` as a list of Callback instances (None: none; one Callback: itself)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"callbacks must be a list of Callback instances, got {_callback_hint(callbacks)}"
        )
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks[{index}] must be a Callback instance, got {_callback_hint(callback)}"
            )
    return list(callbacks)


def _callback_hint(value: Any) -> str:
    if isinstance(value, type) and issubclass(value, Callback):
        return f"the class {value.__name__}; pass an instance, {value.__name__}(...)"
    if callable(value):
        return (
            f"the function {quoted(getattr(value, '__name__', type(value).__name__))}; wrap it "
            "in a Callback "
            "subclass that overrides the hook it should run in, e.g. "
            "class Hook(Callback): def on_epoch_end(self, state, logs): ..."
        )
    return _describe(value)


def _set_mode(model: Layer, training: bool) -> None:
    """``model.train(training)`` as a critical section: Ctrl-C never leaves it half done."""
    with DeferredInterrupts() as interrupts:
        interrupts.begin()
        try:
            model.train(training)
        finally:
            interrupts.end()


@contextmanager
def _in_mode(model: Layer, training: bool) -> Iterator[None]:
    """Run the block with the model in train or eval mode, then restore the mode it had."""
    was_training = getattr(model, "training", True)
    _set_mode(model, training)
    try:
        yield
    finally:
        _set_mode(model, was_training)


def _warn_if_activated_twice(model: Layer, loss: Loss) -> None:
    """A UserWarning when the model ends in the activation the loss applies itself: a
    Softmax before CrossEntropy, a Sigmoid before BinaryCrossEntropy(from_logits=True).

    The last layer is found through nested Sequentials. A LogSoftmax before CrossEntropy
    is fine: its outputs are logits shifted per row, with the same softmax.
    """
    activation: type[Layer]
    if isinstance(loss, CrossEntropy):
        activation, takes = Softmax, "CrossEntropy takes logits and applies the softmax itself"
        other = (
            "apply mg.Softmax() to the model's outputs where you need probabilities, or end "
            "the model with mg.LogSoftmax(), whose outputs CrossEntropy takes"
        )
    elif isinstance(loss, BinaryCrossEntropy) and loss.from_logits:
        activation = Sigmoid
        takes = "BinaryCrossEntropy(from_logits=True) takes logits and applies the sigmoid itself"
        other = "or keep it and train with BinaryCrossEntropy(), which takes probabilities"
    else:
        return
    path, last = "model", model
    while type(last) is Sequential and len(last):
        path += f"[{len(last) - 1}]"
        last = last[-1]
    if not isinstance(last, activation):
        return
    name = type(last).__name__
    where = f"the model's last layer, {path} ({name}),"
    if path == "model":  # the model is the layer itself
        where = f"the model, a {name},"
    warnings.warn(
        f"fit: {where} turns its outputs into probabilities, but {takes}, so training "
        f"would apply it twice: the gradients shrink and the model learns slowly or not at "
        f"all. Remove the {name} from the model ({other})",
        UserWarning,
        stacklevel=3,
    )


def _diverged(state: TrainingState, problem: str) -> DivergenceError:
    """The DivergenceError fit raises, with the epoch, the batch, the step and advice."""
    advice = (
        learning_rate_advice(state.optimizer)
        if state.step > 0
        else "no step had been taken yet, so the learning rate is not the cause: the inputs "
        "or the initial weights are too large for the model's dtype (standardise the data, "
        "for example with a minigrad.Normalization layer, or use float64)"
    )
    error = DivergenceError(
        f"training diverged at epoch {state.epoch + 1}, batch {state.batch + 1} "
        f"(step {state.step}): {problem}; {advice}"
    )
    if state.world_size > 1:  # from identical values on every rank: raised on every rank
        setattr(error, AGREED, True)
    return error


# -- the loop ---------------------------------------------------------------------------------


def fit(
    model: Layer,
    loss: Loss,
    optimizer: Optimizer,
    x: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int,
    batch_size: int = 32,
    shuffle: bool = True,
    validation_data: tuple[ArrayLike, ArrayLike] | None = None,
    metrics: Sequence[str | Metric] | None = None,
    callbacks: Callback | Sequence[Callback] | None = (),
    clip_norm: float | None = None,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    resume_from: str | os.PathLike[str] | Checkpoint | None = None,
    accumulate: int = 1,
    distributed: bool | DataParallel = False,
) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batch gradient descent; return the History.

    For each mini-batch B: theta <- optimizer.step(theta, dL_B/dtheta), L_B the loss's mean
    over B. An epoch's loss is the mean over its samples, (1/n) sum_B |B| L_B. With
    ``accumulate=k`` each step takes the mean gradient of k batches instead,
    sum_B (|B| / N) dL_B/dtheta over the k batches and their N samples.

    Each epoch shuffles the samples (from ``seed``: the same seed and the same initial
    weights give the same History, bit for bit), then for each batch runs forward, the loss,
    backward, optional gradient clipping and the optimizer step. The epoch's loss and
    metrics are means over its samples, computed from the outputs the training steps
    produced (as Keras reports them); validation numbers come from a pass in eval mode at the
    end of the epoch.

    Nothing is lost when training diverges: a batch whose loss is NaN or infinite stops
    training before its step, and every step goes through
    :class:`~minigrad.optim.SafeStep`, which never takes a step that would make a parameter
    NaN or infinite (it checks ||g|| for every gradient, about 1-2% of a step). Either way
    :class:`~minigrad.errors.DivergenceError` is raised and the model keeps its last finite
    parameters, so no checkpoint ever holds a non-finite value. On any error, and on Ctrl-C,
    the callbacks' ``on_train_end`` still runs (with ``state.error`` set), so
    ``EarlyStopping`` restores its best weights. Ctrl-C never splits an optimizer step nor a
    switch between train and eval mode: the step is finished, the mode restored, then
    KeyboardInterrupt is raised.

    Parameters
    ----------
    model : Layer
        Usually a Sequential; its output goes to ``loss``.
    loss : Loss
        An instance, e.g. ``CrossEntropy()``.
    optimizer : Optimizer
        Built on ``model.parameters()`` (or a part of them: the rest stays frozen).
    x : array (n, ...), y : array (n, ...)
        Samples and targets, one per row, in the form ``loss`` takes.
    epochs : int >= 0
        The number of epochs in all, counting those a resumed checkpoint already holds.
    batch_size : int >= 1, default 32
    shuffle : bool, default True
    validation_data : (x_val, y_val) or None
    metrics : list of names ("accuracy") and functions ``metric(pred, target) -> float``
        Names from :data:`~minigrad.metrics.METRICS`: "accuracy", "top_k_accuracy",
        "precision", "recall", "f1" (class 1's after BinaryCrossEntropy, else the macro
        average), "mae", "mse", "r2"; a function is logged under its ``__name__``.
        Default (None): ``["accuracy"]`` for CrossEntropy and BinaryCrossEntropy, none for
        other losses (as Keras, which reports only the loss unless asked: MSE's own value
        is the loss already). ``[]`` for none.
    callbacks : list of Callback instances, a single Callback, or None
    clip_norm : float > 0 or None
        When set, gradients are scaled to a global norm of at most this before each step
        (:func:`~minigrad.optim.clip_grad_norm`).
    seed : int, Generator or None
        For the shuffling.
    progress : bool, default True
        A tqdm progress bar over each epoch's batches with the running loss and metrics,
        one line kept per epoch (needs ``tqdm``: ``pip install 'minigrad-nn[progress]'``;
        without it fit warns once and trains without a bar). In Jupyter without ipywidgets
        the bar is drawn as text.
    resume_from : path, Checkpoint or None
        A checkpoint (from :class:`~minigrad.callbacks.ModelCheckpoint` or
        :func:`~minigrad.save_checkpoint`) to continue from: its parameters, optimizer
        state, shuffling generator and history are restored into ``model``, ``optimizer``
        and the run, and training goes on from the epoch after the saved one up to
        ``epochs`` in all. The result is bit for bit that of a run never interrupted.
    accumulate : int >= 1, default 1
        Gradient accumulation: one optimizer step per ``accumulate`` batches, on the mean of
        their gradients, weighted by their sizes (see Notes).
    distributed : bool or DataParallel, default False
        True: data-parallel training over MPI on every process ``mpiexec`` started, as
        PyTorch's DistributedDataParallel with a DistributedSampler (see
        :mod:`minigrad.distributed`): every rank calls ``fit`` with the same model,
        data and arguments; each trains on its shard of every epoch's shuffled samples with
        ``batch_size`` samples a batch, and the gradients are averaged over the ranks before
        each step, so N ranks take the steps of one process with ``batch_size * N``. Logs
        are means over every rank's samples; only rank 0 shows progress and writes files. A
        :class:`~minigrad.distributed.DataParallel` picks another communicator.

    Returns
    -------
    History
        ``history["loss"]`` per epoch, the metrics, ``val_`` entries, and "lr".

    Raises
    ------
    TypeError
        Before the first step: model, loss, optimizer, metrics or callbacks of the wrong
        kind (a class instead of an instance, a function as a callback), flags that are not
        bools, counts that are not integers.
    ValueError
        Before the first step, for data that cannot train: x and y of different lengths,
        empty data, NaN or infinite inputs or targets, targets the loss refuses,
        batch_size < 1, epochs < 0, an optimizer built on another model's parameters, a
        checkpoint that already holds ``epochs`` epochs.
    DivergenceError
        When a batch's loss or output becomes NaN or infinite, or a step would make a
        parameter non-finite; the model keeps the parameters from before that step.

    Warns
    -----
    UserWarning
        Once, before training, when the model's last layer (inside nested Sequentials) is
        the activation the loss applies itself: a Softmax before CrossEntropy, a Sigmoid
        before ``BinaryCrossEntropy(from_logits=True)``.

    Shape
    -----
    x (n, ...) and y (n, ...), split into batches (batch_size, ...) along the first axis.

    Notes
    -----
    Gradient accumulation (``accumulate=k``) trains with the steps of ``batch_size * k``
    batches while holding only ``batch_size`` samples' activations. A backward overwrites
    ``.grad``, so fit sums each gradient into a buffer allocated once (in the dtype the
    optimizers keep their state in) and writes the mean into ``.grad`` before the step. For a
    loss that averages over samples (all of minigrad's), the step is exactly the one a batch
    of those samples together would take, up to rounding: ``fit(batch_size=b,
    accumulate=k)`` follows ``fit(batch_size=k * b)`` with the same seed. Layers whose output
    depends on the batch (BatchNorm's statistics) still see batches of ``batch_size``.

    - An epoch's last step takes the batches left over when the epoch's batch count is not a
      multiple of k (as a PyTorch loop stepping at the end of its epoch does; Keras'
      ``gradient_accumulation_steps`` instead carries them into the next epoch), weighted
      by their sizes, so an epoch ends with nothing accumulated and a checkpoint written at
      its end resumes bit for bit.
    - ``clip_norm`` clips the mean before its step; SafeStep proves the step from the
      batches' bounds (the mean of gradients each at most B_i is at most max B_i) or
      measures the mean, so no step ever makes a parameter non-finite; a batch whose loss is
      NaN or infinite stops training at that batch, before the step.
    - Callbacks' ``on_batch_begin`` and ``on_batch_end`` still run for every batch, with that
      batch's loss; ``state.step`` counts optimizer steps, so a schedule applied per step
      (``LearningRateScheduler(per="step")``) advances once per k batches. The progress bar
      and the History report per-batch losses as without accumulation.

    Examples
    --------
    >>> import minigrad as mg
    >>> x, y = mg.data.make_xor()
    >>> model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
    >>> loss = mg.BinaryCrossEntropy(from_logits=True)
    >>> optimizer = mg.Adam(model.parameters(), lr=0.05)
    >>> history = fit(model, loss, optimizer, x, y[:, None], epochs=200, progress=False)
    >>> len(history["loss"]), history["loss"][-1] < 0.01, history["accuracy"][-1]
    (200, True, 1.0)

    Two batches of 2 accumulated take the steps of one batch of 4:

    >>> small, large = (mg.Dense(2, 1, rng=0) for _ in range(2))
    >>> for net, size, k in ((small, 2, 2), (large, 4, 1)):
    ...     _ = fit(net, loss, mg.SGD(net.parameters(), lr=0.1), x, y[:, None], epochs=5,
    ...             batch_size=size, accumulate=k, shuffle=False, progress=False)
    >>> np.allclose(small.weight.value, large.weight.value)
    True
    """
    parallel = parallel_from(distributed)
    with _on_every_rank(parallel):  # an error before training stops every rank together
        _check_objects(model, loss, optimizer, "fit")
        epochs = check_integer("epochs", epochs, minimum=0)
        batch_size = check_integer("batch_size", batch_size, minimum=1)
        shuffle = check_bool("shuffle", shuffle)
        progress = check_bool("progress", progress)
        accumulate = check_integer("accumulate", accumulate, minimum=1)
        if clip_norm is not None:
            clip_norm = check_real("clip_norm", clip_norm, above=0)
        names = _parameter_names(model, optimizer)
        metric_functions = _metric_functions(metrics, loss)
        callbacks = _callback_list(callbacks)
        x, y, output = _checked_data(model, loss, x, y, "fit", ("x", "y"))
        _check_metrics(metric_functions, output, y[: len(output)], "fit")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError(
                    "validation_data must be a pair (x_val, y_val), got "
                    + (
                        f"{len(validation_data)} items"
                        if isinstance(validation_data, (tuple, list))
                        else _describe(validation_data)
                    )
                )
            validation_data = _checked_data(
                model, loss, *validation_data, "fit", ("validation_data x", "validation_data y")
            )[:2]
        checkpoint = None
        if resume_from is not None:
            checkpoint = _checkpoint(resume_from)
            if checkpoint.epoch >= epochs:
                raise ValueError(
                    f"fit: the checkpoint already holds {checkpoint.epoch} epochs and epochs="
                    f"{epochs}, so there is nothing to train; epochs counts every epoch, the "
                    f"resumed ones included: pass epochs > {checkpoint.epoch}"
                )
            logged = ["loss", *metric_functions]
            if validation_data is not None:
                logged += [f"val_{name}" for name in ["loss", *metric_functions]]
            _check_resumed_history(checkpoint, [*logged, "lr"])
        _warn_if_activated_twice(model, loss)
        if parallel is None:
            loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
        else:
            loader = DistributedLoader(
                x, y, parallel.rank, parallel.size, batch_size, shuffle, seed
            )
        state = TrainingState(model, loss, optimizer, epochs, loader)
        first_epoch = 0
        if checkpoint is not None:
            with DeferredInterrupts() as interrupts:
                # the model and the optimizer are restored together or not at all
                interrupts.begin()
                try:
                    first_epoch = _resume(state, checkpoint)
                finally:
                    interrupts.end()
    if parallel is not None:  # same architecture and settings, then rank 0's values
        state.rank, state.world_size = parallel.rank, parallel.size
        settings = {
            "x": (x.shape, x.dtype.str),
            "y": (y.shape, y.dtype.str),
            "validation": None if validation_data is None else [v.shape for v in validation_data],
            "optimizer": (type(optimizer).__name__, len(optimizer.params)),
            "loop": (epochs, first_epoch, batch_size, accumulate, shuffle),
            "metrics": sorted(metric_functions),
        }
        parallel.check_same(model, settings)
        parallel.broadcast(model, loader.rng)
    frozen = [p for p in model.parameters() if all(p is not q for q in optimizer.params)]
    guard = SafeStep(optimizer, names, other_params=frozen)
    bounds = GradientBounds(model, loss, _largest_row_norm(x), x.shape[1] if x.ndim == 2 else 0)
    bounds.supported = bounds.supported and x.ndim == 2
    mean = GradientMean(guard.params, accumulate) if accumulate > 1 else None
    bar = _progress_bars(progress and state.rank == 0)
    with DeferredInterrupts() as interrupts:
        try:
            _set_mode(model, True)
            for callback in callbacks:
                callback.on_train_begin(state)
            # A diverging run overflows somewhere before its loss turns NaN; fit reports it
            # once, with the epoch and the step, instead of a stream of NumPy warnings.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for epoch in range(first_epoch, epochs):
                    state.epoch = epoch
                    for callback in callbacks:
                        callback.on_epoch_begin(state)
                    if not model.training:  # a callback switched the model to eval mode
                        _set_mode(model, True)
                    if callbacks:  # they may have changed parameters or hyperparameters
                        guard.resync()
                        bounds.resync()
                    logs = _train_epoch(
                        state,
                        metric_functions,
                        callbacks,
                        clip_norm,
                        bar,
                        (guard, bounds, mean),
                        interrupts,
                        parallel,
                    )
                    if parallel is not None:  # BatchNorm's running statistics: rank 0's
                        parallel.broadcast_buffers(model)
                    if validation_data is not None:
                        scores = _evaluate(
                            model,
                            loss,
                            *validation_data,
                            max(batch_size, 256),
                            metric_functions,
                            state,
                        )
                        logs.update({f"val_{name}": value for name, value in scores.items()})
                    # the first param group's (every group's, unless they differ)
                    logs["lr"] = float(optimizer.param_groups[0]["lr"])
                    state.history.append(logs)
                    if callbacks:  # nothing non-finite reaches a callback that writes files
                        guard.resync()
                    if _end_epoch(callbacks, state, logs, parallel):
                        break
        except BaseException as error:
            if parallel is not None and not getattr(error, AGREED, False):
                parallel.abort(error)  # the other ranks cannot know of it: end them all
            state.error = error
            _finish(model, callbacks, state, interrupts)
            raise
        _finish(model, callbacks, state, interrupts)
    return state.history


@contextmanager
def _on_every_rank(parallel: DataParallel | None) -> Iterator[None]:
    """Run the block; in a distributed fit, an exception on any rank is then raised on every
    rank (see :meth:`DataParallel.agree`)."""
    if parallel is None:
        yield
        return
    try:
        yield
    except Exception as error:
        parallel.agree(error)
        raise
    parallel.agree(None)


def _end_epoch(
    callbacks: list[Callback],
    state: TrainingState,
    logs: dict[str, float],
    parallel: DataParallel | None,
) -> bool:
    """Every callback's on_epoch_end; whether to stop training. In a distributed fit the
    ranks agree: all stop if any callback asked to on any rank, or raised there."""
    if parallel is None:
        for callback in callbacks:
            callback.on_epoch_end(state, logs)
        return check_bool("TrainingState.stop_training", state.stop_training)
    error = None
    try:
        for callback in callbacks:
            callback.on_epoch_end(state, logs)
        check_bool("TrainingState.stop_training", state.stop_training)
    except Exception as caught:
        error = caught
    state.stop_training = parallel.agree(error, stop=error is None and state.stop_training)
    return state.stop_training


def _finish(
    model: Layer, callbacks: list[Callback], state: TrainingState, interrupts: DeferredInterrupts
) -> None:
    """Training mode back and every on_train_end, as one critical section: a Ctrl-C during
    EarlyStopping's restore would leave a mix of the best and the last weights."""
    interrupts.begin()
    try:
        _set_mode(model, True)
        _end_training(callbacks, state)
    finally:
        interrupts.end()


def _check_resumed_history(checkpoint: Checkpoint, logged: list[str]) -> None:
    """ValueError unless the checkpoint's counts are counts and its history has one entry per
    epoch under exactly the names this run logs (a run resumed with other metrics or without
    its validation data would leave a ragged History)."""
    for name in ("epoch", "step"):
        check_integer(f"the checkpoint's {name}", getattr(checkpoint, name), minimum=0)
    history = checkpoint.history
    if not isinstance(history, dict):
        raise TypeError(f"the checkpoint's history must be a dict, got {_describe(history)}")
    if sorted(history) != sorted(logged):
        raise ValueError(
            f"fit: the checkpoint's history holds {sorted(history)}, but this run logs "
            f"{sorted(logged)}; resume with the metrics and validation data the checkpointed "
            "run had"
        )
    arrays = [(f"parameter {key!r}", value) for key, value in checkpoint.model.state_dict().items()]
    for index, state in enumerate(checkpoint.optimizer.state_dict()["state"]):
        arrays += [
            (f"the optimizer's {key!r} buffer of parameter {index}", value)
            for key, value in state.items()
            if isinstance(value, np.ndarray)
        ]
    for what, array in arrays:
        if not np.isfinite(array).all():
            raise ValueError(f"fit: the checkpoint's {what} holds NaN or infinite values")
    for name, values in history.items():
        if not isinstance(values, list) or len(values) != checkpoint.epoch:
            raise ValueError(
                f"fit: the checkpoint's history[{quoted(name)}] must be a list of one number "
                f"per epoch, {checkpoint.epoch} in all"
            )
        for value in values:
            check_real(f"the checkpoint's history[{quoted(name)}] entry", value, finite=False)


def _end_training(callbacks: list[Callback], state: TrainingState) -> None:
    """Every callback's on_train_end. After an error, one callback's failure neither stops
    the others nor hides the error: it is added to the error's notes."""
    for callback in callbacks:
        if state.error is None:
            callback.on_train_end(state)
            continue
        try:
            callback.on_train_end(state)
        except Exception as failure:
            _add_note(
                state.error,
                shortened(f"{type(callback).__name__}.on_train_end also failed: {failure!r}"),
            )


def _add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10, whose stubs have no __notes__ (added in 3.11): hence the ignore
        error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]


def _checkpoint(resume_from: str | os.PathLike[str] | Checkpoint) -> Checkpoint:
    if isinstance(resume_from, Checkpoint):
        return resume_from
    if not isinstance(resume_from, (str, os.PathLike)):
        raise TypeError(
            f"resume_from must be a checkpoint path or a Checkpoint, got {_describe(resume_from)}"
        )
    return load_checkpoint(resume_from)


def _resume(state: TrainingState, checkpoint: Checkpoint) -> int:
    """Restore a checkpoint into the run; the epoch to start from."""
    checkpoint.restore(state.model, state.optimizer)
    generator = checkpoint.generator()
    if generator is not None and state.loader is not None:
        state.loader.rng = generator
    state.history = History({name: list(values) for name, values in checkpoint.history.items()})
    state.step = checkpoint.step
    return checkpoint.epoch


def _train_epoch(
    state: TrainingState,
    metric_functions: dict[str, Metric],
    callbacks: list[Callback],
    clip_norm: float | None,
    bars: Callable[[int, str], Any],
    safety: tuple[SafeStep, GradientBounds, GradientMean | None],
    interrupts: DeferredInterrupts,
    parallel: DataParallel | None = None,
) -> dict[str, float]:
    """One pass over the loader's batches; the epoch's mean loss and metrics (over every
    rank's samples in a distributed fit)."""
    model, loss, loader = state.model, state.loss, state.loader
    guard, bounds, mean = safety
    assert loader is not None
    bar = bars(len(loader), f"epoch {state.epoch + 1}/{state.epochs}")
    last = len(loader) - 1
    every = 1 if mean is None else mean.every
    seen: float  # a count of samples, which a distributed fit sums over the ranks as a float
    total, seen = 0.0, 0
    sums = dict.fromkeys(metric_functions, 0.0)
    batch_metrics = _batch_metrics(metric_functions, loss)
    shown = time.monotonic() if bar is not None else 0.0
    failure: Exception | None = None  # a distributed rank's error, held until the next sync
    try:
        for batch, (x_batch, y_batch) in enumerate(loader):
            state.batch = batch
            due = batch == last or (batch + 1) % every == 0  # the step's last batch
            value, grad_bounds = math.nan, None
            if failure is None:
                try:
                    for callback in callbacks:
                        callback.on_batch_begin(state)
                    pred = model(x_batch)
                    value = _batch_loss(state, pred, y_batch)
                    n = len(x_batch)
                    total += value * n
                    seen += n
                    for name, metric in batch_metrics.items():
                        if metric is _accuracy_of_accepted_batch:  # a float already
                            sums[name] += metric(pred, y_batch) * n
                        else:
                            sums[name] += _score(name, metric, pred, y_batch) * n
                    model.backward_parameters(loss.backward())
                    # proven finite from bounds on the gradients (cheap), else measured ones
                    grad_bounds = bounds.for_step(guard.params, n, value, pred.size)
                    if mean is not None:
                        mean.add(batch, n, grad_bounds, last=batch == last)
                        grad_bounds = mean.grad_bounds
                except Exception as error:
                    if parallel is None:
                        raise
                    failure = error  # every rank learns of it at the step's Allreduce
            if due:
                if parallel is not None:  # the mean over the ranks, or every rank raises
                    parallel.average_gradients(guard.params, failure)
                    grad_bounds = None  # bounds hold for this rank's batch, not the mean
                if clip_norm is not None:
                    clip_grad_norm(guard.params, clip_norm)
                interrupts.begin()  # a step is taken whole or not at all
                try:
                    guard.step(grad_bounds)
                    state.step += 1
                except DivergenceError as error:
                    raise _diverged(state, str(error)) from error
                finally:
                    interrupts.end()
            if failure is None:
                for callback in callbacks:
                    callback.on_batch_end(state, value)
            # Drawing the bar costs as much as a small step: redraw at most every 0.1 s.
            if bar is not None and time.monotonic() - shown > 0.1:
                bar.set_postfix(_running(total, seen, sums), refresh=False)
                bar.update(batch + 1 - bar.n)
                shown = time.monotonic()
        if bar is not None:
            bar.set_postfix(_running(total, seen, sums), refresh=False)
            bar.update(len(loader) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    if parallel is not None:  # sample-weighted means over every rank's samples
        total, seen, *values = parallel.sum([total, seen, *sums.values()])
        sums = dict(zip(sums, values, strict=True))
    return {"loss": total / seen, **{name: float(value / seen) for name, value in sums.items()}}


def _batch_metrics(functions: dict[str, Metric], loss: Loss) -> dict[str, Metric]:
    """The metric functions for the training batches: the built-in accuracy after
    CrossEntropy skips the checks that loss has just made.

    CrossEntropy refuses labels outside [0, classes) and gives a NaN loss for a NaN or
    infinite output, which stops training before any metric runs; so for integer labels
    ``accuracy`` reduces to counting argmax hits (about 2 us instead of 10 on a small
    batch). Other targets (one-hot rows) and other losses keep the checked metric.
    """
    if type(loss) is not CrossEntropy:
        return functions
    return {
        name: _accuracy_of_accepted_batch
        if isinstance(function, partial) and function.func is accuracy
        else function
        for name, function in functions.items()
    }


def _accuracy_of_accepted_batch(pred: NDArray[Any], target: NDArray[Any]) -> float:
    """``accuracy(pred, target)`` for a batch CrossEntropy has accepted (see
    :func:`_batch_metrics`)."""
    if target.ndim == 1 and target.dtype.kind in "iu" and pred.ndim == 2 and pred.shape[1] > 1:
        return int(np.count_nonzero(pred.argmax(axis=1) == target)) / len(target)
    return accuracy(pred, target)


def _largest_row_norm(x: NDArray[Any]) -> float:
    """max_i ||x_i||, in float64, piece by piece."""
    largest = 0.0
    rows = x.reshape(len(x), -1)
    for piece in _rows(len(x), rows.shape[1]):
        chunk = rows[piece].astype(np.float64)
        largest = max(largest, float(np.sqrt(np.einsum("ij,ij->i", chunk, chunk).max())))
    return largest


def _batch_loss(state: TrainingState, pred: NDArray[Any], target: NDArray[Any]) -> float:
    """The batch's loss, or DivergenceError when it (or the output) is NaN or infinite."""
    try:
        # a Python float: fit takes only losses that average (one number per batch)
        value = float(state.loss(pred, target))
    except ValueError as error:
        # a loss that checks its input (probabilities in [0, 1]) refuses a NaN output
        pred = np.asarray(pred)
        if pred.dtype.kind == "f" and not np.isfinite(pred).all():
            raise _diverged(
                state,
                "the model's output holds NaN or infinite values, so the loss cannot be computed",
            ) from error
        raise
    if not math.isfinite(value):
        raise _diverged(state, f"the loss became {value} (the step was not taken)")
    return value


def _running(total: float, seen: int, sums: dict[str, float]) -> dict[str, str]:
    return {"loss": f"{total / seen:.4f}", **{k: f"{v / seen:.4f}" for k, v in sums.items()}}


def _progress_bars(enabled: bool) -> Callable[[int, str], Any]:
    """A function making one epoch's tqdm bar, kept on screen when it closes, or None
    (progress off, or tqdm missing: then a warning, once per fit)."""
    if not enabled:
        return lambda total, description: None
    try:
        import tqdm  # noqa: F401
    except ImportError:
        warnings.warn(
            "fit(progress=True) shows a progress bar only with tqdm installed: "
            "pip install 'minigrad-nn[progress]' or pip install tqdm (or pass progress=False)",
            stacklevel=3,
        )
        return lambda total, description: None
    with warnings.catch_warnings():
        # In Jupyter without ipywidgets, tqdm warns and falls back to a text bar: the text
        # bar is what we want there, the warning is not.
        warnings.simplefilter("ignore")
        from tqdm.autonotebook import tqdm as bar_class

    def bar(total: int, description: str) -> Any:
        return bar_class(
            total=total, desc=description, unit="batch", leave=True, dynamic_ncols=True
        )

    return bar


# -- evaluation and prediction -----------------------------------------------------------------


def _batches(x: NDArray[Any], batch_size: int) -> Iterable[slice]:
    return (slice(start, start + batch_size) for start in range(0, len(x), batch_size))


def _evaluate(
    model: Layer,
    loss: Loss,
    x: NDArray[Any],
    y: NDArray[Any],
    batch_size: int,
    metric_functions: dict[str, Metric],
    state: TrainingState | None = None,
) -> dict[str, float]:
    """Loss and metrics in eval mode. Inside fit (``state`` given), outputs that are NaN or
    infinite are a divergence, reported before any metric tries to score them."""
    with _in_mode(model, training=False):
        total, outputs = 0.0, []
        for rows in _batches(x, batch_size):
            pred = model(x[rows])
            if state is not None and not np.isfinite(pred).all():
                raise _diverged(
                    state, "the model's output on the validation data holds NaN or infinite values"
                )
            total += float(loss(pred, y[rows])) * len(pred)
            outputs.append(pred)
    pred = np.concatenate(outputs)
    scores = {"loss": total / len(x)}
    scores.update(
        (name, _score(name, metric, pred, y)) for name, metric in metric_functions.items()
    )
    return scores


def evaluate(
    model: Layer,
    loss: Loss,
    x: ArrayLike,
    y: ArrayLike,
    *,
    batch_size: int = 256,
    metrics: Sequence[str | Metric] | None = None,
) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` on ``(x, y)``, in eval mode.

    Returns ``{"loss": ..., "accuracy": ...}``. The loss is the mean over all samples,
    (1/n) sum_B |B| L_B over batches B of ``batch_size``; each metric is computed on all
    outputs at once. ``metrics`` defaults to the loss's (accuracy for CrossEntropy and
    BinaryCrossEntropy, none for MSE), as in :func:`fit`. The model is left in the mode it
    was in.

    Shape: x (n, ...) and y (n, ...) -> a dict of floats.

    Examples
    --------
    >>> from minigrad import MSE, Dense
    >>> model = Dense(1, 1, rng=0)
    >>> model.weight.value[:] = 2.0  # y = 2 x
    >>> evaluate(model, MSE(), [[1.0], [2.0]], [[2.0], [5.0]])  # (4 - 5)^2 / 2
    {'loss': 0.5}
    """
    _check_objects(model, loss, None, "evaluate")
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    metric_functions = _metric_functions(metrics, loss)
    x, y, output = _checked_data(model, loss, x, y, "evaluate", ("x", "y"))
    _check_metrics(metric_functions, output, y[: len(output)], "evaluate")
    return _evaluate(model, loss, x, y, batch_size, metric_functions)


def predict(model: Layer, x: ArrayLike, *, batch_size: int = 256) -> FloatArray:
    """The model's outputs for every row of ``x``, computed in eval mode, batch by batch.

    Shape: x (n, ...) -> (n, ...) as the model maps a batch. The model is left in the mode
    it was in.

    Examples
    --------
    >>> from minigrad import Dense
    >>> model = Dense(1, 1, rng=0)
    >>> model.weight.value[:] = 2.0  # y = 2 x
    >>> predict(model, np.arange(5.0)[:, None], batch_size=2).ravel()  # in three batches
    array([0., 2., 4., 6., 8.], dtype=float32)
    """
    if not isinstance(model, Layer):
        raise TypeError(f"predict: model must be a Layer instance, got {_describe(model)}")
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"predict needs a non-empty array of samples, got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"predict: x must hold real numbers, got dtype {x.dtype}")
    with _in_mode(model, training=False):
        return np.concatenate([model(x[rows]) for rows in _batches(x, batch_size)])
