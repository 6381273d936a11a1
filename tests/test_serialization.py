"""Model files, checkpoints, exact resume, the architecture registry, PyTorch and ONNX interop.

Malformed and hostile files are in test_untrusted_files.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import _files
from minigrad.data import make_spirals
from minigrad.errors import ModelFileError
from minigrad.serialization.safetensors_file import read_safetensors, require_safetensors

pytest.importorskip("safetensors")


def every_layer_model(dtype=np.float32) -> mg.Sequential:
    return mg.Sequential(
        mg.Dense(3, 6, rng=0, dtype=dtype),
        mg.Tanh(),
        mg.Dense(6, 5, bias=False, rng=1, dtype=dtype),
        mg.LeakyReLU(0.3),
        mg.Sequential(mg.Dense(5, 4, rng=2, dtype=dtype), mg.ReLU()),
        mg.Dense(4, 4, rng=3, dtype=dtype),
        mg.Sigmoid(),
        mg.Dense(4, 3, rng=4, dtype=dtype),
        mg.Softmax(axis=1),
    )


def spirals_model(seed=0) -> tuple[mg.Sequential, mg.Optimizer]:
    model = mg.Sequential(mg.Dense(2, 16, rng=seed), mg.Tanh(), mg.Dense(16, 3, rng=seed + 1))
    return model, mg.Adam(model.parameters(), lr=0.01)


def same_parameters(a: mg.Layer, b: mg.Layer) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(
        sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]) for k in sa
    )


# -- save and load ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_saved_model_loads_back_with_the_same_layers_values_and_outputs(tmp_path, dtype):
    model = every_layer_model(dtype)
    path = tmp_path / "model.safetensors"
    mg.save(model, path)
    loaded = mg.load(path)
    assert repr(loaded) == repr(model)
    assert same_parameters(loaded, model)
    x = np.random.default_rng(0).standard_normal((7, 3)).astype(dtype)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert loaded(x).dtype == dtype


def test_the_file_is_safetensors_with_the_state_dict_keys_and_the_architecture(tmp_path):
    model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.ReLU(), mg.Dense(3, 1, rng=1))
    mg.save(model, tmp_path / "m.safetensors")
    tensors, metadata = read_safetensors(tmp_path / "m.safetensors")
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert metadata["minigrad.format"] == "model"
    assert json.loads(metadata["minigrad.architecture"]) == {
        "class": "Sequential",
        "layers": [
            {
                "class": "Dense",
                "config": {"in_features": 2, "out_features": 3, "bias": True, "dtype": "float32"},
            },
            {"class": "ReLU", "config": {}},
            {
                "class": "Dense",
                "config": {"in_features": 3, "out_features": 1, "bias": True, "dtype": "float32"},
            },
        ],
    }
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    plain = safetensors_numpy.load_file(tmp_path / "m.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(plain[key], value)


def test_a_loaded_model_trains_on_independently_of_the_original(tmp_path):
    model, _ = spirals_model()
    mg.save(model, tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")
    before = model.state_dict()
    x, y = make_spirals(60, seed=0)
    optimizer = mg.SGD(loaded.parameters(), lr=0.1)
    mg.fit(loaded, mg.CrossEntropy(), optimizer, x, y, epochs=2, progress=False)
    assert not same_parameters(loaded, model)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_a_model_without_parameters_round_trips(tmp_path):
    mg.save(mg.Sequential(mg.Tanh()), tmp_path / "t.safetensors")
    assert repr(mg.load(tmp_path / "t.safetensors")) == repr(mg.Sequential(mg.Tanh()))


def test_load_refuses_a_checkpoint_and_load_checkpoint_refuses_a_model_file(tmp_path):
    model, optimizer = spirals_model()
    mg.save(model, tmp_path / "m.safetensors")
    mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    with pytest.raises(ModelFileError, match="minigrad checkpoint file"):
        mg.load(tmp_path / "c.safetensors")
    with pytest.raises(ModelFileError, match="minigrad model file"):
        mg.load_checkpoint(tmp_path / "m.safetensors")


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mg.load(tmp_path / "nothing.safetensors")


# -- atomic writes ------------------------------------------------------------------------------


def test_a_save_that_fails_midway_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first, _ = spirals_model(seed=0)
    mg.save(first, path)
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    second, _ = spirals_model(seed=5)
    with pytest.raises(OSError, match="disk full"):
        mg.save(second, path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert same_parameters(mg.load(path), first)


def test_an_interrupt_during_the_write_also_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    model, optimizer = spirals_model()
    mg.save_checkpoint(path, model, optimizer, epoch=1)
    original = path.read_bytes()
    real_open = open

    class Interrupting:  # the temporary file, interrupted half-way through its write
        def __init__(self, file):
            self.file = file

        def __getattr__(self, name):
            return getattr(self.file, name)

        def write(self, content):
            self.file.write(content[: len(content) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(
        _files, "open", lambda *a, **k: Interrupting(real_open(*a, **k)), raising=False
    )
    with pytest.raises(KeyboardInterrupt):
        mg.save_checkpoint(path, model, optimizer, epoch=2)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


# -- the registry -------------------------------------------------------------------------------


class Scale(mg.Layer):
    """y = factor * x, with a configurable factor: a user layer with a constructor argument."""

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x):
        return self.factor * x

    def backward(self, grad_output):
        return self.factor * grad_output

    def get_config(self):
        return {"factor": self.factor}


def test_a_registered_user_layer_saves_and_loads_with_its_config(tmp_path):
    mg.register_layer(Scale)
    mg.register_layer(Scale)  # registering the same class again is harmless
    model = mg.Sequential(mg.Dense(2, 2, rng=0), Scale(0.5))
    mg.save(model, tmp_path / "s.safetensors")
    loaded = mg.load(tmp_path / "s.safetensors")
    assert isinstance(loaded[1], Scale) and loaded[1].factor == 0.5
    x = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


class NeedsWidth(mg.Layer):
    """A user layer whose constructor needs an argument, registered without a get_config."""

    def __init__(self, width):
        super().__init__()
        self.width = width

    def forward(self, x):
        return x

    def backward(self, grad_output):
        return grad_output


class ForgetsWidth(mg.Layer):
    """A user layer whose get_config leaves out the width that shapes its parameter."""

    def __init__(self, width=2):
        super().__init__()
        self.gain = mg.Parameter(np.ones(width, np.float32))

    def forward(self, x):
        self.x = x
        return x * self.gain.value

    def backward(self, grad_output):
        self.gain.grad[...] = (grad_output * self.x).sum(axis=0)
        return grad_output * self.gain.value


class NumpyConfig(Scale):
    """A get_config holding a NumPy float, which JSON cannot hold."""

    def get_config(self):
        return {"factor": np.float32(self.factor)}


@pytest.mark.parametrize(
    ("layer", "error", "match"),
    [
        (
            NeedsWidth(3),
            ValueError,
            r"cannot save layer 1 \(NeedsWidth\): loading the file would fail, since "
            r"NeedsWidth\.from_config\(\{\}\) does not rebuild it: .*missing 1 required "
            r"positional argument: 'width'; give NeedsWidth a get_config\(\) that returns",
        ),
        (
            ForgetsWidth(5),
            ValueError,
            r"cannot save layer 1 \(ForgetsWidth\): loading the file would fail, since the "
            r"ForgetsWidth that from_config\(\{\}\) builds refuses this one's state: "
            r".*shape \(5,\).*leaves out an argument that shapes the layer",
        ),
        (
            NumpyConfig(0.5),
            TypeError,
            r"cannot save layer 1 \(NumpyConfig\): get_config\(\) must return JSON values",
        ),
    ],
)
def test_a_layer_that_a_load_could_not_rebuild_is_refused_at_save(tmp_path, layer, error, match):
    mg.register_layer(type(layer))
    model = mg.Sequential(mg.Dense(2, 5, rng=0), layer)
    for save in (
        lambda path: mg.save(model, path),
        lambda path: mg.save_checkpoint(path, model, mg.SGD(model.parameters())),
    ):
        with pytest.raises(error, match=match):
            save(tmp_path / "m.safetensors")
        assert list(tmp_path.iterdir()) == []


class MySGD(mg.SGD):
    """A user optimizer that is not registered."""


class TwoStepSGD(mg.SGD):
    """A registered user optimizer whose constructor needs more than its hyperparameters."""

    def __init__(self, params, lr=0.01, weight_decay=0.0, *, warmup):
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.warmup = warmup


def test_an_optimizer_that_a_load_could_not_rebuild_is_refused_at_save(tmp_path):
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    path = tmp_path / "c.safetensors"
    with pytest.raises(
        ValueError,
        match=r"cannot save a checkpoint of a MySGD optimizer: its class is not registered, "
        r"so load_checkpoint could not rebuild it; decorate it with "
        r"@minigrad\.register_optimizer",
    ):
        mg.save_checkpoint(path, model, MySGD(model.parameters()))
    mg.register_optimizer(TwoStepSGD)
    with pytest.raises(
        ValueError,
        match=r"cannot save a checkpoint of a TwoStepSGD optimizer: loading it would fail, "
        r"since TwoStepSGD\(params, \*\*\{'lr': 0\.01, 'weight_decay': 0\.0\}\) does not "
        r"rebuild it: .*'warmup'",
    ):
        mg.save_checkpoint(path, model, TwoStepSGD(model.parameters(), warmup=3))
    assert list(tmp_path.iterdir()) == []


def test_model_checkpoint_with_an_unregistered_optimizer_writes_nothing(tmp_path):
    x, y = make_spirals(20, seed=0)
    model = mg.Sequential(mg.Dense(2, 2, rng=0))
    with pytest.raises(ValueError, match="MySGD optimizer: its class is not registered"):
        mg.fit(
            model,
            mg.CrossEntropy(),
            MySGD(model.parameters(), lr=0.1),
            x,
            y,
            epochs=2,
            progress=False,
            callbacks=[mg.ModelCheckpoint(tmp_path / "run.safetensors")],
        )
    assert list(tmp_path.iterdir()) == []


class FloatStateSGD(mg.SGD):
    """A registered user optimizer that keeps a float, not a count, in its state."""

    def _initial_state(self, param):
        return {"scale": 0.5}

    def _update(self, value, grad, state, work):
        value -= self.lr * state["scale"] * grad


def test_an_optimizer_state_that_is_not_an_array_or_a_count_is_refused_not_truncated(tmp_path):
    mg.register_optimizer(FloatStateSGD)
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    optimizer = FloatStateSGD(model.parameters(), lr=0.1)
    with pytest.raises(
        TypeError, match=r"the state 'scale' of parameter 0 is 0\.5 \(float\); checkpoints hold"
    ):
        mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_model_holding_nan_or_inf_is_refused_at_save_naming_the_tensor(tmp_path, value):
    model, optimizer = spirals_model()
    model[2].bias.value[1] = value
    path = tmp_path / "m.safetensors"
    with pytest.raises(
        ValueError, match=rf"cannot save: parameter '2\.bias' holds {value} at index \(1,\)"
    ):
        mg.save(model, path)
    with pytest.raises(ValueError, match=rf"tensor 'model\.2\.bias' holds {value} at index"):
        mg.save_checkpoint(path, model, optimizer)
    model[2].bias.value[1] = 0.0
    optimizer.state[model[0].weight]["v"][1, 0] = value
    with pytest.raises(
        ValueError, match=rf"tensor 'optimizer\.0\.v' holds {value} at index \(1, 0\)"
    ):
        mg.save_checkpoint(path, model, optimizer)
    assert list(tmp_path.iterdir()) == []


def test_an_unregistered_layer_cannot_be_saved_and_a_name_cannot_be_taken_twice(tmp_path):
    class Unregistered(mg.Layer):
        def forward(self, x):
            return x

    with pytest.raises(
        ValueError, match=r"cannot save layer 0 \(Unregistered\): its class is not registered"
    ):
        mg.save(mg.Sequential(Unregistered()), tmp_path / "u.safetensors")
    assert not (tmp_path / "u.safetensors").exists()

    class Dense(mg.Layer):  # shadows minigrad's name
        pass

    with pytest.raises(ValueError, match="already registered as 'Dense'"):
        mg.register_layer(Dense)
    with pytest.raises(TypeError, match="subclass of Layer"):
        mg.register_layer(int)


def test_a_layer_holding_sub_layers_outside_a_sequential_is_refused(tmp_path):
    @mg.register_layer
    class Block(mg.Layer):
        def __init__(self):
            super().__init__()
            self.inner = mg.Dense(2, 2, rng=0)

    with pytest.raises(ValueError, match="holds sub-layers"):
        mg.save(Block(), tmp_path / "b.safetensors")


def test_a_file_naming_a_layer_that_is_not_registered_here_says_so(tmp_path):
    @mg.register_layer
    class Doubler(mg.Layer):
        def forward(self, x):
            return 2 * x

    mg.save(mg.Sequential(Doubler()), tmp_path / "d.safetensors")
    from minigrad.serialization import architecture

    del architecture._LAYERS["Doubler"]  # as in a program that never defined it
    with pytest.raises(ModelFileError, match="'Doubler', which is not registered"):
        mg.load(tmp_path / "d.safetensors")


class Picky(mg.Layer):
    """A user layer whose from_config trusts its config: a hostile one makes it raise anything."""

    def __init__(self, units: int = 3) -> None:
        super().__init__()
        self.units = units

    def forward(self, x):
        return x

    def backward(self, grad_output):
        return grad_output

    def get_config(self):
        return {"units": self.units}

    @classmethod
    def from_config(cls, config):
        units = config["units"]  # KeyError
        return cls(units=100 // units.bit_length())  # AttributeError, ZeroDivisionError


def with_architecture(path: Path, change) -> None:
    """Rewrite the architecture JSON in the file at ``path`` with ``change(architecture)``."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors, metadata = read_safetensors(path)
    architecture = json.loads(metadata["minigrad.architecture"])
    change(architecture)
    metadata["minigrad.architecture"] = json.dumps(architecture)
    path.write_bytes(safetensors_numpy.save(tensors, metadata=metadata))


