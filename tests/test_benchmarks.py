"""The step benchmark: it runs end to end, and its implementations all do the same step.

No test here looks at a timing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "step_benchmark.py"
    spec = importlib.util.spec_from_file_location("step_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_smoke_run_computes_every_result_and_writes_only_when_asked(bench, tmp_path, monkeypatch):
    tracked = tmp_path / "results"  # stands in for benchmarks/results/, the tracked files
    monkeypatch.setattr(bench, "RESULTS", tracked)
    results = bench.main(["--smoke", "--optimizers", "sgd"])
    assert not tracked.exists()
    assert bench.parse_args([]).out is None
    assert bench.parse_args(["--write"]).out == tracked
    assert bench.parse_args(["--out", str(tmp_path / "x")]).out == tmp_path / "x"

    bench.write(results, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "step.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert [(row["config"], row["optimizer"]) for row in saved["steps"]] == [
        ("xor", "sgd"),
        ("digits", "sgd"),
    ]
    for row in saved["steps"]:
        for mode in ("isolated", "interleaved"):
            assert {"minigrad", "minigrad_zero_grad", "floor", "numpy"} <= set(row[mode]["seconds"])
            assert all(seconds > 0 for seconds in row[mode]["seconds"].values())
            assert {"minigrad/floor", "minigrad/numpy", "minigrad_zero_grad/floor"} <= set(
                row[mode]["ratios"]
            )
    assert saved["environment"]["cpus"] >= 1
    assert "minigrad_fused_update" in saved["environment"]
    (memory,) = saved["memory"]
    assert 0 < memory["minigrad"]["held_before_step"] <= memory["minigrad"]["peak"]
    assert memory["minigrad"]["budget"] > 0
    assert [row["batch"] for row in saved["scaling"]["batch"]] == [8, 16]
    table = (tmp_path / "out" / "step.md").read_text()
    assert "| xor | sgd |" in table and "| digits | sgd |" in table
    pytest.importorskip("matplotlib")
    assert (tmp_path / "out" / "step.png").stat().st_size > 1000


def test_ratios_are_paired_turn_by_turn(bench):
    """A slow turn slows both sides of its pair; the paired median ignores the drift."""
    per_pass = {"minigrad": [1.0, 2.0, 3.0, 10.0, 1.2], "torch": [2.0, 4.0, 6.0, 1.0, 2.4]}
    result = bench.summary(per_pass)
    assert result["seconds"] == {"minigrad": 2.0, "torch": 2.4}
    assert result["ratios"] == {"minigrad/torch": 0.5}


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_minigrad_and_the_hand_written_step_compute_the_same_update(bench, optimizer):
    sizes, batch = (6, 5, 4, 3), 7
    x, y, weights = bench.problem(sizes, batch)
    ours = bench.minigrad_step(sizes, weights, x, y, optimizer)
    hand = bench.numpy_step(sizes, weights, x, y, optimizer)
    for _ in range(3):
        ours()
        hand()
    dense = [layer for layer in ours.model if hasattr(layer, "weight")]
    for index, layer in enumerate(dense):
        np.testing.assert_allclose(layer.weight.value, hand.params[2 * index], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(
            layer.bias.value, hand.params[2 * index + 1], rtol=1e-4, atol=1e-6
        )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_minigrad_and_torch_compute_the_same_update(bench, torch, optimizer):
    sizes, batch = (6, 5, 4, 3), 7
    x, y, weights = bench.problem(sizes, batch)
    ours = bench.minigrad_step(sizes, weights, x, y, optimizer)
    theirs = bench.torch_step(sizes, weights, x, y, optimizer)
    for _ in range(3):
        ours()
        theirs()
    for key, value in theirs.model.state_dict().items():
        np.testing.assert_allclose(
            ours.model.state_dict()[key], value.numpy(), rtol=1e-4, atol=1e-6
        )


@pytest.fixture
def fit_bench():
    path = ROOT / "benchmarks" / "fit_benchmark.py"
    spec = importlib.util.spec_from_file_location("fit_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fit_benchmark_compares_fit_with_the_bare_loop_and_writes_only_when_asked(
    fit_bench, tmp_path, monkeypatch
):
    module = fit_bench
    module.EPOCHS = 1
    tracked = tmp_path / "results"  # stands in for benchmarks/results/, the tracked files
    monkeypatch.setattr(module, "RESULTS", tracked)
    results = module.main(["--turns", "1"])
    assert not tracked.exists()
    assert set(results["ratio_to_bare_loop"]) == {"fit", "fit + progress bar"}
    assert all(ratio > 0 for ratio in results["ratio_to_bare_loop"].values())

    written = module.main(["--turns", "1", "--write"])
    assert json.loads((tracked / "fit.json").read_text()) == written
    module.main(["--turns", "1", "--out", str(tmp_path / "elsewhere")])
    assert (tmp_path / "elsewhere" / "fit.json").is_file()


@pytest.mark.parametrize("turns", ["0", "-2"])
def test_the_fit_benchmark_refuses_no_turns(fit_bench, turns, capsys):
    with pytest.raises(SystemExit):
        fit_bench.parse_args(["--turns", turns])
    assert f"--turns must be >= 1, got {turns}" in capsys.readouterr().err


def test_the_step_benchmark_refuses_empty_timings(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--passes", "0"])
    assert "--rounds and --passes must be >= 1 and --round-seconds > 0, got 3, 0 and 0.03" in (
        capsys.readouterr().err
    )


def test_the_safe_step_benchmark_runs_and_its_checked_step_is_the_plain_step(capsys):
    path = ROOT / "benchmarks" / "safe_step_benchmark.py"
    spec = importlib.util.spec_from_file_location("safe_step_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--smoke"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 6  # header, rule, two sizes x three optimizers
    # what the benchmark times as fit's step changes the parameters exactly as a plain step
    plain, loss, opt, x, y = module.setup((6, 5, 3), 4, "adam")
    checked, _, checked_opt, _, _ = module.setup((6, 5, 3), 4, "adam")
    guard = module.SafeStep(checked_opt)
    bounds = module.GradientBounds(checked, loss, float(np.linalg.norm(x, axis=1).max()), 6)
    for _ in range(5):
        loss(plain(x), y)
        plain.backward(loss.backward())
        opt.step()
        value = loss(checked(x), y)
        checked.backward(loss.backward())
        guard.step(bounds.for_step(guard.params, len(x), value, len(x) * 3))
    for key, array in plain.state_dict().items():
        np.testing.assert_array_equal(checked.state_dict()[key], array)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_the_loop_variants_compute_the_same_update_bit_for_bit(bench, optimizer):
    """zero_grad first, or the NumPy update instead of the fused one, changes no bit."""
    sizes, batch = (6, 5, 4, 3), 7
    x, y, weights = bench.problem(sizes, batch)
    variants = [
        bench.minigrad_step(sizes, weights, x, y, optimizer),
        bench.minigrad_step(sizes, weights, x, y, optimizer, zero_grad=True),
    ]
    if bench.fused_by_default():
        variants.append(bench.minigrad_step(sizes, weights, x, y, optimizer, fused=False))
    for _ in range(3):
        for step in variants:
            step()
    reference = variants[0].model.state_dict()
    for step in variants[1:]:
        for key, value in step.model.state_dict().items():
            np.testing.assert_array_equal(value, reference[key])


def test_an_isolated_minigrad_worker_never_imports_torch():
    path = str(ROOT / "benchmarks" / "step_benchmark.py")
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('b', {path!r})\n"
        "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
        "b.main(['--worker', 'minigrad', 'xor', 'sgd'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    turn = '{"rounds": 1, "round_seconds": 0.001, "passes": 1, "warmup": 0.0}\n'
    result = subprocess.run(
        [sys.executable, "-c", script], input=turn * 2, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    per_turn = [float(line) for line in result.stdout.split()]
    assert len(per_turn) == 2 and all(seconds > 0 for seconds in per_turn)


def test_the_cnn_benchmark_smoke_run_times_every_implementation(tmp_path):
    path = ROOT / "benchmarks" / "cnn_benchmark.py"
    spec = importlib.util.spec_from_file_location("cnn_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--smoke", "--out", str(tmp_path)])
    (row,) = results["rows"]
    assert {"minigrad", "floor", "numpy"} <= set(row["isolated"]["seconds"])
    assert row["memory"]["peak"] > 0 and (tmp_path / "cnn.md").exists()


def test_the_mpi_benchmark_smoke_run_reports_every_rank_count_and_the_cost_model(tmp_path):
    """1 and 2 ranks under mpiexec (a few seconds); skipped without mpi4py or mpiexec."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'minigrad-nn[distributed]'")
    path = ROOT / "benchmarks" / "mpi_benchmark.py"
    spec = importlib.util.spec_from_file_location("mpi_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.mpiexec() is None:
        pytest.skip("needs mpiexec: pip install 'minigrad-nn[distributed]'")
    results = module.main(["--smoke", "--out", str(tmp_path)])  # each launch has a timeout
    assert {"environment", "mpi", "settings", "links", "network", "compute", "measured"} <= set(
        results
    )
    assert [(row["model"], row["ranks"]) for row in results["measured"]] == [
        ("mlp", 1),
        ("mlp", 2),
        ("cnn", 1),
        ("cnn", 2),
    ]
    for row in results["measured"]:
        assert row["step_seconds"] > 0 and row["samples_per_second"] > 0
        assert row["bytes_per_step"] > 0 and row["calls_per_step"] == 1
        assert 0 <= row["allreduce_seconds_per_step"] < row["step_seconds"]
        assert {"speed_up", "predicted_step_seconds", "error", "oversubscribed"} <= set(row)
    network = results["network"]
    assert network["latency_seconds"] > 0 and network["bandwidth_bytes_per_second"] > 0
    for name in ("mlp", "cnn"):
        links = results["predictions"][name]
        assert set(links) == {*module.LINKS, "this machine"}
        weak = links["100 Gbit/s InfiniBand"]["weak"]
        assert weak["ranks"][0] == 1 and weak["ranks"][-1] == 1024
        assert weak["step_seconds"] == sorted(weak["step_seconds"])  # more ranks, more to say
    saved = json.loads((tmp_path / "mpi.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert "| mlp | 2 | 4 |" in (tmp_path / "mpi.md").read_text()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "mpi.png").stat().st_size > 1000
