"""ONNX export: a trained model as a graph that ONNX runtimes (onnxruntime, browsers, phones)
run without minigrad.

Needs the ``onnx`` package (``pip install 'minigrad-nn[onnx]'``). Each layer becomes standard
operators of opset 17:

- Dense -> Gemm (y = x W^T + b, ``transB=1``, the weight stored as minigrad holds it);
  Embedding -> Gather (the graph then takes int64 indices); Normalization -> Sub, Div (its
  statistics as constants); BatchNorm1d/2d -> BatchNormalization with the running statistics
  (what evaluation mode computes; without running statistics it is refused); LayerNorm ->
  LayerNormalization; Dropout and Identity -> Identity (evaluation mode).
- Conv1d/2d -> Conv, with the layer's kernel_shape, strides, dilations, group and explicit
  pads (begin_1, ..., begin_n, end_1, ..., end_n; "same" with an odd total padding
  d (k - 1) puts the extra zero at the end, as the layer does); MaxPool1d/2d -> MaxPool and
  AvgPool1d/2d -> AveragePool (symmetric pads, ``count_include_pad`` as the layer's,
  ceil_mode 0); AdaptiveAvgPool1d/2d -> GlobalAveragePool for an output of 1, otherwise
  AveragePool with kernel = stride = input size / output size, which is PyTorch's bins when
  the output size divides the input size (any other size is refused: its bins overlap or
  differ in size); Flatten -> Flatten(axis=1) for start_dim 1 to the last axis (ONNX's
  Flatten always makes a matrix), otherwise Reshape to (0, ..., 0, -1, d_{e+1}, ...) (0
  copies an axis).
- Tanh, Sigmoid, ReLU (Relu), LeakyReLU (LeakyRelu), ELU (Elu), Softmax, LogSoftmax -> the
  operator of that name; GELU -> its formula, 0.5 x (1 + Erf(x / sqrt 2)) or with the tanh
  approximation; SiLU -> x * Sigmoid(x); Softplus -> Softplus(beta x) / beta, and x where
  beta x > threshold.
- A container becomes its children's nodes, wired as it wires them: a Sequential in a chain,
  Residual -> Add of its block and shortcut, Concat -> Concat of its branches.

Constant tensors are named after the ``state_dict`` keys. The graph's input ``"input"`` has
shape (batch, in_features), or (batch, *input_shape) when that is given, with a symbolic batch
size, and its output is ``"output"``. (onnxruntime's CPU provider runs Erf, Elu, Softplus,
Conv, AveragePool and GlobalAveragePool in float16 and float32 only: a float64 graph holding
them is valid ONNX that it cannot run.)

The whole graph has one float type, float16, float32 or float64, that of the model's
parameters and buffers. A model that mixes them is refused rather than exported with Cast
nodes: a cast inside the graph would compute something other than the model does in
minigrad.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeGuard

import numpy as np

from minigrad._files import listing, quoted, type_name, write_atomically
from minigrad._validation import check_integer
from minigrad.layers import (
    ELU,
    GELU,
    Activation,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Concat,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    Normalization,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.layers._windows import sizes_text
from minigrad.sequential import Sequential
from minigrad.serialization.models import check_model_and_path

__all__ = ["OPSET", "export_onnx"]

#: The ONNX operator set the graph declares (Softmax along one axis needs 13 or later).
OPSET = 17
#: The file format (IR) version matching OPSET, readable by runtimes from 2021 on.
IR_VERSION = 8


def export_onnx(
    model: Layer, path: str | os.PathLike[str], *, input_shape: Sequence[int] | None = None
) -> None:
    """Write ``model`` to ``path`` as an ONNX graph, atomically.

    Each Dense becomes Gemm(x, W, b, transB=1), y = x W^T + b; each activation the ONNX
    operator of the same name (see the module docstring). Initializers are named after the
    model's ``state_dict`` keys ("0.weight", "3.1.bias", ...) and nodes after the layers'
    positions.

    Shape: the graph maps "input" (batch, d1, d2, ...) -> "output" (batch, ...), where
    (d1, d2, ...) is ``input_shape``, with a symbolic batch size, in the dtype of the
    model's parameters; the output's shape is what ONNX shape inference derives from the
    graph.

    Parameters
    ----------
    model : Layer
    path : str or PathLike
    input_shape : sequence of int, optional
        The shape of one sample, without the batch dimension: ``(in_features,)`` for a
        multilayer perceptron, ``(channels, height, width)`` for a convolutional network.
        By default, the input width of the first layer that has one (a Dense or a
        Normalization, possibly after activations); a model that starts with a convolution
        needs it.

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed.
    TypeError
        ``model`` is not a Layer or ``path`` not a path (the arguments swapped, say), or the
        parameters are of a dtype ONNX runtimes do not run here (float128) or of more than
        one dtype (the message names the layers of each).
    ValueError
        The model holds a layer with no ONNX equivalent here (the message names it), its
        input shape cannot be told and ``input_shape`` is not given, the graph does not
        take an input of ``input_shape`` (ONNX shape inference says where), or an adaptive
        average pooling's output size does not divide its input size.

    Notes
    -----
    Nothing is written when any of these is raised.

    Examples
    --------
    The lines that need ``onnx`` and ``onnxruntime`` (optional packages) are skipped:

    >>> import os, tempfile
    >>> import minigrad as mg
    >>> model = mg.Sequential(mg.Dense(4, 8, rng=0), mg.ReLU(), mg.Dense(8, 3, rng=1), mg.Softmax())
    >>> path, x = os.path.join(tempfile.mkdtemp(), "model.onnx"), np.ones((2, 4), np.float32)
    >>> mg.export_onnx(model, path)
    >>> import onnxruntime
    >>> output = onnxruntime.InferenceSession(path).run(None, {"input": x})[0]
    >>> output.shape, np.allclose(output, model(x), atol=1e-6)
    ((2, 3), True)
    """
    check_model_and_path("export_onnx", model, path)
    shape = None if input_shape is None else _checked_input_shape(input_shape)
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "export_onnx needs the onnx package: pip install 'minigrad-nn[onnx]' "
            "(or pip install onnx)"
        ) from error

    named = list(_leaves(model))
    for name, layer in named:
        if type(layer) not in _CONVERTERS:
            raise ValueError(
                f"export_onnx: layer {name} ({quoted(layer, 200)}) has no ONNX conversion; "
                "supported: "
                f"{sorted(cls.__name__ for cls in [*_CONVERTERS, *_CONTAINERS])}"
            )
    if shape is None:
        shape = _default_input_shape(named)
    dtype = _graph_dtype(named)
    elem_type = {
        np.dtype(np.float16): TensorProto.FLOAT16,
        np.dtype(np.float32): TensorProto.FLOAT,
        np.dtype(np.float64): TensorProto.DOUBLE,
    }[dtype]
    # a model that starts with an Embedding takes integer indices
    input_type = TensorProto.INT64 if isinstance(named[0][1], Embedding) else elem_type
    input_info = helper.make_tensor_value_info("input", input_type, ["batch", *shape])
    graph = _Graph(onnx, dtype, input_info, shape)
    last = graph.emit(model, "input", "")
    graph.nodes.append(helper.make_node("Identity", [last], ["output"], name="output"))
    onnx_model = _model(
        helper, graph, input_info, helper.make_tensor_value_info("output", elem_type, None)
    )
    inferred = _inferred(onnx, onnx_model, shape)
    if last == "input":
        output_type = input_info.type
    else:
        output_type = next(info.type for info in inferred.graph.value_info if info.name == last)
    output_info = helper.make_value_info("output", output_type)
    onnx_model = _model(helper, graph, input_info, output_info)
    onnx.checker.check_model(onnx_model)
    write_atomically(path, onnx_model.SerializeToString())


def _model(helper: Any, graph: _Graph, input_info: Any, output_info: Any | None) -> Any:
    """The ONNX model of the graph; without ``output_info`` (a graph still being built) it
    declares no output."""
    made = helper.make_graph(
        graph.nodes,
        "minigrad",
        inputs=[input_info],
        outputs=[] if output_info is None else [output_info],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        made, producer_name="minigrad", opset_imports=[helper.make_operatorsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    return model


def _inferred(onnx: Any, onnx_model: Any, shape: tuple[int, ...]) -> Any:
    """``onnx_model`` with the shapes ONNX shape inference derives, or a ValueError saying
    why the graph does not take an input of (batch, *shape)."""
    try:
        return onnx.shape_inference.infer_shapes(onnx_model, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        # the first error is the cause; those after it are its consequences downstream
        first = str(error).split("Inference error(s): ", 1)[-1].splitlines()[0]
        raise ValueError(
            f"export_onnx: the graph does not take an input of shape (batch, "
            f"{', '.join(map(str, shape))}): {first}; pass the shape of one sample as "
            "input_shape"
        ) from None


def _checked_input_shape(input_shape: Any) -> tuple[int, ...]:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(
            "export_onnx input_shape must be a tuple of sizes, the shape of one sample "
            f"without the batch dimension (e.g. (1, 28, 28)), got {quoted(input_shape)}"
        )
    if not input_shape:
        raise ValueError("export_onnx input_shape must hold at least one size, got ()")
    return tuple(
        check_integer(f"export_onnx input_shape[{i}]", size, minimum=1)
        for i, size in enumerate(input_shape)
    )


class _Graph:
    """The nodes and constant tensors (initializers) of the graph being built, layer by
    layer, in the graph's float ``dtype``, from the input ``input_info`` of one sample's
    shape ``input_shape``."""

    def __init__(
        self, onnx: Any, dtype: np.dtype, input_info: Any, input_shape: tuple[int, ...]
    ) -> None:
        self.onnx, self.helper, self.numpy_helper = onnx, onnx.helper, onnx.numpy_helper
        self.dtype, self.input_info, self.input_shape = dtype, input_info, input_shape
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names = 0

    def fresh(self) -> str:
        """A new name for an intermediate value."""
        self._names += 1
        return f"x{self._names}"

    def node(self, op: str, inputs: list[str], output: str, name: str, **attributes: Any) -> str:
        """Add one operator node; its output's name."""
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def constant(self, name: str, value: Any) -> str:
        """Add a constant tensor (a parameter's value, or a number in the graph's dtype)."""
        array = np.asarray(value) if isinstance(value, np.ndarray) else np.array(value, self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def shape(self, value: str) -> tuple[int | None, ...] | None:
        """The shape of ``value`` that ONNX shape inference derives from the graph built so
        far: an int per axis, None for one of unknown size (the batch); None when not even
        the rank is known."""
        inferred = _inferred(
            self.onnx, _model(self.helper, self, self.input_info, None), self.input_shape
        )
        graph = inferred.graph
        info = next(i for i in (*graph.input, *graph.value_info) if i.name == value)
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)

    def emit(self, layer: Layer, x: str, path: str) -> str:
        """Add ``layer`` (at ``path`` in the model) applied to the value ``x``; the name of
        its output."""
        container = _CONTAINERS.get(type(layer))
        if container is not None:
            return container(self, layer, x, path)
        y = self.fresh()
        _CONVERTERS[type(layer)](layer, x, y, path or "0", self)
        return y


