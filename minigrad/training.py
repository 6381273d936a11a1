"""The training loop: ``fit``, ``evaluate`` and ``predict``, and the History they keep.

``fit`` is the loop people write around a model, a loss and an optimizer every time: shuffle
the data into mini-batches, forward, loss, backward, step, keep the numbers per epoch,
validate, and let callbacks stop early or change the learning rate. Written once here, with
the inputs checked before the first step, a progress bar, and no cost per batch beyond the
step itself worth measuring (benchmarks/fit_benchmark.py).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad.callbacks import Callback, DivergenceGuard
from minigrad.data.loader import DataLoader
from minigrad.layers.base import Layer
from minigrad.losses import BinaryCrossEntropy, Loss
from minigrad.metrics import METRICS
from minigrad.optim.base import Optimizer
from minigrad.optim.clip import clip_grad_norm
from minigrad.serialization.checkpoints import Checkpoint, load_checkpoint

__all__ = ["History", "TrainingState", "evaluate", "fit", "predict"]

Metric = Callable[[NDArray, NDArray], float]


class History(dict[str, list[float]]):
    """Per-epoch numbers of a ``fit``: ``history["loss"][e]`` is epoch e's mean training loss.

    Keys: "loss", one per metric ("accuracy"), the same with a ``val_`` prefix when
    validation data is given, and "lr", the learning rate the epoch ended with.
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
    optimizer steps done so far. Setting ``stop_training`` ends training after this epoch.

    Examples
    --------
    >>> from minigrad import MSE, SGD, Dense
    >>> model = Dense(1, 1, rng=0)
    >>> state = TrainingState(model, MSE(), SGD(model.parameters()), epochs=3)
    >>> state.epoch, state.batch, state.step, state.stop_training, state.history
    (0, 0, 0, False, History(epochs=0))
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


# -- checks at the boundary -----------------------------------------------------------------


