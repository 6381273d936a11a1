"""Dropout: its statistics, the fixed mask of a gradient check, the generator that is not
state but that checkpoints save and restore (resume bit for bit), PyTorch interop, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import Dropout, Layer
from minigrad.errors import ModelFileError
from minigrad.serialization.safetensors_file import read_safetensors, write_safetensors
from minigrad.testing import check_gradients

pytest.importorskip("safetensors")


# -- statistics --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_the_kept_fraction_is_binomial_and_kept_values_are_scaled_by_one_over_one_minus_p(p):
    n = 1_000_000
    x = np.random.default_rng(0).uniform(1.0, 2.0, n).astype(np.float32)
    y = Dropout(p, rng=1)(x)
    kept = y != 0
    # kept count ~ Binomial(n, 1 - p): within 6 standard deviations
    assert abs(kept.mean() - (1 - p)) <= 6 * math.sqrt(p * (1 - p) / n)
    # the mask holds 1 / (1 - p) in the input's dtype, as PyTorch's (its noise.div_(1 - p))
    np.testing.assert_array_equal(y[kept], x[kept] * (np.float32(1) / np.float32(1 - p)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_the_expectation_is_preserved(p):
    """y_i = k_i x_i / (1 - p) with k_i ~ Bernoulli(1 - p): E[y_i] = x_i and
    Var[y_i] = x_i^2 p / (1 - p), so mean(y) - mean(x) has standard deviation
    sqrt(p / (1 - p) * sum(x_i^2)) / n; allow 6 of them."""
    n = 1_000_000
    x = np.random.default_rng(2).normal(3.0, 1.0, n)
    y = Dropout(p, rng=3)(x)
    bound = 6 * math.sqrt(p / (1 - p) * float(np.sum(x * x))) / n
    assert abs(y.mean() - x.mean()) <= bound


def test_evaluation_mode_is_the_identity_and_draws_nothing():
    layer = Dropout(0.5, rng=4).eval()
    state = layer.rng.bit_generator.state
    x = np.random.default_rng(5).normal(size=(3, 4))
    assert layer(x) is x
    np.testing.assert_array_equal(layer.backward(np.ones((3, 4))), np.ones((3, 4)))
    assert layer.rng.bit_generator.state == state


def test_the_same_seed_gives_the_same_masks_and_each_call_a_new_one():
    x = np.ones((64, 64), np.float32)
    a, b, c = Dropout(0.5, rng=6), Dropout(0.5, rng=6), Dropout(0.5, rng=7)
    first, second = a(x), a(x)
    np.testing.assert_array_equal(first, b(x))
    np.testing.assert_array_equal(second, b(x))
    assert not np.array_equal(first, second) and not np.array_equal(first, c(x))
    generator = np.random.default_rng(8)
    assert Dropout(0.5, rng=generator).rng is generator  # used as it is


def test_p_zero_is_the_identity_and_p_one_zeroes_everything_without_dividing_by_zero():
    x = np.random.default_rng(9).normal(size=(5, 6)).astype(np.float32)
    assert Dropout(0.0)(x) is x
    layer = Dropout(1.0)
    y = layer(x)  # pytest turns a division warning into an error
    assert y.dtype == np.float32 and not y.any()
    assert not layer.backward(np.ones_like(x)).any()


def test_backward_multiplies_by_the_forward_mask():
    layer = Dropout(0.4, rng=10)
    x = np.random.default_rng(11).normal(size=(20, 30))
    g = np.random.default_rng(12).normal(size=(20, 30))
    mask = layer(x) / x
    np.testing.assert_allclose(layer.backward(g), g * mask, rtol=1e-15)
    assert set(np.unique(mask.round(12))) <= {0.0, round(1 / 0.6, 12)}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_dtype_is_kept(dtype):
    layer = Dropout(0.5, rng=0)
    y = layer(np.ones((4, 4), dtype))
    assert y.dtype == dtype and layer.backward(np.ones((4, 4))).dtype == dtype
    assert Dropout(0.5)(np.ones((2, 2), int)).dtype == np.float64  # integers become float64


def test_an_infinite_input_that_is_dropped_is_nan_as_in_pytorch_without_a_warning():
    x = np.full(1000, np.inf)
    y = Dropout(0.5, rng=0)(x)
    assert np.isnan(y).any() and np.isinf(y).any()


# -- gradient checks in training mode -----------------------------------------------------------


@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)),
    p=st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_gradients_match_finite_differences_with_one_mask(x, p, seed):
    """check_gradients rewinds the layer's generator before each forward pass, so every
    pass draws the same mask, and leaves it where it started."""
    layer = Dropout(p, rng=seed)
    before = layer.rng.bit_generator.state
    assert set(check_gradients(layer, np.nan_to_num(x) % 10.0).errors) == {"input"}
    assert layer.training and layer.rng.bit_generator.state == before


def test_a_model_with_dropout_is_checked_in_training_mode():
    model = mg.Sequential(
        mg.Dense(4, 8, rng=0, dtype=np.float64),
        mg.Tanh(),
        Dropout(0.5, rng=1),
        mg.Dense(8, 2, rng=2, dtype=np.float64),
    )
    x = np.random.default_rng(3).normal(size=(3, 4))
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", "0.weight", "0.bias", "3.weight", "3.bias"}
    assert model.training and model[2].training


class Noise(Layer):
    """A random layer of a user's own: y = x + s z, z ~ N(0, 1) drawn at every forward."""

    def __init__(self, scale, seed):
        super().__init__()
        self.scale = scale
        self.generator = np.random.default_rng(seed)

    def forward(self, x):
        return x * (1.0 + self.scale * self.generator.standard_normal(x.shape))

    def backward(self, grad_output):
        raise NotImplementedError


