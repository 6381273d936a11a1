"""ONNX export of every layer and container: onnx.checker accepts the graph and onnxruntime
computes what minigrad computes in evaluation mode."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


def run(path, x):
    # no graph rewrites: some onnxruntime versions fuse x * sigmoid(x) into a kernel that
    # exists for float32 only
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": x})
    return output


def trained_a_little(model, x, steps=3):
    """A few training-mode forwards, so that batch norm's running statistics are not their
    initial zeros and ones."""
    for _ in range(steps):
        model(x)
    return model.eval()


def every_new_layer(dtype):
    """Every layer of the family and both containers. onnxruntime's CPU kernels for Erf, Elu
    and Softplus are float32 only: a float64 graph gets the tanh GELU, and ReLU and Tanh in
    place of the ELU and the Softplus."""

    def dense(n_in, n_out, seed):
        return mg.Dense(n_in, n_out, rng=seed, dtype=dtype)

    return mg.Sequential(
        dense(6, 8, 0),
        mg.BatchNorm1d(8, dtype=dtype),
        mg.GELU() if dtype == np.float32 else mg.GELU("tanh"),
        mg.Dropout(0.3, rng=0),
        mg.Residual(mg.Sequential(dense(8, 8, 1), mg.GELU("tanh"), dense(8, 8, 2))),
        mg.LayerNorm(8, dtype=dtype),
        mg.Concat(
            mg.Sequential(dense(8, 3, 3), mg.SiLU()),
            mg.Sequential(dense(8, 4, 4), mg.ELU(0.7) if dtype == np.float32 else mg.ReLU()),
            mg.Residual(
                mg.Softplus(beta=2.0, threshold=3.0) if dtype == np.float32 else mg.Tanh(),
                mg.Identity(),
            ),
        ),
        dense(15, 5, 5),
        mg.LogSoftmax(dim=1),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_new_layer_and_container_exports_and_runs_as_in_eval_mode(tmp_path, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 6)) * 2).astype(dtype)
    model = trained_a_little(every_new_layer(dtype), x)
    mg.export_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"))
    tolerance = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(
        run(tmp_path / "m.onnx", x), model(x), rtol=tolerance, atol=tolerance
    )
    assert model[1].running_mean.value.any()  # the statistics are not the initial ones


def test_softplus_beyond_its_threshold_is_the_identity_in_the_graph(tmp_path):
    model = mg.Sequential(mg.Dense(1, 1, rng=0), mg.Softplus(2.0, 3.0))
    model[0].weight.value[...] = 1.0
    mg.export_onnx(model, tmp_path / "s.onnx")
    x = np.array([[-40.0], [-1.0], [0.0], [1.4], [1.6], [50.0]], np.float32)
    np.testing.assert_allclose(run(tmp_path / "s.onnx", x), model(x), rtol=1e-6, atol=1e-30)


def test_a_model_that_starts_with_an_embedding_takes_int64_indices(tmp_path):
    model = mg.Sequential(mg.Embedding(10, 4, rng=0), mg.Tanh())
    mg.export_onnx(model, tmp_path / "e.onnx", input_shape=(3,))
    graph = onnx.load(tmp_path / "e.onnx").graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    indices = np.array([[0, 9, 3], [3, 3, 1]], np.int64)
    np.testing.assert_allclose(run(tmp_path / "e.onnx", indices), model(indices), rtol=1e-6)


def test_batch_norm_without_running_statistics_is_refused_and_nothing_written(tmp_path):
    model = mg.Sequential(mg.Dense(2, 3, rng=0), mg.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match=r"layer 1 \(BatchNorm1d\) keeps no running statistics"):
        mg.export_onnx(model, tmp_path / "b.onnx")
    assert list(tmp_path.iterdir()) == []


def test_batch_norm_without_affine_parameters_exports(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    model = trained_a_little(
        mg.Sequential(mg.Dense(3, 4, rng=0), mg.BatchNorm1d(4, affine=False)), x
    )
    mg.export_onnx(model, tmp_path / "b.onnx")
    np.testing.assert_allclose(run(tmp_path / "b.onnx", x), model(x), rtol=1e-5, atol=1e-6)


def test_a_model_without_parameters_exports_in_float32(tmp_path):
    mg.export_onnx(mg.Sequential(mg.Tanh(), mg.Identity()), tmp_path / "t.onnx", input_shape=(2,))
    x = np.array([[0.5, -2.0]], np.float32)
    np.testing.assert_allclose(run(tmp_path / "t.onnx", x), np.tanh(x), rtol=1e-6)


def test_the_graph_names_container_children_by_their_state_dict_paths(tmp_path):
    model = mg.Sequential(
        mg.Dense(2, 2, rng=0), mg.Residual(mg.Dense(2, 2, rng=1)), mg.Concat(mg.Dense(2, 1, rng=2))
    )
    mg.export_onnx(model, tmp_path / "n.onnx")
    graph = onnx.load(tmp_path / "n.onnx").graph
    assert [t.name for t in graph.initializer] == list(model.state_dict())
    assert {"1.block", "1.shortcut", "1", "2.branches.0", "2"} <= {n.name for n in graph.node}
