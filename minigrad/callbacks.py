"""Callbacks: code that ``fit`` runs at the start and end of training, epochs and batches.

A callback subclasses :class:`Callback` and overrides the hooks it needs. Each hook gets the
:class:`~minigrad.training.TrainingState` (model, loss, optimizer, history, epoch, step,
``stop_training``); epoch ends also get ``logs``, that epoch's numbers by name ("loss",
"accuracy", "val_loss", ...). Setting ``state.stop_training = True`` ends training after the
current epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from minigrad._files import check_path, quoted, write_atomically
from minigrad._validation import _given, check_bool, check_integer, check_real
from minigrad.errors import DivergenceError
from minigrad.schedules import Schedule
from minigrad.serialization import save, save_checkpoint
from minigrad.serialization.architecture import describe_layer, describe_optimizer
from minigrad.serialization.safetensors_file import require_safetensors
from minigrad.typing import Mode

if TYPE_CHECKING:
    from minigrad.training import TrainingState

__all__ = [
    "Callback",
    "DivergenceGuard",
    "EarlyStopping",
    "HistoryLogger",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "learning_rate_advice",
]


class Callback:
    """Base class of callbacks; every hook does nothing unless overridden.

    ``fit`` calls, in order: ``on_train_begin``; per epoch ``on_epoch_begin``, per batch
    ``on_batch_begin`` and ``on_batch_end``, then ``on_epoch_end``; finally ``on_train_end``.

    Examples
    --------
    >>> import minigrad as mg
    >>> class CountBatches(Callback):
    ...     def on_train_begin(self, state):
    ...         self.batches = 0
    ...     def on_batch_end(self, state, loss):
    ...         self.batches += 1
    >>> x, y = mg.data.make_xor()
    >>> model, counter = mg.Dense(2, 1, rng=0), CountBatches()
    >>> _ = mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y[:, None], epochs=3,
    ...            batch_size=2, callbacks=[counter], progress=False)
    >>> counter.batches  # 3 epochs of 2 batches
    6
    """

    def on_train_begin(self, state: TrainingState) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, state: TrainingState) -> None:
        """Before the first batch of epoch ``state.epoch`` (counted from 0)."""

    def on_batch_begin(self, state: TrainingState) -> None:
        """Before the forward pass of a batch; ``state.step`` steps are done so far."""

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        """After the optimizer step of a batch, with that batch's loss."""

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """After an epoch (and its validation), with the epoch's numbers."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last epoch, or after training was stopped early."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def learning_rate_advice(optimizer: object) -> str:
    """What to try after a divergence: a learning rate ten times smaller.

    >>> import minigrad as mg
    >>> learning_rate_advice(mg.SGD([mg.Parameter(np.zeros(1))], lr=0.5))
    'the learning rate (0.5) is probably too large; try 0.05'
    """
    lr = getattr(optimizer, "lr", None)
    if isinstance(lr, float) and lr > 0:
        return f"the learning rate ({lr:g}) is probably too large; try {lr / 10:g}"
    return "check the learning rate and the data"


class DivergenceGuard(Callback):
    """Stop with a :class:`~minigrad.errors.DivergenceError` when a batch's loss is NaN or
    infinite, naming the epoch, the step and the learning rate.

    A loss that blows up usually means the learning rate is too large: gradient descent
    overshoots, each step lands further away, and the values overflow.

    ``fit`` needs no guard among its callbacks: it checks every batch's loss before the
    step and takes every step through :class:`~minigrad.optim.SafeStep`, so a diverging run
    stops before anything non-finite reaches the parameters. This callback reports a
    non-finite loss after the step, for code that drives callbacks itself.

    Examples
    --------
    >>> import minigrad as mg
    >>> from minigrad.training import TrainingState
    >>> model = mg.Dense(1, 1, rng=0)
    >>> state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters(), lr=0.5), epochs=1)
    >>> DivergenceGuard().on_batch_end(state, 0.25)  # a finite loss: nothing happens
    >>> DivergenceGuard().on_batch_end(state, float("nan"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.errors.DivergenceError: the loss became nan at epoch 1, batch 1 (step 0): ...; try 0.05
    """

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        """Raise DivergenceError if ``loss`` is NaN or infinite."""
        if not math.isfinite(loss):
            raise DivergenceError(
                f"the loss became {loss} at epoch {state.epoch + 1}, batch {state.batch + 1} "
                f"(step {state.step}): training diverged; "
                f"{learning_rate_advice(state.optimizer)}"
            )


class EarlyStopping(Callback):
    """Stop when a monitored number has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs ("loss", "val_loss", "val_accuracy", ...).
    patience : int, default 5
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        The least change that counts as an improvement.
    mode : "min", "max" or "auto"
        Whether smaller or larger is better; "auto" picks "max" for accuracies and "min"
        otherwise.
    restore_best_weights : bool, default True
        At the end of training, load the weights of the best epoch back into the model.

    Attributes
    ----------
    best : float, best_epoch : int (counted from 0), stopped_epoch : int or None

    Notes
    -----
    An epoch improves when value < best - min_delta ("min") or value > best + min_delta
    ("max"); training stops after ``patience`` epochs in a row without improvement. A run
    resumed from a checkpoint (``fit(resume_from=...)``) rebuilds the best value and the
    count from the checkpoint's history, so it stops where the uninterrupted run stops; the
    best weights come back too when the checkpoint's epoch was the best, and otherwise only
    a later best can be restored (a warning says so at the end).

    Examples
    --------
    >>> import minigrad as mg
    >>> from minigrad.training import TrainingState
    >>> model = mg.Dense(1, 1, rng=0)
    >>> state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters()), epochs=10)
    >>> stopper = EarlyStopping(patience=2)
    >>> stopper.on_train_begin(state)
    >>> for epoch, val_loss in enumerate([0.5, 0.4, 0.45, 0.41]):
    ...     state.epoch = epoch
    ...     stopper.on_epoch_end(state, {"val_loss": val_loss})
    >>> state.stop_training, stopper.best, stopper.best_epoch, stopper.stopped_epoch
    (True, 0.4, 1, 3)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: Mode = "auto",
        restore_best_weights: bool = True,
    ) -> None:
        patience = check_integer("EarlyStopping patience", patience, minimum=0)
        min_delta = check_real("EarlyStopping min_delta", min_delta, minimum=0)
        direction = _direction(mode, _monitor_name("EarlyStopping", monitor))
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = direction
        self.restore_best_weights = check_bool(
            "EarlyStopping restore_best_weights", restore_best_weights
        )
        self.best = _worst(mode)
        self.best_epoch = -1
        self.stopped_epoch: int | None = None
        self._wait = 0
        self._best_weights: dict[str, np.ndarray] | None = None
        self._best_before_resume = False

    def on_train_begin(self, state: TrainingState) -> None:
        """Start afresh, or, resuming from a checkpoint, replay the monitored values its
        history holds, so that the run stops at the epoch the uninterrupted one would."""
        self.best = _worst(self.mode)
        self.best_epoch, self.stopped_epoch, self._wait, self._best_weights = -1, None, 0, None
        self._best_before_resume = False
        values = state.history.get(self.monitor, [])
        for epoch, value in enumerate(values):
            if self._improved(float(value)):
                self.best, self.best_epoch, self._wait = float(value), epoch, 0
            else:
                self._wait += 1
        if values and self.restore_best_weights:
            if self.best_epoch == len(values) - 1:  # the checkpoint holds the best weights
                self._best_weights = state.model.state_dict()
            else:  # they were not saved: only a later improvement can be restored
                self._best_before_resume = self.best_epoch >= 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Record an improvement (and the weights), or count one more epoch without one."""
        value = _monitored(self, logs)
        if self._improved(value):
            self.best, self.best_epoch, self._wait = value, state.epoch, 0
            self._best_before_resume = False
            if self.restore_best_weights:
                self._best_weights = state.model.state_dict()
        else:
            self._wait += 1
            if self._wait >= self.patience:
                state.stop_training = True
                self.stopped_epoch = state.epoch

    def on_train_end(self, state: TrainingState) -> None:
        """Load the best epoch's weights back, with ``restore_best_weights``."""
        if self.restore_best_weights and self._best_weights is not None:
            state.model.load_state_dict(self._best_weights)
        elif self.restore_best_weights and self._best_before_resume:
            warnings.warn(
                f"EarlyStopping: the best epoch ({self.best_epoch + 1}, {self.monitor} "
                f"{self.best:.6g}) came before the checkpoint this run resumed from, which "
                "holds only its own epoch's weights: the final weights are kept",
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
            f"mode={self.mode!r}, restore_best_weights={self.restore_best_weights})"
        )


