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


# -- convolution, pooling and flattening --------------------------------------------------------
# onnxruntime's CPU provider runs Conv, AveragePool and GlobalAveragePool in float16 and float32
# only: their tests are float32; MaxPool, Reshape and Flatten run in float64 too.


def assert_close(actual, expected, dtype=np.float32):
    """Equal within the dtype's tolerance, relative to the scale of the expected values."""
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    scale = max(float(np.abs(expected).max()), 1.0)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


def exported(model, path, x):
    """Export ``model`` for inputs like ``x``; onnxruntime's output and minigrad's (eval)."""
    mg.export_onnx(model.eval(), path, input_shape=x.shape[1:])
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return run(path, x), model(x)


def output_shape(path):
    """The graph's output shape, None for an axis of unknown (batch) size."""
    dims = onnx.load(path).graph.output[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def node(path, op):
    (found,) = [n for n in onnx.load(path).graph.node if n.op_type == op]
    return found, {a.name: onnx.helper.get_attribute_value(a) for a in found.attribute}


CONV2D = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=(3, 2), stride=(2, 1)),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 5), padding=(1, 2), stride=2),
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same"),  # d (k - 1) = 3: 1 before, 2 after
    dict(kernel_size=(2, 5), padding="same", dilation=(3, 1)),  # 3 (1 + 2) and 4 (2 + 2)
    dict(kernel_size=3, dilation=2, padding=2, stride=2),
    dict(kernel_size=3, groups=2, padding=1),
    dict(kernel_size=3, out_channels=8, groups=4),  # depthwise
    dict(kernel_size=2, bias=False),
]


@pytest.mark.parametrize("config", CONV2D, ids=str)
def test_conv2d_exports_as_conv_and_computes_what_the_layer_does(tmp_path, config):
    config = {"out_channels": 6, **config}
    x = np.random.default_rng(0).standard_normal((2, 4, 9, 8)).astype(np.float32)
    conv = mg.Conv2d(4, rng=1, **config)
    if conv.bias is not None:  # not its initial zeros
        conv.bias.value[...] = np.linspace(-1, 1, conv.out_channels)
    got, expected = exported(mg.Sequential(conv), tmp_path / "c.onnx", x)
    assert_close(got, expected)
    assert output_shape(tmp_path / "c.onnx") == (None, *expected.shape[1:])
    found, _ = node(tmp_path / "c.onnx", "Conv")
    assert list(found.input[1:]) == ["0.weight", "0.bias"][: 1 + (conv.bias is not None)]


CONV1D = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=4, padding="same"),  # 1 before, 2 after
    dict(kernel_size=2, padding="same", dilation=3),  # 1 before, 2 after
    dict(kernel_size=5, padding="same", dilation=2),
    dict(kernel_size=3, padding="valid", dilation=2),
    dict(kernel_size=3, groups=2, bias=False),
    dict(kernel_size=3, out_channels=4, groups=4, padding=1),  # depthwise
]


@pytest.mark.parametrize("config", CONV1D, ids=str)
def test_conv1d_exports_as_conv_and_computes_what_the_layer_does(tmp_path, config):
    config = {"out_channels": 6, **config}
    x = np.random.default_rng(0).standard_normal((3, 4, 11)).astype(np.float32)
    conv = mg.Conv1d(4, rng=1, **config)
    got, expected = exported(mg.Sequential(conv), tmp_path / "c.onnx", x)
    assert_close(got, expected)
    assert output_shape(tmp_path / "c.onnx") == (None, *expected.shape[1:])


@pytest.mark.parametrize(
    ("layer", "pads"),
    [
        (mg.Conv2d(2, 2, 4, padding="same"), [1, 1, 2, 2]),
        (mg.Conv2d(2, 2, (3, 2), padding="same", dilation=(1, 3)), [1, 1, 1, 2]),
        (mg.Conv2d(2, 2, (3, 5), padding=(1, 2)), [1, 2, 1, 2]),
        (mg.Conv1d(2, 2, 4, padding="same"), [1, 2]),
    ],
    ids=repr,
)
def test_conv_pads_list_every_beginning_then_every_end(tmp_path, layer, pads):
    # an odd total of "same" padding puts the extra zero at the end, as PyTorch does
    shape = (2, 7) if isinstance(layer, mg.Conv1d) else (2, 7, 6)
    mg.export_onnx(layer, tmp_path / "c.onnx", input_shape=shape)
    assert node(tmp_path / "c.onnx", "Conv")[1]["pads"] == pads


