"""Callbacks: hook order, early stopping, learning-rate schedules, the history logger,
ReduceLROnPlateau against PyTorch's and across a resume, LambdaCallback."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# -- ReduceLROnPlateau --------------------------------------------------------------------


def torch_plateau_rates(torch, values, lr, **settings):
    """The learning rate of each epoch under torch's ReduceLROnPlateau fed ``values``."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **settings)
    rates = []
    for value in values:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(value)
    return rates


def plateau_rates(plateau, values, lr):
    """The learning rate of each epoch with ``plateau`` driven as fit drives it."""
    model = mg.Sequential(mg.Dense(1, 1, rng=0))
    state = TrainingState(model, mg.MSE(), mg.SGD(model.parameters(), lr=lr), epochs=len(values))
    plateau.on_train_begin(state)
    rates = []
    for epoch, value in enumerate(values):
        state.epoch = epoch
        plateau.on_epoch_begin(state)
        rates.append(state.optimizer.lr)
        plateau.on_epoch_end(state, {"val_loss": value})
    return rates


# few distinct values, so that plateaus, ties and near-ties are common; NaN is never better
plateau_values = st.lists(
    st.one_of(
        st.sampled_from([1.0, 0.99995, 0.9, 0.5, 0.5, -0.5, 0.0, float("nan")]),
        st.floats(-2.0, 2.0),
    ),
    min_size=1,
    max_size=60,
)


@given(
    values=plateau_values,
    lr=st.floats(1e-6, 10.0),
    mode=st.sampled_from(["min", "max"]),
    factor=st.floats(0.0, 0.99),
    patience=st.integers(0, 4),
    threshold=st.sampled_from([0.0, 1e-4, 0.05, 0.5]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 3),
    min_lr=st.sampled_from([0.0, 1e-4, 0.01]),
    eps=st.sampled_from([0.0, 1e-8, 1e-3]),
)
def test_reduce_lr_on_plateau_matches_torch(
    torch, values, lr, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps
):
    settings = {
        "mode": mode,
        "factor": factor,
        "patience": patience,
        "threshold": threshold,
        "threshold_mode": threshold_mode,
        "cooldown": cooldown,
        "min_lr": min_lr,
        "eps": eps,
    }
    expected = torch_plateau_rates(torch, values, lr, **settings)
    assert plateau_rates(mg.ReduceLROnPlateau(**settings), values, lr) == expected


def test_reduce_lr_on_plateau_in_fit_takes_the_rates_torch_gives_for_its_logged_values(torch):
    model, loss, opt, x, y = setup(lr=0.5)
    settings = {"factor": 0.5, "patience": 1, "threshold": 0.3, "cooldown": 1}
    history = mg.fit(
        model,
        loss,
        opt,
        x,
        y,
        epochs=16,
        seed=0,
        validation_data=(x[:40], y[:40]),
        callbacks=[mg.ReduceLROnPlateau(**settings)],
        progress=False,
    )
    expected = torch_plateau_rates(torch, history["val_loss"], 0.5, mode="min", **settings)
    assert history["lr"] == expected
    assert len(set(expected)) >= 3  # it did reduce, more than once


def plateau_run(epochs, plateau_first, **kwargs):
    """A run whose monitored number never improves after its first epoch ("max" on a falling
    training loss), so the rate drops every third epoch (patience 1, cooldown 1)."""
    model, loss, opt, x, y = setup(lr=0.5)
    plateau = mg.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1, cooldown=1)
    callbacks = list(kwargs.pop("callbacks", []))
    callbacks = [plateau, *callbacks] if plateau_first else [*callbacks, plateau]
    history = mg.fit(
        model, loss, opt, x, y, epochs=epochs, batch_size=16, seed=3, callbacks=callbacks,
        progress=False, **kwargs,
    )  # fmt: skip
    return model, opt, history


@pytest.mark.parametrize("plateau_first", [True, False], ids=["plateau first", "checkpoint first"])
def test_a_run_resumed_with_reduce_lr_on_plateau_is_bit_identical(tmp_path, plateau_first):
    straight, straight_opt, straight_history = plateau_run(9, plateau_first)
    rates = straight_history["lr"]
    assert rates == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
    path = tmp_path / "epoch{epoch}.safetensors"
    plateau_run(5, plateau_first, callbacks=[mg.ModelCheckpoint(path)])
    # after 3 epochs a reduction is due before the next; after 4 and 5, none is
    for done in (3, 4, 5):
        resumed, resumed_opt, history = plateau_run(
            9, plateau_first, resume_from=tmp_path / f"epoch{done}.safetensors"
        )
        assert dict(history) == dict(straight_history)
        assert resumed_opt.lr == straight_opt.lr
        for (key, a), (_, b) in zip(
            resumed.state_dict().items(), straight.state_dict().items(), strict=True
        ):
            np.testing.assert_array_equal(a, b, err_msg=key)