def _sequential(graph: _Graph, layer: Sequential, x: str, path: str) -> str:
    for index, child in enumerate(layer):
        x = graph.emit(child, x, f"{path}.{index}" if path else str(index))
    return x


#: Containers become the subgraphs of their children, wired together: (graph, layer, input
#: name, path) -> output name.
_CONTAINERS: dict[type, Callable[[_Graph, Any, str, str], str]] = {Sequential: _sequential}


def _leaves(layer: Layer, path: str = "") -> Iterator[tuple[str, Layer]]:
    """The leaf layers, depth first, each with its position ("2", or "4.0" inside a nested
    container; "0" for a model that is a single layer)."""
    if type(layer) in _CONTAINERS:
        for name, child in layer.children():
            yield from _leaves(child, f"{path}.{name}" if path else name)
    else:
        yield path or "0", layer


#: What ONNX runtimes run for Gemm and the activations, by NumPy dtype.
_ONNX_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _graph_dtype(named: list[tuple[str, Layer]]) -> np.dtype:
    """The one float dtype of every parameter, or TypeError naming the layers of each."""
    positions: dict[np.dtype, list[str]] = {}
    for name, layer in named:
        arrays = [*layer.parameters(), *(b for _, b in layer.named_buffers())]
        for parameter in (a for a in arrays if a.dtype.kind == "f"):  # not counts (int64)
            if parameter.dtype not in _ONNX_FLOATS:
                raise TypeError(
                    f"export_onnx: layer {name} ({type_name(layer)}) has {parameter.dtype} "
                    "parameters; ONNX export writes float16, float32 or float64 (convert the "
                    "model, e.g. build its layers with dtype=np.float64)"
                )
            found = positions.setdefault(parameter.dtype, [])
            if name not in found:
                found.append(name)
    if len(positions) > 1:
        mixed = "; ".join(
            f"{dtype} in layers {listing(names)}" for dtype, names in positions.items()
        )
        raise TypeError(
            f"export_onnx: the model mixes parameter dtypes ({mixed}); an ONNX graph has one "
            "float type (build every layer with the same dtype)"
        )
    return next(iter(positions), np.dtype(np.float32))  # no parameters: minigrad's default


