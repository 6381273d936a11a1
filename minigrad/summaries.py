"""``summary(model, input_shape)``: a table of a model's layers, their output shapes and
parameter counts, as Keras's ``model.summary()`` prints one."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad._validation import check_allocation, shown
from minigrad.errors import ShapeError
from minigrad.layers.base import Layer
from minigrad.typing import FloatArray

__all__ = ["summary"]

_HEADERS = ("Layer (class)", "Output shape", "Parameters")


def summary(model: Layer, input_shape: Sequence[int]) -> str:
    """A table of every layer of ``model``: its path, class, output shape and number of
    trainable parameters, nested containers indented, with the totals below.

    The table is returned as a string, since minigrad prints nothing unasked:
    ``print(mg.summary(model, (1, 28, 28)))``.

    Parameters
    ----------
    model : Layer
        A model (a Sequential, a container, any layer).
    input_shape : tuple of int
        The shape of one sample, without the batch dimension: ``(784,)`` for flat
        vectors, ``(1, 28, 28)`` for single-channel images.

    Returns
    -------
    str
        One row per layer in the order of ``named_layers()`` (a container's row, then its
        children's, indented), each with its path (the prefix of its keys in
        ``state_dict()``), its class, the shape of its output with ``batch`` for the batch
        dimension, and its parameter count (a container's counts its children's); then the
        totals of trainable parameters and of buffer entries (such as Normalization's
        statistics). A model that is a single layer has one row.

    Raises
    ------
    TypeError
        ``model`` is not a Layer instance, or ``input_shape`` is not a tuple of integers.
    ValueError
        A dimension is below 1, or the model holds an object twice (see
        :class:`~minigrad.layers.base.Layer`).
    ShapeError, TypeError, ValueError
        The model cannot take inputs of that shape: the message names the layer that
        failed (its path and class) and its own error.

    Notes
    -----
    The output shapes come from running the model once, in evaluation mode, on a batch of
    one sample of zeros in the model's dtype: every layer reports what it produces,
    layers of your own included, with no shape rules to keep in step with the layers.
    Evaluation mode keeps layers such as batch normalization from updating their
    statistics and dropout from drawing; every layer's mode is restored afterwards. The
    pass replaces what the layers cached for backward, as any forward does: run the forward
    pass again before a backward.

    Examples
    --------
    >>> import minigrad as mg
    >>> model = mg.Sequential(
    ...     mg.Dense(4, 8, rng=0),
    ...     mg.Residual(mg.Sequential(mg.Dense(8, 8, rng=1), mg.GELU())),
    ...     mg.Dense(8, 3, rng=2),
    ... )
    >>> print(summary(model, (4,)))
    Layer (class)              Output shape    Parameters
    =====================================================
    input                      (batch, 4)
    0 (Dense)                  (batch, 8)              40
    1 (Residual)               (batch, 8)              72
      1.block (Sequential)     (batch, 8)              72
        1.block.0 (Dense)      (batch, 8)              72
        1.block.1 (GELU)       (batch, 8)               0
      1.shortcut (Identity)    (batch, 8)               0
    2 (Dense)                  (batch, 3)              27
    =====================================================
    Trainable parameters: 139
    Buffer entries: 0
    >>> summary(model, (5,))  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    minigrad.errors.ShapeError: summary: the model cannot take inputs of shape (batch, 5):
    layer '0' (Dense) failed: Sequential layer 0 (Dense) forward: Dense(...) expected input
    of shape (batch, 4), got (1, 5): 5 features instead of 4
    """
    given: object = model  # checked for callers without a type checker
    if not isinstance(given, Layer):
        hint = ""
        if isinstance(given, type) and issubclass(given, Layer):
            hint = f"; pass an instance, {given.__name__}(...), not the class"
        raise TypeError(f"summary takes a minigrad Layer, got {type(given).__name__}{hint}")
    shape = _sample_shape(input_shape)
    rows = _rows(model)
    dtype = next((p.dtype for p in model.parameters()), np.dtype(np.float32))
    check_allocation(f"summary: a sample of shape {shape}", shape, dtype)
    outputs = _output_shapes(model, [layer for _, layer, _ in rows], shape, dtype)
    table = [
        (f"{'  ' * depth}{path} ({type(layer).__name__})" if path else type(layer).__name__,
         _shown_shape(outputs.get(id(layer))), f"{layer.num_parameters():,}")
        for path, layer, depth in rows
        if path or len(rows) == 1
    ]  # fmt: skip
    table.insert(0, ("input", _shown_shape((1, *shape)), ""))
    widths = [max(len(row[i]) for row in [_HEADERS, *table]) for i in range(3)]
    widths[0] += 4
    widths[1] += 4

    def line(row: tuple[str, str, str]) -> str:
        return f"{row[0]:<{widths[0]}}{row[1]:<{widths[1]}}{row[2]:>{widths[2]}}".rstrip()

    rule = "=" * sum(widths)
    buffers = sum(buffer.size for _, buffer in model.named_buffers())
    return "\n".join(
        [
            line(_HEADERS),
            rule,
            *map(line, table),
            rule,
            f"Trainable parameters: {model.num_parameters():,}",
            f"Buffer entries: {buffers:,}",
        ]
    )


def _sample_shape(input_shape: object) -> tuple[int, ...]:
    """``input_shape`` as a tuple of integers >= 1; TypeError or ValueError otherwise."""
    if not isinstance(input_shape, bool) and isinstance(input_shape, numbers.Integral):
        raise TypeError(
            f"summary input_shape is the shape of one sample, a tuple: pass ({input_shape},), "
            f"not {input_shape}"
        )
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(
            "summary input_shape must be a tuple of integers (the shape of one sample, "
            f"without the batch dimension), got {shown(input_shape)} "
            f"({type(input_shape).__name__})"
        )
    for size in input_shape:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
            raise TypeError(
                f"summary input_shape must be a tuple of integers, got {shown(input_shape)}"
            )
        if size < 1:
            raise ValueError(
                f"summary input_shape must hold sizes >= 1, got {shown(tuple(input_shape))}"
            )
    return tuple(int(size) for size in input_shape)


def _rows(model: Layer) -> list[tuple[str, Layer, int]]:
    """``(path, layer, depth)`` for the model (depth -1) and every layer under it, depth
    first, as ``named_layers()`` orders them."""
    list(model.named_layers())  # refuses a layer or parameter held twice, or a cycle
    rows: list[tuple[str, Layer, int]] = []
    stack: list[tuple[str, Layer, int]] = [("", model, -1)]
    while stack:
        path, layer, depth = stack.pop()
        rows.append((path, layer, depth))
        prefix = f"{path}." if path else ""
        children = [(prefix + name, child, depth + 1) for name, child in layer.children()]
        stack.extend(reversed(children))
    return rows


def _output_shapes(
    model: Layer, layers: list[Layer], shape: tuple[int, ...], dtype: np.dtype
) -> dict[int, Any]:
    """The shape of each layer's output (by ``id``) in an eval-mode forward pass of a batch
    of one sample of zeros; every layer's mode and ``forward`` are restored after."""
    outputs: dict[int, Any] = {}
    failed: list[Layer] = []
    modes = [(layer, layer.training) for layer in layers]
    own = [(layer, vars(layer).get("forward")) for layer in layers]
    try:
        for layer in layers:
            # replaced on the instance for this one pass (restored below), which mypy refuses
            # for any method, and it compares a function with the method as declared in the
            # class (self included)
            recording = _recording(layer, layer.forward, outputs, failed)
            layer.forward = recording  # type: ignore[method-assign, assignment]
        model.eval()
        model(np.zeros((1, *shape), dtype))
    except Exception as error:
        culprit = failed[0] if failed else model
        failure = _failure(error, shape, _path(model, culprit), culprit)
        if failure is error:  # a class of its own, kept as it is, with a note
            raise
        raise failure from error
    finally:
        for layer, forward in own:
            if forward is None:
                vars(layer).pop("forward", None)
            else:
                layer.forward = forward  # type: ignore[method-assign]  # restored, as above
        for layer, mode in modes:
            layer.training = mode
    return outputs