def test_a_model_that_starts_with_a_convolution_needs_input_shape(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"cannot tell the input shape of this model: its first layer, 1 \(Conv2d\), takes "
        r"3 channels of any size; pass the shape of one sample as input_shape=\(C, H, W\), e\.g\. "
        r"input_shape=\(3, 28, 28\)",
    ):
        mg.export_onnx(mg.Sequential(mg.ReLU(), mg.Conv2d(3, 4, 3)), tmp_path / "c.onnx")
    with pytest.raises(ValueError, match=r"input_shape=\(C, L\), e\.g\. input_shape=\(2, 100\)"):
        mg.export_onnx(mg.Conv1d(2, 4, 3), tmp_path / "c.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_float64_convolution_exports_as_valid_onnx_of_doubles(tmp_path):
    # onnxruntime's CPU provider has no float64 Conv kernel, so the graph is only checked
    model = mg.Sequential(mg.Conv2d(2, 3, 3, rng=0, dtype=np.float64), mg.Flatten())
    mg.export_onnx(model, tmp_path / "c.onnx", input_shape=(2, 5, 5))
    graph = onnx.load(tmp_path / "c.onnx")
    onnx.checker.check_model(graph, full_check=True)
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert output_shape(tmp_path / "c.onnx") == (None, 27)


def channels_first(dims, channels, dtype):
    """A batch norm in ``dtype`` (near the identity in eval mode), which sets the graph's
    dtype for the parameterless layers after it."""
    norm = mg.BatchNorm1d if dims == 1 else mg.BatchNorm2d
    return norm(channels, dtype=dtype)


MAX_POOL = [
    (mg.MaxPool2d, dict(kernel_size=2)),
    (mg.MaxPool2d, dict(kernel_size=3, stride=1, padding=1)),
    (mg.MaxPool2d, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))),
    (mg.MaxPool2d, dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (mg.MaxPool1d, dict(kernel_size=3)),
    (mg.MaxPool1d, dict(kernel_size=3, stride=1, padding=1)),
    (mg.MaxPool1d, dict(kernel_size=2, stride=1, padding=1, dilation=3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "config"), MAX_POOL, ids=str)
def test_max_pooling_exports_as_max_pool_with_its_padding_never_the_maximum(
    tmp_path, cls, config, dtype
):
    dims = 1 if cls is mg.MaxPool1d else 2
    # mostly negative entries: a padding of zeros, not -inf, would win at the borders
    shape = (2, 3, 10) if dims == 1 else (2, 3, 9, 8)
    x = (np.random.default_rng(0).standard_normal(shape) - 2).astype(dtype)
    model = mg.Sequential(channels_first(dims, 3, dtype), cls(**config))
    got, expected = exported(model, tmp_path / "p.onnx", x)
    assert_close(got, expected, dtype)
    assert output_shape(tmp_path / "p.onnx") == (None, *expected.shape[1:])


AVG_POOL = [
    (mg.AvgPool2d, dict(kernel_size=2)),
    (mg.AvgPool2d, dict(kernel_size=3, stride=1, padding=1)),
    (mg.AvgPool2d, dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    (mg.AvgPool2d, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))),
    (
        mg.AvgPool2d,
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), count_include_pad=False),
    ),
    (mg.AvgPool1d, dict(kernel_size=3)),
    (mg.AvgPool1d, dict(kernel_size=3, stride=2, padding=1)),
    (mg.AvgPool1d, dict(kernel_size=4, stride=1, padding=2, count_include_pad=False)),
]


@pytest.mark.parametrize(("cls", "config"), AVG_POOL, ids=str)
def test_average_pooling_exports_as_average_pool_with_its_divisor(tmp_path, cls, config):
    shape = (2, 3, 10) if cls is mg.AvgPool1d else (2, 3, 9, 8)
    x = (np.random.default_rng(0).standard_normal(shape) + 3).astype(np.float32)
    got, expected = exported(mg.Sequential(cls(**config)), tmp_path / "p.onnx", x)
    assert_close(got, expected)
    assert output_shape(tmp_path / "p.onnx") == (None, *expected.shape[1:])
    assert node(tmp_path / "p.onnx", "AveragePool")[1]["count_include_pad"] == int(
        config.get("count_include_pad", True)
    )


ADAPTIVE = [
    (mg.AdaptiveAvgPool2d(1), (7, 5), "GlobalAveragePool"),
    (mg.AdaptiveAvgPool2d((1, 1)), (4, 6), "GlobalAveragePool"),
    (mg.AdaptiveAvgPool2d(3), (9, 6), "AveragePool"),
    (mg.AdaptiveAvgPool2d((2, None)), (8, 5), "AveragePool"),
    (mg.AdaptiveAvgPool2d((1, 3)), (7, 6), "AveragePool"),
    (mg.AdaptiveAvgPool2d(None), (3, 4), "AveragePool"),
    (mg.AdaptiveAvgPool1d(1), (7,), "GlobalAveragePool"),
    (mg.AdaptiveAvgPool1d(4), (12,), "AveragePool"),
]


@pytest.mark.parametrize(("pool", "spatial", "op"), ADAPTIVE, ids=str)
def test_adaptive_average_pooling_exports_when_its_bins_are_windows(tmp_path, pool, spatial, op):
    x = np.random.default_rng(0).standard_normal((2, 3, *spatial)).astype(np.float32)
    got, expected = exported(mg.Sequential(pool), tmp_path / "a.onnx", x)
    assert_close(got, expected)
    assert output_shape(tmp_path / "a.onnx") == (None, *expected.shape[1:])
    node(tmp_path / "a.onnx", op)  # exactly one node of that operator


