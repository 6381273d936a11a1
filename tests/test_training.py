"""fit, evaluate and predict: the loop against a hand-written one, determinism, History
contents, bad input before the first step, progress output, and the accuracy targets."""

from __future__ import annotations

import os
import signal
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.callbacks import Callback
from minigrad.data import DataLoader, load_mnist, make_blobs, make_spirals, make_xor
from minigrad.optim import global_grad_norm

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mlp(widths=(2, 16, 3), seed=0, dtype=np.float32, activation=mg.ReLU):
    layers = []
    for index, (n_in, n_out) in enumerate(pairwise(widths)):
        layers.append(mg.Dense(n_in, n_out, init="he_normal", rng=seed + index, dtype=dtype))
        if index < len(widths) - 2:
            layers.append(activation())
    return mg.Sequential(*layers)


def blobs(n=120, seed=0):
    return make_blobs(n, centers=3, spread=1.0, seed=seed)


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


# -- the loop is the hand-written loop ------------------------------------------------------


@pytest.mark.parametrize("make", [mg.SGD, mg.Momentum, mg.Adam])
def test_fit_takes_the_same_steps_as_a_hand_written_loop(make):
    x, y = blobs()
    ours, theirs = mlp(), mlp()
    fit_opt = make(ours.parameters(), lr=0.05)
    hand_opt = make(theirs.parameters(), lr=0.05)
    history = mg.fit(
        ours, mg.CrossEntropy(), fit_opt, x, y, epochs=3, batch_size=16, seed=7, progress=False
    )
    loss = mg.CrossEntropy()
    loader = DataLoader(x, y, batch_size=16, seed=7)
    epoch_losses = []
    for _ in range(3):
        total = 0.0
        for xb, yb in loader:
            total += loss(theirs(xb), yb) * len(xb)
            theirs.backward(loss.backward())
            hand_opt.step()
        epoch_losses.append(total / len(x))
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value)
    np.testing.assert_allclose(history["loss"], epoch_losses, rtol=1e-12)


def test_an_epoch_loss_is_the_mean_over_samples_with_a_short_last_batch():
    x, y = blobs(n=50)
    model = mlp()
    history = mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters(), lr=0.0),  # nothing moves: every batch sees the same model
        x,
        y,
        epochs=2,
        batch_size=16,  # 16 + 16 + 16 + 2
        progress=False,
    )
    whole = mg.CrossEntropy()(model(x), y)
    np.testing.assert_allclose(history["loss"], [whole, whole], rtol=1e-6)
    accuracy = mg.accuracy(model(x), y)
    assert history["accuracy"] == pytest.approx([accuracy, accuracy], abs=1e-12)


def test_history_has_every_key_per_epoch_and_validation_equals_evaluate():
    x, y = blobs(seed=1)
    xv, yv = blobs(n=60, seed=2)
    model = mlp()
    history = mg.fit(
        model,
        mg.CrossEntropy(),
        mg.Adam(model.parameters(), lr=0.01),
        x,
        y,
        epochs=4,
        validation_data=(xv, yv),
        progress=False,
    )
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(values) == 4 for values in history.values())
    assert history.epochs == [1, 2, 3, 4]
    final = mg.evaluate(model, mg.CrossEntropy(), xv, yv)
    assert history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
    assert history["val_accuracy"][-1] == final["accuracy"]
    assert history["lr"] == [0.01] * 4
    assert history["loss"][-1] < history["loss"][0]
    assert "History(epochs=4" in repr(history)


def test_the_same_seed_gives_the_same_history_bit_for_bit_and_another_seed_does_not():
    x, y = make_spirals(300, seed=3)

    def run(seed):
        model = mlp((2, 32, 32, 2))
        history = mg.fit(
            model,
            mg.CrossEntropy(),
            mg.Momentum(model.parameters(), lr=0.05),
            x,
            y,
            epochs=3,
            seed=seed,
            validation_data=(x[:50], y[:50]),
            progress=False,
        )
        return dict(history), weights(model)

    first, second, other = run(11), run(11), run(12)
    assert first[0] == second[0]
    for key in first[1]:
        np.testing.assert_array_equal(first[1][key], second[1][key])
    assert first[0]["loss"] != other[0]["loss"]


def test_zero_epochs_changes_nothing():
    x, y = blobs()
    model = mlp()
    before = weights(model)
    history = mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters(), lr=1.0), x, y, epochs=0)
    assert dict(history) == {} and history.epochs == []
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_fit_learns_xor_with_a_sigmoid_output_and_logits_use_threshold_zero():
    x, y = make_xor()
    y = y.reshape(-1, 1).astype(np.float32)
    model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
    loss = mg.BinaryCrossEntropy(from_logits=True)
    history = mg.fit(
        model,
        loss,
        mg.Adam(model.parameters(), lr=0.05),
        x,
        y,
        epochs=300,
        batch_size=4,
        progress=False,
    )
    assert history["accuracy"][-1] == 1.0
    logits = model(x)
    assert (logits < 0).any()  # with a 0.5 threshold on logits the metric would be wrong
    assert mg.evaluate(model, loss, x, y)["accuracy"] == 1.0


def test_a_custom_metric_function_is_reported_under_its_name():
    x, y = blobs()
    model = mlp()

    def mean_logit(pred, target):
        return float(np.mean(pred))

    history = mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters(), lr=0.0),
        x,
        y,
        epochs=1,
        metrics=["accuracy", mean_logit],
        progress=False,
    )
    assert history["mean_logit"][0] == pytest.approx(float(np.mean(model(x))), rel=1e-5)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        mg.fit(
            model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=1, metrics=["auc"]
        )


def test_metrics_by_name_are_logged_validated_and_evaluated_under_their_names():
    x, y = blobs()
    x_val, y_val = blobs(60, seed=1)
    model = mlp()
    names = ["accuracy", "top_k_accuracy", "precision", "recall", "f1"]
    history = mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters(), lr=0.1),
        x,
        y,
        epochs=3,
        validation_data=(x_val, y_val),
        metrics=[*names, top_2],
        progress=False,
    )
    logged = ["loss", *names, "top_2"]
    assert set(history) == {"lr", *logged, *(f"val_{name}" for name in logged)}
    scores = mg.evaluate(model, mg.CrossEntropy(), x_val, y_val, metrics=[*names, top_2])
    assert set(scores) == set(logged)
    pred = mg.predict(model, x_val)
    for name in names:  # validation and evaluate score all outputs at once
        value = getattr(mg.metrics, name)(pred, y_val)
        assert scores[name] == history[f"val_{name}"][-1] == pytest.approx(value, rel=1e-12)
    assert scores["top_k_accuracy"] == 1.0  # k = 5 of 3 classes
    assert scores["top_2"] == mg.metrics.top_k_accuracy(pred, y_val, k=2)
    # training logs: the mean over batches weighted by their sizes (exact for the means)
    assert 0.0 <= history["f1"][-1] <= 1.0