def _default_input_shape(named: list[tuple[str, Layer]]) -> tuple[int, ...]:
    """(in_features,) of the first layer, past activations, that has a fixed input width.
    A convolution has none (it takes any length, height and width): a ValueError asks for
    input_shape, in the layout it takes."""
    for name, layer in named:
        width = getattr(layer, "in_features", None)
        if isinstance(width, int):
            return (width,)
        if isinstance(layer, (Conv1d, Conv2d)):
            axes, example = ("L", "100") if isinstance(layer, Conv1d) else ("H, W", "28, 28")
            raise ValueError(
                f"export_onnx cannot tell the input shape of this model: its first layer, "
                f"{name} ({type_name(layer)}), takes {layer.in_channels} channels of any "
                f"size; pass the shape of one sample as input_shape=(C, {axes}), e.g. "
                f"input_shape=({layer.in_channels}, {example})"
            )
        if not isinstance(layer, Activation):
            break
    raise ValueError(
        "export_onnx cannot tell the input shape of this model (its first layer has no "
        "fixed input width, as a Dense has): pass the shape of one sample as input_shape, "
        "e.g. input_shape=(1, 28, 28)"
    )


#: A converter adds one layer's nodes to the graph, from input name x to output name y.
Converter = Callable[[Any, str, str, str, _Graph], None]


