"""fit, evaluate and predict: the loop against a hand-written one, determinism, History
contents, bad input before the first step, progress output, and the accuracy targets."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.callbacks import Callback, DivergenceGuard
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
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=1, metrics=["f1"])


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
        ({"epochs": 1.5}, "epochs must be an integer"),
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


def test_the_guard_is_added_once():
    seen = []

    class Spy(DivergenceGuard):
        def on_train_begin(self, state):
            seen.append(self)

    x, y = blobs()
    model = mlp()
    mg.fit(
        model,
        mg.CrossEntropy(),
        mg.SGD(model.parameters()),
        x,
        y,
        epochs=1,
        callbacks=[Spy()],
        progress=False,
    )
    assert len(seen) == 1


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