def top_2(pred, target):
    return mg.metrics.top_k_accuracy(pred, target, k=2)


def test_regression_metrics_by_name():
    x = np.linspace(-1, 1, 40)[:, None]
    model = mg.Dense(1, 1, rng=0, dtype=np.float64)
    history = mg.fit(
        model,
        mg.MSE(),
        mg.SGD(model.parameters(), lr=0.5),
        x,
        2 * x + 1,
        epochs=5,
        validation_data=(x, 2 * x + 1),
        metrics=["mae", "mse", "r2"],
        progress=False,
    )
    assert set(history) == {
        "loss",
        "lr",
        "mae",
        "mse",
        "r2",
        "val_loss",
        "val_mae",
        "val_mse",
        "val_r2",
    }
    assert history["val_mse"] == pytest.approx(history["val_loss"], rel=1e-12)  # MSE's loss
    scores = mg.evaluate(model, mg.MSE(), x, 2 * x + 1, metrics=["mae", "r2"])
    pred = mg.predict(model, x)
    assert scores["mae"] == pytest.approx(float(np.mean(np.abs(pred - (2 * x + 1)))), rel=1e-12)
    assert scores["r2"] == history["val_r2"][-1]
    with pytest.raises(ValueError, match="the metric 'mae' cannot score these targets"):
        mg.evaluate(mlp(), mg.CrossEntropy(), *blobs(), metrics=["mae"])


def test_precision_recall_f1_after_binary_cross_entropy_are_the_positive_classs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 2))
    y = (x[:, :1] + 0.5 * rng.standard_normal((80, 1)) > 0.3).astype(np.float64)
    for from_logits in (True, False):
        layers = [mg.Dense(2, 1, rng=0, dtype=np.float64)]
        model = mg.Sequential(*layers) if from_logits else mg.Sequential(*layers, mg.Sigmoid())
        loss = mg.BinaryCrossEntropy(from_logits=from_logits)
        mg.fit(model, loss, mg.SGD(model.parameters(), lr=0.5), x, y, epochs=3, progress=False)
        scores = mg.evaluate(model, loss, x, y, metrics=["precision", "recall", "f1"])
        pred = mg.predict(model, x)
        threshold = 0.0 if from_logits else 0.5
        for name in ("precision", "recall", "f1"):
            metric = getattr(mg.metrics, name)
            expected = metric(pred, y, average="binary", threshold=threshold)
            assert scores[name] == expected
            assert expected != metric(pred, y, average="macro", threshold=threshold)


def test_clip_norm_bounds_the_gradient_of_every_step():
    x, y = blobs()
    model = mlp()
    norms = []

    class Record(Callback):
        def on_batch_end(self, state, loss):
            norms.append(global_grad_norm(state.model.parameters()))

    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters(), lr=0.1),
        x,
        y,
        epochs=2,
        clip_norm=0.01,
        callbacks=[Record()],
        progress=False,
    )
    assert len(norms) == 2 * 4
    assert max(norms) <= 0.01 * (1 + 1e-5)
    assert min(norms) > 0.005  # they were larger and got scaled down to the bound


# -- bad input fails before the first step ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x[:-1], y), "same number of samples, got 119 and 120"),
        (lambda x, y: (x[:0], y[:0]), "empty"),
        (lambda x, y: (np.where(np.arange(240).reshape(120, 2) == 7, np.nan, x), y), "NaN"),
        (lambda x, y: (np.where(np.arange(240).reshape(120, 2) == 9, np.inf, x), y), r"\(4, 1\)"),
        (lambda x, y: (x, np.where(np.arange(120) == 5, 3, y)), r"\[0, 3\).*got 3 at index 5"),
        (lambda x, y: (x, -y), "must lie in"),
        (lambda x, y: (x, y + 0.5), "must be integers"),
        (lambda x, y: (x, y.reshape(-1, 1)), "class indices go in shape"),
        (lambda x, y: (np.hstack([x, x]), y), "expected input of shape \\(batch, 2\\)"),
    ],
)
def test_data_that_cannot_train_raises_a_value_error_before_any_step(change, message):
    x, y = blobs()
    model = mlp()
    before = weights(model)
    bad_x, bad_y = change(x, y)
    with pytest.raises(ValueError, match=message):
        mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters(), lr=1.0), bad_x, bad_y, epochs=1)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": -1}, "epochs must be >= 0, got -1"),
        ({"epochs": 1, "batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"epochs": 1, "clip_norm": -1.0}, "clip_norm must be"),
        ({"epochs": 1, "validation_data": (np.zeros((3, 2)),)}, "a pair"),
        ({"epochs": 1, "validation_data": (np.zeros((3, 2)), np.zeros(4))}, "validation_data"),
    ],
)
def test_bad_settings_raise_value_errors(settings, message):
    x, y = blobs()
    model = mlp()
    with pytest.raises(ValueError, match=message):
        mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, **settings)


def test_targets_that_do_not_fit_mse_or_bce_are_refused():
    x = np.zeros((8, 2), np.float32)
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    with pytest.raises(ValueError, match="do not fit MSE"):
        mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, np.zeros(8), epochs=1)
    with pytest.raises(ValueError, match="do not fit BinaryCrossEntropy"):
        mg.fit(
            model,
            mg.BinaryCrossEntropy(),
            mg.SGD(model.parameters()),
            x,
            np.full((8, 1), 2.0),
            epochs=1,
        )


# -- divergence -------------------------------------------------------------------------------


def test_a_diverging_run_stops_with_a_clear_error_and_no_numpy_warnings():
    x, y = blobs()
    x = x * 100
    model = mlp()
    with pytest.raises(mg.DivergenceError) as caught:
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters(), lr=10.0),
            x,
            np.eye(3, dtype=np.float32)[y] * 1e3,
            epochs=50,
            progress=False,
        )
    message = str(caught.value)
    assert "epoch 1" in message and "step" in message
    assert "learning rate (10) is probably too large; try 1" in message


# -- evaluate and predict ---------------------------------------------------------------------