def _dense(layer: Dense, x: str, y: str, name: str, graph: _Graph) -> None:
    inputs = [x, graph.constant(f"{name}.weight", layer.weight.value)]
    if layer.bias is not None:
        inputs.append(graph.constant(f"{name}.bias", layer.bias.value))
    graph.node("Gemm", inputs, y, name, transB=1)


def _normalization(layer: Normalization, x: str, y: str, name: str, graph: _Graph) -> None:
    mean = graph.constant(f"{name}.mean", layer.mean.value)
    centred = graph.node("Sub", [x, mean], f"{name}.centred", f"{name}.sub")
    graph.node("Div", [centred, graph.constant(f"{name}.std", layer.std.value)], y, f"{name}.div")


def _batch_norm(layer: BatchNorm1d | BatchNorm2d, x: str, y: str, name: str, graph: _Graph) -> None:
    """BatchNormalization in inference mode: the running statistics, as in eval mode."""
    if layer.running_mean is None or layer.running_var is None:
        raise ValueError(
            f"export_onnx: layer {name} ({type_name(layer)}) keeps no running statistics "
            "(track_running_stats=False), so it normalizes every batch with that batch's own "
            "statistics; ONNX's BatchNormalization needs fixed ones"
        )
    features = layer.num_features
    scale = layer.weight.value if layer.weight is not None else np.ones(features, graph.dtype)
    shift = layer.bias.value if layer.bias is not None else np.zeros(features, graph.dtype)
    inputs = [
        x,
        graph.constant(f"{name}.weight", scale),
        graph.constant(f"{name}.bias", shift),
        graph.constant(f"{name}.running_mean", layer.running_mean.value),
        graph.constant(f"{name}.running_var", layer.running_var.value),
    ]
    graph.node("BatchNormalization", inputs, y, name, epsilon=layer.eps)


