"""RMSprop, Adagrad, Adadelta, NAdam, Adamax and RAdam: trajectories equal to torch.optim's
(float64, every option, a learning-rate change mid-way, param groups), argument checks,
state_dict round trips, checkpoints, SafeStep and fit."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import Adadelta, Adagrad, Adamax, NAdam, Parameter, RAdam, RMSprop
from minigrad.optim import SafeStep

ONE_GROUP = [([(3, 4), (4,), ()], {})]
TWO_GROUPS = [([(3, 4), (4,)], {"lr": 0.02}), ([(2, 3), ()], {})]

# name -> (our class, torch's name, options); every option of each optimizer appears
CASES = {
    "rmsprop": (RMSprop, "RMSprop", {"lr": 0.01}),
    "rmsprop-centered": (RMSprop, "RMSprop", {"lr": 0.01, "centered": True, "alpha": 0.9}),
    "rmsprop-momentum": (RMSprop, "RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
    "rmsprop-all": (
        RMSprop,
        "RMSprop",
        {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.05, "eps": 1e-6},
    ),
    "adagrad": (Adagrad, "Adagrad", {"lr": 0.1}),
    "adagrad-all": (
        Adagrad,
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
    ),
    "adadelta": (Adadelta, "Adadelta", {}),
    "adadelta-all": (
        Adadelta,
        "Adadelta",
        {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
    ),
    "nadam": (NAdam, "NAdam", {"lr": 0.01}),
    "nadam-all": (
        NAdam,
        "NAdam",
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01},
    ),
    "adamax": (Adamax, "Adamax", {"lr": 0.01}),
    "adamax-all": (Adamax, "Adamax", {"lr": 0.01, "betas": (0.3, 0.9), "weight_decay": 0.1}),
    "radam": (RAdam, "RAdam", {"lr": 0.01}),
    "radam-all": (RAdam, "RAdam", {"lr": 0.01, "betas": (0.5, 0.8), "weight_decay": 0.1}),
}
CLASSES = [Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop]
each_class = pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)


@pytest.mark.parametrize("groups", [ONE_GROUP, TWO_GROUPS], ids=["one-group", "two-groups"])
@pytest.mark.parametrize(("cls", "name", "options"), CASES.values(), ids=CASES)
def test_trajectories_match_torch(against_torch, cls, name, options, groups):
    against_torch(
        lambda gs: cls(gs, **options),
        lambda torch, gs: getattr(torch.optim, name)(gs, **options),
        groups,
        rtol=1e-11,
        atol=1e-14,
    )


def test_defaults_are_torchs(torch):
    import inspect

    for cls in CLASSES:
        ours = inspect.signature(cls).parameters
        theirs = inspect.signature(getattr(torch.optim, cls.__name__)).parameters
        for name, parameter in ours.items():
            if name not in ("params", "fused"):
                assert parameter.default == theirs[name].default, (cls.__name__, name)


@each_class
@pytest.mark.parametrize(
    ("name", "value", "error", "match"),
    [
        ("lr", -0.1, ValueError, r"learning rate must be a finite number >= 0, got -0\.1"),
        ("lr", "0.1", TypeError, r"learning rate must be a real number, got '0\.1'"),
        ("lr", True, TypeError, r"learning rate must be a real number, got True"),
        ("lr", float("nan"), ValueError, r"learning rate must be a finite number"),
        ("weight_decay", -1.0, ValueError, r"weight_decay must be a finite number >= 0"),
        ("eps", 0.0, ValueError, r"eps must be a finite number > 0, got 0\.0"),
    ],
)
def test_common_arguments_are_checked(cls, name, value, error, match):
    with pytest.raises(error, match=match):
        cls([Parameter(np.ones(2))], **{name: value})


@pytest.mark.parametrize(
    ("cls", "name", "value", "error", "match"),
    [
        (RMSprop, "alpha", 1.0, ValueError, r"alpha must be in \[0, 1\), got 1\.0"),
        (RMSprop, "momentum", -0.5, ValueError, r"momentum must be in \[0, 1\)"),
        (RMSprop, "centered", "False", TypeError, r"centered must be True or False, got 'False'"),
        (Adagrad, "lr_decay", float("inf"), ValueError, r"lr_decay must be a finite number"),
        (Adagrad, "initial_accumulator_value", -1, ValueError, "initial_accumulator_value"),
        (Adadelta, "rho", 1.5, ValueError, r"rho must be in \[0, 1\)"),
        (NAdam, "momentum_decay", -0.1, ValueError, "momentum_decay must be a finite number"),
        (NAdam, "betas", (0.9,), ValueError, "betas must be a pair"),
        (Adamax, "betas", (0.9, 1.0), ValueError, r"betas\[1\] must be in \[0, 1\)"),
        (RAdam, "betas", "0.9", TypeError, "betas must be a pair"),
    ],
)
def test_specific_arguments_are_checked(cls, name, value, error, match):
    with pytest.raises(error, match=match):
        cls([Parameter(np.ones(2))], **{name: value})
    opt = cls([Parameter(np.ones(2))])
    with pytest.raises(error, match=match):
        setattr(opt, name, value)


@each_class
def test_a_state_dict_round_trip_mid_trajectory_continues_identically(cls):
    rng = np.random.default_rng(1)
    shapes = [(3, 2), (4,), ()]
    ps = [Parameter(np.asarray(rng.normal(size=s))) for s in shapes]
    qs = [Parameter(p.value.copy()) for p in ps]
    a, b = cls(ps, lr=0.05), cls(qs, lr=0.3)
    for step in range(8):
        if step == 4:
            a.lr = 0.02
            b.load_state_dict(a.state_dict())
            for p, q in zip(ps, qs, strict=True):
                q.value[...] = p.value
        for p, q in zip(ps, qs, strict=True):
            g = np.asarray(rng.normal(size=p.shape))
            p.grad[...] = g
            q.grad[...] = g
        a.step()
        if step >= 4:
            b.step()
    for p, q in zip(ps, qs, strict=True):
        assert p.value.tobytes() == q.value.tobytes()
    assert b.lr == 0.02


@each_class
def test_a_corrupt_state_is_refused(cls):
    opt = cls([Parameter(np.ones(3))])
    opt.params[0].grad[...] = 1.0
    opt.step()
    saved = opt.state_dict()
    key = next(k for k, v in saved["state"][0].items() if isinstance(v, np.ndarray))
    saved["state"][0][key] = np.full_like(saved["state"][0][key], np.nan)
    with pytest.raises(ValueError, match="holds"):
        opt.load_state_dict(saved)


@each_class
def test_float16_parameters_are_updated_in_float32(cls):
    p = Parameter(np.ones(3, np.float16))
    opt = cls([p], lr=0.01)
    assert all(
        v.dtype in (np.float32, np.float64) for v in opt.state[p].values() if hasattr(v, "dtype")
    )
    p.grad[...] = [1.0, 0.0, -1.0]
    opt.step()
    assert p.value.dtype == np.float16 and np.isfinite(p.value).all()
    assert p.value[1] == 1.0


@each_class
def test_large_parameters_updated_in_blocks_match_whole_updates(cls, monkeypatch):
    from minigrad.optim import base

    rng = np.random.default_rng(2)
    start = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(5)]
    values = []
    for block in (base.BLOCK_SIZE, 16):
        monkeypatch.setattr(base, "BLOCK_SIZE", block)
        p = Parameter(start.copy())
        opt = cls([p], lr=0.05)
        for g in grads:
            p.grad[...] = g
            opt.step()
        values.append(p.value.copy())
    np.testing.assert_array_equal(values[0], values[1])


@each_class
def test_fit_trains_with_each_and_resumes_from_a_checkpoint_bit_identically(cls, tmp_path):
    pytest.importorskip("safetensors")
    x, y = mg.data.make_xor()

    def run(epochs, resume_from=None):
        model = mg.Sequential(mg.Dense(2, 6, rng=0), mg.Tanh(), mg.Dense(6, 1, rng=1))
        opt = cls(model.parameters(), lr=0.05)
        history = mg.fit(
            model,
            mg.MSE(),
            opt,
            x,
            y[:, None],
            epochs=epochs,
            batch_size=2,
            seed=0,
            progress=False,
            callbacks=[mg.ModelCheckpoint(tmp_path / "run.safetensors")],
            resume_from=resume_from,
        )
        return model, history

    straight, history = run(6)
    assert history["loss"][-1] < history["loss"][0]
    (tmp_path / "run.safetensors").unlink()
    run(3)
    assert type(mg.load_checkpoint(tmp_path / "run.safetensors").optimizer) is cls
    resumed, _ = run(6, resume_from=tmp_path / "run.safetensors")
    for key, value in straight.state_dict().items():
        assert resumed.state_dict()[key].tobytes() == value.tobytes(), key


@pytest.mark.parametrize("cls", [Adagrad, RMSprop, Adamax], ids=lambda c: c.__name__)
def test_step_bounds_hold(cls):
    rng = np.random.default_rng(4)
    p = Parameter(rng.normal(size=(20,)))
    opt = cls([p], lr=0.1, weight_decay=0.1)
    guard = SafeStep(opt)
    for _ in range(20):
        p.grad[...] = rng.normal(size=20) * 10
        before = p.value.copy()
        norms = opt.state_norms()
        change, _, after = opt.step_bound(
            [float(np.linalg.norm(p.grad))], [float(np.linalg.norm(p.value))], norms
        )
        assert guard.try_step([float(np.linalg.norm(p.grad))])
        assert np.linalg.norm(p.value - before) <= change[0] * (1 + 1e-9)
        for key, bound in after.items():
            assert np.linalg.norm(opt.state[p][key]) <= bound[0] * (1 + 1e-9) + 1e-12, key


@pytest.mark.parametrize("cls", [Adadelta, NAdam, RAdam], ids=lambda c: c.__name__)
def test_safe_step_takes_the_careful_path_without_a_bound(cls):
    p = Parameter(np.array([3e38, 1.0], np.float32))
    opt = cls([p], lr=1e38, **({"eps": 1.0} if cls is Adadelta else {}))
    p.grad[...] = [-1.0, 1.0]
    with pytest.raises(mg.DivergenceError):
        SafeStep(opt).step()
    np.testing.assert_array_equal(p.value, np.array([3e38, 1.0], np.float32))


def test_optimizers_converge_on_a_parabola():
    for cls, lr, tolerance in [
        (RMSprop, 0.01, 0.05),
        (Adagrad, 0.5, 0.05),
        (Adadelta, 5.0, 0.1),  # slow by design: its steps grow from sqrt(eps)
        (NAdam, 0.05, 0.05),
        (Adamax, 0.05, 0.05),
        (RAdam, 0.05, 0.05),
    ]:
        p = Parameter(np.array([3.0, -2.0]))
        opt = cls([p], lr=lr)
        for _ in range(1000):
            p.grad[...] = 2 * p.value
            opt.step()
        assert np.abs(p.value).max() < tolerance, cls.__name__