def test_predict_and_evaluate_work_in_batches_and_restore_the_mode():
    x, y = blobs(n=70)
    model = mlp()
    model.train()
    out = mg.predict(model, x, batch_size=16)
    np.testing.assert_allclose(out, model(x), rtol=1e-6)
    assert out.shape == (70, 3) and out.dtype == np.float32
    assert model.training
    model.eval()
    scores = mg.evaluate(model, mg.CrossEntropy(), x, y, batch_size=16)
    assert not model.training
    assert scores["loss"] == pytest.approx(mg.CrossEntropy()(model(x), y), rel=1e-6)
    assert scores["accuracy"] == mg.accuracy(model(x), y)
    with pytest.raises(ValueError, match="non-empty"):
        mg.predict(model, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        mg.evaluate(model, mg.CrossEntropy(), x, y, batch_size=0)


# -- progress ---------------------------------------------------------------------------------


def test_progress_shows_one_bar_per_epoch_with_the_numbers_and_false_shows_nothing(capfd):
    pytest.importorskip("tqdm")
    x, y = blobs()
    model = mlp()
    mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=2)
    err = capfd.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "loss=" in err and "accuracy=" in err
    mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=2, progress=False)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


# -- the accuracy targets ---------------------------------------------------------------------


def test_digits_reach_97_percent_test_accuracy():
    pytest.importorskip("sklearn")
    x, y = mg.data.load_digits()
    x_train, x_test, y_train, y_test = mg.data.train_test_split(x, y, 0.2, seed=0)
    scaler = mg.data.Standardizer().fit(x_train)
    model = mlp((64, 64, 64, 10), seed=0)
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.Adam(model.parameters(), lr=0.01),
        scaler.transform(x_train),
        y_train,
        epochs=30,
        seed=0,
        progress=False,
    )
    assert (
        mg.evaluate(model, mg.CrossEntropy(), scaler.transform(x_test), y_test)["accuracy"] >= 0.97
    )


@pytest.mark.skipif(not MNIST.is_dir(), reason="the MNIST files are not beside the repository")
def test_mnist_reaches_95_percent_on_the_last_2000_after_training_on_the_first_8000():
    x, y = load_mnist(MNIST, "test")
    model = mlp((784, 256, 128, 10), seed=0)
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.Adam(model.parameters(), lr=0.001),
        x[:8000],
        y[:8000],
        epochs=10,
        batch_size=64,
        seed=0,
        progress=False,
    )
    scores = mg.evaluate(model, mg.CrossEntropy(), x[8000:], y[8000:])
    assert scores["accuracy"] >= 0.95


# -- nothing is lost --------------------------------------------------------------------------


class Recorder(Callback):
    """Keeps the parameters after every step, and what on_train_end saw."""

    def __init__(self):
        self.after_steps, self.ended_with = [], "not called"

    def on_batch_end(self, state, loss):
        self.after_steps.append(weights(state.model))

    def on_train_end(self, state):
        self.ended_with = state.error


def overflowing_run(tmp_path, callbacks=()):
    """The issue's example: w x with w -> 3 w, lr 100, diverges by overflowing float32."""
    x = np.array([[1.0], [2.0]], dtype=np.float32)
    model = mg.Dense(1, 1, rng=0)
    recorder = Recorder()
    checkpoint = mg.ModelCheckpoint(tmp_path / "run{epoch}.safetensors")
    with pytest.raises(mg.DivergenceError) as caught:
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters(), lr=100.0),
            x,
            3 * x,
            epochs=50,
            metrics=(),
            callbacks=[checkpoint, recorder, *callbacks],
            progress=False,
        )
    return model, recorder, caught.value


def test_divergence_keeps_the_last_finite_parameters_in_memory_and_in_every_file(tmp_path):
    model, recorder, error = overflowing_run(tmp_path)
    assert "epoch 14, batch 1 (step 13)" in str(error)
    assert "would make parameter 'weight' non-finite" in str(error)
    assert "the learning rate (100) is probably too large; try 10" in str(error)
    last = recorder.after_steps[-1]  # after step 13, the last one taken
    assert np.isfinite(last["weight"]).all() and abs(last["weight"][0, 0]) > 1e36
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, last[key])  # exactly the values before the step
    files = sorted(tmp_path.glob("run*.safetensors"))
    assert len(files) == 13
    for path in files:
        saved = mg.load_checkpoint(path).model.state_dict()
        assert all(np.isfinite(value).all() for value in saved.values()), path.name
    assert recorder.ended_with is error  # on_train_end ran, and saw why


def test_early_stopping_restores_its_best_weights_when_training_diverges(tmp_path):
    stopper = mg.EarlyStopping(monitor="loss", patience=100)
    model, recorder, _ = overflowing_run(tmp_path, callbacks=[stopper])
    assert stopper.best_epoch == 0  # the loss only grew after the first epoch
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, recorder.after_steps[0][key])


def test_a_failing_on_train_end_does_not_hide_the_divergence(tmp_path):
    class Broken(Callback):
        def on_train_end(self, state):
            raise RuntimeError("cannot clean up")

    _, _, error = overflowing_run(tmp_path, callbacks=[Broken()])
    assert any("cannot clean up" in note for note in error.__notes__)


def test_a_non_finite_loss_stops_before_its_step_without_blaming_the_targets():
    x, _ = blobs()
    model = mlp()
    before = weights(model)
    big = x / np.abs(x).max() * np.float32(3e38)  # finite inputs; the forward overflows
    with pytest.raises(
        mg.DivergenceError, match=r"epoch 1, batch 1 \(step 0\): the loss became (inf|nan)"
    ):
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters(), lr=0.1),
            big,
            np.zeros((120, 3)),
            epochs=1,
            progress=False,
        )
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, before[key])


def test_a_diverging_sigmoid_and_binary_cross_entropy_model_raises_divergence_error():
    """A forward of finite but huge weights gives inf - inf = NaN; fit reports a divergence,
    not probabilities out of range."""
    model = mg.Sequential(mg.Dense(1, 2, rng=0), mg.Dense(2, 1, rng=1), mg.Sigmoid())
    model[0].weight.value[...] = [[3e38], [-3e38]]
    model[1].weight.value[...] = 1.0
    x, y = np.full((4, 1), 2.0, np.float32), np.ones((4, 1), np.float32)
    with pytest.raises(mg.DivergenceError, match=r"loss became nan|output holds NaN"):
        mg.fit(
            model,
            mg.BinaryCrossEntropy(),
            mg.SGD(model.parameters()),
            x,
            y,
            epochs=1,
            progress=False,
        )