class Multiplicative(Noise):
    def forward(self, x):
        self.factor = 1.0 + self.scale * self.generator.standard_normal(x.shape)
        return x * self.factor

    def backward(self, grad_output):
        return grad_output * self.factor


def test_a_user_s_random_layer_takes_part_through_its_generator_attribute():
    layer = Multiplicative(0.5, seed=0)
    assert [path for path, _ in layer.named_generators()] == ["generator"]
    check_gradients(layer, np.random.default_rng(1).normal(size=(3, 4)))


def test_named_generators_lists_every_layer_s_generator_by_path():
    shared = np.random.default_rng(0)
    inner = mg.Sequential(Dropout(0.1, rng=shared), mg.Tanh())
    model = mg.Sequential(mg.Dense(2, 2), Dropout(0.2, rng=shared), inner, Noise(0.1, 1))
    paths = [path for path, _ in model.named_generators(prefix="model.")]
    assert paths == ["model.1.rng", "model.2.0.rng", "model.3.generator"]
    assert model[1].rng is model[2][0].rng  # a shared generator is listed under each path


# -- the generator is not state, but checkpoints save it ----------------------------------------


def dropout_model(seed):
    return mg.Sequential(
        mg.Dense(4, 16, rng=1),
        mg.BatchNorm1d(16),
        mg.ReLU(),
        Dropout(0.3, rng=seed),
        mg.Dense(16, 3, rng=2),
    )