@pytest.mark.parametrize(
    ("pool", "spatial", "sizes"),
    [
        (mg.AdaptiveAvgPool2d(3), (7, 7), "7 x 7 to output size 3 x 3"),
        (mg.AdaptiveAvgPool2d((2, None)), (5, 4), "5 x 4 to output size 2 x 4"),
        (mg.AdaptiveAvgPool1d(4), (3,), "3 to output size 4"),
    ],
    ids=str,
)
def test_adaptive_average_pooling_to_a_size_that_does_not_divide_is_refused(
    tmp_path, pool, spatial, sizes
):
    model = mg.Sequential(mg.ReLU(), pool)
    with pytest.raises(
        ValueError, match=rf"layer 1 \(AdaptiveAvgPool.d\(.*\)\) pools an input of size {sizes}"
    ):
        mg.export_onnx(model, tmp_path / "a.onnx", input_shape=(3, *spatial))
    assert list(tmp_path.iterdir()) == []


FLATTEN = [
    (mg.Flatten(), "Flatten"),
    (mg.Flatten(2), "Reshape"),
    (mg.Flatten(-2), "Reshape"),
    (mg.Flatten(-3, -2), "Reshape"),
    (mg.Flatten(1, 2), "Reshape"),
    (mg.Flatten(2, 2), "Reshape"),
    (mg.Flatten(0), "Reshape"),
    (mg.Flatten(0, 1), "Reshape"),
    (mg.Flatten(-3), "Flatten"),  # axis 1 of a 4-D input
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("flatten", "op"), FLATTEN, ids=str)
def test_flatten_joins_the_same_axes_as_the_layer(tmp_path, flatten, op, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(dtype)
    model = mg.Sequential(channels_first(2, 3, dtype), flatten)
    got, expected = exported(model, tmp_path / "f.onnx", x)
    assert_close(got, expected, dtype)
    # the batch axis, or the axis it is joined into, has no fixed size
    assert output_shape(tmp_path / "f.onnx") == (None, *expected.shape[1:])
    node(tmp_path / "f.onnx", op)


def test_flatten_of_axes_the_input_lacks_is_refused(tmp_path):
    model = mg.Sequential(mg.Dense(3, 4, rng=0), mg.Flatten(2))
    with pytest.raises(ValueError, match=r"layer 1 \(Flatten\(.*\)\) cannot flatten the 2-D"):
        mg.export_onnx(model, tmp_path / "f.onnx")
    assert list(tmp_path.iterdir()) == []


def small_cnn():
    def conv(n_in, n_out, seed, **config):
        return mg.Conv2d(n_in, n_out, 3, padding=1, rng=seed, **config)

    return mg.Sequential(
        conv(3, 8, 0),
        mg.BatchNorm2d(8),
        mg.ReLU(),
        mg.MaxPool2d(2),
        mg.Residual(mg.Sequential(conv(8, 8, 1), mg.ReLU(), conv(8, 8, 2, bias=False))),
        mg.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        mg.Dropout(0.2, rng=0),
        mg.Conv2d(8, 6, 2, padding="same", rng=3),
        mg.AdaptiveAvgPool2d(2),
        mg.Flatten(),
        mg.Dense(24, 5, rng=4),
    )


def small_cnn1d():
    return mg.Sequential(
        mg.Conv1d(2, 6, 4, padding="same", rng=0),
        mg.BatchNorm1d(6),
        mg.ReLU(),
        mg.MaxPool1d(3, stride=2, padding=1),
        mg.Conv1d(6, 6, 3, groups=3, dilation=2, rng=1),
        mg.AvgPool1d(2, padding=1),
        mg.AdaptiveAvgPool1d(1),
        mg.Flatten(),
        mg.Dense(6, 3, rng=2),
    )


@pytest.mark.parametrize(
    ("build", "shape", "output"),
    [(small_cnn, (4, 3, 12, 12), (None, 5)), (small_cnn1d, (4, 2, 20), (None, 3))],
    ids=["Conv2d", "Conv1d"],
)
def test_a_small_cnn_exports_and_runs_as_in_eval_mode(tmp_path, build, shape, output):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    model = trained_a_little(build(), x)
    got, expected = exported(model, tmp_path / "cnn.onnx", x)
    assert_close(got, expected)
    assert output_shape(tmp_path / "cnn.onnx") == output
    dims = onnx.load(tmp_path / "cnn.onnx").graph.output[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    names = [t.name for t in onnx.load(tmp_path / "cnn.onnx").graph.initializer]
    assert set(names) <= set(model.state_dict())
    assert model[1].running_mean.value.any()  # the statistics are not the initial ones