def _layer_norm(layer: LayerNorm, x: str, y: str, name: str, graph: _Graph) -> None:
    shape = tuple(layer.normalized_shape)
    weight = layer.weight.value if layer.weight is not None else np.ones(shape, graph.dtype)
    inputs = [x, graph.constant(f"{name}.weight", weight)]
    if layer.bias is not None:
        inputs.append(graph.constant(f"{name}.bias", layer.bias.value))
    graph.node("LayerNormalization", inputs, y, name, axis=-len(shape), epsilon=layer.eps)


def _embedding(layer: Embedding, x: str, y: str, name: str, graph: _Graph) -> None:
    graph.node("Gather", [graph.constant(f"{name}.weight", layer.weight.value), x], y, name)


def _spatial_axes(layer: Layer) -> int:
    """1 for a layer over (batch, channels, length) sequences, 2 for one over images."""
    return 1 if isinstance(layer, (MaxPool1d, AvgPool1d, AdaptiveAvgPool1d)) else 2


def _per_axis(value: int | tuple[int, ...], dims: int) -> list[int]:
    """A size as the layer keeps it (an int for every axis, or a tuple) as one per axis."""
    return list(value) if isinstance(value, tuple) else [value] * dims


def _conv_pads(layer: Conv1d | Conv2d) -> list[int]:
    """ONNX's pads [begin_1, ..., begin_n, end_1, ..., end_n] of the layer's zero padding.

    An int p pads p on both sides; "valid" nothing; "same" the total t = d (k - 1) of each
    axis, floor(t / 2) at the beginning and the rest, one more when t is odd, at the end
    (PyTorch's split, which the layer follows). Written out rather than as ``auto_pad``,
    whose SAME_UPPER is that split only for stride 1."""
    dims = len(layer.kernel_size)
    if layer.padding == "valid":
        return [0] * (2 * dims)
    if layer.padding == "same":
        totals = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation, strict=True)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    return [*layer.padding, *layer.padding]


def _conv(layer: Conv1d | Conv2d, x: str, y: str, name: str, graph: _Graph) -> None:
    """Conv(x, W, b): y[n, o, p] = b[o] + sum_{c, i} W[o, c, i] x~[n, gamma Cg + c, p s + i d]
    over each axis, with the layer's kernel, strides, dilations, groups and padding."""
    inputs = [x, graph.constant(f"{name}.weight", layer.weight.value)]
    if layer.bias is not None:
        inputs.append(graph.constant(f"{name}.bias", layer.bias.value))
    graph.node(
        "Conv",
        inputs,
        y,
        name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        group=layer.groups,
        pads=_conv_pads(layer),
    )


def _max_pool(layer: MaxPool1d | MaxPool2d, x: str, y: str, name: str, graph: _Graph) -> None:
    """MaxPool: the largest entry of each window; ONNX's pads, as the layer's, are never the
    maximum (-inf). (A window with every tap in the padding, which only a large dilation
    allows, is -inf in minigrad and the dtype's lowest float in onnxruntime.)"""
    dims = _spatial_axes(layer)
    pads = _per_axis(layer.padding, dims)
    graph.node(
        "MaxPool",
        [x],
        y,
        name,
        kernel_shape=_per_axis(layer.kernel_size, dims),
        strides=_per_axis(layer.stride, dims),
        pads=pads + pads,
        dilations=_per_axis(layer.dilation, dims),
        ceil_mode=0,
    )


def _avg_pool(layer: AvgPool1d | AvgPool2d, x: str, y: str, name: str, graph: _Graph) -> None:
    """AveragePool: the mean of each window, over kh kw entries (count_include_pad=1) or
    over those inside the input (0)."""
    dims = _spatial_axes(layer)
    pads = _per_axis(layer.padding, dims)
    graph.node(
        "AveragePool",
        [x],
        y,
        name,
        kernel_shape=_per_axis(layer.kernel_size, dims),
        strides=_per_axis(layer.stride, dims),
        pads=pads + pads,
        count_include_pad=int(layer.count_include_pad),
        ceil_mode=0,
    )