def _count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _checked_data(
    model: Layer, loss: Loss, x: ArrayLike, y: ArrayLike, what: str
) -> tuple[NDArray, NDArray]:
    """x and y as arrays, after checking everything a training run would trip over later."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{what}: x and y must be arrays of samples, got shapes {x.shape}, {y.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"{what}: x and y must have the same number of samples, got {len(x)} and {len(y)}"
        )
    if len(x) == 0:
        raise ValueError(f"{what}: the data is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{what}: x must hold real numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{what}: x holds NaN or infinite values, the first at index {tuple(bad.tolist())} "
            f"({x[tuple(bad)]})"
        )
    # Run the model on one sample and the loss on every target, so that a width mismatch or
    # a label the loss cannot take fails now, in the loss's own words, not mid-training.
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        output = np.asarray(model(x[:1]))
    finally:
        model.train(was_training)
    stand_in = np.zeros((len(y), *output.shape[1:]), dtype=output.dtype)
    if isinstance(loss, BinaryCrossEntropy) and not loss.from_logits:
        stand_in += 0.5
    try:
        loss(stand_in, y)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{what}: the targets y do not fit {loss!r}: {error}") from error
    return x, y


def _metric_functions(metrics: Iterable[str | Metric], loss: Loss) -> dict[str, Metric]:
    """Metric functions by name; binary accuracy thresholds logits at 0, probabilities at 0.5."""
    threshold = 0.0 if isinstance(loss, BinaryCrossEntropy) and loss.from_logits else 0.5
    functions: dict[str, Metric] = {}
    for metric in metrics:
        if callable(metric):
            functions[getattr(metric, "__name__", type(metric).__name__)] = metric
        elif metric in METRICS:
            functions[metric] = partial(METRICS[metric], threshold=threshold)
        else:
            raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)} or a function")
    return functions


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
    metrics: Sequence[str | Metric] = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    clip_norm: float | None = None,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    resume_from: str | os.PathLike[str] | Checkpoint | None = None,
) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batch gradient descent; return the History.

    For each mini-batch B: theta <- optimizer.step(theta, dL_B/dtheta), L_B the loss's mean
    over B. An epoch's loss is the mean over its samples, (1/n) sum_B |B| L_B.

    Each epoch shuffles the samples (from ``seed``: the same seed and the same initial
    weights give the same History, bit for bit), then for each batch runs forward, the loss,
    backward, optional gradient clipping and ``optimizer.step()``. The epoch's loss and
    metrics are means over its samples, computed from the outputs the training steps
    produced (as Keras reports them); validation numbers come from a pass in eval mode at the
    end of the epoch.

    Parameters
    ----------
    model : Layer
        Usually a Sequential; its output goes to ``loss``.
    loss : Loss
    optimizer : Optimizer
        Built on ``model.parameters()``.
    x : array (n, ...), y : array (n, ...)
        Samples and targets, one per row, in the form ``loss`` takes.
    epochs : int >= 0
    batch_size : int >= 1, default 32
    shuffle : bool, default True
    validation_data : (x_val, y_val) or None
    metrics : names ("accuracy") or functions ``metric(pred, target) -> float``
    callbacks : Callback instances. A :class:`~minigrad.callbacks.DivergenceGuard`, which
        stops with an error on a NaN or infinite loss, is added unless one is given.
    clip_norm : float or None
        When set, gradients are scaled to a global norm of at most this before each step
        (:func:`~minigrad.optim.clip_grad_norm`).
    seed : int, Generator or None
        For the shuffling.
    progress : bool, default True
        A tqdm progress bar over each epoch's batches with the running loss and metrics,
        one line kept per epoch (needs ``tqdm``: ``pip install 'minigrad[progress]'``;
        without it nothing is shown).
    resume_from : path, Checkpoint or None
        A checkpoint (from :class:`~minigrad.callbacks.ModelCheckpoint` or
        :func:`~minigrad.save_checkpoint`) to continue from: its parameters, optimizer
        state, shuffling generator and history are restored into ``model``, ``optimizer``
        and the run, and training goes on from the epoch after the saved one up to
        ``epochs`` in all. The result is bit for bit that of a run never interrupted.

    Returns
    -------
    History
        ``history["loss"]`` per epoch, the metrics, ``val_`` entries, and "lr".

    Raises
    ------
    ValueError
        Before the first step, for data that cannot train: x and y of different lengths,
        empty data, NaN or infinite inputs, targets the loss refuses, batch_size < 1,
        epochs < 0.
    DivergenceError
        When the loss becomes NaN or infinite (from the DivergenceGuard).

    Shape
    -----
    x (n, ...) and y (n, ...), split into batches (batch_size, ...) along the first axis.

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
    """
    epochs = _count("epochs", epochs, 0)
    batch_size = _count("batch_size", batch_size, 1)
    if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"clip_norm must be a finite number > 0 or None, got {clip_norm}")
    x, y = _checked_data(model, loss, x, y, "fit")
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        validation_data = _checked_data(model, loss, *validation_data, "fit validation_data")
    metric_functions = _metric_functions(metrics, loss)
    callbacks = list(callbacks)
    if not any(isinstance(c, DivergenceGuard) for c in callbacks):
        callbacks.insert(0, DivergenceGuard())
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
    params = model.parameters()
    state = TrainingState(model, loss, optimizer, epochs, loader)
    first_epoch = 0
    if resume_from is not None:
        first_epoch = _resume(state, resume_from)

    model.train()
    for callback in callbacks:
        callback.on_train_begin(state)
    # A diverging run overflows somewhere in the step before its loss turns NaN; the guard
    # reports that once, with the epoch and the step, instead of a stream of NumPy warnings.
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(first_epoch, epochs):
                state.epoch = epoch
                for callback in callbacks:
                    callback.on_epoch_begin(state)
                logs = _train_epoch(
                    state, loader, metric_functions, callbacks, params, clip_norm, progress
                )
                if validation_data is not None:
                    scores = _evaluate(
                        model, loss, *validation_data, max(batch_size, 256), metric_functions
                    )
                    logs.update({f"val_{name}": value for name, value in scores.items()})
                logs["lr"] = float(optimizer.lr)
                state.history.append(logs)
                for callback in callbacks:
                    callback.on_epoch_end(state, logs)
                if state.stop_training:
                    break
    finally:
        model.train()
    for callback in callbacks:
        callback.on_train_end(state)
    return state.history


def _resume(state: TrainingState, resume_from: str | os.PathLike[str] | Checkpoint) -> int:
    """Restore a checkpoint into the run; the epoch to start from."""
    checkpoint = (
        resume_from if isinstance(resume_from, Checkpoint) else load_checkpoint(resume_from)
    )
    checkpoint.restore(state.model, state.optimizer)
    generator = checkpoint.generator()
    if generator is not None and state.loader is not None:
        state.loader.rng = generator
    state.history = History({name: list(values) for name, values in checkpoint.history.items()})
    state.step = checkpoint.step
    return checkpoint.epoch