def test_a_loss_that_refuses_a_nan_output_is_reported_as_a_divergence():
    class Strict(mg.MSE):
        def forward(self, pred, target):
            if not np.isfinite(pred).all():
                raise ValueError("Strict expects finite predictions")
            return super().forward(pred, target)

    model = mg.Sequential(mg.Dense(1, 2, rng=0), mg.Dense(2, 1, rng=1))
    model[0].weight.value[...] = [[3e38], [-3e38]]
    model[1].weight.value[...] = 1.0
    x, y = np.full((4, 1), 2.0, np.float32), np.ones((4, 1), np.float32)
    with pytest.raises(mg.DivergenceError, match="output holds NaN or infinite") as caught:
        mg.fit(model, Strict(), mg.SGD(model.parameters()), x, y, epochs=1, progress=False)
    assert "Strict expects finite predictions" in str(caught.value.__cause__)


def test_non_finite_validation_outputs_are_a_divergence_not_a_metric_error():
    model = mg.Sequential(mg.Dense(1, 2, rng=0), mg.Dense(2, 2, rng=1))
    x, y = np.ones((4, 1), np.float32), np.array([0, 1, 0, 1])
    big = np.full((4, 1), 2.0, np.float32)
    optimizer = mg.SGD(model.parameters(), lr=0.0)
    model[0].weight.value[...] = [[3e38], [-3e38]]  # inf - inf on inputs of 2, not of 1
    with pytest.raises(mg.DivergenceError, match="output on the validation data holds NaN"):
        mg.fit(
            model,
            mg.CrossEntropy(),
            optimizer,
            x * 0.5,
            y,
            epochs=1,
            validation_data=(big, y),
            progress=False,
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets_are_refused_before_the_first_step_naming_y(bad):
    x = np.zeros((8, 2), np.float32)
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    y = np.zeros((8, 1))
    y[5, 0] = bad
    with pytest.raises(
        ValueError,
        match=r"fit: y holds NaN or infinite values, the first at "
        r"index \(5, 0\)",
    ):
        mg.fit(model, mg.MSE(), mg.SGD(model.parameters()), x, y, epochs=1, progress=False)
    labels = np.zeros(8)
    labels[3] = bad
    with pytest.raises(ValueError, match="y holds NaN or infinite values, the first at index 3"):
        classifier = mlp((2, 3))
        mg.fit(
            classifier,
            mg.CrossEntropy(),
            mg.SGD(classifier.parameters()),
            x,
            labels,
            epochs=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="validation_data y holds NaN"):
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters()),
            x,
            np.zeros((8, 1)),
            epochs=1,
            validation_data=(x, y),
            progress=False,
        )


# -- Ctrl-C -----------------------------------------------------------------------------------


class InterruptingAdam(mg.Adam):
    """Adam that receives Ctrl-C (a real SIGINT) after updating its first parameter."""

    def _update(self, value, grad, state, work):
        super()._update(value, grad, state, work)
        if not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_a_step_finishes_the_step_then_raises_keyboard_interrupt():
    x, y = blobs()
    ours, reference = mlp(), mlp()
    optimizer = InterruptingAdam(ours.parameters(), lr=0.01)
    ended = Recorder()
    with pytest.raises(KeyboardInterrupt):
        mg.fit(
            ours,
            mg.CrossEntropy(),
            optimizer,
            x,
            y,
            epochs=5,
            batch_size=200,
            shuffle=False,
            callbacks=[ended],
            progress=False,
        )
    assert isinstance(ended.ended_with, KeyboardInterrupt)
    # one whole step, every parameter and every step count, as a plain Adam takes it
    expected = mg.Adam(reference.parameters(), lr=0.01)
    loss = mg.CrossEntropy()
    loss(reference(x), y)
    reference.backward(loss.backward())
    expected.step()
    for key, value in weights(reference).items():
        np.testing.assert_array_equal(weights(ours)[key], value)
    assert [s["step"] for s in optimizer.state.values()] == [1] * len(optimizer.params)
    assert ours.training


def test_ctrl_c_during_validation_leaves_the_model_in_training_mode():
    class InterruptInEval(mg.Layer):
        def forward(self, x):
            if not self.training:
                os.kill(os.getpid(), signal.SIGINT)
            return x

        def backward(self, grad_output):
            return grad_output

    x, y = blobs()
    model = mg.Sequential(*mlp().layers, InterruptInEval())
    with pytest.raises(KeyboardInterrupt):
        mg.fit(
            model,
            mg.CrossEntropy(),
            mg.SGD(model.parameters()),
            x,
            y,
            epochs=2,
            validation_data=(x, y),
            progress=False,
        )
    assert model.training and all(layer.training for layer in model)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


# -- arguments ----------------------------------------------------------------------------------


def test_an_optimizer_on_another_models_parameters_is_refused_before_any_step():
    x, y = blobs()
    model, other = mlp(), mlp()
    with pytest.raises(
        ValueError,
        match=r"4 of the optimizer's 4 parameters are not parameters "
        r"of this model.*SGD\(model.parameters\(\), ...\)",
    ):
        mg.fit(model, mg.CrossEntropy(), mg.SGD(other.parameters()), x, y, epochs=1)
    # a part of the model's parameters is fine: the others stay frozen
    frozen = weights(model)["0.weight"]
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model[2].parameters(), lr=0.1),
        x,
        y,
        epochs=1,
        progress=False,
    )
    np.testing.assert_array_equal(weights(model)["0.weight"], frozen)


def test_a_regression_trains_with_the_default_metrics():
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    model = mg.Dense(1, 1, rng=0)
    history = mg.fit(
        model,
        mg.MSE(),
        mg.SGD(model.parameters(), lr=0.5),
        x,
        2 * x + 1,
        epochs=30,
        validation_data=(x, 2 * x + 1),
        progress=False,
    )
    assert set(history) == {"loss", "val_loss", "lr"}
    assert history["loss"][-1] < 1e-3
    assert set(mg.evaluate(model, mg.MSE(), x, 2 * x + 1)) == {"loss"}
    assert set(mg.evaluate(mlp(), mg.CrossEntropy(), *blobs())) == {"loss", "accuracy"}


def test_resuming_a_checkpoint_that_already_holds_the_epochs_is_an_error(tmp_path):
    x, y = blobs()
    model = mlp()
    optimizer = mg.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "run.safetensors"
    mg.fit(
        model,
        mg.CrossEntropy(),
        optimizer,
        x,
        y,
        epochs=3,
        callbacks=[mg.ModelCheckpoint(path)],
        progress=False,
    )
    fresh = mlp(seed=5)
    before = weights(fresh)
    for epochs in (2, 3):
        with pytest.raises(
            ValueError,
            match=rf"checkpoint already holds 3 epochs and epochs="
            rf"{epochs}.*pass epochs > 3",
        ):
            mg.fit(
                fresh,
                mg.CrossEntropy(),
                mg.SGD(fresh.parameters()),
                x,
                y,
                epochs=epochs,
                resume_from=path,
            )
    for key, value in weights(fresh).items():
        np.testing.assert_array_equal(value, before[key])  # nothing was restored either