def _recording(
    layer: Layer,
    forward: Callable[[FloatArray], FloatArray],
    outputs: dict[int, Any],
    failed: list[Layer],
) -> Callable[[FloatArray], FloatArray]:
    """``forward`` that records the shape of what it returns, and the first (innermost)
    layer whose forward raised."""

    def recorded(x: FloatArray) -> FloatArray:
        try:
            out = forward(x)
        except Exception:
            if not failed:
                failed.append(layer)
            raise
        outputs[id(layer)] = np.shape(out) if isinstance(out, np.ndarray) else type(out)
        return out

    return recorded


def _path(model: Layer, layer: Layer) -> str:
    return next((path for path, item in model.named_layers() if item is layer), "")


def _failure(error: Exception, shape: tuple[int, ...], path: str, layer: Layer) -> Exception:
    """The error for a model that cannot take samples of ``shape``, naming the layer: of
    ``error``'s class for the plain built-in ones, else ``error`` itself with a note."""
    where = f"layer '{path}' ({type(layer).__name__})" if path else type(layer).__name__
    message = (
        f"summary: the model cannot take inputs of shape {_shown_shape((1, *shape))}: "
        f"{where} failed: {error}"
    )
    for kind in (ShapeError, TypeError, ValueError, RuntimeError):
        if type(error) is kind:
            return kind(message)
    if hasattr(error, "add_note"):
        error.add_note(message)
    else:  # Python 3.10: kept where 3.11's tracebacks would read it
        # __notes__ is in the stubs from Python 3.11 only
        error.__notes__ = [*getattr(error, "__notes__", ()), message]  # type: ignore[attr-defined]
    return error


def _shown_shape(shape: Any) -> str:
    """``(batch, 8)`` for an output of shape (1, 8); ``-`` for a layer that did not run."""
    if shape is None:
        return "-"
    if isinstance(shape, type):
        return f"({shape.__name__})"
    if len(shape) == 0:
        return "()"
    first = "batch" if shape[0] == 1 else str(shape[0])
    return "(" + ", ".join([first, *map(str, shape[1:])]) + ")"
