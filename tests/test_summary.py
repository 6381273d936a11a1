"""summary(model, input_shape): the table, shapes from an eval-mode pass that changes nothing
else, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import (
    GELU,
    Buffer,
    Concat,
    Dense,
    Identity,
    Layer,
    Normalization,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    ShapeError,
    summary,
)


class Flatten(Layer):
    """A stand-in for a flattening layer: (batch, ...) -> (batch, features)."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_output):
        return grad_output.reshape(self.shape)


class ChannelScale(Layer):
    """A stand-in for a convolution: y[:, c] = w_c x[:, c]."""

    def __init__(self, channels):
        super().__init__()
        self.weight = Parameter(np.ones(channels, np.float32))

    def forward(self, x):
        return x * self.weight.value[None, :, None, None]


class RunningMean(Layer):
    """A stand-in for batch normalization: in training mode, forward updates a buffer."""

    def __init__(self, channels):
        super().__init__()
        self.mean = Buffer(np.zeros(channels, np.float32))
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        if self.training:
            self.mean.value += x.mean(axis=(0, 2, 3))
        return x


def test_the_table_of_nested_containers():
    model = Sequential(
        Normalization(3),
        Dense(3, 4, rng=0),
        Concat(Residual(Dense(4, 4, rng=1), shortcut=Dense(4, 4, bias=False)), Identity()),
        ReLU(),
        Dense(8, 2, rng=2),
    )
    assert summary(model, (3,)) == "\n".join(
        [
            "Layer (class)                        Output shape    Parameters",
            "===============================================================",
            "input                                (batch, 3)",
            "0 (Normalization)                    (batch, 3)               0",
            "1 (Dense)                            (batch, 4)              16",
            "2 (Concat)                           (batch, 8)              36",
            "  2.branches.0 (Residual)            (batch, 4)              36",
            "    2.branches.0.block (Dense)       (batch, 4)              20",
            "    2.branches.0.shortcut (Dense)    (batch, 4)              16",
            "  2.branches.1 (Identity)            (batch, 4)               0",
            "3 (ReLU)                             (batch, 8)               0",
            "4 (Dense)                            (batch, 2)              18",
            "===============================================================",
            "Trainable parameters: 70",
            "Buffer entries: 6",
        ]
    )


def test_image_shaped_inputs_and_large_counts():
    model = Sequential(
        ChannelScale(1),
        Residual(Sequential(ChannelScale(1), GELU())),
        Flatten(),
        Dense(784, 1000, rng=0),
    )
    lines = summary(model, (1, 28, 28)).splitlines()
    assert lines[2].split() == ["input", "(batch,", "1,", "28,", "28)"]
    assert lines[3].split()[:3] == ["0", "(ChannelScale)", "(batch,"]
    assert "(batch, 1, 28, 28)" in lines[4] and lines[4].startswith("1 (Residual)")
    assert lines[-5].startswith("2 (Flatten)") and "(batch, 784)" in lines[-5]
    assert lines[-4].split() == ["3", "(Dense)", "(batch,", "1000)", "785,000"]
    assert lines[-2] == "Trainable parameters: 785,002"


def test_a_single_layer_and_a_layer_that_did_not_run():
    assert summary(Dense(3, 2, rng=0), [3]).splitlines()[3].split() == [
        "Dense",
        "(batch,",
        "2)",
        "8",
    ]

    class Holder(Layer):  # holds a layer its forward does not use
        def __init__(self):
            super().__init__()
            self.unused = Dense(2, 2)

        def forward(self, x):
            return x

    row = summary(Holder(), (2,)).splitlines()[3]
    assert row.split() == ["unused", "(Dense)", "-", "6"]


def test_nothing_is_printed_and_a_string_is_returned(capsys):
    text = summary(Sequential(Dense(2, 2)), (2,))
    assert isinstance(text, str) and capsys.readouterr().out == ""


def test_modes_are_restored_and_no_statistics_or_parameters_change():
    norm = RunningMean(2)
    inner = Sequential(ChannelScale(2), norm)
    model = Sequential(inner, Flatten(), Dense(8, 2, rng=0))
    model[2].eval()  # a mixed state, restored layer by layer
    before = model.state_dict()
    modes = [layer.training for _, layer in model.named_layers()]
    summary(model, (2, 2, 2))
    assert norm.modes_seen == [False]  # the pass ran in evaluation mode
    assert [layer.training for _, layer in model.named_layers()] == modes
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    assert all("forward" not in vars(layer) for _, layer in model.named_layers())