def _adaptive_avg_pool(
    layer: AdaptiveAvgPool1d | AdaptiveAvgPool2d, x: str, y: str, name: str, graph: _Graph
) -> None:
    """GlobalAveragePool for an output of 1 on every axis; otherwise AveragePool with
    kernel = stride = n / m on an axis of n entries pooled to m. PyTorch's bin o spans
    [floor(o n / m), ceil((o + 1) n / m)), which is [o n / m, (o + 1) n / m), that window,
    exactly when m divides n; other sizes (overlapping or unequal bins) are refused."""
    dims = _spatial_axes(layer)
    wanted = (
        layer.output_size if isinstance(layer.output_size, tuple) else (layer.output_size,) * dims
    )
    if all(size == 1 for size in wanted):
        graph.node("GlobalAveragePool", [x], y, name)
        return
    shape = graph.shape(x)
    spatial = None if shape is None or len(shape) != dims + 2 else shape[2:]
    if spatial is None or not _all_known(spatial):
        raise ValueError(
            f"export_onnx: layer {name} ({quoted(layer, 200)}) pools to an output size other "
            "than 1, which needs the input's size, and ONNX shape inference does not tell it "
            f"(the input there has shape {shape})"
        )
    out = tuple(n if m is None else m for n, m in zip(spatial, wanted, strict=True))
    if any(n % m for n, m in zip(spatial, out, strict=True)):
        raise ValueError(
            f"export_onnx: layer {name} ({quoted(layer, 200)}) pools an input of size "
            f"{sizes_text(spatial)} to output size {sizes_text(out)}, which ONNX's "
            "AveragePool cannot compute: the output size must divide the input size (its "
            "bins then are windows side by side), or be 1"
        )
    kernel = [n // m for n, m in zip(spatial, out, strict=True)]
    graph.node("AveragePool", [x], y, name, kernel_shape=kernel, strides=kernel)


def _all_known(sizes: tuple[int | None, ...]) -> TypeGuard[tuple[int, ...]]:
    """Whether shape inference told every size (None: unknown)."""
    return None not in sizes


def _flatten(layer: Flatten, x: str, y: str, name: str, graph: _Graph) -> None:
    """Flatten(axis=1) when the layer joins the axes 1..last, (d_0, d_1 ... d_last); any
    other range s..e through Reshape to (0, ..., 0, -1, d_{e+1}, ...), 0 copying an axis
    before s and -1 the product of s..e (ONNX's Flatten would join the axes before s too).
    The input's rank, and the sizes after e, come from ONNX shape inference."""
    shape = graph.shape(x)
    if shape is None:  # pragma: no cover - the input's rank is always known here
        raise ValueError(
            f"export_onnx: layer {name} ({quoted(layer, 200)}) needs the rank of its input, "
            "which ONNX shape inference does not tell"
        )
    ndim = len(shape)
    start = layer.start_dim + ndim if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + ndim if layer.end_dim < 0 else layer.end_dim
    if not (0 <= start <= end < ndim):
        raise ValueError(
            f"export_onnx: layer {name} ({quoted(layer, 200)}) cannot flatten the "
            f"{ndim}-D input it gets there, of shape {shape} (batch first)"
        )
    if start == 1 and end == ndim - 1:
        graph.node("Flatten", [x], y, name, axis=1)
        return
    after = shape[end + 1 :]
    if None in after:  # pragma: no cover - only the batch axis, the first, is unknown
        raise ValueError(
            f"export_onnx: layer {name} ({quoted(layer, 200)}) keeps axes of unknown size "
            f"after end_dim, in an input of shape {shape}"
        )
    target = np.array([0] * start + [-1] + list(after), np.int64)
    graph.node("Reshape", [x, graph.constant(f"{name}.shape", target)], y, name)


def _gelu(layer: GELU, x: str, y: str, name: str, graph: _Graph) -> None:
    """0.5 x (1 + erf(x / sqrt 2)), or with tanh(sqrt(2/pi) (x + 0.044715 x^3)) for erf."""
    if layer.approximate == "tanh":
        cube = graph.node("Mul", [x, x], f"{name}.square", f"{name}.square")
        cube = graph.node("Mul", [cube, x], f"{name}.cube", f"{name}.cube")
        scaled = graph.node(
            "Mul", [cube, graph.constant(f"{name}.c", 0.044715)], f"{name}.scaled", f"{name}.c"
        )
        inner = graph.node("Add", [x, scaled], f"{name}.inner", f"{name}.inner")
        inner = graph.node(
            "Mul",
            [inner, graph.constant(f"{name}.k", math.sqrt(2 / math.pi))],
            f"{name}.inner_k",
            f"{name}.k",
        )
        curve = graph.node("Tanh", [inner], f"{name}.curve", f"{name}.tanh")
    else:
        halved = graph.node(
            "Div", [x, graph.constant(f"{name}.sqrt2", math.sqrt(2))], f"{name}.z", f"{name}.z"
        )
        curve = graph.node("Erf", [halved], f"{name}.curve", f"{name}.erf")
    one = graph.node("Add", [curve, graph.constant(f"{name}.one", 1.0)], f"{name}.p", f"{name}.p")
    half = graph.node("Mul", [x, graph.constant(f"{name}.half", 0.5)], f"{name}.h", f"{name}.h")
    graph.node("Mul", [half, one], y, name)


def _silu(layer: SiLU, x: str, y: str, name: str, graph: _Graph) -> None:
    gate = graph.node("Sigmoid", [x], f"{name}.gate", f"{name}.sigmoid")
    graph.node("Mul", [x, gate], y, name)


def _softplus(layer: Softplus, x: str, y: str, name: str, graph: _Graph) -> None:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    beta = graph.constant(f"{name}.beta", layer.beta)
    bx = graph.node("Mul", [x, beta], f"{name}.bx", f"{name}.bx")
    soft = graph.node("Softplus", [bx], f"{name}.soft", f"{name}.softplus")
    soft = graph.node("Div", [soft, beta], f"{name}.scaled", f"{name}.scaled")
    threshold = graph.constant(f"{name}.threshold", layer.threshold)
    linear = graph.node("Greater", [bx, threshold], f"{name}.linear", f"{name}.linear")
    graph.node("Where", [linear, x, soft], y, name)


def _unary(op: str, **attributes: Any) -> Converter:
    def convert(layer: Layer, x: str, y: str, name: str, graph: _Graph) -> None:
        graph.node(op, [x], y, name, **{key: get(layer) for key, get in attributes.items()})

    return convert


def _residual(graph: _Graph, layer: Residual, x: str, path: str) -> str:
    """block(x) + shortcut(x)."""
    prefix = f"{path}." if path else ""
    block = graph.emit(layer.block, x, f"{prefix}block")
    shortcut = graph.emit(layer.shortcut, x, f"{prefix}shortcut")
    return graph.node("Add", [block, shortcut], graph.fresh(), path or "residual")


def _concat(graph: _Graph, layer: Concat, x: str, path: str) -> str:
    prefix = f"{path}." if path else ""
    outputs = [
        graph.emit(branch, x, f"{prefix}branches.{index}")
        for index, branch in enumerate(layer.branches)
    ]
    return graph.node("Concat", outputs, graph.fresh(), path or "concat", axis=layer.dim)


_CONTAINERS.update({Residual: _residual, Concat: _concat})

_CONVERTERS: dict[type, Converter] = {
    Dense: _dense,
    Normalization: _normalization,
    BatchNorm1d: _batch_norm,
    BatchNorm2d: _batch_norm,
    LayerNorm: _layer_norm,
    Embedding: _embedding,
    Conv1d: _conv,
    Conv2d: _conv,
    MaxPool1d: _max_pool,
    MaxPool2d: _max_pool,
    AvgPool1d: _avg_pool,
    AvgPool2d: _avg_pool,
    AdaptiveAvgPool1d: _adaptive_avg_pool,
    AdaptiveAvgPool2d: _adaptive_avg_pool,
    Flatten: _flatten,
    Dropout: _unary("Identity"),  # evaluation mode: the identity
    Identity: _unary("Identity"),
    Tanh: _unary("Tanh"),
    Sigmoid: _unary("Sigmoid"),
    ReLU: _unary("Relu"),
    LeakyReLU: _unary("LeakyRelu", alpha=lambda layer: layer.negative_slope),
    ELU: _unary("Elu", alpha=lambda layer: layer.alpha),
    GELU: _gelu,
    SiLU: _silu,
    Softplus: _softplus,
    Softmax: _unary("Softmax", axis=lambda layer: layer.axis),
    LogSoftmax: _unary("LogSoftmax", axis=lambda layer: layer.dim),
}