def _monitor_name(owner: str, monitor: object) -> str:
    """``monitor`` if it is a non-empty string, else TypeError/ValueError naming it."""
    if not isinstance(monitor, str):
        raise TypeError(
            f"{owner} monitor must be the name of a logged number such as 'val_loss', got "
            f"{quoted(monitor)} ({type(monitor).__name__})"
        )
    if not monitor:
        raise ValueError(f"{owner} monitor must be a name such as 'val_loss', got ''")
    return monitor


def _direction(mode: str, monitor: str) -> str:
    """ "min" or "max": whether smaller or larger ``monitor`` is better ("auto": accuracies
    are better larger, everything else smaller)."""
    if not isinstance(mode, str) or mode not in ("min", "max", "auto"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {quoted(mode)}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _worst(mode: str) -> float:
    """The starting "best" value, which any real number improves on."""
    return math.inf if mode == "min" else -math.inf


def _monitored(
    callback: EarlyStopping | ModelCheckpoint | ReduceLROnPlateau, logs: dict[str, float]
) -> float:
    """The monitored number from an epoch's logs, or a KeyError that lists what is there."""
    if callback.monitor not in logs:
        raise KeyError(
            f"{type(callback).__name__} monitors {quoted(callback.monitor)}, but the epoch logs "
            f"hold {sorted(logs)}; validation numbers need validation_data"
        )
    return logs[callback.monitor]


class ModelCheckpoint(Callback):
    """Write a checkpoint at the end of every epoch, or only when a monitored number improves.

    A checkpoint holds everything :func:`~minigrad.fit` needs to resume exactly (parameters,
    optimizer state, the shuffling generator, epoch, step and history); pass its path as
    ``fit(..., resume_from=path)``. With ``weights_only=True`` it is a plain model file for
    :func:`~minigrad.load` instead. Every write is atomic, so an interrupted run always
    leaves the last complete file.

    Parameters
    ----------
    path : str or path
        Where to write; may hold ``{epoch}`` (counted from 1) and log names, e.g.
        ``"runs/epoch{epoch:03d}-{val_loss:.3f}.safetensors"``.
    monitor : str, default "val_loss"
        The number that decides "best" with ``save_best_only``.
    mode : "min", "max" or "auto"
        As in :class:`EarlyStopping`.
    save_best_only : bool, default False
        Write only when ``monitor`` improves on the best value so far (NaN never does).
    weights_only : bool, default False

    Attributes
    ----------
    best : float, last_path : Path or None (the file written last)

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> x, y = mg.data.make_xor()
    >>> model, folder = mg.Dense(2, 1, rng=0), tempfile.mkdtemp()
    >>> checkpoint = ModelCheckpoint(os.path.join(folder, "epoch{epoch}.safetensors"))
    >>> _ = mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y[:, None], epochs=3,
    ...            callbacks=[checkpoint], progress=False)
    >>> sorted(os.listdir(folder)), mg.load_checkpoint(checkpoint.last_path).epoch
    (['epoch1.safetensors', 'epoch2.safetensors', 'epoch3.safetensors'], 3)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        monitor: str = "val_loss",
        mode: Mode = "auto",
        save_best_only: bool = False,
        weights_only: bool = False,
    ) -> None:
        _checked_target(path, "ModelCheckpoint path")
        direction = _direction(mode, _monitor_name("ModelCheckpoint", monitor))
        self.path, self.monitor, self.mode = os.fspath(path), monitor, direction
        self.save_best_only = check_bool("ModelCheckpoint save_best_only", save_best_only)
        self.weights_only = check_bool("ModelCheckpoint weights_only", weights_only)
        require_safetensors()  # fail now, not at the end of the first epoch
        self.best = _worst(mode)
        self.last_path: Path | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        """Forget the best value of any earlier run, and check that the model (and the
        optimizer) can be written and loaded back, so that a run does not find out at the end
        of its first epoch. Resuming from a checkpoint, the best value is the best of the
        monitored values its history holds, so that ``save_best_only`` writes only what the
        uninterrupted run would."""
        self.best = _worst(self.mode)
        if self.save_best_only:
            for value in state.history.get(self.monitor, []):
                value = float(value)
                if value < self.best if self.mode == "min" else value > self.best:
                    self.best = value
        describe_layer(state.model)
        if not self.weights_only:
            describe_optimizer(state.optimizer)

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Write the checkpoint (or model file), unless ``save_best_only`` and no improvement."""
        if state.rank != 0:  # in a distributed fit, rank 0 writes
            return
        if self.save_best_only:
            value = _monitored(self, logs)
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        try:
            path = Path(self.path.format(epoch=state.epoch + 1, **logs))
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"ModelCheckpoint path {quoted(self.path)} cannot be filled from epoch and "
                f"{sorted(logs)}: {quoted(error)}"
            ) from None
        for key, param in state.model.named_parameters():
            if not np.isfinite(param.value).all():
                raise DivergenceError(
                    f"ModelCheckpoint: parameter {key!r} holds NaN or infinite values; "
                    f"{path} was not written, so the last checkpoint stays the last good one"
                )
        if self.weights_only:
            save(state.model, path)
        else:
            save_checkpoint(
                path,
                state.model,
                state.optimizer,
                epoch=state.epoch + 1,
                step=state.step,
                rng=None if state.loader is None else state.loader.rng,
                history=state.history,
            )
        self.last_path = path

    def __repr__(self) -> str:
        best = f", monitor={self.monitor!r}, save_best_only=True" if self.save_best_only else ""
        return f"ModelCheckpoint({self.path!r}{best})"