@pytest.mark.parametrize(
    ("config", "cause", "match"),
    [
        ({}, KeyError, r"from \{\}: KeyError: 'units'"),
        ({"units": "3"}, AttributeError, r"from \{'units': '3'\}: AttributeError: 'str'"),
        ({"units": 0}, ZeroDivisionError, r"from \{'units': 0\}: ZeroDivisionError"),
        ({"units": None}, AttributeError, r"from \{'units': None\}: AttributeError: 'NoneType'"),
    ],
)
def test_a_user_layer_whose_from_config_raises_anything_is_a_chained_model_file_error(
    tmp_path, config, cause, match
):
    mg.register_layer(Picky)
    path = tmp_path / "p.safetensors"
    mg.save(mg.Sequential(mg.Dense(2, 2, rng=0), Picky(5)), path)
    assert mg.load(path)[1].units == 33  # 100 // (5).bit_length()
    with_architecture(path, lambda a: a["layers"][1].update(config=config))
    with pytest.raises(
        ModelFileError, match=r"architecture\.layers\[1\]: cannot build Picky " + match
    ) as info:
        mg.load(path)
    assert type(info.value.__cause__) is cause


class TableSGD(mg.SGD):
    """A user optimizer that looks its learning rate up in a table: another value is a KeyError."""

    def __init__(self, params, lr=0.1, weight_decay=0.0):
        self.speed = {0.1: "slow", 0.5: "fast"}[lr]
        super().__init__(params, lr=lr, weight_decay=weight_decay)