def test_dropout_has_no_state_dict_entries_and_the_model_loads_into_torch(torch, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = dropout_model(0)
    model(np.random.default_rng(0).normal(size=(8, 4)))  # running statistics of a batch
    assert Dropout(0.5).state_dict() == {}
    twin = torch.nn.Sequential(
        torch.nn.Linear(4, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(16, 3),
    ).float()
    assert list(model.state_dict()) == list(twin.state_dict())
    mg.save(model, tmp_path / "m.safetensors")
    twin.load_state_dict(safetensors_torch.load_file(str(tmp_path / "m.safetensors")))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    expected = twin.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(mg.predict(model, x), expected, rtol=1e-5, atol=1e-6)
    assert repr(Dropout(0.3)) == repr(torch.nn.Dropout(0.3)).replace(", inplace=False", "")


def spirals():
    x, y = mg.data.make_spirals(90, classes=3, seed=0)
    return np.column_stack([x, x * x]).astype(np.float32), y


def test_resuming_a_model_with_dropout_gives_the_uninterrupted_run_bit_for_bit(tmp_path):
    x, y = spirals()
    loss = mg.CrossEntropy()
    model = dropout_model(seed=7)
    optimizer = mg.Momentum(model.parameters(), lr=0.05)
    every_epoch = mg.ModelCheckpoint(tmp_path / "epoch{epoch}.safetensors")
    whole = mg.fit(
        model, loss, optimizer, x, y, epochs=4, batch_size=16, seed=3, progress=False,
        callbacks=[every_epoch],
    )  # fmt: skip

    # A model built with another seed for its Dropout: only the checkpoint makes its masks
    # those of the uninterrupted run
    resumed = dropout_model(seed=99)
    resumed_optimizer = mg.Momentum(resumed.parameters(), lr=0.05)
    history = mg.fit(
        resumed, loss, resumed_optimizer, x, y, epochs=4, batch_size=16, progress=False,
        resume_from=tmp_path / "epoch2.safetensors",
    )  # fmt: skip
    assert history == whole
    for key, value in model.state_dict().items():
        assert resumed.state_dict()[key].dtype == value.dtype
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    assert resumed[3].rng.bit_generator.state == model[3].rng.bit_generator.state

    # without the generator's state the run differs: the test above has something to catch
    fresh = dropout_model(seed=99)
    checkpoint = mg.load_checkpoint(tmp_path / "epoch2.safetensors")
    checkpoint.restore(fresh, mg.Momentum(fresh.parameters(), lr=0.05))
    fresh[3].rng = 99
    mg.fit(
        fresh, loss, mg.Momentum(fresh.parameters(), lr=0.05), x, y, epochs=1, batch_size=16,
        seed=0, progress=False,
    )  # fmt: skip
    assert not np.array_equal(fresh[0].weight.value, model[0].weight.value)


def test_a_checkpoint_stores_each_layer_generator_by_path_and_load_restores_it(tmp_path):
    model = dropout_model(seed=5)
    model(np.ones((4, 4)))  # the generator has drawn a mask
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, mg.SGD(model.parameters()))
    saved = json.loads(read_safetensors(path)[1]["minigrad.generators"])
    assert list(saved) == ["3.rng"] and saved["3.rng"] == model[3].rng.bit_generator.state
    loaded = mg.load_checkpoint(path).model
    assert loaded[3].rng.bit_generator.state == model[3].rng.bit_generator.state


def test_restore_refuses_a_model_whose_generators_differ_and_writes_nothing(tmp_path):
    model = dropout_model(seed=5)
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, mg.SGD(model.parameters()))
    checkpoint = mg.load_checkpoint(path)
    other = dropout_model(seed=6)
    other.layers[3] = mg.Tanh()  # same parameters, no generator
    before = other.state_dict()
    with pytest.raises(
        ValueError, match=r"random generators at \['3\.rng'\]; this model has them at \[\]"
    ):
        checkpoint.restore(other, mg.SGD(other.parameters()))
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])

    dxsm = dropout_model(seed=5)
    dxsm[3].rng = np.random.Generator(np.random.PCG64DXSM(0))
    with pytest.raises(ValueError, match=r"a PCG64 state for the generator at '3\.rng', but .*"):
        checkpoint.restore(dxsm, mg.SGD(dxsm.parameters()))


def test_a_generator_checkpoints_cannot_save_is_named_by_path(tmp_path):
    model = mg.Sequential(
        mg.Dense(2, 2), Dropout(0.5, rng=np.random.Generator(np.random.MT19937()))
    )
    with pytest.raises(ValueError, match=r"the generator at '1\.rng' \(a layer's\) cannot be"):
        mg.save_checkpoint(tmp_path / "c.safetensors", model, mg.SGD(model.parameters()))
    assert not (tmp_path / "c.safetensors").exists()


def rewrite_generators(tmp_path, value):
    model = dropout_model(seed=5)
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, mg.SGD(model.parameters()))
    tensors, metadata = read_safetensors(path)
    if value is None:
        del metadata["minigrad.generators"]
    else:
        metadata["minigrad.generators"] = json.dumps(value)
    write_safetensors(path, tensors, metadata)
    return path, model[3].rng.bit_generator.state


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "minigrad.generators must map layer paths to generator states"),
        ("PCG64", "minigrad.generators must map layer paths to generator states"),
        ({}, r"holds the states of generators at \[\], but the architecture's layers own "),
        (None, r"holds the states of generators at \[\], but the architecture's layers"),
        ("extra", r"holds the states of generators at \['3\.rng', 'evil'\]"),
        ({"3.rng": {"bit_generator": "MT19937"}}, r"\['3\.rng'\]: a generator state names"),
        ({"3.rng": "os.system"}, r"\['3\.rng'\]: a generator state names its bit generator"),
        ("negative", r"\['3\.rng'\]: a PCG64 state is"),
        ("dxsm", r"\['3\.rng'\] is a PCG64DXSM state, but the rebuilt layer draws from PCG64"),
    ],
)
def test_a_checkpoint_s_generators_that_do_not_fit_its_model_are_a_model_file_error(
    tmp_path, value, message
):
    path, state = rewrite_generators(tmp_path, None)
    if value == "extra":
        value = {"3.rng": state, "evil": state}
    elif value == "negative":
        value = {"3.rng": {**state, "state": {"state": -1, "inc": 1}}}
    elif value == "dxsm":
        value = {"3.rng": np.random.Generator(np.random.PCG64DXSM(0)).bit_generator.state}
    path, _ = rewrite_generators(tmp_path, value)
    with pytest.raises(ModelFileError, match=message):
        mg.load_checkpoint(path)


