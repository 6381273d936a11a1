"""Shared test settings: hypothesis profiles and a PyTorch fixture for oracle tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an oracle; tests that use it are skipped where it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    return torch


@pytest.fixture(scope="session")
def against_torch(torch):
    """``run(make, make_torch, groups, ...)``: step a minigrad optimizer and its torch.optim
    twin on the same parameters and gradients, in float64, and compare every step.

    ``groups`` is a list of (shapes, hyperparameters) pairs, one per param group; ``make``
    and ``make_torch`` (given torch first) get the matching lists of
    ``{"params": [...], **hyperparameters}``.
    Half-way, every group's lr is multiplied by ``lr_factor`` in both (a schedule's change).
    """
    import numpy as np

    from minigrad import Parameter

    def run(make, make_torch, groups, *, steps=30, lr_factor=0.3, seed=0, rtol=1e-12, atol=0.0):
        rng = np.random.default_rng(seed)
        starts = [[np.asarray(rng.normal(size=s)) for s in shapes] for shapes, _ in groups]
        ours = [[Parameter(start.copy()) for start in group] for group in starts]
        theirs = [[torch.tensor(start.copy(), requires_grad=True) for start in g] for g in starts]
        opt = make([{"params": ps, **h} for ps, (_, h) in zip(ours, groups, strict=True)])
        topt = make_torch(
            torch, [{"params": ps, **h} for ps, (_, h) in zip(theirs, groups, strict=True)]
        )
        for step in range(1, steps + 1):
            if step == steps // 2:
                for group, tgroup in zip(opt.param_groups, topt.param_groups, strict=True):
                    group["lr"] *= lr_factor
                    tgroup["lr"] *= lr_factor
            for ps, tps in zip(ours, theirs, strict=True):
                for p, tp in zip(ps, tps, strict=True):
                    grad = np.asarray(rng.normal(size=p.shape))
                    p.grad[...] = grad
                    tp.grad = torch.tensor(grad.copy())
            opt.step()
            topt.step()
            for ps, tps in zip(ours, theirs, strict=True):
                for p, tp in zip(ps, tps, strict=True):
                    np.testing.assert_allclose(
                        p.value, tp.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"step {step}"
                    )
        moved = max(
            float(np.abs(p.value - s).max())
            for ps, ss in zip(ours, starts, strict=True)
            for p, s in zip(ps, ss, strict=True)
        )
        assert moved > 1e-3, "the run hardly moved the parameters"
        return opt

    return run


# Type-checked by tests/test_typing.py, never imported: one of them holds deliberate mistakes.
collect_ignore = ["typing_cases"]


def pytest_configure(config):
    """MINIGRAD_REQUIRE="torch mypy ...": the modules that this run's skippable tests need must
    import, so that CI's fullest run cannot pass by skipping the tests that need them."""
    import importlib

    missing = []
    for name in os.environ.get("MINIGRAD_REQUIRE", "").split():
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
    if missing:
        raise pytest.UsageError(f"MINIGRAD_REQUIRE names modules that do not import: {missing}")
