"""Fused optimizer kernels (minigrad/optim/fused.py): the same bits as the NumPy update.

Every optimizer and variant, with hyperparameters, shapes and dtypes drawn by hypothesis, is
run twice from the same start, once with ``fused=True`` and once with ``fused=False``, and
the values and every state buffer must be equal bit for bit after every step. Then the
``fused`` argument itself: its resolution, its errors without numba, its absence from
state_dict and checkpoints, float16 and SafeStep.

Tests that run the kernels skip where numba is not installed.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.optim import SafeStep
from minigrad.optim import base as optim_base
from minigrad.optim import fused as fused_kernels


@pytest.fixture(scope="session")
def numba():
    """numba, for the tests that run the fused kernels; skipped where it is not installed or
    does not import (a numba older than the installed NumPy refuses to)."""
    numba = fused_kernels._numba()
    if isinstance(numba, Exception):
        pytest.skip(f"numba is not importable: {numba}")
    return numba


@pytest.fixture
def without_numba(monkeypatch):
    """``import numba`` fails, as where it is not installed (the import is attempted once per
    process and remembered, so the memory is cleared before and after)."""
    monkeypatch.setitem(sys.modules, "numba", None)
    fused_kernels._numba.cache_clear()
    yield
    fused_kernels._numba.cache_clear()


dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)
rates = st.floats(1e-4, 0.5)
decays = st.sampled_from([0.0, 1e-4, 0.01, 0.3])
fractions = st.floats(0.0, 0.999)
# sizes 0 and 1, odd sizes, and (with the block size made small) many blocks
shapes = st.sampled_from([(0,), (), (1,), (7,), (3, 5), (2, 3, 4), (13, 11), (0, 4)])

OPTIMIZERS = {
    "sgd": st.builds(lambda lr, wd: (mg.SGD, {"lr": lr, "weight_decay": wd}), rates, decays),
    "momentum": st.builds(
        lambda lr, mu, nesterov, wd: (
            mg.Momentum,
            {"lr": lr, "momentum": mu, "nesterov": nesterov, "weight_decay": wd},
        ),
        rates,
        fractions,
        st.booleans(),
        decays,
    ),
    **{
        name: st.builds(
            lambda lr, b1, b2, eps, wd, cls=cls: (
                cls,
                {"lr": lr, "betas": (b1, b2), "eps": eps, "weight_decay": wd},
            ),
            rates,
            fractions,
            fractions,
            st.sampled_from([1e-8, 1e-6, 1e-3, 0.1]),
            decays,
        )
        for name, cls in (("adam", mg.Adam), ("adamw", mg.AdamW))
    },
}
each_optimizer = pytest.mark.parametrize("name", sorted(OPTIMIZERS))
CLASSES = {"sgd": mg.SGD, "momentum": mg.Momentum, "adam": mg.Adam, "adamw": mg.AdamW}
each_class = pytest.mark.parametrize("cls", CLASSES.values(), ids=CLASSES)


def assert_same_bits(got, expected, what):
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    same = got.view(f"u{got.itemsize}") == expected.view(f"u{expected.itemsize}")
    assert same.all(), f"{what}: {int((~same).sum())} of {same.size} entries differ, {got[~same]}"


def assert_same_optimizers(fused, reference, step):
    for index, (p, q) in enumerate(zip(fused.params, reference.params, strict=True)):
        assert_same_bits(p.value, q.value, f"step {step}, value of parameter {index}")
        for key, buffer in reference.state[q].items():
            what = f"step {step}, {key!r} of parameter {index}"
            if isinstance(buffer, np.ndarray):
                assert_same_bits(fused.state[p][key], buffer, what)
            else:
                assert fused.state[p][key] == buffer, what


def gradient(rng, shape, dtype):
    """Gradient entries over many magnitudes, some exactly 0 and some -0."""
    g = rng.normal(size=shape) * 10.0 ** rng.integers(-6, 3, size=shape)
    g = np.where(rng.uniform(size=shape) < 0.1, 0.0, g)
    g = np.where(rng.uniform(size=shape) < 0.05, -0.0, g)
    return np.asarray(g, dtype=dtype)


def run_both(cls, hyperparameters, shapes_, dtypes_, seed, steps, lrs=None):
    """``cls`` fused and not, from the same start and gradients, compared after each step
    (``dtypes_``: one dtype, or one per shape)."""
    rng = np.random.default_rng(seed)
    if not isinstance(dtypes_, list):
        dtypes_ = [dtypes_] * len(shapes_)
    starts = [
        np.asarray(rng.normal(size=shape), dtype=dtype)
        for shape, dtype in zip(shapes_, dtypes_, strict=True)
    ]
    for start in starts:
        start.reshape(-1)[:2] = [0.0, -0.0][: start.size]  # signed zeros in the value too
    pairs = [(mg.Parameter(s.copy()), mg.Parameter(s.copy())) for s in starts]
    fused = cls([p for p, _ in pairs], **hyperparameters, fused=True)
    reference = cls([q for _, q in pairs], **hyperparameters, fused=False)
    assert fused.fused and not reference.fused
    for step in range(1, steps + 1):
        if lrs is not None:
            fused.lr = reference.lr = lrs[step % len(lrs)]
        for p, q in pairs:
            p.grad[...] = q.grad[...] = gradient(rng, p.shape, p.dtype)
        fused.step()
        reference.step()
        assert_same_optimizers(fused, reference, step)
    return fused, reference


# -- 1. the same bits as the NumPy update ----------------------------------------------------


@each_optimizer
@given(data=st.data(), shape=shapes, dtype=dtypes, seed=seeds)
def test_one_step_equals_the_numpy_step_bit_for_bit(numba, name, data, shape, dtype, seed):
    cls, hyperparameters = data.draw(OPTIMIZERS[name])
    run_both(cls, hyperparameters, [shape], dtype, seed, steps=1)


@each_optimizer
@given(data=st.data(), dtype=dtypes, seed=seeds, lrs=st.lists(rates, min_size=1, max_size=4))
def test_fifty_steps_equal_the_numpy_trajectory_bit_for_bit(numba, name, data, dtype, seed, lrs):
    """A trajectory with changing gradients and a learning rate that changes between steps,
    over several parameters, updated in blocks of 7 entries by NumPy and whole when fused."""
    cls, hyperparameters = data.draw(OPTIMIZERS[name])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optim_base, "BLOCK_SIZE", 7)
        run_both(cls, hyperparameters, [(3, 5), (9,), (), (1,)], dtype, seed, steps=50, lrs=lrs)


@each_optimizer
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_parameter_larger_than_a_block_equals_the_numpy_update(numba, name, dtype):
    """NumPy updates it block by block through the work array; the kernel in one pass."""
    hyperparameters = {"lr": 0.01, "weight_decay": 0.01}
    if name == "momentum":
        hyperparameters.update(momentum=0.9, nesterov=True)
    run_both(
        CLASSES[name],
        hyperparameters,
        [(optim_base.BLOCK_SIZE + 3,), (5,)],
        dtype,
        seed=0,
        steps=3,
    )


ADAM_SCALARS = {"step": 3, "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
SPECIAL_CASES = {
    "sgd": ("sgd_update", 0, {"lr": 0.1}),
    "heavy_ball": ("momentum_update", 1, {"lr": 0.1, "momentum": 0.9, "nesterov": False}),
    "nesterov": ("momentum_update", 1, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "adam": ("adam_update", 2, {**ADAM_SCALARS, "decoupled": False}),
    "adamw": ("adam_update", 2, {**ADAM_SCALARS, "decoupled": True}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
@pytest.mark.parametrize(
    ("update", "buffers", "scalars"), SPECIAL_CASES.values(), ids=SPECIAL_CASES
)
def test_special_values_give_the_same_bits(numba, update, buffers, scalars, weight_decay, dtype):
    """inf, NaN, signed zeros, subnormals and values that overflow go through both updates
    alike (the kernels have no Python division-by-zero error and no fast-math, and skip the
    decay when weight_decay is 0, as 0 * inf is NaN)."""
    scalars = {**scalars, "weight_decay": weight_decay}
    reference = getattr(mg.optim, update)
    info = np.finfo(dtype)
    special = [0.0, -0.0, info.smallest_subnormal, -info.tiny, 1.0, -2.5, info.max, -info.max]
    special += [np.inf, -np.inf, np.nan]
    value, grad = np.array(np.meshgrid(special, special), dtype=dtype).reshape(2, -1)
    state = [np.abs(np.roll(value, k + 1)) for k in range(buffers)]  # v >= 0, as Adam keeps it
    arrays = [value, grad, *state]
    expected = [a.copy() for a in arrays]
    with np.errstate(all="ignore"):
        reference(*expected[:2], *expected[2:], **scalars, scratch=np.empty_like(value))
    getattr(fused_kernels, update)(*arrays[:2], *arrays[2:], **scalars)
    names = ["value", "grad", "state 0", "state 1"][: len(arrays)]
    for got, wanted, what in zip(arrays, expected, names, strict=True):
        assert_same_bits(got, wanted, what)


# -- 2. the fused argument ---------------------------------------------------------------------


@each_class
def test_fused_defaults_to_the_kernels_when_numba_is_installed(numba, cls):
    optimizer = cls(mg.Dense(3, 2).parameters())
    assert optimizer.fused is True
    assert cls(mg.Dense(3, 2).parameters(), fused=np.bool_(True)).fused is True
    assert cls(mg.Dense(3, 2).parameters(), fused=False).fused is False
    with pytest.raises(AttributeError):
        optimizer.fused = False  # decided at construction: the step is planned for it


@each_class
def test_without_numba_fused_none_is_the_numpy_update_and_true_says_how_to_install(
    without_numba, cls
):
    assert not fused_kernels.available()
    p = mg.Parameter(np.array([1.0, 2.0], dtype=np.float32))
    p.grad[...] = 1.0
    optimizer = cls([p], lr=0.1)
    assert optimizer.fused is False
    optimizer.step()
    assert (p.value < [1.0, 2.0]).all()
    with pytest.raises(ImportError, match=r"pip install 'minigrad-nn\[fast\]'") as error:
        cls([p], lr=0.1, fused=True)
    assert cls.__name__ in str(error.value) and "fused=False" in str(error.value)


@each_class
@pytest.mark.parametrize("fused", ["False", 0, 1, 1.0, [True]], ids=repr)
def test_fused_must_be_a_bool_or_none(cls, fused):
    with pytest.raises(TypeError, match=r"fused must be True, False or None, got"):
        cls(mg.Dense(3, 2).parameters(), fused=fused)


@each_class
def test_fused_is_keyword_only_and_not_a_hyperparameter(numba, cls):
    optimizer = cls(mg.Dense(3, 2).parameters(), lr=0.01, fused=True)
    assert "fused" not in optimizer.hyperparameters()
    assert "fused" not in optimizer.state_dict()["hyperparameters"]
    assert "fused" not in repr(optimizer)
    assert inspect.signature(cls).parameters["fused"].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_subclass_with_its_own_update_rule_is_never_fused(numba):
    class SignSGD(mg.SGD):
        def _update(self, value, grad, state, work):
            value -= self.lr * np.sign(grad)

    class CountingAdam(mg.AdamW):  # the rule unchanged: the kernel applies
        pass

    p = mg.Parameter(np.array([1.0, -1.0]))
    p.grad[...] = [0.5, -3.0]
    optimizer = SignSGD([p], lr=0.1)
    assert optimizer.fused is False
    optimizer.step()
    np.testing.assert_array_equal(p.value, [0.9, -0.9])
    with pytest.raises(ValueError, match="SignSGD has no fused kernel"):
        SignSGD([p], lr=0.1, fused=True)
    assert CountingAdam([p]).fused is True


def test_float16_parameters_keep_the_numpy_update(numba):
    """float16 is computed in float32 by the NumPy rule whatever fused says: a model mixing
    float16 and float32 fuses the float32 parameters only, with the same bits; a model of
    float16 parameters only has nothing to fuse."""
    for cls in CLASSES.values():
        fused, _ = run_both(
            cls,
            {"lr": 0.01, "weight_decay": 0.1},
            [(3, 4), (5,), (6,)],
            [np.float16, np.float16, np.float32],
            seed=1,
            steps=20,
        )
        assert [entry[0].base is fused.params[2].value for entry in fused._fused_plan] == [True]
    with pytest.raises(ValueError, match="fused=True needs float32 or float64 parameters"):
        mg.Adam([mg.Parameter(np.ones(2, np.float16))], fused=True)
    assert mg.Adam([mg.Parameter(np.ones(2, np.float16))]).fused is False


# -- 3. state, checkpoints, SafeStep -----------------------------------------------------------


@each_class
def test_state_moves_between_fused_and_numpy_optimizers_and_continues_bit_for_bit(numba, cls):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(6)]
    values = []
    for switch in (False, True):
        p = mg.Parameter(start.copy())
        optimizer = cls([p], lr=0.05, fused=True)
        for step, g in enumerate(grads):
            if switch and step == 3:  # carry on with the NumPy update from the fused state
                saved = optimizer.state_dict()
                optimizer = cls([p], lr=1.0, fused=False)
                optimizer.load_state_dict(saved)
                assert optimizer.lr == 0.05
            p.grad[...] = g
            optimizer.step()
        values.append(p.value)
    assert_same_bits(values[1], values[0], "value after 6 steps")


@pytest.mark.parametrize("cls", [mg.Momentum, mg.AdamW], ids=lambda cls: cls.__name__)
def test_a_checkpoint_of_a_fused_optimizer_resumes_with_the_default(numba, tmp_path, cls):
    pytest.importorskip("safetensors")
    model = mg.Sequential(mg.Dense(3, 4, rng=0), mg.Tanh(), mg.Dense(4, 2, rng=1))
    optimizer = cls(model.parameters(), lr=0.01, fused=False)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    for _ in range(3):
        model.backward(model(x))  # the gradient of sum(y^2) / 2
        optimizer.step()
    mg.save_checkpoint(tmp_path / "run.ckpt", model, optimizer, epoch=1, step=3)
    checkpoint = mg.load_checkpoint(tmp_path / "run.ckpt")
    assert checkpoint.optimizer.fused is True  # not stored: the default for this install
    resumed = checkpoint.optimizer
    for _ in range(3):
        for opt, net in ((optimizer, model), (resumed, checkpoint.model)):
            net.backward(net(x))
            opt.step()
    for (key, a), (_, b) in zip(
        model.state_dict().items(), checkpoint.model.state_dict().items(), strict=True
    ):
        assert_same_bits(b, a, key)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_safe_step_refuses_and_undoes_a_diverging_fused_step(numba, name):
    p = mg.Parameter(np.array([3.39e38, 1.0], dtype=np.float32))  # float32's largest: 3.403e38
    q = mg.Parameter(np.array([[0.5, -0.5]], dtype=np.float32))
    cls = CLASSES[name]
    optimizer = cls([q, p], lr=1e37 if name.startswith("adam") else 100.0, fused=True)
    assert optimizer.fused
    p.grad[...] = [-1.0 if name.startswith("adam") else -1e37, 0.0]
    q.grad[...] = [[1.0, 1.0]]
    before_values = [v.copy() for v in (q.value, p.value)]
    before_state = optimizer.state_dict()
    with pytest.raises(mg.DivergenceError, match="would make parameter 1 non-finite"):
        SafeStep(optimizer).step()
    assert_same_bits(q.value, before_values[0], "q")
    assert_same_bits(p.value, before_values[1], "p")
    for saved, now in zip(before_state["state"], optimizer.state_dict()["state"], strict=True):
        for key, value in saved.items():
            np.testing.assert_array_equal(now[key], value)


def test_a_step_keeps_refusing_read_only_buffers_and_rebinds_replaced_arrays(numba):
    p = mg.Parameter(np.ones((2, 3), np.float32))
    optimizer = mg.Adam([p], lr=0.1, fused=True)
    optimizer.state[p]["m"].flags.writeable = False
    with pytest.raises(ValueError, match=r"optimizer state 'm' of parameter 0 .* read-only"):
        optimizer.step()
    assert optimizer.state[p]["step"] == 0 and (p.value == 1).all()
    optimizer.state[p]["m"].flags.writeable = True
    p.grad = np.full((2, 3), 2.0, np.float32)  # a new gradient array: the step follows it
    optimizer.step()
    assert (p.value < 1).all()


# -- 4. import and installation --------------------------------------------------------------


def test_importing_minigrad_does_not_import_numba():
    code = (
        "import sys, minigrad; print(sorted(m for m in ('numba', 'llvmlite') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_without_a_writable_cache_directory_the_kernels_compile_in_memory(numba, monkeypatch):
    """numba refuses cache=True when neither the package directory nor a user cache directory
    is writable (a read-only install, no home): the kernels are then compiled in every
    process, and the step works the same."""
    njit, asked = numba.njit, []

    def njit_without_a_cache_directory(*args, cache=False, **options):
        asked.append(cache)
        if cache:
            raise RuntimeError("cannot cache function '_sgd_kernel': no locator available")
        return njit(*args, **options)

    monkeypatch.setattr(numba, "njit", njit_without_a_cache_directory)
    fused_kernels._compiled.cache_clear()
    try:
        p = mg.Parameter(np.array([1.0, 2.0]))
        p.grad[...] = [0.5, -1.0]
        mg.SGD([p], lr=0.1, fused=True).step()
    finally:
        fused_kernels._compiled.cache_clear()
    np.testing.assert_array_equal(p.value, [0.95, 2.1])
    assert asked[:2] == [True, False]  # (numba calls njit for its own internals too)