def run_fit(**changes):
    x, y = blobs()
    model = mlp()
    arguments = {
        "model": model,
        "loss": mg.CrossEntropy(),
        "optimizer": mg.SGD(model.parameters()),
        "x": x,
        "y": y,
        "epochs": 1,
        "progress": False,
    }
    arguments.update(changes)
    return mg.fit(**arguments)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"epochs": 1.5}, TypeError, r"epochs must be an integer, got 1.5 \(float\)"),
        ({"epochs": True}, TypeError, "epochs must be an integer, got True"),
        ({"batch_size": "32"}, TypeError, "batch_size must be an integer, got '32'"),
        ({"shuffle": "False"}, TypeError, r"shuffle must be True or False, got 'False' \(str\)"),
        ({"progress": "False"}, TypeError, "progress must be True or False"),
        ({"clip_norm": "1.0"}, TypeError, "clip_norm must be a real number, got '1.0'"),
        ({"clip_norm": True}, TypeError, "clip_norm must be a real number, got True"),
        ({"clip_norm": np.nan}, ValueError, "clip_norm must be a finite number > 0, got nan"),
        (
            {"loss": mg.CrossEntropy},
            TypeError,
            r"loss must be a Loss instance, got the class "
            r"CrossEntropy; pass an instance, CrossEntropy\(...\)",
        ),
        (
            {"optimizer": mg.SGD},
            TypeError,
            "optimizer must be an Optimizer instance, got the class SGD",
        ),
        ({"model": "model"}, TypeError, "model must be a Layer instance, got str"),
        ({"metrics": 3}, TypeError, "metrics must be a list of metric names"),
        ({"metrics": [None]}, TypeError, r"metrics\[0\] must be a metric name or a function"),
        ({"metrics": ["auc"]}, ValueError, "unknown metric 'auc'"),
        (
            {"callbacks": print},
            TypeError,
            "callbacks must be a list of Callback instances, got "
            "the function 'print'; wrap it in a Callback subclass",
        ),
        (
            {"callbacks": [mg.EarlyStopping]},
            TypeError,
            r"callbacks\[0\] must be a Callback "
            r"instance, got the class EarlyStopping; pass an instance",
        ),
        ({"callbacks": "EarlyStopping"}, TypeError, "callbacks must be a list"),
        ({"resume_from": 3}, TypeError, "resume_from must be a checkpoint path or a Checkpoint"),
        ({"validation_data": "xy"}, ValueError, "validation_data must be a pair"),
        (
            {"x": np.zeros((120, 2), complex)},
            TypeError,
            "x must hold real numbers, got dtype complex128",
        ),
    ],
)
def test_wrong_arguments_are_named_before_the_first_step(changes, error, message):
    with pytest.raises(error, match=message):
        run_fit(**changes)


def test_lenient_forms_of_metrics_and_callbacks_are_accepted():
    assert set(run_fit(metrics="accuracy")) == {"loss", "accuracy", "lr"}
    assert set(run_fit(metrics=None, callbacks=None)) == {"loss", "accuracy", "lr"}
    assert run_fit(callbacks=mg.EarlyStopping(monitor="loss")).epochs == [1]
    assert run_fit(epochs=np.int64(2), batch_size=np.int32(50), shuffle=np.True_).epochs == [1, 2]


def test_the_targets_are_checked_in_pieces_not_all_at_once(monkeypatch):
    """The pre-flight loss check never builds a stand-in of every sample's output."""
    import minigrad.training as training

    seen = []

    class Spy(mg.CrossEntropy):
        def forward(self, pred, target):
            seen.append(len(pred))
            return super().forward(pred, target)

    monkeypatch.setattr(training, "CHUNK_VALUES", 90)  # 30 rows of 3 classes
    x, y = blobs()
    y = y.copy()
    y[100] = 7
    model = mlp()
    with pytest.raises(
        ValueError,
        match=r"in samples 90 to 119; indices below count from 90\)"
        r".*got 7 at index 10",
    ):
        mg.fit(model, Spy(), mg.SGD(model.parameters()), x, y, epochs=1)
    assert seen == [30, 30, 30, 30]


def test_a_large_data_set_is_checked_with_little_memory():
    import tracemalloc

    n, classes = 200_000, 200
    x = np.zeros((n, 2), np.float32)
    y = np.arange(n) % classes
    model = mg.Dense(2, classes, rng=0)
    tracemalloc.start()
    try:
        mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20  # one stand-in of every output would take 160 MB


# -- progress without tqdm ------------------------------------------------------------------------


def test_progress_without_tqdm_warns_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    with pytest.warns(UserWarning, match=r"pip install 'minigrad-nn\[progress\]'"):
        run_fit(progress=True)


def test_in_jupyter_without_ipywidgets_the_bar_is_text_and_nothing_warns(monkeypatch, capfd):
    pytest.importorskip("tqdm")
    import types

    shell = type("ZMQInteractiveShell", (), {})()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    for name in ("tqdm.autonotebook", "tqdm.notebook", "tqdm.auto"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    run_fit(progress=True)  # warnings are errors in this suite
    assert "epoch 1/1" in capfd.readouterr().err


# -- campaign findings ------------------------------------------------------------------------


def test_ctrl_c_during_on_train_end_does_not_split_early_stoppings_restore():
    """The restore runs whole: the Ctrl-C waits for the end of on_train_end."""
    x, y = blobs()
    model = mlp()
    stopper = mg.EarlyStopping(monitor="loss", patience=100)

    class InterruptFirst(Callback):
        def on_train_end(self, state):
            os.kill(os.getpid(), signal.SIGINT)  # arrives before EarlyStopping restores

    best = []

    class Keep(Callback):
        def on_epoch_end(self, state, logs):
            if stopper.best_epoch == state.epoch:
                best[:] = [weights(state.model)]

    with pytest.raises(KeyboardInterrupt):
        mg.fit(
            model,
            mg.CrossEntropy(),
            mg.SGD(model.parameters(), lr=0.5),
            x,
            y,
            epochs=4,
            callbacks=[stopper, Keep(), InterruptFirst()],
            progress=False,
        )
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, best[0][key])


