"""Callbacks: hook order, early stopping, learning-rate schedules, the history logger."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import minigrad as mg
from minigrad.callbacks import Callback
from minigrad.data import make_blobs
from minigrad.schedules import CosineDecay, LinearWarmup, StepDecay
from minigrad.training import History, TrainingState


def setup(n=96, lr=0.05):
    x, y = make_blobs(n, centers=3, seed=0)
    model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.ReLU(), mg.Dense(8, 3, rng=1))
    return model, mg.CrossEntropy(), mg.SGD(model.parameters(), lr=lr), x, y


def test_hooks_run_in_order_with_the_state_filled_in():
    model, loss, opt, x, y = setup()
    calls = []

    class Spy(Callback):
        def on_train_begin(self, state):
            calls.append(("train_begin", state.epoch, state.step))

        def on_epoch_begin(self, state):
            calls.append(("epoch_begin", state.epoch, state.step))

        def on_batch_begin(self, state):
            calls.append(("batch_begin", state.batch, state.step))

        def on_batch_end(self, state, loss):
            assert np.isfinite(loss)
            calls.append(("batch_end", state.batch, state.step))

        def on_epoch_end(self, state, logs):
            assert set(logs) == {"loss", "accuracy", "lr"}
            assert state.history["loss"][-1] == logs["loss"]
            calls.append(("epoch_end", state.epoch, state.step))

        def on_train_end(self, state):
            calls.append(("train_end", state.epoch, state.step))

    mg.fit(model, loss, opt, x, y, epochs=2, batch_size=48, callbacks=[Spy()], progress=False)
    assert calls == [
        ("train_begin", 0, 0),
        ("epoch_begin", 0, 0),
        ("batch_begin", 0, 0),
        ("batch_end", 0, 1),
        ("batch_begin", 1, 1),
        ("batch_end", 1, 2),
        ("epoch_end", 0, 2),
        ("epoch_begin", 1, 2),
        ("batch_begin", 0, 2),
        ("batch_end", 0, 3),
        ("batch_begin", 1, 3),
        ("batch_end", 1, 4),
        ("epoch_end", 1, 4),
        ("train_end", 1, 4),
    ]


def test_a_callback_can_stop_training_after_the_current_epoch():
    model, loss, opt, x, y = setup()

    class StopAtTwo(Callback):
        def on_epoch_end(self, state, logs):
            state.stop_training = state.epoch == 1

    history = mg.fit(model, loss, opt, x, y, epochs=10, callbacks=[StopAtTwo()], progress=False)
    assert history.epochs == [1, 2]


# -- early stopping -----------------------------------------------------------------------


def feed(stopper, values, model):
    """Run EarlyStopping over a sequence of monitored values; weights mark the epoch."""
    state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters()), epochs=len(values))
    stopper.on_train_begin(state)
    for epoch, value in enumerate(values):
        state.epoch = epoch
        model[0].weight.value[...] = epoch
        stopper.on_epoch_end(state, {"val_loss": value, "val_accuracy": -value})
        if state.stop_training:
            break
    stopper.on_train_end(state)
    return state


@pytest.mark.parametrize(
    ("values", "patience", "stop", "best"),
    [
        ([5, 4, 3, 3.5, 3.2, 3.1, 1], 3, 5, 2),  # three epochs without a new best: stop at 5
        ([5, 4, 3, 2, 1], 1, None, 4),  # always improving: never stops
        ([1, 2], 0, 1, 0),  # patience 0 stops at the first epoch that is not better
        ([3, 2, 2, 2], 2, 3, 1),  # equal is not better
    ],
)
def test_early_stopping_stops_after_patience_epochs_and_restores_the_best(
    values, patience, stop, best
):
    model = mg.Sequential(mg.Dense(1, 1, rng=0))
    stopper = mg.EarlyStopping(patience=patience)
    state = feed(stopper, values, model)
    assert stopper.stopped_epoch == stop
    assert state.stop_training == (stop is not None)
    assert stopper.best_epoch == best and stopper.best == values[best]
    assert (model[0].weight.value == best).all()  # the weights of the best epoch are back


def test_early_stopping_min_delta_mode_and_no_restore():
    model = mg.Sequential(mg.Dense(1, 1, rng=0))
    stopper = mg.EarlyStopping(monitor="val_accuracy", patience=1, restore_best_weights=False)
    assert stopper.mode == "max"
    state = feed(stopper, [3, 2, 2.5, 2.4], model)  # accuracy -3, -2, -2.5: stops at 2
    assert stopper.stopped_epoch == 2 and stopper.best == -2
    assert (state.model[0].weight.value == 2).all()  # not restored
    with_delta = mg.EarlyStopping(patience=0, min_delta=0.5)
    feed(with_delta, [3.0, 2.7], model)  # 0.3 better is not better by 0.5
    assert with_delta.stopped_epoch == 1


def test_early_stopping_in_fit_and_its_errors():
    model, loss, opt, x, y = setup(lr=0.0)  # nothing changes: no epoch improves on the first
    history = mg.fit(
        model,
        loss,
        opt,
        x,
        y,
        epochs=20,
        validation_data=(x, y),
        callbacks=[mg.EarlyStopping(patience=2)],
        progress=False,
    )
    assert history.epochs == [1, 2, 3]
    with pytest.raises(KeyError, match=r"'val_loss'.*validation_data"):
        mg.fit(model, loss, opt, x, y, epochs=2, callbacks=[mg.EarlyStopping()], progress=False)
    for bad in ({"patience": -1}, {"min_delta": -0.1}, {"mode": "up"}):
        with pytest.raises(ValueError):
            mg.EarlyStopping(**bad)


# -- learning-rate schedules --------------------------------------------------------------


def test_a_schedule_per_epoch_sets_the_rate_before_each_epoch():
    model, loss, opt, x, y = setup()
    schedule = StepDecay(0.1, factor=0.5, every=2)
    history = mg.fit(
        model,
        loss,
        opt,
        x,
        y,
        epochs=5,
        callbacks=[mg.LearningRateScheduler(schedule)],
        progress=False,
    )
    assert history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_a_schedule_per_step_sets_the_rate_before_each_batch():
    model, loss, opt, x, y = setup()
    schedule = LinearWarmup(CosineDecay(0.1, total=4), warmup=3)
    seen = []

    class Record(Callback):
        def on_batch_end(self, state, loss):
            seen.append(state.optimizer.lr)

    mg.fit(
        model,
        loss,
        opt,
        x,
        y,
        epochs=3,
        batch_size=32,
        callbacks=[mg.LearningRateScheduler(schedule, per="step"), Record()],
        progress=False,
    )
    assert seen == [schedule(t) for t in range(9)]
    with pytest.raises(ValueError, match="'epoch' or 'step'"):
        mg.LearningRateScheduler(schedule, per="batch")
    with pytest.raises(TypeError):
        mg.LearningRateScheduler(0.1)


def test_a_scheduled_sgd_run_equals_one_with_the_rate_set_by_hand():
    """The scheduler only sets optimizer.lr: the run is the hand-written decayed loop."""
    a, loss, opt_a, x, y = setup()
    b, _, opt_b, _, _ = setup()
    schedule = StepDecay(0.2, factor=0.9, every=1)
    mg.fit(
        a,
        loss,
        opt_a,
        x,
        y,
        epochs=3,
        seed=1,
        shuffle=True,
        callbacks=[mg.LearningRateScheduler(schedule)],
        progress=False,
    )
    for epoch in range(3):
        opt_b.lr = schedule(epoch)
        mg.fit(b, loss, opt_b, x, y, epochs=1, seed=None, shuffle=False, progress=False)
    # different shuffles, so compare the learning rates the runs ended with instead
    assert opt_a.lr == opt_b.lr == pytest.approx(0.2 * 0.9**2)


# -- history logger -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_the_history_logger_writes_every_epoch_atomically(tmp_path, suffix):
    model, loss, opt, x, y = setup()
    path = tmp_path / "logs" / f"history{suffix}"
    snapshots = []

    class Peek(Callback):
        def on_epoch_end(self, state, logs):
            snapshots.append(path.read_text() if path.exists() else None)

    history = mg.fit(
        model,
        loss,
        opt,
        x,
        y,
        epochs=3,
        validation_data=(x, y),
        callbacks=[mg.HistoryLogger(path), Peek()],
        progress=False,
    )
    assert snapshots[0] is not None  # written during the first epoch's end already
    if suffix == ".csv":
        rows = list(csv.DictReader(path.read_text().splitlines()))
        assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
        for name, values in history.items():
            assert [float(row[name]) for row in rows] == values  # repr round-trips floats
    else:
        saved = json.loads(path.read_text())
        assert saved == {"epoch": [1, 2, 3], **history}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_history_append_and_repr():
    history = History()
    assert repr(history) == "History(epochs=0)"
    history.append({"loss": 1.0, "accuracy": 0.5})
    history.append({"loss": 0.5, "accuracy": 0.75})
    assert history["loss"] == [1.0, 0.5] and history.epochs == [1, 2]
    assert repr(history) == "History(epochs=2, last: loss=0.5, accuracy=0.75)"


# -- arguments are checked, not coerced ---------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: mg.EarlyStopping(patience="3"), TypeError, "patience must be an integer"),
        (lambda: mg.EarlyStopping(patience=2.0), TypeError, "patience must be an integer"),
        (lambda: mg.EarlyStopping(min_delta="0.1"), TypeError, "min_delta must be a real number"),
        (lambda: mg.EarlyStopping(min_delta=np.nan), ValueError, "min_delta must be a finite"),
        (lambda: mg.EarlyStopping(monitor=3), TypeError, "EarlyStopping monitor must be the name"),
        (lambda: mg.EarlyStopping(monitor=""), ValueError, "monitor must be a name"),
        (
            lambda: mg.EarlyStopping(restore_best_weights="False"),
            TypeError,
            "restore_best_weights must be True or False, got 'False'",
        ),
        (
            lambda: mg.ModelCheckpoint("a.safetensors", save_best_only="False"),
            TypeError,
            "save_best_only must be True or False, got 'False'",
        ),
        (
            lambda: mg.ModelCheckpoint("a.safetensors", weights_only=1),
            TypeError,
            "weights_only must be True or False, got 1",
        ),
        (lambda: mg.ModelCheckpoint(None), TypeError, "path must be a file path"),
        (lambda: mg.ModelCheckpoint(""), ValueError, "ModelCheckpoint path is empty"),
        (lambda: mg.HistoryLogger(""), ValueError, "HistoryLogger path is empty"),
        (lambda: mg.HistoryLogger("."), IsADirectoryError, "is a folder"),
        (lambda: mg.HistoryLogger("logs/"), IsADirectoryError, "ends with a separator"),
        (lambda: mg.ModelCheckpoint("runs/"), IsADirectoryError, "ends with a separator"),
        (lambda: mg.ModelCheckpoint("a", monitor=None), TypeError, "monitor must be the name"),
        (lambda: mg.ModelCheckpoint("a", mode=1), ValueError, "mode must be 'min', 'max'"),
        (lambda: mg.HistoryLogger(3), TypeError, "HistoryLogger path must be a file path"),
        (
            lambda: mg.LearningRateScheduler(StepDecay(0.1), per=0),
            ValueError,
            "'epoch' or 'step'",
        ),
    ],
)
def test_bad_callback_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numpy_integers_and_bools_are_accepted():
    stopper = mg.EarlyStopping(patience=np.int64(3), min_delta=np.float32(0.5))
    assert stopper.patience == 3 and stopper.min_delta == 0.5
    checkpoint = mg.ModelCheckpoint("a.safetensors", save_best_only=np.True_)
    assert checkpoint.save_best_only is True


def test_model_checkpoint_without_safetensors_fails_at_construction(monkeypatch):
    import sys

    for name in [name for name in sys.modules if name.startswith("safetensors")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors now fails
    with pytest.raises(ImportError, match=r"pip install 'minigrad-nn\[files\]'"):
        mg.ModelCheckpoint("run.safetensors")


def test_model_checkpoint_never_writes_non_finite_parameters(tmp_path):
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    path = tmp_path / "run.safetensors"
    checkpoint = mg.ModelCheckpoint(path)
    state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters()), epochs=2)
    checkpoint.on_epoch_end(state, {"loss": 1.0})
    good = path.read_bytes()
    model[0].bias.value[0] = np.inf
    state.epoch = 1
    with pytest.raises(mg.DivergenceError, match=r"parameter '0.bias' holds NaN or infinite"):
        checkpoint.on_epoch_end(state, {"loss": 1.0})
    assert path.read_bytes() == good


def test_the_csv_history_logger_writes_an_uneven_history_with_empty_cells(tmp_path):
    path = tmp_path / "history.csv"
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters()), epochs=2)
    state.history = History({"loss": [0.5, 0.25], "val_loss": [0.75]})
    mg.HistoryLogger(path).on_epoch_end(state, {})
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "1,0.5,0.75", "2,0.25,"]


def test_model_checkpoint_refuses_an_unregistered_optimizer_before_the_first_epoch(tmp_path):
    class Unregistered(mg.SGD):
        pass

    model, loss, _, x, y = setup()
    seen = []

    class Count(Callback):
        def on_batch_end(self, state, loss):
            seen.append(state.step)

    with pytest.raises(ValueError, match="Unregistered"):
        mg.fit(
            model,
            loss,
            Unregistered(model.parameters()),
            x,
            y,
            epochs=2,
            progress=False,
            callbacks=[mg.ModelCheckpoint(tmp_path / "run.safetensors"), Count()],
        )
    assert seen == [] and list(tmp_path.iterdir()) == []