def _checked_target(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, refused now if it cannot be a file to write (the wrong type, empty,
    an existing folder) rather than at the end of the first epoch."""
    checked = check_path(path, what)
    text = os.fspath(path)
    if text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep)):
        raise IsADirectoryError(
            f"{what} {quoted(text)} ends with a separator, so it names a folder; give a file name"
        )
    if checked.is_dir():
        raise IsADirectoryError(f"{what} {quoted(str(checked))} is a folder; give a file name")
    return checked


class LearningRateScheduler(Callback):
    """Set ``optimizer.lr = schedule(t)`` before each epoch (t = epochs done) or, with
    ``per="step"``, before each batch (t = optimizer steps done). With param groups, each
    group's lr is scaled from its own initial lr, as in PyTorch
    (:meth:`~minigrad.optim.Optimizer.set_scheduled_lr`).

    >>> from minigrad.schedules import StepDecay
    >>> LearningRateScheduler(StepDecay(0.1, factor=0.9, every=100))
    LearningRateScheduler(StepDecay(lr=0.1, factor=0.9, every=100), per='epoch')
    """

    def __init__(
        self, schedule: Schedule | Callable[[int], float], per: Literal["epoch", "step"] = "epoch"
    ) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        if not isinstance(per, str) or per not in ("epoch", "step"):
            raise ValueError(f"per must be 'epoch' or 'step', got {quoted(per)}")
        self.schedule, self.per = schedule, per

    def on_epoch_begin(self, state: TrainingState) -> None:
        """With ``per="epoch"``: ``optimizer.lr = schedule(state.epoch)``."""
        if self.per == "epoch":
            state.optimizer.set_scheduled_lr(self.schedule(state.epoch))

    def on_batch_begin(self, state: TrainingState) -> None:
        """With ``per="step"``: ``optimizer.lr = schedule(state.step)``."""
        if self.per == "step":
            state.optimizer.set_scheduled_lr(self.schedule(state.step))

    def __repr__(self) -> str:
        return f"LearningRateScheduler({self.schedule!r}, per={self.per!r})"


class HistoryLogger(Callback):
    """Write the history to ``path`` after every epoch: CSV (a row per epoch) when the name
    ends in ``.csv``, else JSON (the History as a dict of lists).

    The file is replaced atomically (written beside it, then renamed), so a crash or an
    interrupt never leaves half a file.

    Examples
    --------
    >>> import os, tempfile
    >>> import minigrad as mg
    >>> x, y = mg.data.make_xor()
    >>> model, path = mg.Dense(2, 1, rng=0), os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> _ = mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y[:, None], epochs=2,
    ...            callbacks=[HistoryLogger(path)], progress=False)
    >>> Path(path).read_text().splitlines()[0], len(Path(path).read_text().splitlines())
    ('epoch,loss,lr', 3)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _checked_target(path, "HistoryLogger path")

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Rewrite the whole file from ``state.history``."""
        if state.rank != 0:  # in a distributed fit, rank 0 writes
            return
        history = dict(state.history)
        if self.path.suffix.lower() == ".csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            names = list(history)
            writer.writerow(["epoch", *names])
            # a History a callback grew unevenly gets empty cells, not an IndexError
            rows = max((len(values) for values in history.values()), default=0)
            for epoch in range(rows):
                writer.writerow(
                    [
                        epoch + 1,
                        *(
                            repr(history[name][epoch]) if epoch < len(history[name]) else ""
                            for name in names
                        ),
                    ]
                )
            content = text.getvalue()
        else:
            content = json.dumps({"epoch": state.history.epochs, **history}, indent=1) + "\n"
        write_atomically(self.path, content)

    def __repr__(self) -> str:
        return f"HistoryLogger({str(self.path)!r})"


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a monitored number has not improved for
    more than ``patience`` epochs, as torch.optim.lr_scheduler.ReduceLROnPlateau does.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs ("loss", "val_loss", "val_accuracy", ...).
    mode : "min", "max" or "auto"
        Whether smaller or larger is better; "auto" picks "max" for accuracies and "min"
        otherwise (torch's default is "min").
    factor : float in [0, 1), default 0.1
        new_lr = lr * factor.
    patience : int >= 0, default 10
        Epochs without improvement tolerated; the rate drops after the next one.
    threshold : float >= 0, default 1e-4
        The least change that counts as an improvement, read by ``threshold_mode``.
    threshold_mode : "rel" or "abs", default "rel"
        "rel": better means value < best (1 - threshold) ("min") or value > best
        (1 + threshold) ("max"); "abs": value < best - threshold or value > best + threshold.
    cooldown : int >= 0, default 0
        Epochs after a reduction during which bad epochs are not counted.
    min_lr : float >= 0, default 0.0
        The rate never drops below this.
    eps : float >= 0, default 1e-8
        A reduction smaller than this is skipped.

    Attributes
    ----------
    best : float, num_bad_epochs : int, cooldown_counter : int (torch's names)

    Notes
    -----
    After each epoch, with v its monitored value (torch's step(v)):

        if better(v, best): best, num_bad_epochs = v, 0  else: num_bad_epochs += 1
        if cooldown_counter > 0: cooldown_counter -= 1; num_bad_epochs = 0
        if num_bad_epochs > patience: reduce; cooldown_counter = cooldown; num_bad_epochs = 0

    where reduce sets lr to max(lr factor, min_lr) unless that changes it by eps or less. A
    NaN value is never better. The reduction takes effect from the next epoch, as in torch
    and Keras; it is applied as that epoch begins (so ``optimizer.lr`` seen in on_epoch_end
    is still the epoch's own rate, the one the history logs). In a run resumed from a
    checkpoint, the state is rebuilt at on_train_begin from the checkpoint's history of the
    monitored number (and the learning rate from the optimizer's saved state), so the
    resumed run takes the same rates, bit for bit, as one never interrupted. The rate read
    and written is each param group's lr, reduced on its own as in PyTorch.

    Examples
    --------
    >>> import minigrad as mg
    >>> from minigrad.training import TrainingState
    >>> model = mg.Dense(1, 1, rng=0)
    >>> state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters(), lr=1.0), epochs=6)
    >>> plateau = ReduceLROnPlateau(factor=0.5, patience=1)
    >>> plateau.on_train_begin(state)
    >>> rates = []
    >>> for epoch, val_loss in enumerate([1.0, 0.5, 0.5, 0.5, 0.4, 0.4]):
    ...     state.epoch = epoch
    ...     plateau.on_epoch_begin(state)
    ...     rates.append(state.optimizer.lr)
    ...     plateau.on_epoch_end(state, {"val_loss": val_loss})
    >>> rates  # two epochs without improvement (0.5, 0.5): halved from the next epoch
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: Mode = "auto",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        owner = "ReduceLROnPlateau"
        self.monitor = _monitor_name(owner, monitor)
        self.mode = _direction(mode, monitor)
        self.factor = check_real(f"{owner} factor", factor, minimum=0, below=1)
        self.patience = check_integer(f"{owner} patience", patience, minimum=0)
        self.threshold = check_real(f"{owner} threshold", threshold, minimum=0)
        if not isinstance(threshold_mode, str) or threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{owner} threshold_mode must be 'rel' or 'abs', got {quoted(threshold_mode)}"
            )
        self.threshold_mode = threshold_mode
        self.cooldown = check_integer(f"{owner} cooldown", cooldown, minimum=0)
        self.min_lr = check_real(f"{owner} min_lr", min_lr, minimum=0)
        self.eps = check_real(f"{owner} eps", eps, minimum=0)
        self._reset()

    def _reset(self) -> None:
        self.best = _worst(self.mode)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._reduce_next = False

    def _better(self, value: float) -> bool:
        """torch's _is_better, case by case (the same float operations)."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return value < self.best * (1.0 - self.threshold)
            return value < self.best - self.threshold
        if self.threshold_mode == "rel":
            return value > self.best * (self.threshold + 1.0)
        return value > self.best + self.threshold

    def _record(self, value: float) -> bool:
        """Count one epoch's value; whether the rate drops for the next epoch."""
        if self._better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
            return True
        return False

    def on_train_begin(self, state: TrainingState) -> None:
        """Start afresh, or, resuming, replay the monitored values the history holds."""
        self._reset()
        if not state.history.epochs:
            return
        if self.monitor not in state.history:
            raise KeyError(
                f"ReduceLROnPlateau monitors {quoted(self.monitor)}, but the resumed history "
                f"holds {sorted(state.history)}"
            )
        for value in state.history[self.monitor]:
            self._reduce_next = self._record(float(value))

    def on_epoch_begin(self, state: TrainingState) -> None:
        """Lower the rate if the last epoch's value called for it."""
        if not self._reduce_next:
            return
        self._reduce_next = False
        # each param group on its own, as PyTorch's ReduceLROnPlateau does
        for group in state.optimizer.param_groups:
            old = float(group["lr"])
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Count the epoch's monitored value (improved, bad, or in the cooldown)."""
        self._reduce_next = self._record(float(_monitored(self, logs)))

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(monitor={self.monitor!r}, mode={self.mode!r}, "
            f"factor={self.factor}, patience={self.patience}, threshold={self.threshold}, "
            f"threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown}, "
            f"min_lr={self.min_lr}, eps={self.eps})"
        )