@pytest.mark.parametrize(
    ("x_scale", "dtype", "name"), [(1e5, np.float16, "x"), (1e300, np.float32, "x")]
)
def test_data_beyond_the_models_dtype_is_refused_naming_it(x_scale, dtype, name):
    x, y = blobs()
    model = mlp(dtype=dtype)
    with pytest.raises(
        ValueError,
        match=rf"fit: {name} holds values up to .* beyond the "
        rf"largest {np.dtype(dtype)}",
    ):
        mg.fit(
            model,
            mg.CrossEntropy(),
            mg.SGD(model.parameters()),
            x.astype(np.float64) * x_scale,
            y,
            epochs=1,
            progress=False,
        )
    targets = np.full((120, 3), 1e5)
    half = mlp(dtype=np.float16)
    with pytest.raises(ValueError, match="fit: y holds values up to 1e"):
        mg.fit(half, mg.MSE(), mg.SGD(half.parameters()), x, targets, epochs=1, progress=False)


def test_a_divergence_before_any_step_does_not_blame_the_learning_rate():
    x, _ = blobs()
    model = mlp()
    big = x / np.abs(x).max() * np.float32(3e38)
    with pytest.raises(
        mg.DivergenceError,
        match="no step had been taken yet, so the learning rate is not the cause",
    ):
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters(), lr=1e-12),
            big,
            np.zeros((120, 3)),
            epochs=1,
            progress=False,
        )


def test_metric_names_must_be_unique_and_not_the_historys_own():
    first, second = (lambda p, t: 1.0), (lambda p, t: 2.0)

    def loss(p, t):
        return 0.0

    with pytest.raises(ValueError, match=r"metrics\[1\] is named '<lambda>': another metric"):
        run_fit(metrics=[first, second])
    with pytest.raises(ValueError, match=r"metrics\[0\] is named 'loss'"):
        run_fit(metrics=[loss])


def test_a_metric_that_cannot_score_the_targets_fails_before_training_naming_it():
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    model = mg.Dense(1, 1, rng=0)
    with pytest.raises(ValueError, match="the metric 'accuracy' cannot score these targets"):
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters()),
            x,
            2 * x + 0.5,
            epochs=1,
            metrics=["accuracy"],
            progress=False,
        )

    def nothing(pred, target):
        return None

    with pytest.raises(TypeError, match="metric 'nothing' must return a number, got NoneType"):
        run_fit(metrics=[nothing])


def test_a_resumed_run_must_log_what_the_checkpoint_holds(tmp_path):
    x, y = blobs()
    model = mlp()
    path = tmp_path / "run.safetensors"
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters()),
        x,
        y,
        epochs=2,
        metrics=[],
        callbacks=[mg.ModelCheckpoint(path)],
        progress=False,
    )
    fresh = mlp()
    with pytest.raises(
        ValueError,
        match=r"history holds \['loss', 'lr'\], but this run logs "
        r"\['accuracy', 'loss', 'lr'\]",
    ):
        mg.fit(
            fresh,
            mg.CrossEntropy(),
            mg.SGD(fresh.parameters()),
            x,
            y,
            epochs=4,
            resume_from=path,
            progress=False,
        )
    checkpoint = mg.load_checkpoint(path)
    checkpoint.epoch = -3
    with pytest.raises(ValueError, match="checkpoint's epoch must be >= 0"):
        mg.fit(
            fresh,
            mg.CrossEntropy(),
            mg.SGD(fresh.parameters()),
            x,
            y,
            epochs=4,
            metrics=[],
            resume_from=checkpoint,
            progress=False,
        )
    checkpoint.epoch = 2
    checkpoint.history = {"loss": [0.5], "lr": [0.01, 0.01]}
    with pytest.raises(
        ValueError,
        match=r"history\['loss'\] must be a list of one number per "
        "epoch, 2 in all",
    ):
        mg.fit(
            fresh,
            mg.CrossEntropy(),
            mg.SGD(fresh.parameters()),
            x,
            y,
            epochs=4,
            metrics=[],
            resume_from=checkpoint,
            progress=False,
        )


def test_validation_data_that_does_not_fit_the_model_is_named():
    x, y = blobs()
    with pytest.raises(
        ValueError,
        match=r"fit: validation_data x of shape \(120, 1\) does not "
        "fit the model",
    ):
        run_fit(validation_data=(x[:, :1], y))


def test_a_callback_that_leaves_the_model_in_eval_mode_does_not_train_the_rest_in_it():
    seen = []

    class Evaluate(Callback):
        def on_epoch_end(self, state, logs):
            state.model.eval()

        def on_batch_begin(self, state):
            seen.append(state.model.training)

    x, y = blobs()
    model = mlp()
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters()),
        x,
        y,
        epochs=2,
        callbacks=[Evaluate()],
        progress=False,
    )
    assert all(seen) and model.training


def test_stop_training_must_be_a_bool():
    class Stop(Callback):
        def on_epoch_end(self, state, logs):
            state.stop_training = "no"

    with pytest.raises(TypeError, match="stop_training must be True or False"):
        run_fit(callbacks=[Stop()])


def test_without_tqdm_the_warning_comes_once_per_fit(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_fit(progress=True, epochs=3)
    assert len([w for w in caught if "tqdm" in str(w.message)]) == 1


def test_messages_echoing_user_strings_stay_short():
    with pytest.raises(ValueError) as caught:
        run_fit(metrics=["x" * 1_000_000])
    assert len(str(caught.value)) < 300
    with pytest.raises(ValueError) as caught:
        mg.EarlyStopping(mode="y" * 1_000_000)
    assert len(str(caught.value)) < 300


def test_a_checkpoint_with_non_finite_values_is_refused_before_the_model_is_touched(tmp_path):
    x, y = blobs()
    model = mlp()
    path = tmp_path / "run.safetensors"
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.Adam(model.parameters()),
        x,
        y,
        epochs=1,
        callbacks=[mg.ModelCheckpoint(path)],
        progress=False,
    )
    checkpoint = mg.load_checkpoint(path)
    checkpoint.optimizer.state[checkpoint.optimizer.params[0]]["v"][0, 0] = np.nan
    fresh = mlp(seed=3)
    before = weights(fresh)
    with pytest.raises(ValueError, match=r"the optimizer's 'v' buffer of parameter 0 holds NaN"):
        mg.fit(
            fresh,
            mg.CrossEntropy(),
            mg.Adam(fresh.parameters()),
            x,
            y,
            epochs=3,
            resume_from=checkpoint,
            progress=False,
        )
    for key, value in weights(fresh).items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("label_dtype", [np.int64, np.uint8, np.float32])