def test_reduce_lr_on_plateau_needs_its_monitor():
    model, loss, opt, x, y = setup()
    with pytest.raises(KeyError, match=r"ReduceLROnPlateau monitors 'val_loss'.*validation_data"):
        mg.fit(model, loss, opt, x, y, epochs=2, callbacks=[mg.ReduceLROnPlateau()], progress=False)
    state = TrainingState(model, loss, opt, epochs=3)
    state.history = History({"loss": [1.0], "lr": [0.1]})  # a resumed run without val_loss
    with pytest.raises(KeyError, match=r"monitors 'val_loss', but the resumed history holds"):
        mg.ReduceLROnPlateau().on_train_begin(state)


def test_reduce_lr_on_plateau_defaults_and_repr():
    plateau = mg.ReduceLROnPlateau()
    assert repr(plateau) == (
        "ReduceLROnPlateau(monitor='val_loss', mode='min', factor=0.1, patience=10, "
        "threshold=0.0001, threshold_mode='rel', cooldown=0, min_lr=0.0, eps=1e-08)"
    )
    assert mg.ReduceLROnPlateau(monitor="val_accuracy").mode == "max"
    assert mg.ReduceLROnPlateau(patience=np.int64(2), factor=np.float32(0.5)).patience == 2


# -- LambdaCallback -----------------------------------------------------------------------


def test_lambda_callback_calls_each_function_with_its_hooks_arguments():
    model, loss, opt, x, y = setup()
    calls = []
    every = mg.LambdaCallback(
        on_train_begin=lambda state: calls.append(("train_begin", state.epoch)),
        on_epoch_begin=lambda state: calls.append(("epoch_begin", state.epoch)),
        on_batch_begin=lambda state: calls.append(("batch_begin", state.batch)),
        on_batch_end=lambda state, loss: calls.append(("batch_end", np.isfinite(loss))),
        on_epoch_end=lambda state, logs: calls.append(("epoch_end", sorted(logs))),
        on_train_end=lambda state: calls.append(("train_end", state.step)),
    )
    mg.fit(model, loss, opt, x, y, epochs=1, batch_size=48, callbacks=[every], progress=False)
    assert calls == [
        ("train_begin", 0),
        ("epoch_begin", 0),
        ("batch_begin", 0),
        ("batch_end", True),
        ("batch_begin", 1),
        ("batch_end", True),
        ("epoch_end", ["accuracy", "loss", "lr"]),
        ("train_end", 2),
    ]
    only = mg.LambdaCallback(on_epoch_end=print)
    assert repr(only) == "LambdaCallback(on_epoch_end=print)"
    assert repr(mg.LambdaCallback()) == "LambdaCallback()"


