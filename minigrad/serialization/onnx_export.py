"""ONNX export: a trained model as a graph that ONNX runtimes (onnxruntime, browsers, phones)
run without minigrad.

Needs the ``onnx`` package (``pip install 'minigrad-nn[onnx]'``). Each layer becomes one
standard operator: Dense -> Gemm (y = x W^T + b, ``transB=1``, the weight stored as minigrad
holds it), Tanh -> Tanh, Sigmoid -> Sigmoid, ReLU -> Relu, LeakyReLU -> LeakyRelu,
Softmax -> Softmax, and Normalization -> Sub then Div ((x - mean) / std, its statistics as
constants); a container becomes its children's nodes, wired as it wires them (a nested
Sequential in a chain). Constant tensors are named after the ``state_dict`` keys. The graph's
input ``"input"`` has shape (batch, in_features), or (batch, *input_shape) when that is
given, with a symbolic batch size, and its output is ``"output"``.

The whole graph has one float type, float16, float32 or float64, that of the model's
parameters and buffers. A model that mixes them is refused rather than exported with Cast
nodes: a cast inside the graph would compute something other than the model does in
minigrad.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minigrad._files import listing, quoted, type_name, write_atomically
from minigrad._validation import check_integer
from minigrad.layers import (
    Activation,
    Dense,
    Layer,
    LeakyReLU,
    Normalization,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
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
        multilayer perceptron. By default, the input width of the first layer that has one
        (a Dense or a Normalization, possibly after activations).

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
        input shape cannot be told and ``input_shape`` is not given, or the graph does not
        take an input of ``input_shape`` (ONNX shape inference says where).

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
        from onnx import TensorProto, helper, numpy_helper
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
        shape = _default_input_shape([layer for _, layer in named])
    elem_type = {
        np.dtype(np.float16): TensorProto.FLOAT16,
        np.dtype(np.float32): TensorProto.FLOAT,
        np.dtype(np.float64): TensorProto.DOUBLE,
    }[_graph_dtype(named)]
    graph = _Graph(helper, numpy_helper)
    last = graph.emit(model, "input", "")
    graph.nodes.append(helper.make_node("Identity", [last], ["output"], name="output"))
    input_info = helper.make_tensor_value_info("input", elem_type, ["batch", *shape])
    onnx_model = _model(
        helper, graph, input_info, helper.make_tensor_value_info("output", elem_type, None)
    )
    try:
        inferred = onnx.shape_inference.infer_shapes(onnx_model, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        # the first error is the cause; those after it are its consequences downstream
        first = str(error).split("Inference error(s): ", 1)[-1].splitlines()[0]
        raise ValueError(
            f"export_onnx: the graph does not take an input of shape (batch, "
            f"{', '.join(map(str, shape))}): {first}; pass the shape of one sample as "
            "input_shape"
        ) from None
    if last == "input":
        output_type = input_info.type
    else:
        output_type = next(info.type for info in inferred.graph.value_info if info.name == last)
    output_info = helper.make_value_info("output", output_type)
    onnx_model = _model(helper, graph, input_info, output_info)
    onnx.checker.check_model(onnx_model)
    write_atomically(path, onnx_model.SerializeToString())


def _model(helper: Any, graph: _Graph, input_info: Any, output_info: Any) -> Any:
    made = helper.make_graph(
        graph.nodes,
        "minigrad",
        inputs=[input_info],
        outputs=[output_info],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        made, producer_name="minigrad", opset_imports=[helper.make_operatorsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    return model


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
    """The nodes and initializers of the graph being built, layer by layer."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names = 0

    def fresh(self) -> str:
        """A new name for an intermediate value."""
        self._names += 1
        return f"x{self._names}"

    def emit(self, layer: Layer, x: str, path: str) -> str:
        """Add ``layer`` (at ``path`` in the model) applied to the value ``x``; the name of
        its output."""
        container = _CONTAINERS.get(type(layer))
        if container is not None:
            return container(self, layer, x, path)
        y = self.fresh()
        nodes, tensors = _CONVERTERS[type(layer)](layer, x, y, path or "0", self.helper)
        self.nodes.extend(nodes)
        self.initializers.extend(self.numpy_helper.from_array(a, name) for name, a in tensors)
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
        for parameter in [*layer.parameters(), *(b for _, b in layer.named_buffers())]:
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
    return next(iter(positions))


def _default_input_shape(layers: list[Layer]) -> tuple[int, ...]:
    """(in_features,) of the first layer, past activations, that has a fixed input width."""
    for layer in layers:
        width = getattr(layer, "in_features", None)
        if isinstance(width, int):
            return (width,)
        if not isinstance(layer, Activation):
            break
    raise ValueError(
        "export_onnx cannot tell the input shape of this model (its first layer has no "
        "fixed input width, as a Dense has): pass the shape of one sample as input_shape, "
        "e.g. input_shape=(1, 28, 28)"
    )


#: A converter turns one layer into ONNX nodes from input name x to output name y, with the
#: constant tensors (name, array) they use.
Converter = Callable[[Any, str, str, str, Any], tuple[list[Any], list[tuple[str, np.ndarray]]]]


def _dense(layer: Dense, x: str, y: str, name: str, helper: Any) -> tuple[list, list]:
    tensors = [(f"{name}.weight", layer.weight.value)]
    inputs = [x, f"{name}.weight"]
    if layer.bias is not None:
        tensors.append((f"{name}.bias", layer.bias.value))
        inputs.append(f"{name}.bias")
    return [helper.make_node("Gemm", inputs, [y], name=name, transB=1)], tensors


def _normalization(layer: Normalization, x: str, y: str, name: str, helper: Any) -> tuple:
    centred = f"{name}.centred"
    nodes = [
        helper.make_node("Sub", [x, f"{name}.mean"], [centred], name=f"{name}.sub"),
        helper.make_node("Div", [centred, f"{name}.std"], [y], name=f"{name}.div"),
    ]
    return nodes, [(f"{name}.mean", layer.mean.value), (f"{name}.std", layer.std.value)]


def _unary(op: str, **attributes: Any) -> Converter:
    def convert(layer: Layer, x: str, y: str, name: str, helper: Any) -> tuple[list, list]:
        values = {key: getter(layer) for key, getter in attributes.items()}
        return [helper.make_node(op, [x], [y], name=name, **values)], []

    return convert


_CONVERTERS: dict[type, Converter] = {
    Dense: _dense,
    Normalization: _normalization,
    Tanh: _unary("Tanh"),
    Sigmoid: _unary("Sigmoid"),
    ReLU: _unary("Relu"),
    LeakyReLU: _unary("LeakyRelu", alpha=lambda layer: layer.negative_slope),
    Softmax: _unary("Softmax", axis=lambda layer: layer.axis),
}