def test_fits_batch_accuracy_equals_the_checked_accuracy(one_hot, label_dtype):
    """fit scores training batches after CrossEntropy without re-checking them; the epoch
    accuracy must be exactly what the checked metric gives on the same batches."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((103, 5)).astype(np.float32)
    y = rng.integers(0, 4, 103).astype(label_dtype)
    if one_hot:
        y = np.eye(4, dtype=np.float32)[y.astype(np.int64)]

    def checked(pred, target):
        return mg.metrics.accuracy(pred, target)

    histories = []
    for metric in ("accuracy", checked):
        model = mg.Sequential(mg.Dense(5, 8, rng=0), mg.ReLU(), mg.Dense(8, 4, rng=1))
        history = mg.fit(
            model,
            mg.CrossEntropy(),
            mg.SGD(model.parameters(), lr=0.1),
            x,
            y,
            epochs=3,
            batch_size=16,
            metrics=[metric],
            seed=0,
            progress=False,
        )
        histories.append(history)
    fast, slow = histories
    assert fast["accuracy"] == slow["checked"]
    assert 0 < min(fast["accuracy"]) and max(fast["accuracy"]) <= 1


def test_fits_batch_accuracy_skips_the_checks_only_after_cross_entropy(monkeypatch):
    from minigrad import training

    functions = training._metric_functions(["accuracy"], mg.CrossEntropy())
    fast = training._batch_metrics(functions, mg.CrossEntropy())
    assert fast["accuracy"] is training._accuracy_of_accepted_batch
    for loss in (mg.MSE(), mg.BinaryCrossEntropy()):
        functions = training._metric_functions(["accuracy"], loss)
        assert training._batch_metrics(functions, loss) == functions
    # a single output column is a binary prediction: thresholded, not argmax
    pred, target = np.array([[0.7], [0.2]], np.float32), np.array([1, 0])
    assert training._accuracy_of_accepted_batch(pred, target) == 1.0


# -- gradient accumulation ----------------------------------------------------------------------


def accumulated_and_whole(make, n, batch_size, k, epochs=3, **settings):
    """The same float64 model trained with batches of ``batch_size`` accumulated k at a
    time, and with batches of k * batch_size; both models, Histories and optimizers."""
    x, y = blobs(n=n, seed=4)
    runs = []
    for size, every in ((batch_size, k), (batch_size * k, 1)):
        model = mlp(dtype=np.float64, activation=mg.Tanh)
        optimizer = make(model.parameters(), lr=0.05)
        history = mg.fit(
            model,
            mg.CrossEntropy(),
            optimizer,
            x,
            y,
            epochs=epochs,
            batch_size=size,
            accumulate=every,
            seed=9,
            progress=False,
            **settings,
        )
        runs.append((model, history, optimizer))
    return runs


@pytest.mark.parametrize("make", [mg.SGD, mg.Momentum, mg.Adam])
@pytest.mark.parametrize("n", [48, 50, 46])  # 4 full groups; then one short batch; then 4+4+2
def test_k_accumulated_batches_take_the_step_of_one_batch_of_their_samples(make, n):
    (ours, ours_history, ours_opt), (whole, whole_history, whole_opt) = accumulated_and_whole(
        make, n, batch_size=4, k=3
    )
    for key, value in weights(whole).items():
        np.testing.assert_allclose(weights(ours)[key], value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_history["loss"], whole_history["loss"], rtol=1e-12)
    assert ours_history["accuracy"] == whole_history["accuracy"]
    if make is mg.Adam:  # one step per group, the short last group included
        steps = 3 * -(-n // 12)
        assert [s["step"] for s in ours_opt.state.values()] == [steps] * 4
        assert [s["step"] for s in whole_opt.state.values()] == [steps] * 4


def test_accumulation_clips_the_mean_gradient_as_one_batch_would_be_clipped():
    norms, steps = [], []

    class Record(Callback):  # the gradient of each step, in both runs
        def on_batch_end(self, state, loss):
            if state.step != (steps[-1] if steps else 0):
                norms.append(global_grad_norm(state.optimizer.params))
            steps.append(state.step)

        def on_train_begin(self, state):
            steps.clear()

    (ours, *_), (whole, *_) = accumulated_and_whole(
        mg.SGD, 48, batch_size=4, k=3, clip_norm=0.05, callbacks=[Record()]
    )
    for key, value in weights(whole).items():
        np.testing.assert_allclose(weights(ours)[key], value, rtol=1e-12, atol=1e-12)
    assert len(norms) == 2 * 3 * 4  # both runs, 3 epochs, 4 steps
    assert max(norms) <= 0.05 * (1 + 1e-9) and min(norms) > 0.025  # clipped, not shrunk


def test_accumulation_runs_callbacks_per_batch_and_counts_optimizer_steps():
    seen = []

    class Record(Callback):
        def on_batch_begin(self, state):
            seen.append(("begin", state.epoch, state.batch, state.step))

        def on_batch_end(self, state, loss):
            seen.append(("end", state.epoch, state.batch, state.step))

    x, y = blobs(n=40)  # 10 batches of 4: steps after batches 3, 7 and 9 (the last two)
    model = mlp()
    schedule = mg.LearningRateScheduler(lambda t: 0.1 / (1 + t), per="step")
    history = mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters()),
        x,
        y,
        epochs=2,
        batch_size=4,
        accumulate=4,
        callbacks=[schedule, Record()],
        progress=False,
    )
    ends = [step for kind, epoch, _, step in seen if kind == "end" and epoch == 0]
    assert ends == [0, 0, 0, 1, 1, 1, 1, 2, 2, 3]
    assert [step for kind, epoch, _, step in seen if kind == "end" and epoch == 1][-1] == 6
    assert len(seen) == 2 * 2 * 10
    # the schedule counts steps: the last step of epoch 1 is step 2 (from 0), of epoch 2 step 5
    assert history["lr"] == [0.1 / 3, 0.1 / 6]


def test_a_run_with_accumulation_resumes_bit_for_bit(tmp_path):
    x, y = blobs(n=50)  # 13 batches of 4: the last step of each epoch takes one short batch

    def run(epochs, resume_from=None, callbacks=()):
        model = mlp()
        history = mg.fit(
            model,
            mg.CrossEntropy(),
            mg.Adam(model.parameters(), lr=0.01),
            x,
            y,
            epochs=epochs,
            batch_size=4,
            accumulate=3,
            seed=None if resume_from else 5,
            callbacks=list(callbacks),
            resume_from=resume_from,
            progress=False,
        )
        return model, history

    run(2, callbacks=[mg.ModelCheckpoint(tmp_path / "run-{epoch}.safetensors")])
    assert mg.load_checkpoint(tmp_path / "run-2.safetensors").step == 2 * 5
    resumed, resumed_history = run(4, resume_from=tmp_path / "run-2.safetensors")
    straight, straight_history = run(4)
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(weights(resumed)[key], value)
    assert dict(resumed_history) == dict(straight_history)


def test_accumulation_never_takes_a_non_finite_step():
    """overflowing_run's steps, each on the mean of two batches of one sample."""
    x = np.array([[1.0], [2.0]], dtype=np.float32)
    model = mg.Dense(1, 1, rng=0)
    recorder = Recorder()
    with pytest.raises(
        mg.DivergenceError,
        match=r"epoch 14, batch 2 \(step 13\).*would make parameter 'weight' non-finite",
    ):
        mg.fit(
            model,
            mg.MSE(),
            mg.SGD(model.parameters(), lr=100.0),
            x,
            3 * x,
            epochs=50,
            batch_size=1,
            shuffle=False,
            accumulate=2,
            metrics=(),
            callbacks=[recorder],
            progress=False,
        )
    last = recorder.after_steps[-1]  # after the second batch of step 13, the last one taken
    assert np.isfinite(last["weight"]).all() and abs(last["weight"][0, 0]) > 1e36
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, last[key])


