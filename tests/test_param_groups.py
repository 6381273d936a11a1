"""Param groups (torch.optim's): per-group hyperparameters in every update (NumPy and fused),
in SafeStep's bounds, in state_dict and checkpoints; optimizer.lr over groups; schedules
scaling each group from its own initial lr; weight_decay_groups."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import SGD, Adam, AdamW, Momentum, Parameter
from minigrad.optim import GroupsDifferError, SafeStep, weight_decay_groups
from minigrad.optim import fused as fused_kernels
from minigrad.serialization.safetensors_file import read_safetensors

TWO_GROUPS = [([(3, 4), (4,)], {"lr": 0.05, "weight_decay": 0.1}), ([(2, 3), ()], {})]

CASES = {
    "sgd": (
        lambda gs, fused: SGD(gs, lr=0.1, weight_decay=0.01, fused=fused),
        lambda torch, gs: torch.optim.SGD(gs, lr=0.1, weight_decay=0.01),
    ),
    "momentum": (
        lambda gs, fused: Momentum(gs, lr=0.1, momentum=0.9, fused=fused),
        lambda torch, gs: torch.optim.SGD(gs, lr=0.1, momentum=0.9),
    ),
    "adam": (
        lambda gs, fused: Adam(gs, lr=0.01, betas=(0.8, 0.99), fused=fused),
        lambda torch, gs: torch.optim.Adam(gs, lr=0.01, betas=(0.8, 0.99)),
    ),
    "adamw": (
        lambda gs, fused: AdamW(gs, lr=0.01, fused=fused),
        lambda torch, gs: torch.optim.AdamW(gs, lr=0.01),
    ),
}


def params(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.normal(size=shape)) for shape in shapes]


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "fused"])
@pytest.mark.parametrize(("make", "make_torch"), CASES.values(), ids=CASES)
def test_groups_follow_torch_with_their_own_hyperparameters(against_torch, make, make_torch, fused):
    if fused and not fused_kernels.available():
        pytest.skip("the fused kernels need numba")
    opt = against_torch(lambda gs: make(gs, fused), make_torch, TWO_GROUPS)
    assert opt.fused is fused


def test_a_plain_list_is_one_group_holding_the_constructor_values():
    ps = params((2,), (3,))
    opt = Adam(ps, lr=0.01)
    (group,) = opt.param_groups
    assert group["params"] == ps and group["params"][0] is ps[0]
    assert dict(group) == {
        "params": ps,
        "lr": 0.01,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "initial_lr": 0.01,
    }
    assert opt.defaults == {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


def test_optimizer_lr_sets_every_group_and_reads_only_when_they_agree():
    a, b = params((2,), (2,))
    opt = SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    with pytest.raises(
        GroupsDifferError, match=r"different lr values \(0\.5, 0\.1\).*param_groups"
    ):
        _ = opt.lr
    with pytest.raises(ValueError):
        opt.hyperparameters()
    assert getattr(opt, "lr", None) is None  # an AttributeError too: getattr's default
    assert opt.weight_decay == 0.0
    assert repr(opt) == "SGD(lr=0.1, weight_decay=0.0, param_groups=[{'lr': 0.5}, {}])"
    opt.lr = 0.2
    assert opt.lr == 0.2 and [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    with pytest.raises(TypeError, match="learning rate must be a real number"):
        opt.lr = "0.3"
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]


def test_group_entries_are_checked_when_set():
    opt = Momentum([{"params": params((2,))}, {"params": params((2,), seed=1)}], lr=0.1)
    group = opt.param_groups[1]
    revision = opt.revision
    group["momentum"] = 0.5
    assert opt.revision > revision  # SafeStep's proofs for the old values are stale
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1\.5"):
        group["momentum"] = 1.5
    with pytest.raises(TypeError, match="nesterov must be True or False, got 'False'"):
        group["nesterov"] = "False"
    with pytest.raises(KeyError, match="Momentum has no hyperparameter 'betas'"):
        group["betas"] = (0.9, 0.99)
    with pytest.raises(TypeError, match="'params' cannot be replaced"):
        group["params"] = []
    with pytest.raises(TypeError, match="cannot be removed"):
        del group["lr"]
    assert group["momentum"] == 0.5 and len(group) == 6


def test_bad_groups_are_refused_naming_what_is_wrong():
    a, b = params((2,), (3,))
    with pytest.raises(ValueError, match=r"param group 1 sets \['momentum'\], which SGD does not"):
        SGD([{"params": [a]}, {"params": [b], "momentum": 0.9}])
    with pytest.raises(ValueError, match="param group 0 has no 'params'"):
        SGD([{"lr": 0.1}])
    with pytest.raises(TypeError, match="not a mix: item 1 is a dict"):
        SGD([a, {"params": [b]}])
    with pytest.raises(ValueError, match=r"learning rate must be a finite number >= 0, got -1"):
        SGD([{"params": [a], "lr": -1.0}])
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([{"params": []}])
    with pytest.raises(
        ValueError,
        match=r"a Parameter \(unnamed\) is in two param groups of Adam: group 0 \(position 1\) "
        r"and group 1 \(position 0\)",
    ):
        Adam([{"params": [b, a]}, {"params": [a]}])


def test_add_param_group_allocates_state_and_takes_the_defaults():
    a, b = params((2,), (3,))
    opt = Adam([a], lr=0.1)
    opt.lr = 0.2  # the groups change, the defaults do not (as in torch)
    opt.add_param_group({"params": b, "eps": 1e-6})
    assert opt.params == [a, b] and set(opt.state) == {a, b}
    assert [(g["lr"], g["eps"]) for g in opt.param_groups] == [(0.2, 1e-8), (0.1, 1e-6)]
    b.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(b.value, params((2,), (3,))[1].value - 0.1, rtol=1e-4)
    with pytest.raises(ValueError, match="in two param groups"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="add_param_group takes a dict"):
        opt.add_param_group([a])
    assert len(opt.param_groups) == 2


def test_set_scheduled_lr_scales_each_group_from_its_initial_lr():
    a, b, c = params((2,), (2,), (2,))
    opt = Momentum(
        [{"params": [a]}, {"params": [b], "lr": 0.1}, {"params": [c], "lr": 0.0}], lr=0.01
    )
    opt.set_scheduled_lr(0.002)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.002, 0.02, 0.0], rel=1e-15)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.01, 0.1, 0.0]
    single = SGD([a], lr=0.3)
    single.set_scheduled_lr(0.123)
    assert single.lr == 0.123  # exactly the schedule's value, as optimizer.lr = 0.123
    zero = SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.0)
    with pytest.raises(ValueError, match="the constructor's lr is 0"):
        zero.set_scheduled_lr(0.5)


def test_learning_rate_scheduler_scales_each_group_as_torchs_step_lr(torch):
    from minigrad.training import TrainingState

    model = mg.Sequential(mg.Dense(2, 4, rng=0), mg.Tanh(), mg.Dense(4, 1, rng=1))
    body, head = model[0].parameters(), model[2].parameters()
    opt = SGD([{"params": body}, {"params": head, "lr": 0.1}], lr=0.01)
    state = TrainingState(model, mg.MSE(), opt, epochs=3)
    scheduler = mg.LearningRateScheduler(mg.schedules.StepDecay(0.01, factor=0.5, every=1))
    tparams = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    topt = torch.optim.SGD([{"params": tparams[:1]}, {"params": tparams[1:], "lr": 0.1}], lr=0.01)
    tscheduler = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.5)
    for epoch in range(3):
        state.epoch = epoch
        scheduler.on_epoch_begin(state)  # as fit calls it
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-15)
        topt.step()
        tscheduler.step()
    assert lrs == pytest.approx([0.0025, 0.025], rel=1e-15)


def test_state_dict_round_trip_with_groups_continues_identically():
    def build(ps):
        return Adam([{"params": ps[:2], "lr": 0.05}, {"params": ps[2:], "weight_decay": 0.1}])

    rng = np.random.default_rng(3)
    ps, qs = params((3,), (2, 2), (4,)), params((3,), (2, 2), (4,))
    a, b = build(ps), build(qs)
    grads = [[rng.normal(size=p.shape) for p in ps] for _ in range(6)]
    for step, gs in enumerate(grads):
        if step == 3:
            a.param_groups[1]["lr"] = 0.02
            saved = a.state_dict()
            assert saved["param_groups"][1] == {
                "params": [2],
                "lr": 0.02,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.1,
                "initial_lr": 0.001,
            }
            b.load_state_dict(saved)
            for p, q in zip(ps, qs, strict=True):
                q.value[...] = p.value
        for p, q, g in zip(ps, qs, gs, strict=True):
            p.grad[...] = g
            q.grad[...] = g
        a.step()
        if step >= 3:
            b.step()
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_array_equal(p.value, q.value)
    assert [dict(g, params=None) for g in b.param_groups] == [
        dict(g, params=None) for g in a.param_groups
    ]


def test_loading_groups_of_another_structure_is_refused_and_changes_nothing():
    ps = params((3,), (2,), (1,))
    two = SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1)
    one = SGD(params((3,), (2,), (1,)), lr=0.1)
    before = one.state_dict()
    with pytest.raises(ValueError, match="state_dict has 2 param groups, this optimizer has 1"):
        one.load_state_dict(two.state_dict())
    other = SGD([{"params": ps[:2]}, {"params": ps[2:]}])
    with pytest.raises(ValueError, match=r"group 0 holds parameters \[0\], .* holds \[0, 1\]"):
        other.load_state_dict(two.state_dict())
    bad = two.state_dict()
    bad["param_groups"][1]["lr"] = -0.5
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        two.load_state_dict(bad)
    assert [g["lr"] for g in two.param_groups] == [0.1, 0.5]
    assert one.state_dict() == before


def test_a_state_dict_from_before_groups_sets_every_group():
    ps = params((3,), (2,))
    opt = SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1)
    opt.load_state_dict({"hyperparameters": {"lr": 0.3, "weight_decay": 0.01}, "state": [{}, {}]})
    assert opt.lr == 0.3 and opt.weight_decay == 0.01
    assert [g["initial_lr"] for g in opt.param_groups] == [0.3, 0.3]


def test_safe_step_bounds_use_each_groups_hyperparameters():
    a, b = params((4,), (4,))
    for p in (a, b):
        p.grad[...] = 1.0
    opt = Momentum([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 1.0}], momentum=0.5)
    change, _, _ = opt.step_bound([2.0, 2.0], [1.0, 1.0], opt.state_norms())
    assert change == pytest.approx([0.02, 2.0])
    guard = SafeStep(opt)
    guard.step()
    np.testing.assert_allclose(b.value - params((4,), (4,))[1].value, -1.0)
    big = Parameter(np.full(2, 1e38, np.float32))
    big.grad[...] = 1e38
    small = Parameter(np.zeros(2, np.float32))
    risky = SGD([{"params": [small], "lr": 1.0}, {"params": [big], "lr": 100.0}])
    with pytest.raises(mg.DivergenceError):
        SafeStep(risky).step()
    np.testing.assert_array_equal(big.value, np.float32(1e38))


def test_a_checkpoint_with_groups_restores_them_and_fit_resumes_bit_identically(tmp_path):
    pytest.importorskip("safetensors")
    x, y = mg.data.make_xor()

    def run(epochs, resume_from=None):
        model = mg.Sequential(mg.Dense(2, 6, rng=0), mg.Tanh(), mg.Dense(6, 1, rng=1))
        opt = AdamW(weight_decay_groups(model, 0.05), lr=0.02)
        opt.param_groups[1]["betas"] = (0.8, 0.99)
        callbacks = [mg.ModelCheckpoint(tmp_path / "run.safetensors")]
        mg.fit(model, mg.MSE(), opt, x, y[:, None], epochs=epochs, seed=0, progress=False,
               callbacks=callbacks, resume_from=resume_from)  # fmt: skip
        return model, opt

    straight, straight_opt = run(4)
    (tmp_path / "run.safetensors").unlink()
    run(2)
    checkpoint = mg.load_checkpoint(tmp_path / "run.safetensors")
    assert [g["weight_decay"] for g in checkpoint.optimizer.param_groups] == [0.05, 0.0]
    assert checkpoint.optimizer.param_groups[1]["betas"] == (0.8, 0.99)
    resumed, resumed_opt = run(4, resume_from=tmp_path / "run.safetensors")
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    assert resumed_opt.state_dict()["param_groups"] == straight_opt.state_dict()["param_groups"]


def test_a_checkpoint_from_before_groups_still_loads(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    path = tmp_path / "old.safetensors"
    mg.save_checkpoint(path, model, Adam(model.parameters(), lr=0.01), epoch=1, step=3)
    tensors, metadata = read_safetensors(path)
    saved = json.loads(metadata["minigrad.optimizer"])
    del saved["param_groups"]
    metadata["minigrad.optimizer"] = json.dumps(saved)
    path.write_bytes(safetensors_numpy.save(tensors, metadata=metadata))
    optimizer = mg.load_checkpoint(path).optimizer
    assert optimizer.lr == 0.01 and len(optimizer.param_groups) == 1


def test_a_checkpoint_with_hostile_groups_is_a_model_file_error(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = mg.Sequential(mg.Dense(2, 1, rng=0))
    path = tmp_path / "c.safetensors"
    mg.save_checkpoint(path, model, SGD(weight_decay_groups(model, 0.1)), epoch=1, step=3)
    tensors, metadata = read_safetensors(path)
    for groups, pattern in [
        ([{"params": [0, 0]}, {"params": [1]}], "each parameter index from 0 to 1 once"),
        ("all", "must be a list of objects"),
        ([{"params": [1]}, {"params": [0]}], r"group 0 holds parameters \[1\]"),
        ("lr", "learning rate must be a real number, got 'x'"),
    ]:
        saved = json.loads(metadata["minigrad.optimizer"])
        if groups == "lr":
            saved["param_groups"][0]["lr"] = "x"
        else:
            saved["param_groups"] = groups
        changed = {**metadata, "minigrad.optimizer": json.dumps(saved)}
        path.write_bytes(safetensors_numpy.save(tensors, metadata=changed))
        with pytest.raises(mg.ModelFileError, match=pattern):
            mg.load_checkpoint(path)


def test_weight_decay_groups_split_weights_from_biases_and_norms():
    model = mg.Sequential(
        mg.Conv2d(1, 2, 3, rng=0), mg.BatchNorm2d(2), mg.Flatten(), mg.Dense(8, 1, rng=1)
    )
    decayed, plain = weight_decay_groups(model, 0.1)
    assert [p.value.ndim for p in decayed["params"]] == [4, 2]
    assert all(p.value.ndim == 1 for p in plain["params"]) and len(plain["params"]) == 4
    assert (decayed["weight_decay"], plain["weight_decay"]) == (0.1, 0.0)
    assert weight_decay_groups(model.parameters(), 0.0)[0]["params"] == decayed["params"]
    with pytest.raises(TypeError, match="weight_decay must be a real number, got True"):
        weight_decay_groups(model, True)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        weight_decay_groups(model, -0.1)
    opt = SGD(weight_decay_groups(model, 0.5), lr=1.0)
    for p in model.parameters():
        p.grad[...] = 0.0
    before = {id(p): p.value.copy() for p in model.parameters()}
    opt.step()  # zero gradients: only the decay moves, and only the weights
    for p in model.parameters():
        factor = 0.5 if p.value.ndim >= 2 else 1.0
        np.testing.assert_allclose(p.value, before[id(p)] * factor)


def test_fit_trains_groups_with_their_own_learning_rates_and_logs_the_first():
    import minigrad as mg

    model = mg.Sequential(mg.Dense(2, 4, rng=0), mg.ReLU(), mg.Dense(4, 2, rng=1))
    optimizer = mg.SGD(
        [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.5}], lr=0.05
    )
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    history = mg.fit(model, mg.CrossEntropy(), optimizer, x, y, epochs=2, progress=False)
    assert history["lr"] == [0.05, 0.05]


def test_reduce_lr_on_plateau_reduces_each_group_as_torch_does(torch):
    import minigrad as mg
    from minigrad.training import TrainingState

    model = mg.Sequential(mg.Dense(2, 2, rng=0))
    weight, bias = model[0].weight, model[0].bias
    optimizer = mg.SGD([{"params": [weight]}, {"params": [bias], "lr": 0.4}], lr=0.1)
    callback = mg.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_lr=0.03)
    tw, tb = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    reference = torch.optim.SGD([{"params": [tw]}, {"params": [tb], "lr": 0.4}], lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        reference, factor=0.5, patience=0, min_lr=0.03
    )
    state = TrainingState(model, mg.MSE(), optimizer, epochs=6)
    seen = []
    for value in [1.0, 1.0, 0.5, 1.0, 1.0, 1.0]:
        callback.on_epoch_begin(state)  # a reduction decided last epoch lands here
        lrs = [group["lr"] for group in optimizer.param_groups]
        assert lrs == pytest.approx([group["lr"] for group in reference.param_groups])
        seen.append(lrs)
        callback.on_epoch_end(state, {"loss": value})
        scheduler.step(value)
    assert seen[-1] == pytest.approx([0.03, 0.05])  # each group on its own, min_lr kept