def test_a_user_optimizer_that_raises_anything_on_a_hostile_checkpoint_is_a_model_file_error(
    tmp_path,
):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    mg.register_optimizer(TableSGD)
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, TableSGD(model.parameters(), lr=0.5))
    assert mg.load_checkpoint(path).optimizer.speed == "fast"
    tensors, metadata = read_safetensors(path)
    saved = json.loads(metadata["minigrad.optimizer"])
    saved["hyperparameters"]["lr"] = 0.25
    metadata["minigrad.optimizer"] = json.dumps(saved)
    path.write_bytes(safetensors_numpy.save(tensors, metadata=metadata))
    with pytest.raises(
        ModelFileError, match=r"minigrad\.optimizer: cannot build TableSGD: KeyError: 0\.25"
    ) as info:
        mg.load_checkpoint(path)
    assert type(info.value.__cause__) is KeyError


def test_what_a_load_would_refuse_for_its_size_is_refused_at_save(tmp_path, monkeypatch):
    from minigrad.serialization import safetensors_file

    path = tmp_path / "m.safetensors"
    nested = mg.Dense(2, 2, rng=0)
    for _ in range(33):
        nested = mg.Sequential(nested)
    with pytest.raises(
        ValueError,
        match=r"cannot save layer 0(\.0){32} \(Dense\): containers "
        r"nested more than 32 deep, which a load refuses",
    ):
        mg.save(nested, path)
    mg.save(nested[0], path)  # 32 deep: saved and loaded
    assert mg.load(path)[0][0][0][0].in_features == 2
    path.unlink()
    with pytest.raises(ValueError, match=r"tensor 'w' has 9 dimensions; model files hold "):
        safetensors_file.write_safetensors(path, {"w": np.zeros((1,) * 9)}, {})
    monkeypatch.setattr(safetensors_file, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(
        ValueError,
        match=r"the file's header .* would take \d+ bytes; files are read with "
        r"headers of at most 1000",
    ):
        mg.save(mg.Sequential(*[mg.Dense(2, 2, rng=0) for _ in range(10)]), path)
    assert list(tmp_path.iterdir()) == []


def test_int64_and_zero_dimensional_tensors_round_trip_with_their_shape(tmp_path):
    from minigrad.serialization import safetensors_file

    path = tmp_path / "t.safetensors"
    tensors = {
        "count": np.array(7, np.int64),
        "counts": np.arange(3, dtype=np.int64),
        "scale": np.array(0.5, np.float32),
        "strided": np.arange(6.0).reshape(2, 3)[:, ::2],
    }
    safetensors_file.write_safetensors(path, tensors, {})
    loaded, _ = read_safetensors(path)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape and loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)
    with pytest.raises(TypeError, match="has dtype int32; model files hold float16, float32, "):
        safetensors_file.write_safetensors(path, {"c": np.zeros(2, np.int32)}, {})