def test_accumulation_in_float32_sums_in_float32_and_follows_the_whole_batch():
    x, y = blobs(n=64)
    models = []
    for size, k in ((8, 4), (32, 1)):
        model = mlp()
        mg.fit(
            model,
            mg.CrossEntropy(),
            mg.Momentum(model.parameters(), lr=0.05),
            x,
            y,
            epochs=2,
            batch_size=size,
            accumulate=k,
            seed=1,
            progress=False,
        )
        models.append(weights(model))
    for key, value in models[1].items():
        assert models[0][key].dtype == np.float32
        np.testing.assert_allclose(models[0][key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("accumulate", "error", "message"),
    [
        ("2", TypeError, "accumulate must be an integer, got '2'"),
        (True, TypeError, "accumulate must be an integer, got True"),
        (2.0, TypeError, "accumulate must be an integer, got 2.0"),
        (0, ValueError, "accumulate must be >= 1, got 0"),
        (-3, ValueError, "accumulate must be >= 1, got -3"),
    ],
)
def test_accumulate_must_be_a_positive_integer(accumulate, error, message):
    with pytest.raises(error, match=message):
        run_fit(accumulate=accumulate)
    assert run_fit(accumulate=np.int64(1)).epochs == [1]


# -- an activation the loss applies itself ------------------------------------------------------


def test_a_softmax_before_cross_entropy_warns_once_per_fit_naming_its_place():
    import warnings

    model = mg.Sequential(
        mg.Dense(2, 8, rng=0), mg.Sequential(mg.ReLU(), mg.Dense(8, 3, rng=1), mg.Softmax())
    )
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_fit(model=model, optimizer=mg.SGD(model.parameters()), epochs=3)
        assert len(caught) == 1
        (warning,) = caught
        assert warning.category is UserWarning
        assert warning.filename == __file__  # points at the fit call
        message = str(warning.message)
        assert "model[1][2] (Softmax)" in message
        assert "CrossEntropy takes logits" in message and "Remove the Softmax" in message


def test_a_sigmoid_before_binary_cross_entropy_on_logits_warns():
    x, y = make_xor()
    y = y.reshape(-1, 1).astype(np.float32)
    model = mg.Sequential(mg.Dense(2, 1, rng=0), mg.Sigmoid())
    with pytest.warns(UserWarning, match=r"model\[1\] \(Sigmoid\).*from_logits=True"):
        mg.fit(
            model,
            mg.BinaryCrossEntropy(from_logits=True),
            mg.SGD(model.parameters()),
            x,
            y,
            epochs=1,
            progress=False,
        )
    from minigrad import training

    with pytest.warns(UserWarning, match="the model, a Softmax, turns"):  # the layer alone
        training._warn_if_activated_twice(mg.Softmax(), mg.CrossEntropy())


def test_models_that_end_in_logits_or_probabilities_for_the_right_loss_do_not_warn():
    # pytest turns warnings into errors here: each fit below must not warn
    x, y = blobs()
    for last in (mg.LogSoftmax(), mg.Sequential(mg.Dense(3, 3, rng=5))):
        model = mg.Sequential(*mlp().layers, last)
        run_fit(model=model, optimizer=mg.SGD(model.parameters()))
    binary = (y == 0).astype(np.float32)[:, None]
    probabilities = mg.Sequential(mg.Dense(2, 1, rng=0), mg.Sigmoid())
    mg.fit(
        probabilities,
        mg.BinaryCrossEntropy(),
        mg.SGD(probabilities.parameters()),
        x,
        binary,
        epochs=1,
        progress=False,
    )
    softmax_regression = mg.Sequential(mg.Dense(2, 3, rng=0), mg.Softmax())
    mg.fit(
        softmax_regression,
        mg.MSE(),
        mg.SGD(softmax_regression.parameters()),
        x,
        np.eye(3)[y],
        epochs=1,
        progress=False,
    )


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_fit_and_evaluate_refuse_a_loss_that_does_not_average(reduction):
    model = mg.Sequential(mg.Dense(2, 3, rng=0))
    x = np.zeros((6, 2), np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = mg.CrossEntropy(reduction=reduction)
    message = (
        r"the loss must average over the batch \(reduction='mean'\), got CrossEntropy with "
        rf"reduction='{reduction}'"
    )
    with pytest.raises(ValueError, match=message):
        mg.fit(model, loss, mg.SGD(model.parameters()), x, y, epochs=1, progress=False)
    with pytest.raises(ValueError, match=message):
        mg.evaluate(model, loss, x, y)


def test_kl_divergence_s_batchmean_is_a_mean_fit_takes():
    model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.LogSoftmax())
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    y = np.full((8, 3), 1 / 3, np.float32)
    history = mg.fit(
        model, mg.KLDivLoss(reduction="batchmean"), mg.SGD(model.parameters(), lr=0.1),
        x, y, epochs=2, progress=False,
    )  # fmt: skip
    assert list(history) == ["loss", "lr"]


@pytest.mark.parametrize("loss", [mg.NLLLoss(), mg.MultiMarginLoss()])
def test_the_other_classification_losses_report_accuracy_by_default(loss):
    model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.LogSoftmax())
    x = np.random.default_rng(0).normal(size=(9, 2)).astype(np.float32)
    y = np.arange(9) % 3
    history = mg.fit(model, loss, mg.SGD(model.parameters()), x, y, epochs=1, progress=False)
    assert "accuracy" in history
    assert "accuracy" in mg.evaluate(model, loss, x, y)