def test_a_checkpoint_without_generators_loads_into_a_model_without_any(tmp_path):
    """A checkpoint written before layers had generators has no such entry."""
    model = mg.Sequential(mg.Dense(2, 2, rng=0))
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, mg.SGD(model.parameters()))
    tensors, metadata = read_safetensors(path)
    del metadata["minigrad.generators"]
    write_safetensors(path, tensors, metadata)
    mg.load_checkpoint(path).restore(model, mg.SGD(model.parameters()))


# -- configuration and errors --------------------------------------------------------------------


def test_save_and_load_rebuild_dropout_with_its_p(tmp_path):
    model = mg.Sequential(mg.Dense(2, 3, rng=0), Dropout(0.25, rng=0), mg.Dense(3, 1, rng=1))
    mg.save(model, tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model) and loaded[1].get_config() == {"p": 0.25}
    assert isinstance(loaded[1].rng, np.random.Generator)
    with pytest.raises(ValueError, match=r"a Dropout config has the keys \['p'\]"):
        Dropout.from_config({"p": 0.5, "rng": 0})
    with pytest.raises(ValueError, match="Dropout p must be a finite number >= 0 and <= 1"):
        Dropout.from_config({"p": 2})


@pytest.mark.parametrize(
    ("p", "error", "message"),
    [
        (1.5, ValueError, "Dropout p must be a finite number >= 0 and <= 1, got 1.5"),
        (-0.1, ValueError, "Dropout p must be a finite number >= 0 and <= 1, got -0.1"),
        (float("nan"), ValueError, "Dropout p must be a finite number >= 0 and <= 1, got nan"),
        (float("inf"), ValueError, "Dropout p must be a finite number >= 0 and <= 1, got inf"),
        ("0.5", TypeError, r"Dropout p must be a real number, got '0\.5' \(str\)"),
        (True, TypeError, r"Dropout p must be a real number, got True \(bool\)"),
        (None, TypeError, r"Dropout p must be a real number, got None"),
    ],
)
def test_p_is_checked_in_the_constructor_and_when_assigned(p, error, message):
    with pytest.raises(error, match=message):
        Dropout(p)
    layer = Dropout(0.5)
    with pytest.raises(error, match=message):
        layer.p = p
    assert layer.p == 0.5


@pytest.mark.parametrize(
    ("rng", "error", "message"),
    [
        ("0", TypeError, r"Dropout rng must be None, an integer seed >= 0 or a numpy Generator"),
        (1.5, TypeError, r"Dropout rng must be None, an integer seed >= 0 .*got 1\.5 \(float\)"),
        (True, TypeError, r"Dropout rng must be .*got True \(bool\)"),
        (-1, ValueError, r"Dropout rng must be None, an integer seed >= 0 .*got -1"),
    ],
)
def test_rng_is_checked_in_the_constructor_and_when_assigned(rng, error, message):
    with pytest.raises(error, match=message):
        Dropout(0.5, rng=rng)
    layer = Dropout(0.5)
    with pytest.raises(error, match=message):
        layer.rng = rng
    layer.rng = 3  # a seed makes a generator
    assert isinstance(layer.rng, np.random.Generator)


def test_backward_checks_when_and_what_it_is_given():
    layer = Dropout(0.5, rng=0)
    with pytest.raises(RuntimeError, match=r"Dropout.backward\(\) was called before forward"):
        layer.backward(np.ones((2, 2)))
    layer(np.ones((2, 2)))
    with pytest.raises(mg.ShapeError, match=r"expected grad_output of shape \(2, 2\)"):
        layer.backward(np.ones((2, 3)))
    layer.eval()(np.ones((2, 2)))
    layer.train()
    with pytest.raises(RuntimeError, match=r"Dropout.backward\(\): the last forward pass ran"):
        layer.backward(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"Dropout input .*got dtype complex128"):
        layer(np.ones(2, complex))


def test_sequential_sees_widths_through_dropout():
    with pytest.raises(mg.ShapeError, match=r"layer 2 .* expects 4 input features, but layer 0"):
        mg.Sequential(mg.Dense(2, 3), Dropout(0.5), mg.Dense(4, 1))
