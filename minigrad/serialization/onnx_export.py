"""ONNX export: a trained model as a graph that ONNX runtimes (onnxruntime, browsers, phones)
run without minigrad.

Needs the ``onnx`` package (``pip install 'minigrad-nn[onnx]'``). Each layer becomes one
standard operator: Dense -> Gemm (y = x W^T + b, ``transB=1``, the weight stored as minigrad
holds it), Tanh -> Tanh, Sigmoid -> Sigmoid, ReLU -> Relu, LeakyReLU -> LeakyRelu,
Softmax -> Softmax, and Normalization -> Sub then Div ((x - mean) / std, its statistics as
constants); nested Sequentials are flattened. The graph's input ``"input"`` has shape
(batch, in_features) with a symbolic batch size, and its output is ``"output"``.

The whole graph has one float type, float16, float32 or float64, that of the model's
parameters and buffers. A model that mixes them is refused rather than exported with Cast
nodes: a cast inside the graph would compute something other than the model does in
minigrad.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad._files import listing, quoted, type_name, write_atomically
from minigrad.layers import (
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


def export_onnx(model: Layer, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` as an ONNX graph, atomically.

    Each Dense becomes Gemm(x, W, b, transB=1), y = x W^T + b; each activation the ONNX
    operator of the same name (see the module docstring).

    Shape: the graph maps "input" (batch, in_features) -> "output" (batch, out_features),
    with a symbolic batch size, in the dtype of the model's parameters.

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed.
    TypeError
        ``model`` is not a Layer or ``path`` not a path (the arguments swapped, say), or the
        parameters are of a dtype ONNX runtimes do not run here (float128) or of more than
        one dtype (the message names the layers of each).
    ValueError
        The model holds a layer with no ONNX equivalent here (the message names it), or
        has no Dense layer to fix its input width.

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
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "export_onnx needs the onnx package: pip install 'minigrad-nn[onnx]' "
            "(or pip install onnx)"
        ) from error

    named = list(_flatten(model))
    layers = [layer for _, layer in named]
    for name, layer in named:
        if type(layer) not in _CONVERTERS:
            raise ValueError(
                f"export_onnx: layer {name} ({quoted(layer, 200)}) has no ONNX conversion; "
                "supported: "
                f"{sorted(cls.__name__ for cls in _CONVERTERS)}"
            )
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense:
        raise ValueError("export_onnx needs a Dense layer to know the input width")
    elem_type = {
        np.dtype(np.float16): TensorProto.FLOAT16,
        np.dtype(np.float32): TensorProto.FLOAT,
        np.dtype(np.float64): TensorProto.DOUBLE,
    }[_graph_dtype(named)]
    nodes, initializers = [], []
    current = "input"
    for index, layer in enumerate(layers):
        output = "output" if index == len(layers) - 1 else f"x{index + 1}"
        made, tensors = _CONVERTERS[type(layer)](layer, current, output, f"layer{index}", helper)
        nodes.extend(made)
        initializers.extend(numpy_helper.from_array(array, name) for name, array in tensors)
        current = output
    width = dense[-1].out_features if _last_width_is_dense(layers) else None
    graph = helper.make_graph(
        nodes,
        "minigrad",
        inputs=[helper.make_tensor_value_info("input", elem_type, ["batch", _input_width(layers)])],
        outputs=[helper.make_tensor_value_info("output", elem_type, ["batch", width])],
        initializer=initializers,
    )
    onnx_model = helper.make_model(
        graph,
        producer_name="minigrad",
        opset_imports=[helper.make_operatorsetid("", OPSET)],
    )
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    write_atomically(path, onnx_model.SerializeToString())


def _flatten(layer: Layer, name: str = "") -> Iterator[tuple[str, Layer]]:
    """The leaf layers in order, each with its position ("2", or "4.0" inside a nested
    Sequential; "0" for a model that is a single layer)."""
    if isinstance(layer, Sequential):
        for index, child in enumerate(layer):
            yield from _flatten(child, f"{name}.{index}" if name else str(index))
    else:
        yield name or "0", layer


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


def _input_width(layers: list[Layer]) -> int:
    """The input width the first width-setting layer (a Dense or a Normalization) expects."""
    return next(layer.in_features for layer in layers if isinstance(layer, (Dense, Normalization)))


def _last_width_is_dense(layers: list[Layer]) -> bool:
    """True when every layer after the last Dense keeps its width (the activations)."""
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, Dense))
    return all(
        isinstance(layer, (Tanh, Sigmoid, ReLU, LeakyReLU, Softmax)) for layer in layers[last + 1 :]
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
