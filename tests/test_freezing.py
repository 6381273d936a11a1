"""Freezing: Parameter.requires_grad and Layer.freeze/unfreeze. Frozen parameters get no
gradient product in backward (their .grad is left untouched) while dL/dx still flows; the
optimizers, SafeStep, clipping and fit skip them."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import SGD, Adam, AdamW, Momentum, Parameter
from minigrad.optim import SafeStep
from minigrad.optim import fused as fused_kernels
from minigrad.testing import numerical_gradient

SENTINEL = 12345.0


def test_requires_grad_is_a_checked_bool_defaulting_to_true():
    p = Parameter(np.zeros(2))
    assert p.requires_grad is True
    p.requires_grad = np.bool_(False)
    assert p.requires_grad is False
    for bad in ("False", 0, None):
        with pytest.raises(TypeError, match=r"Parameter\.requires_grad must be True or False"):
            p.requires_grad = bad
    assert p.requires_grad is False


def test_freeze_and_unfreeze_are_recursive_and_return_the_layer():
    inner = mg.Sequential(mg.Dense(2, 3, rng=0), mg.LayerNorm(3))
    model = mg.Sequential(inner, mg.Tanh(), mg.Dense(3, 1, rng=1))
    assert inner.freeze() is inner
    assert [p.requires_grad for p in model.parameters()] == [False] * 4 + [True] * 2
    assert model.unfreeze() is model
    assert all(p.requires_grad for p in model.parameters())


def test_requires_grad_is_not_saved_as_in_torch(tmp_path):
    pytest.importorskip("safetensors")
    model = mg.Sequential(mg.Dense(2, 1, rng=0)).freeze()
    assert list(model.state_dict()) == ["0.weight", "0.bias"]
    mg.save(model, tmp_path / "m.safetensors")
    assert all(p.requires_grad for p in mg.load(tmp_path / "m.safetensors").parameters())


def layers():
    """(layer, input) for every layer that owns parameters, in float64."""
    rng = np.random.default_rng(0)
    return {
        "dense": (mg.Dense(3, 2, rng=0), rng.normal(size=(4, 3))),
        "conv1d": (mg.Conv1d(2, 3, 3, padding=1, rng=0), rng.normal(size=(2, 2, 5))),
        "conv2d": (mg.Conv2d(2, 3, 3, rng=0), rng.normal(size=(2, 2, 5, 5))),
        "conv2d-flat": (mg.Conv2d(2, 2, 3, padding=1, rng=0), rng.normal(size=(1, 2, 6, 6))),
        "batchnorm": (mg.BatchNorm1d(3), rng.normal(size=(5, 3))),
        "layernorm": (mg.LayerNorm(3), rng.normal(size=(4, 3))),
    }


@pytest.mark.parametrize("name", list(layers()))
def test_a_frozen_layer_leaves_grad_untouched_and_still_gives_dx(name):
    layer, x = layers()[name]
    x = x.astype(layer.parameters()[0].dtype)
    r = np.random.default_rng(1).normal(size=layer(x).shape).astype(x.dtype)
    layer(x)
    expected = layer.backward(r)  # trainable: the reference dL/dx
    layer.freeze()
    for p in layer.parameters():
        p.grad[...] = SENTINEL
    layer(x)
    dx = layer.backward(r)
    np.testing.assert_array_equal(dx, expected)
    for p in layer.parameters():
        assert (p.grad == SENTINEL).all(), "a frozen parameter's gradient was written"
    layer(x)
    assert layer.backward_parameters(r) is None
    assert all((p.grad == SENTINEL).all() for p in layer.parameters())


def test_a_frozen_dense_skips_the_weight_product_and_dx_matches_finite_differences():
    layer = mg.Dense(3, 2, rng=0, dtype=np.float64).freeze()
    layer.bias.requires_grad = True  # the bias alone trains
    x = np.random.default_rng(2).normal(size=(4, 3))
    r = np.random.default_rng(3).normal(size=(4, 2))
    layer.weight.grad[...] = SENTINEL
    layer(x)
    dx = layer.backward(r)
    np.testing.assert_allclose(dx, numerical_gradient(lambda: float((layer(x) * r).sum()), x))
    assert (layer.weight.grad == SENTINEL).all()
    np.testing.assert_allclose(layer.bias.grad, r.sum(axis=0))


def test_a_frozen_embedding_leaves_its_table_gradient_untouched():
    layer = mg.Embedding(5, 2, rng=0).freeze()
    layer.weight.grad[...] = SENTINEL
    layer(np.array([[0, 3]]))
    layer.backward(np.ones((1, 2, 2), layer.weight.dtype))
    assert (layer.weight.grad == SENTINEL).all()


def test_a_frozen_middle_layer_still_passes_the_gradient_to_the_layers_before_it():
    def model():
        return mg.Sequential(
            mg.Dense(3, 4, rng=0, dtype=np.float64),
            mg.Tanh(),
            mg.Dense(4, 4, rng=1, dtype=np.float64),
            mg.Tanh(),
            mg.Dense(4, 1, rng=2, dtype=np.float64),
        )

    x, r = np.random.default_rng(4).normal(size=(5, 3)), np.ones((5, 1))
    reference, frozen = model(), model()
    frozen[2].freeze()
    for m in (reference, frozen):
        m(x)
        m.backward(r)
    np.testing.assert_array_equal(frozen[0].weight.grad, reference[0].weight.grad)
    np.testing.assert_array_equal(frozen[4].weight.grad, reference[4].weight.grad)


OPTIMIZERS = {
    "sgd": lambda ps, fused: SGD(ps, lr=0.1, weight_decay=0.5, fused=fused),
    "momentum": lambda ps, fused: Momentum(ps, lr=0.1, weight_decay=0.5, fused=fused),
    "adam": lambda ps, fused: Adam(ps, lr=0.1, weight_decay=0.5, fused=fused),
    "adamw": lambda ps, fused: AdamW(ps, lr=0.1, weight_decay=0.5, fused=fused),
}


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "fused"])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_optimizers_skip_frozen_parameters_and_create_no_state_for_them(make, fused):
    if fused and not fused_kernels.available():
        pytest.skip("the fused kernels need numba")
    rng = np.random.default_rng(5)
    frozen, half, trained = (Parameter(rng.normal(size=(3,))) for _ in range(3))
    frozen.requires_grad = False
    opt = make([frozen, half, trained], fused)
    assert frozen not in opt.state and half in opt.state
    start = frozen.value.copy()
    for step in range(4):
        if step == 2:
            half.requires_grad = False  # frozen between steps: its state stays as it was
            kept = {k: np.copy(v) for k, v in opt.state[half].items()}
            half_value = half.value.copy()
        for p in (frozen, half, trained):
            p.grad[...] = rng.normal(size=3)
        frozen.grad[0] = np.nan  # a frozen gradient is never read
        opt.step()
    assert frozen.value.tobytes() == start.tobytes()  # not even weight decay
    assert frozen not in opt.state
    assert half.value.tobytes() == half_value.tobytes()
    for key, value in opt.state[half].items():
        np.testing.assert_array_equal(value, kept[key])
    assert opt.state_dict()["state"][0] == {}
    frozen.requires_grad = True  # unfrozen: its state is made at the next step
    frozen.grad[...] = 1.0
    opt.step()
    assert frozen in opt.state and (frozen.value != start).all()


def test_a_state_dict_with_a_parameter_that_has_no_state_round_trips():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    a.requires_grad = False
    opt = Adam([a, b], lr=0.1)
    b.grad[...] = 1.0
    opt.step()
    other = Adam([Parameter(np.ones(2)), Parameter(np.ones(2))], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert other.params[0] not in other.state and other.state[other.params[1]]["step"] == 1


def test_safe_step_ignores_frozen_parameters_and_their_stale_gradients():
    a = Parameter(np.array([3e38, 0.0], np.float32))
    b = Parameter(np.zeros(2, np.float32))
    a.requires_grad = False
    a.grad[...] = np.inf  # stale, and never read
    b.grad[...] = 1.0
    guard = SafeStep(Momentum([a, b], lr=10.0, momentum=0.5))
    guard.step()
    np.testing.assert_array_equal(b.value, [-10.0, -10.0])
    np.testing.assert_array_equal(a.value, np.array([3e38, 0.0], np.float32))


def test_clip_grad_norm_ignores_frozen_parameters():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    a.grad[...] = 1e6
    a.requires_grad = False
    b.grad[...] = [3.0, 4.0]
    assert mg.clip_grad_norm([a, b], 1.0) == 5.0
    np.testing.assert_allclose(b.grad, [0.6, 0.8], rtol=1e-6)
    assert (a.grad == 1e6).all()


def test_fine_tuning_only_the_head_with_fit(tmp_path):
    pytest.importorskip("safetensors")
    x, y = mg.data.make_xor()
    model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
    body = model[0].freeze()
    before = {key: value.copy() for key, value in body.state_dict().items()}
    head_before = model[2].weight.value.copy()
    optimizer = Adam(model.parameters(), lr=0.05)
    history = mg.fit(
        model,
        mg.MSE(),
        optimizer,
        x,
        y[:, None],
        epochs=30,
        seed=0,
        clip_norm=1.0,
        progress=False,
        callbacks=[mg.ModelCheckpoint(tmp_path / "run.safetensors")],
    )
    for key, value in body.state_dict().items():
        assert value.tobytes() == before[key].tobytes(), key
    assert not np.array_equal(model[2].weight.value, head_before)
    assert history["loss"][-1] < history["loss"][0]
    assert all(p not in optimizer.state for p in body.parameters())
    checkpoint = mg.load_checkpoint(tmp_path / "run.safetensors")
    assert checkpoint.optimizer.state_dict()["state"][:2] == [{}, {}]