def _train_epoch(
    state: TrainingState,
    loader: DataLoader,
    metric_functions: dict[str, Metric],
    callbacks: list[Callback],
    params: list,
    clip_norm: float | None,
    progress: bool,
) -> dict[str, float]:
    """One pass over the loader's batches; the epoch's mean loss and metrics."""
    model, loss, optimizer = state.model, state.loss, state.optimizer
    bar = _progress_bar(len(loader), f"epoch {state.epoch + 1}/{state.epochs}", progress)
    total, seen = 0.0, 0
    sums = dict.fromkeys(metric_functions, 0.0)
    shown = time.monotonic() if bar is not None else 0.0
    for batch, (x_batch, y_batch) in enumerate(loader):
        state.batch = batch
        for callback in callbacks:
            callback.on_batch_begin(state)
        pred = model(x_batch)
        value = loss(pred, y_batch)
        n = len(x_batch)
        total += value * n
        seen += n
        for name, metric in metric_functions.items():
            sums[name] += metric(pred, y_batch) * n
        model.backward_parameters(loss.backward())
        if clip_norm is not None:
            clip_grad_norm(params, clip_norm)
        optimizer.step()
        state.step += 1
        for callback in callbacks:
            callback.on_batch_end(state, value)
        # Drawing the bar costs as much as a small step: redraw at most every 0.1 s.
        if bar is not None and time.monotonic() - shown > 0.1:
            bar.set_postfix(_running(total, seen, sums), refresh=False)
            bar.update(batch + 1 - bar.n)
            shown = time.monotonic()
    logs = {"loss": total / seen, **{name: float(value / seen) for name, value in sums.items()}}
    if bar is not None:
        bar.set_postfix(_running(total, seen, sums), refresh=False)
        bar.update(len(loader) - bar.n)
        bar.close()
    return logs


def _running(total: float, seen: int, sums: dict[str, float]) -> dict[str, str]:
    return {"loss": f"{total / seen:.4f}", **{k: f"{v / seen:.4f}" for k, v in sums.items()}}


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar kept on screen when it closes, or None (disabled, or tqdm missing)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="batch", leave=True, dynamic_ncols=True)


# -- evaluation and prediction -----------------------------------------------------------------


def _batches(x: NDArray, batch_size: int) -> Iterable[slice]:
    return (slice(start, start + batch_size) for start in range(0, len(x), batch_size))


def _evaluate(
    model: Layer,
    loss: Loss,
    x: NDArray,
    y: NDArray,
    batch_size: int,
    metric_functions: dict[str, Metric],
) -> dict[str, float]:
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        total, outputs = 0.0, []
        for rows in _batches(x, batch_size):
            pred = model(x[rows])
            total += loss(pred, y[rows]) * len(pred)
            outputs.append(pred)
    finally:
        model.train(was_training)
    pred = np.concatenate(outputs)
    scores = {"loss": total / len(x)}
    scores.update((name, float(metric(pred, y))) for name, metric in metric_functions.items())
    return scores


def evaluate(
    model: Layer,
    loss: Loss,
    x: ArrayLike,
    y: ArrayLike,
    *,
    batch_size: int = 256,
    metrics: Sequence[str | Metric] = ("accuracy",),
) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` on ``(x, y)``, in eval mode.

    Returns ``{"loss": ..., "accuracy": ...}``. The loss is the mean over all samples,
    (1/n) sum_B |B| L_B over batches B of ``batch_size``; each metric is computed on all
    outputs at once. The model is left in the mode it was in.

    Shape: x (n, ...) and y (n, ...) -> a dict of floats.

    Examples
    --------
    >>> from minigrad import MSE, Dense
    >>> model = Dense(1, 1, rng=0)
    >>> model.weight.value[:] = 2.0  # y = 2 x
    >>> evaluate(model, MSE(), [[1.0], [2.0]], [[2.0], [5.0]], metrics=())  # (4 - 5)^2 / 2
    {'loss': 0.5}
    """
    batch_size = _count("batch_size", batch_size, 1)
    x, y = _checked_data(model, loss, x, y, "evaluate")
    return _evaluate(model, loss, x, y, batch_size, _metric_functions(metrics, loss))


def predict(model: Layer, x: ArrayLike, *, batch_size: int = 256) -> NDArray:
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
    batch_size = _count("batch_size", batch_size, 1)
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"predict needs a non-empty array of samples, got shape {x.shape}")
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        return np.concatenate([model(x[rows]) for rows in _batches(x, batch_size)])
    finally:
        model.train(was_training)