def test_modes_and_forward_methods_are_restored_after_a_failure_too():
    model = Sequential(Dense(3, 3), Residual(Dense(3, 3)))
    own = lambda x: x  # noqa: E731 (a forward set on the instance by its user)
    model[1].block.forward = own
    with pytest.raises(ShapeError):
        summary(model, (4,))
    assert model.training and all(layer.training for _, layer in model.named_layers())
    assert vars(model[1].block)["forward"] is own
    assert "forward" not in vars(model) and "forward" not in vars(model[0])


def test_the_pass_runs_in_the_models_dtype():
    seen = []

    class Probe(Layer):
        def forward(self, x):
            seen.append(x.dtype)
            return x

    summary(Sequential(Probe(), Dense(2, 2, dtype=np.float64)), (2,))
    summary(Sequential(Probe()), (2,))
    assert seen == [np.float64, np.float32]


def test_backward_after_summary_needs_a_new_forward():
    model = Sequential(Dense(2, 2), Dense(2, 1))
    model(np.ones((3, 2)))
    summary(model, (2,))
    with pytest.raises(RuntimeError, match="last forward pass ran in evaluation mode"):
        model.backward(np.ones((3, 1)))


def test_a_shape_the_model_cannot_take_names_the_innermost_layer():
    model = Sequential(Dense(4, 4), Residual(Sequential(Dense(4, 4), Flatten(), Dense(3, 4))))
    with pytest.raises(
        ShapeError,
        match=r"^summary: the model cannot take inputs of shape \(batch, 4\): layer "
        r"'1\.block\.2' \(Dense\) failed: Sequential layer 1 \(Residual\) forward: Residual "
        r"block \(Sequential\) forward: Sequential layer 2 \(Dense\) forward",
    ):
        summary(model, (4,))
    with pytest.raises(
        ShapeError, match=r"shape \(batch, 3, 8, 8\): layer '0' \(Dense\) failed: .*got 4-D"
    ):
        summary(Sequential(Dense(192, 10)), (3, 8, 8))
    with pytest.raises(ShapeError, match=r"inputs of shape \(batch, 5\): Dense failed: Dense\("):
        summary(Dense(4, 2), (5,))


def test_other_errors_keep_their_class():
    class Picky(Layer):
        def forward(self, x):
            raise TypeError("wants strings")

    with pytest.raises(TypeError, match=r"layer '1' \(Picky\) failed: .*wants strings"):
        summary(Sequential(Dense(2, 2), Picky()), (2,))

    class Oops(Exception):
        pass

    class Raising(Layer):
        def forward(self, x):
            raise Oops("no")

    with pytest.raises(Oops) as caught:
        summary(Sequential(Raising()), (2,))
    assert any("summary: the model cannot take" in note for note in caught.value.__notes__)


@pytest.mark.parametrize(
    ("model", "shape", "error", "message"),
    [
        (Dense, (2,), TypeError, r"summary takes a minigrad Layer, got type; pass an instance"),
        (np.tanh, (2,), TypeError, "summary takes a minigrad Layer, got ufunc"),
        (Dense(2, 2), 2, TypeError, r"the shape of one sample, a tuple: pass \(2,\), not 2"),
        (Dense(2, 2), "2", TypeError, r"must be a tuple of integers .*got '2' \(str\)"),
        (Dense(2, 2), (2.0,), TypeError, r"must be a tuple of integers, got \(2\.0,\)"),
        (Dense(2, 2), (True,), TypeError, r"must be a tuple of integers, got \(True,\)"),
        (Dense(2, 2), (0,), ValueError, r"must hold sizes >= 1, got \(0,\)"),
        (Dense(2, 2), (2, -1), ValueError, r"must hold sizes >= 1, got \(2, -1\)"),
        (Dense(2, 2), (10**6, 10**6, 10**6), MemoryError, r"summary: a sample of shape"),
    ],
)
def test_arguments_are_checked(model, shape, error, message):
    with pytest.raises(error, match=message):
        summary(model, shape)


def test_numpy_integers_are_taken_and_a_repeated_layer_is_refused():
    assert "(batch, 2)" in summary(Dense(2, 2), (np.int64(2),))
    model = Sequential(Dense(2, 2), Dense(2, 2))
    model.layers.append(model[0])  # by hand: append would refuse it
    with pytest.raises(ValueError, match="the same Dense object is at '0' and at '2'"):
        summary(model, (2,))


def test_summary_is_exported():
    assert mg.summary is summary and "summary" in mg.__all__