def test_lambda_callback_can_stop_training():
    model, loss, opt, x, y = setup()
    stop = mg.LambdaCallback(on_epoch_end=lambda state, logs: setattr(state, "stop_training", True))
    history = mg.fit(model, loss, opt, x, y, epochs=5, callbacks=[stop], progress=False)
    assert history.epochs == [1]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: mg.LambdaCallback(on_epoch_end="print"),
            TypeError,
            r"^LambdaCallback on_epoch_end must be a function or None, got 'print' \(str\)$",
        ),
        (
            lambda: mg.LambdaCallback(on_batch_end=3),
            TypeError,
            r"^LambdaCallback on_batch_end must be a function or None, got 3 \(int\)$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(factor=1.0),
            ValueError,
            r"^ReduceLROnPlateau factor must be a finite number >= 0 and < 1, got 1\.0$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(factor="0.1"),
            TypeError,
            r"^ReduceLROnPlateau factor must be a real number, got '0\.1' \(str\)$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(patience=2.0),
            TypeError,
            r"^ReduceLROnPlateau patience must be an integer, got 2\.0 \(float\)$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(patience=True),
            TypeError,
            r"^ReduceLROnPlateau patience must be an integer, got True \(bool\)$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(threshold=np.nan),
            ValueError,
            r"^ReduceLROnPlateau threshold must be a finite number >= 0, got nan$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(threshold_mode="relative"),
            ValueError,
            r"^ReduceLROnPlateau threshold_mode must be 'rel' or 'abs', got 'relative'$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(cooldown=-1),
            ValueError,
            r"^ReduceLROnPlateau cooldown must be >= 0, got -1$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(min_lr=float("inf")),
            ValueError,
            r"^ReduceLROnPlateau min_lr must be a finite number >= 0, got inf$",
        ),
        (
            lambda: mg.ReduceLROnPlateau(eps=True),
            TypeError,
            r"^ReduceLROnPlateau eps must be a real number, got True \(bool\)$",
        ),
        (lambda: mg.ReduceLROnPlateau(mode="up"), ValueError, r"mode must be 'min', 'max'"),
        (lambda: mg.ReduceLROnPlateau(monitor=None), TypeError, r"monitor must be the name"),
    ],
)
def test_bad_arguments_of_the_new_callbacks_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_early_stopping_resumed_from_any_checkpoint_stops_where_the_uninterrupted_run_does(
    tmp_path,
):
    pytest.importorskip("safetensors")
    x, y = mg.data.make_moons(120, noise=0.3, seed=0)
    x_val, y_val = mg.data.make_moons(60, noise=0.3, seed=1)

    def run(resume_from=None):
        model = mg.Sequential(mg.Dense(2, 16, rng=0), mg.ReLU(), mg.Dense(16, 2, rng=1))
        stopper = mg.EarlyStopping(monitor="val_loss", patience=3)
        callbacks = [stopper]
        if resume_from is None:
            callbacks.append(mg.ModelCheckpoint(tmp_path / "e{epoch}.safetensors"))
        history = mg.fit(
            model, mg.CrossEntropy(), mg.Adam(model.parameters(), lr=0.2), x, y, epochs=40,
            batch_size=16, seed=0, progress=False, validation_data=(x_val, y_val),
            callbacks=callbacks, resume_from=resume_from,
        )  # fmt: skip
        return model, stopper, history

    model, stopper, whole = run()
    assert stopper.stopped_epoch is not None and len(whole["loss"]) < 40  # it did stop
    for epoch in range(1, len(whole["loss"])):
        path = tmp_path / f"e{epoch}.safetensors"
        if stopper.best_epoch >= epoch - 1:  # the best is at or after the checkpoint
            resumed_model, resumed, history = run(path)
            for key, value in model.state_dict().items():  # the best weights restored
                np.testing.assert_array_equal(resumed_model.state_dict()[key], value)
        else:
            with pytest.warns(UserWarning, match=r"came before the checkpoint this run resumed"):
                resumed_model, resumed, history = run(path)
        assert history == whole, epoch
        assert (resumed.best, resumed.best_epoch, resumed.stopped_epoch) == (
            stopper.best, stopper.best_epoch, stopper.stopped_epoch,
        )  # fmt: skip


def test_a_best_only_checkpoint_resumed_writes_only_what_the_uninterrupted_run_writes(tmp_path):
    pytest.importorskip("safetensors")
    x, y = mg.data.make_moons(120, noise=0.3, seed=0)
    x_val, y_val = mg.data.make_moons(60, noise=0.3, seed=1)

    def run(folder, resume_from=None):
        model = mg.Sequential(mg.Dense(2, 16, rng=0), mg.ReLU(), mg.Dense(16, 2, rng=1))
        best = mg.ModelCheckpoint(folder / "best.safetensors", monitor="val_loss",
                                  save_best_only=True, weights_only=True)  # fmt: skip
        every = mg.ModelCheckpoint(folder / "e{epoch}.safetensors")
        mg.fit(
            model, mg.CrossEntropy(), mg.Adam(model.parameters(), lr=0.2), x, y, epochs=15,
            batch_size=16, seed=0, progress=False, validation_data=(x_val, y_val),
            callbacks=[best, every], resume_from=resume_from,
        )  # fmt: skip
        return mg.load(folder / "best.safetensors").state_dict()

    (tmp_path / "whole").mkdir()
    (tmp_path / "resumed").mkdir()
    whole = run(tmp_path / "whole")  # its best epoch is 12 of 15 (val_loss 0.076)
    (tmp_path / "resumed" / "best.safetensors").write_bytes(
        (tmp_path / "whole" / "best.safetensors").read_bytes()
    )  # as a run stopped after epoch 13 leaves it: its best, epoch 12's, written before
    resumed = run(tmp_path / "resumed", resume_from=tmp_path / "whole" / "e13.safetensors")
    for key, value in whole.items():  # epochs 14 and 15 are worse: the file is not rewritten
        np.testing.assert_array_equal(resumed[key], value)