_HOOKS = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_train_begin",
    "on_train_end",
)


class LambdaCallback(Callback):
    """A callback made of functions, one per hook, as Keras's LambdaCallback: each is called
    with the hook's arguments, ``(state)``, ``(state, logs)`` at epoch ends or
    ``(state, loss)`` at batch ends. Hooks not given do nothing.

    Examples
    --------
    >>> import minigrad as mg
    >>> x, y = mg.data.make_xor()
    >>> model, losses = mg.Dense(2, 1, rng=0), []
    >>> keep = LambdaCallback(on_epoch_end=lambda state, logs: losses.append(logs["loss"]))
    >>> keep
    LambdaCallback(on_epoch_end=<lambda>)
    >>> _ = mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y[:, None], epochs=3,
    ...            callbacks=[keep], progress=False)
    >>> len(losses)
    3
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_batch_begin: Callable[..., Any] | None = None,
        on_batch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
    ) -> None:
        functions = (
            on_epoch_begin,
            on_epoch_end,
            on_batch_begin,
            on_batch_end,
            on_train_begin,
            on_train_end,
        )
        given = dict(zip(_HOOKS, functions, strict=True))
        for name, function in given.items():
            if function is not None and not callable(function):
                raise TypeError(
                    f"LambdaCallback {name} must be a function or None, got {_given(function)}"
                )
        self.functions: dict[str, Callable[..., Any]] = {
            name: function for name, function in given.items() if function is not None
        }

    def _call(self, hook: str, *args: Any) -> None:
        function = self.functions.get(hook)
        if function is not None:
            function(*args)

    def on_train_begin(self, state: TrainingState) -> None:
        """``on_train_begin(state)``, if given."""
        self._call("on_train_begin", state)

    def on_epoch_begin(self, state: TrainingState) -> None:
        """``on_epoch_begin(state)``, if given."""
        self._call("on_epoch_begin", state)

    def on_batch_begin(self, state: TrainingState) -> None:
        """``on_batch_begin(state)``, if given."""
        self._call("on_batch_begin", state)

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        """``on_batch_end(state, loss)``, if given."""
        self._call("on_batch_end", state, loss)

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """``on_epoch_end(state, logs)``, if given."""
        self._call("on_epoch_end", state, logs)

    def on_train_end(self, state: TrainingState) -> None:
        """``on_train_end(state)``, if given."""
        self._call("on_train_end", state)

    def __repr__(self) -> str:
        hooks = ", ".join(
            f"{name}={getattr(function, '__qualname__', None) or quoted(function)}"
            for name, function in self.functions.items()
        )
        return f"LambdaCallback({hooks})"