def test_messages_about_user_classes_and_layers_stay_short(tmp_path):
    def identity(self, x):
        return x

    huge = type("H" * 100_000, (mg.Layer,), {"forward": identity, "backward": identity})
    with pytest.raises(
        ValueError, match=r"cannot save layer 0 \(HHH+\.\.\.\): its class is not registered"
    ) as info:
        mg.save(mg.Sequential(huge()), tmp_path / "m.safetensors")
    assert len(str(info.value)) < 400
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    optimizer = type("O" * 100_000, (mg.SGD,), {})(model.parameters())
    with pytest.raises(
        ValueError, match=r"a checkpoint of a OOO+\.\.\. optimizer: its class is not registered"
    ) as info:
        mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    assert len(str(info.value)) < 400
    pytest.importorskip("onnx")

    class Wordy(mg.Layer):
        forward = backward = identity

        def extra_repr(self):
            return "w" * 100_000

    with pytest.raises(ValueError, match=r"layer 1 \(Wordy\(www+\.\.\.\) has no ONNX") as info:
        mg.export_onnx(mg.Sequential(mg.Dense(2, 2, rng=0), Wordy()), tmp_path / "m.onnx")
    assert len(str(info.value)) < 800  # the repr cut short; the list of exportable layers in full
    assert list(tmp_path.iterdir()) == []


# -- without the safetensors package ------------------------------------------------------------


def hide_safetensors(monkeypatch) -> None:
    """Make ``import safetensors`` (and its submodules) fail, as where it is not installed."""
    for name in [n for n in sys.modules if n == "safetensors" or n.startswith("safetensors.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)


def test_without_safetensors_a_valid_file_is_an_import_error_not_a_broken_file(
    tmp_path, monkeypatch
):
    model, optimizer = spirals_model()
    mg.save(model, tmp_path / "m.safetensors")
    mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    hide_safetensors(monkeypatch)
    install = r"needs? the safetensors package: pip install 'minigrad-nn\[files\]'"
    for load, name in [
        (mg.load, "m"),
        (mg.load_tensors, "m"),
        (mg.load_checkpoint, "c"),
        (mg.load, "missing"),  # the package is checked before the file
    ]:
        with pytest.raises(ImportError, match=install) as info:
            load(tmp_path / f"{name}.safetensors")
        assert not isinstance(info.value, ModelFileError)
    with pytest.raises(ImportError, match=install):
        require_safetensors()
    with pytest.raises(ImportError, match=install):
        mg.save(model, tmp_path / "new.safetensors")
    with pytest.raises(ImportError, match=install):
        mg.save_checkpoint(tmp_path / "new.safetensors", model, optimizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors", "m.safetensors"]
    monkeypatch.undo()
    require_safetensors()
    assert same_parameters(mg.load(tmp_path / "m.safetensors"), model)


# -- arguments ----------------------------------------------------------------------------------


def test_save_with_the_arguments_swapped_or_of_the_wrong_type_is_a_type_error(tmp_path):
    model = spirals_model()[0]
    path = tmp_path / "m.safetensors"
    for call, match in [
        (lambda: mg.save(str(path), model), r"save takes the model first and then the path"),
        (lambda: mg.save(path, model), r"save takes the model first and then the path"),
        (lambda: mg.save(None, path), r"save: model must be a minigrad Layer .*got None"),
        (lambda: mg.save(model.parameters(), path), r"model must be a minigrad Layer .*list"),
        (lambda: mg.save(model, model), r"path must be a file path .*Sequential"),
        (lambda: mg.export_onnx(path, model), r"export_onnx takes the model first"),
        (lambda: mg.export_onnx(model, 3), r"path must be a file path .*got 3 \(int\)"),
    ]:
        with pytest.raises(TypeError, match=match):
            call()
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_arguments_out_of_order_or_of_the_wrong_type_are_named(tmp_path):
    model, optimizer = spirals_model()
    path = tmp_path / "c.safetensors"
    order = r"save_checkpoint takes \(path, model, optimizer\) in that order"
    for args, error, match in [
        ((model, path, optimizer), TypeError, order + r".*got \(Sequential, PosixPath, Adam\)"),
        ((path, optimizer, model), TypeError, order),
        ((optimizer, model, path), TypeError, order),
        ((model, optimizer, str(path)), TypeError, order),
        ((path, model, "adam"), TypeError, r"optimizer must be a minigrad Optimizer, got 'adam'"),
        ((path, None, optimizer), TypeError, r"model must be a minigrad Layer"),
        ((None, model, optimizer), TypeError, r"path must be a file path"),
        (("", model, optimizer), ValueError, r"path is empty"),
    ]:
        with pytest.raises(error, match=match):
            mg.save_checkpoint(*args)
    for keywords, error, match in [
        ({"epoch": "3"}, TypeError, r"epoch must be an integer, got '3' \(str\)"),
        ({"epoch": True}, TypeError, r"epoch must be an integer, got True \(bool\)"),
        ({"epoch": 2.0}, TypeError, r"epoch must be an integer, got 2\.0 \(float\)"),
        ({"epoch": -1}, ValueError, r"epoch must be >= 0, got -1"),
        ({"step": float("nan")}, TypeError, r"step must be an integer"),
        ({"rng": 0}, TypeError, r"rng must be a numpy Generator .* got int"),
        ({"rng": np.random.RandomState(0)}, TypeError, r"rng must be a numpy Generator"),
        ({"history": "loss"}, TypeError, r"history must be a dict of lists .* got str"),
        ({"history": {"loss": 0.5}}, TypeError, r"history maps names to lists of numbers"),
        ({"history": {"loss": [0.5, "0.4"]}}, TypeError, r"history\['loss'\] must hold numbers"),
        ({"history": {"loss": [True]}}, TypeError, r"history\['loss'\] must hold numbers"),
        ({"history": {"loss": [10**400]}}, ValueError, r"holds a number beyond the float range"),
    ]:
        with pytest.raises(error, match=match):
            mg.save_checkpoint(path, model, optimizer, **keywords)
    assert list(tmp_path.iterdir()) == []
    # NumPy integers and floats are what a loop often holds: they are taken as numbers
    mg.save_checkpoint(
        path,
        model,
        optimizer,
        epoch=np.int64(3),
        step=np.int32(12),
        history={"loss": [np.float32(0.5), 1]},
    )
    checkpoint = mg.load_checkpoint(path)
    assert (checkpoint.epoch, checkpoint.step, checkpoint.history) == (3, 12, {"loss": [0.5, 1.0]})
    assert type(checkpoint.epoch) is int


def test_restore_names_arguments_of_the_wrong_type(tmp_path):
    model, optimizer = spirals_model()
    mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    checkpoint = mg.load_checkpoint(tmp_path / "c.safetensors")
    with pytest.raises(TypeError, match=r"restore\(model, optimizer\) takes a minigrad Layer"):
        checkpoint.restore(optimizer, model)


# -- PyTorch ------------------------------------------------------------------------------------


def test_pytorch_loads_a_minigrad_file_and_predicts_the_same(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = mg.Sequential(mg.Dense(4, 8, rng=0), mg.ReLU(), mg.Dense(8, 3, rng=1))
    mg.save(model, tmp_path / "m.safetensors")
    twin = torch.nn.Sequential(
        torch.nn.Linear(4, 8, dtype=torch.float32),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3, dtype=torch.float32),
    )
    twin.load_state_dict(safetensors_torch.load_file(tmp_path / "m.safetensors"))
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-6, atol=1e-6)


def test_a_pytorch_mlp_s_weights_load_into_minigrad(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    twin = torch.nn.Sequential(
        torch.nn.Linear(4, 8, dtype=torch.float32),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 2, dtype=torch.float32),
        torch.nn.Sigmoid(),
    )
    safetensors_torch.save_file(twin.state_dict(), tmp_path / "t.safetensors")
    model = mg.Sequential(mg.Dense(4, 8), mg.Tanh(), mg.Dense(8, 2), mg.Sigmoid())
    model.load_state_dict(mg.load_tensors(tmp_path / "t.safetensors"))
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ModelFileError, match="load_tensors"):
        mg.load(tmp_path / "t.safetensors")  # no architecture in a PyTorch file


# -- checkpoints and exact resume -----------------------------------------------------------------


OPTIMIZERS = {
    "sgd": lambda p: mg.SGD(p, lr=0.05, weight_decay=1e-3),
    "momentum": lambda p: mg.Momentum(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: mg.Adam(p, lr=0.01, weight_decay=1e-4),
    "adamw": lambda p: mg.AdamW(p, lr=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_checkpoint_round_trips_the_optimizer_state_exactly(tmp_path, name):
    model, _ = spirals_model()
    optimizer = OPTIMIZERS[name](model.parameters())
    x, y = make_spirals(90, seed=1)
    mg.fit(model, mg.CrossEntropy(), optimizer, x, y, epochs=2, progress=False)
    rng = np.random.default_rng(7)
    rng.random(3)
    mg.save_checkpoint(
        tmp_path / "c.safetensors", model, optimizer, epoch=2, step=6, rng=rng,
        history={"loss": [1.5, 0.75]},
    )  # fmt: skip
    checkpoint = mg.load_checkpoint(tmp_path / "c.safetensors")
    assert (checkpoint.epoch, checkpoint.step) == (2, 6)
    assert checkpoint.history == {"loss": [1.5, 0.75]}
    assert type(checkpoint.optimizer) is type(optimizer)
    assert checkpoint.optimizer.hyperparameters() == optimizer.hyperparameters()
    assert same_parameters(checkpoint.model, model)
    saved, own = checkpoint.optimizer.state_dict()["state"], optimizer.state_dict()["state"]
    for a, b in zip(saved, own, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert checkpoint.generator().random() == rng.random()
    assert checkpoint.optimizer.params == checkpoint.model.parameters()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run_bit_for_bit(tmp_path, name):
    x, y = make_spirals(150, seed=0)
    x_val, y_val = make_spirals(60, seed=1)

    def run(epochs, **kwargs):
        model, _ = spirals_model()
        optimizer = OPTIMIZERS[name](model.parameters())
        history = mg.fit(
            model, mg.CrossEntropy(), optimizer, x, y, epochs=epochs, batch_size=16,
            validation_data=(x_val, y_val), progress=False, **kwargs,
        )  # fmt: skip
        return model, optimizer, history

    straight, straight_optimizer, straight_history = run(7, seed=3)
    path = tmp_path / "epoch{epoch}.safetensors"
    run(4, seed=3, callbacks=[mg.ModelCheckpoint(path)])
    # a different seed for the resumed run: the checkpoint's generator must win
    resumed, resumed_optimizer, resumed_history = run(
        7, seed=12345, resume_from=tmp_path / "epoch4.safetensors"
    )
    assert same_parameters(resumed, straight)
    assert dict(resumed_history) == dict(straight_history)
    for a, b in zip(
        resumed_optimizer.state_dict()["state"],
        straight_optimizer.state_dict()["state"],
        strict=True,
    ):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # and resuming from an earlier epoch's file or from a loaded Checkpoint object
    again, _, _ = run(7, resume_from=mg.load_checkpoint(tmp_path / "epoch2.safetensors"))
    assert same_parameters(again, straight)
    # the shuffling matters (another seed ends elsewhere), so the resumed run, started with
    # seed 12345, matches only because the checkpoint's generator replaced it
    different, _, _ = run(7, seed=4)
    assert not same_parameters(different, straight)


def test_resume_checks_the_optimizer_class_and_the_parameters(tmp_path):
    model, optimizer = spirals_model()
    mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    checkpoint = mg.load_checkpoint(tmp_path / "c.safetensors")
    other_model, _ = spirals_model(seed=9)
    before = other_model.state_dict()
    with pytest.raises(ValueError, match="holds Adam state; cannot restore it into SGD"):
        checkpoint.restore(other_model, mg.SGD(other_model.parameters(), lr=0.1))
    wider = mg.Sequential(mg.Dense(2, 8), mg.Tanh(), mg.Dense(8, 3))
    with pytest.raises(ValueError, match="shape"):
        checkpoint.restore(wider, mg.Adam(wider.parameters()))
    assert same_parameters(other_model, other_model)
    assert all(np.array_equal(before[k], v) for k, v in other_model.state_dict().items())
    with pytest.raises(ValueError, match=r"built on model.parameters\(\)"):
        mg.save_checkpoint(tmp_path / "x.safetensors", other_model, optimizer)


def test_model_checkpoint_keeps_the_best_epoch_or_every_epoch(tmp_path):
    x, y = make_spirals(150, seed=0)
    x_val, y_val = make_spirals(60, seed=1)
    model, optimizer = spirals_model()
    best = mg.ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    weights = mg.ModelCheckpoint(
        tmp_path / "w{epoch:02d}-{val_loss:.2f}.safetensors", weights_only=True
    )
    history = mg.fit(
        model, mg.CrossEntropy(), optimizer, x, y, epochs=5, validation_data=(x_val, y_val),
        callbacks=[best, weights], seed=0, progress=False,
    )  # fmt: skip
    val_loss = history["val_loss"]
    assert best.best == min(val_loss)
    saved = mg.load_checkpoint(tmp_path / "best.safetensors")
    assert saved.epoch == int(np.argmin(val_loss)) + 1
    assert saved.history["val_loss"] == val_loss[: saved.epoch]
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("w"))
    assert names == [f"w{e:02d}-{v:.2f}.safetensors" for e, v in enumerate(val_loss, 1)]
    assert same_parameters(mg.load(tmp_path / names[-1]), model)
    assert repr(best) == (
        f"ModelCheckpoint({str(tmp_path / 'best.safetensors')!r}, "
        "monitor='val_loss', save_best_only=True)"
    )


def test_model_checkpoint_says_what_is_missing(tmp_path):
    x, y = make_spirals(30, seed=0)
    model, optimizer = spirals_model()
    for callback, message in [
        (mg.ModelCheckpoint(tmp_path / "c", save_best_only=True), "monitors 'val_loss'"),
        (mg.ModelCheckpoint(tmp_path / "{nope}"), "cannot be filled"),
    ]:
        with pytest.raises((KeyError, ValueError), match=message):
            mg.fit(model, mg.CrossEntropy(), optimizer, x, y, epochs=1, callbacks=[callback],
                   progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="mode"):
        mg.ModelCheckpoint(tmp_path / "c", mode="best")


# -- ONNX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onnx_export_runs_in_onnxruntime_with_minigrad_s_outputs(tmp_path, dtype):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = every_layer_model(dtype)
    mg.export_onnx(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(
        str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.shape for i in session.get_inputs()] == [["batch", 3]]
    for batch in (1, 17):
        x = np.random.default_rng(batch).standard_normal((batch, 3)).astype(dtype)
        (out,) = session.run(None, {"input": x})
        assert out.dtype == dtype and out.shape == (batch, 3)
        tolerance = 1e-5 if dtype == np.float32 else 1e-9  # ORT approximates tanh
        np.testing.assert_allclose(out, model(x), rtol=tolerance, atol=tolerance)


def test_onnx_export_of_a_trained_classifier_predicts_the_same_classes(tmp_path):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    x, y = make_spirals(150, seed=0)
    model, optimizer = spirals_model()
    mg.fit(model, mg.CrossEntropy(), optimizer, x, y, epochs=20, progress=False, seed=0)
    mg.export_onnx(model, tmp_path / "c.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "c.onnx"))
    (logits,) = session.run(None, {"input": x.astype(np.float32)})
    np.testing.assert_allclose(logits, mg.predict(model, x), rtol=1e-5, atol=1e-5)


def test_onnx_export_names_a_layer_it_cannot_convert(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match=r"layer 1 \(Scale\(\)\) has no ONNX conversion"):
        mg.export_onnx(mg.Sequential(mg.Dense(2, 2), Scale()), tmp_path / "s.onnx")
    with pytest.raises(ValueError, match="cannot tell the input shape of this model"):
        mg.export_onnx(mg.Sequential(mg.Tanh()), tmp_path / "t.onnx")
    assert not list(tmp_path.iterdir())


def test_onnx_export_refuses_a_model_mixing_dtypes_and_names_the_layers(tmp_path):
    pytest.importorskip("onnx")
    mixed = mg.Sequential(
        mg.Dense(2, 3, rng=0, dtype=np.float32),
        mg.Tanh(),
        mg.Dense(3, 3, rng=1, dtype=np.float64),
        mg.Sequential(mg.Dense(3, 2, rng=2, dtype=np.float32), mg.Sigmoid()),
    )
    with pytest.raises(
        TypeError,
        match=r"export_onnx: the model mixes parameter dtypes \(float32 in layers \['0', '3\.0'\]; "
        r"float64 in layers \['2'\]\); an ONNX graph has one float type",
    ):
        mg.export_onnx(mixed, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is double here")
def test_onnx_export_refuses_float128_with_a_type_error(tmp_path):
    pytest.importorskip("onnx")
    model = mg.Sequential(mg.Dense(2, 3, rng=0, dtype=np.float64), mg.ReLU(), mg.Dense(3, 1))
    dense = model[0]
    dense.weight = mg.Parameter(dense.weight.value.astype(np.longdouble), name="weight")
    dense.bias = mg.Parameter(dense.bias.value.astype(np.longdouble), name="bias")
    name = np.dtype(np.longdouble).name
    with pytest.raises(
        TypeError,
        match=rf"export_onnx: layer 0 \(Dense\) has {name} parameters; ONNX export writes "
        r"float16, float32 or float64",
    ):
        mg.export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


# -- the command line ---------------------------------------------------------------------------


def test_the_command_saves_the_model_it_trains(tmp_path, capsys):
    from minigrad.__main__ import main

    path = tmp_path / "spirals.safetensors"
    main(["--data", "spirals", "--epochs", "3", "--quiet", "--save", str(path)])
    assert f"saved the model to {path}" in capsys.readouterr().out
    model = mg.load(path)
    assert isinstance(model, mg.Sequential) and model[0].in_features == 2
    assert Path(path).stat().st_size > 4 * model.num_parameters()


# -- buffers (Normalization) travel with the model ----------------------------------------------


def normalized_model(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((40, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 200.0]).astype(np.float32)
    y = rng.integers(0, 2, 40)
    model = mg.Sequential(
        mg.Normalization(3).adapt(x), mg.Dense(3, 4, rng=seed), mg.ReLU(), mg.Dense(4, 2, rng=1)
    )
    return model, x, y


def test_a_model_with_normalization_saves_loads_and_resumes_with_its_statistics(tmp_path):
    model, x, y = normalized_model()
    optimizer = mg.Adam(model.parameters(), lr=0.01)
    path = tmp_path / "run.safetensors"
    mg.fit(
        model,
        mg.CrossEntropy(),
        optimizer,
        x,
        y,
        epochs=2,
        progress=False,
        callbacks=[mg.ModelCheckpoint(path)],
    )
    mg.save(model, tmp_path / "model.safetensors")
    loaded = mg.load(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(loaded(x), model(x))  # raw inputs, same outputs
    np.testing.assert_array_equal(loaded[0].std.value, model[0].std.value)
    checkpoint = mg.load_checkpoint(path)
    np.testing.assert_array_equal(checkpoint.model(x), model(x))
    fresh, _, _ = normalized_model(seed=3)
    fresh[0].mean.value[...] = 0.0  # restored from the checkpoint, not kept
    mg.fit(
        fresh,
        mg.CrossEntropy(),
        mg.Adam(fresh.parameters(), lr=0.01),
        x,
        y,
        epochs=3,
        resume_from=path,
        progress=False,
    )
    np.testing.assert_array_equal(fresh[0].mean.value, model[0].mean.value)


def test_normalization_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, x, _ = normalized_model()
    mg.export_onnx(model, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model(x), rtol=1e-5, atol=1e-6)


def test_onnx_export_names_tensors_after_the_state_dict_and_takes_an_input_shape(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = mg.Sequential(mg.Dense(3, 4, rng=0), mg.Sequential(mg.Tanh(), mg.Dense(4, 2, rng=1)))
    mg.export_onnx(model, tmp_path / "a.onnx", input_shape=(3,))
    graph = onnx.load(tmp_path / "a.onnx").graph
    assert [t.name for t in graph.initializer] == list(model.state_dict())
    assert [node.name for node in graph.node] == ["0", "1.0", "1.1", "output"]
    dims = graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 2]


@pytest.mark.parametrize(
    ("input_shape", "error", "message"),
    [
        ((4,), ValueError, r"does not take an input of shape \(batch, 4\): .*node name: 0\)"),
        ("34", TypeError, r"input_shape must be a tuple of sizes.*got '34'"),
        ((), ValueError, r"input_shape must hold at least one size"),
        ((0,), ValueError, r"input_shape\[0\] must be >= 1, got 0"),
        ((True,), TypeError, r"input_shape\[0\] must be an integer, got True \(bool\)"),
        ([3.0], TypeError, r"input_shape\[0\] must be an integer, got 3.0 \(float\)"),
    ],
)
def test_onnx_export_refuses_a_bad_input_shape_and_writes_nothing(
    tmp_path, input_shape, error, message
):
    pytest.importorskip("onnx")
    model = mg.Sequential(mg.Dense(3, 4, rng=0), mg.Tanh())
    with pytest.raises(error, match=message):
        mg.export_onnx(model, tmp_path / "m.onnx", input_shape=input_shape)
    assert list(tmp_path.iterdir()) == []
