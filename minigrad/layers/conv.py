"""Convolution layers: Conv1d and Conv2d, by im2col and one matrix product per group."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from minigrad._validation import check_allocation, check_bool, forward_not_called
from minigrad.errors import ShapeError
from minigrad.init import Initializer, generator, get_initializer
from minigrad.layers import _windows, _workspace
from minigrad.layers._checks import (
    bad_gradient,
    checked_config,
    in_dtype,
    layer_width,
    parameter_dtype,
    real_array,
    shown,
)
from minigrad.layers.base import Layer, stale_backward
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["Conv1d", "Conv2d"]

_ConvT = TypeVar("_ConvT", bound="_ConvNd")

#: the padding strings PyTorch takes
_PADDING_NAMES = ("valid", "same")
#: a stride-1 convolution works on its flat padded grid (see _windows.FlatPlan) unless the
#: grid is more than this many times the output: then the thrown-away products would cost
#: more than the long copies save. Measured: a 3 x 3 convolution with padding 1 gains on
#: 32 x 32 maps (grid 1.13 times the output) and 16 x 16 maps (1.27); LeNet's 5 x 5 ones,
#: padded on 28 x 28 (1.31) or valid on 14 x 14 (1.96), are faster window by window.
FLAT_WASTE = 1.3


class _ConvNd(Layer):
    """The code Conv1d and Conv2d share; a Conv1d is a Conv2d of height 1 inside.

    Between forward and backward the layer keeps its input, as Dense does, not the im2col
    matrix (kh kw / (s_h s_w) times larger): backward builds that matrix again. That costs
    a copy, but only one im2col matrix exists at a time however many convolutions a network
    has, so a deep network's memory is its activations, not kh kw times them. The matrix
    and the padded copies live in the thread's workspace (:mod:`minigrad.layers._workspace`),
    reused by every convolution and every step.

    Two ways to build it: a stride-1 convolution whose padded grid is at most FLAT_WASTE
    times its output copies long shifted slices of the flat padded input
    (:class:`_windows.FlatPlan`); any other copies one strided window per kernel offset
    (:class:`_windows.Plan`).
    """

    #: the number of spatial axes: 1 for Conv1d, 2 for Conv2d
    _dims: ClassVar[int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | Literal["valid", "same"] = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        padding_mode: Literal["zeros"] = "zeros",
        init: str | Initializer = "he_uniform",
        rng: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        name, dims = type(self).__name__, self._dims
        self.in_channels = layer_width(f"{name} in_channels", in_channels)
        self.out_channels = layer_width(f"{name} out_channels", out_channels)
        self._kernel_size = _windows.int_tuple(name, "kernel_size", kernel_size, dims, 1)
        self._stride = _windows.int_tuple(name, "stride", stride, dims, 1)
        self._dilation = _windows.int_tuple(name, "dilation", dilation, dims, 1)
        self._padding, pads = _padding(name, padding, self)
        self._groups = layer_width(f"{name} groups", groups)
        for what, channels in (
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
        ):
            if channels % self._groups:
                raise ValueError(
                    f"{name} {what} ({channels}) must be divisible by groups ({self._groups})"
                )
        bias = check_bool(f"{name} bias", bias)
        if not isinstance(padding_mode, str):
            raise TypeError(f"{name} padding_mode must be 'zeros', got {shown(padding_mode)}")
        if padding_mode != "zeros":
            raise ValueError(
                f"{name} pads with zeros only (padding_mode='zeros'), got {shown(padding_mode)}"
            )
        dtype = parameter_dtype(name, dtype)
        shape = (self.out_channels, self.in_channels // self._groups, *self._kernel_size)
        self.weight = Parameter(_initial_weight(self, init, shape, rng, dtype), name="weight")
        self.bias = (
            Parameter(np.zeros(self.out_channels, dtype=dtype), name="bias") if bias else None
        )
        # the geometry in 2-d form, (height, width), a Conv1d's of height 1
        self._geometry = (
            (1,) * (2 - dims) + self._kernel_size,
            (1,) * (2 - dims) + self._stride,
            (1,) * (2 - dims) + self._dilation,
            ((0, 0),) * (2 - dims) + pads,
        )
        #: the last forward's plan, input shape, layout (batch axis last?) and input in that
        #: layout; None before it or after one that failed
        self._cache: (
            tuple[_windows.Plan | _windows.FlatPlan, tuple[int, ...], bool, FloatArray] | None
        ) = None

    # -- the fixed geometry ---------------------------------------------------------------

    @property
    def kernel_size(self) -> tuple[int, ...]:
        """The kernel's size, one int per spatial axis (fixed: it shapes the weight)."""
        return self._kernel_size

    @property
    def stride(self) -> tuple[int, ...]:
        """The step between windows, one int per spatial axis."""
        return self._stride

    @property
    def padding(self) -> tuple[int, ...] | str:
        """Zeros added on each side, one int per spatial axis, or ``"valid"`` / ``"same"``."""
        return self._padding

    @property
    def dilation(self) -> tuple[int, ...]:
        """The step between a kernel's taps, one int per spatial axis."""
        return self._dilation

    @property
    def groups(self) -> int:
        """The number of groups the channels are split into."""
        return self._groups

    @property
    def padding_mode(self) -> str:
        """``"zeros"``: the only padding minigrad has."""
        return "zeros"

    # -- forward and backward -------------------------------------------------------------

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = W * x + b (cross-correlation) for x of shape ``(batch, in_channels, *spatial)``."""
        self._cache = None  # a failed forward leaves nothing for backward
        try:  # free unless it fails (a weight replaced by a plain array)
            weight = self.weight.value
            bias = None if self.bias is None else self.bias.value
        except AttributeError:
            raise _not_parameters(self) from None
        if type(x) is not np.ndarray or x.dtype != weight.dtype:
            x = real_array(x, weight.dtype, f"{type(self).__name__} input")
        if x.ndim != self._dims + 2 or x.shape[1] != self.in_channels:
            raise self._input_error(x)
        x4 = x if self._dims == 2 else x[:, :, None, :]
        n, _, height, width = x4.shape
        kernel, stride, dilation, pads = self._geometry
        sizes = (height, width)
        if any(
            _windows.out_size(*axis) < 1
            for axis in zip(sizes, kernel, stride, dilation, pads, strict=True)
        ):
            raise self._window_error(x)
        if stride == (1, 1):
            flat = _windows.flat_plan(sizes, kernel, dilation, pads)
            if flat.waste <= FLAT_WASTE:
                y = self._forward_flat(x4, flat, weight, bias)
                self._cache = (flat, x.shape, False, x4)
                self._forward_training = self.training
                return y.reshape(n, self.out_channels, *flat.out[2 - self._dims :])
        plan = _windows.plan(sizes, kernel, stride, dilation, pads)
        out_channels, groups = self.out_channels, self._groups
        last = _windows.batch_last(plan)
        positions = (*plan.out, n) if last else (n, *plan.out)  # in the working layout
        work = x4.transpose(_windows.work_axes(last))  # a view; copied when batch-last
        if last:
            work = np.ascontiguousarray(work)
        columns = self._im2col(work, plan, x.shape, last)
        y = np.empty((n, out_channels, *plan.out), weight.dtype)
        # Overflow to inf is the answer for inputs that large; it is not worth a warning
        with np.errstate(over="ignore", invalid="ignore"):
            # one product per group: (O/G, C/G kh kw) @ (C/G kh kw, N OH OW)
            product = np.matmul(
                weight.reshape(groups, out_channels // groups, -1),
                columns.reshape(groups, columns.shape[0] // groups, columns.shape[1]),
            )
            product = product.reshape(out_channels, *positions).transpose(_windows.nchw_axes(last))
            if bias is None:
                np.copyto(y, product)
            else:
                np.add(product, bias[:, None, None], out=y)
        self._cache = (plan, x.shape, last, work)
        self._forward_training = self.training
        return y.reshape(n, out_channels, *plan.out[2 - self._dims :])

    def _forward_flat(
        self, x: FloatArray, flat: _windows.FlatPlan, weight: FloatArray, bias: FloatArray | None
    ) -> FloatArray:
        """y for x (N, C, H, W) on the flat padded grid: columns (C, kh kw, N Hp Wp) by
        shifted slices, one product per group over the whole grid, and the output's corner
        of the grid copied out (with the bias added) as (N, O, OH, OW)."""
        n = x.shape[0]
        out_channels, groups = self.out_channels, self._groups
        length = n * flat.grid[0] * flat.grid[1]
        columns = self._flat_columns(x, flat)
        product = self._scratch("grid", (out_channels, length), x.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            np.matmul(
                weight.reshape(groups, out_channels // groups, -1),
                columns.reshape(groups, -1, length),
                out=product.reshape(groups, out_channels // groups, length),
            )
            rows, cols = flat.out
            corner = product.reshape(out_channels, n, *flat.grid)[:, :, :rows, :cols]
            y = np.empty((n, out_channels, rows, cols), weight.dtype)
            if bias is None:
                np.copyto(y, corner.transpose(1, 0, 2, 3))
            else:
                np.add(corner.transpose(1, 0, 2, 3), bias[:, None, None], out=y)
        return y

    def _flat_columns(self, x: FloatArray, flat: _windows.FlatPlan) -> FloatArray:
        """The im2col matrix (C, kh kw, N Hp Wp) of x (N, C, H, W) over the flat grid:
        row (c, k) is channel c of the padded input, flat, from shifts[k] on."""
        n, channels = x.shape[:2]
        length = n * flat.grid[0] * flat.grid[1]
        pads = self._geometry[3]
        padded = self._scratch("grid", (channels, length + flat.tail), x.shape)
        grid = padded[:, :length].reshape(channels, n, *flat.grid)
        _windows.to_grid(grid, x.transpose(1, 0, 2, 3), (pads[0][0], pads[1][0]), x.shape[2:])
        padded[:, length:] = 0
        columns = self._scratch("columns", (channels, len(flat.shifts), length), x.shape)
        _windows.shifted_columns(padded, flat.shifts, 0, columns)
        return columns

    def _scratch(self, name: str, shape: tuple[int, ...], x_shape: tuple[int, ...]) -> FloatArray:
        """A workspace array for this layer's work on an input of ``x_shape``."""
        array = {"columns": "im2col matrix", "grid": "padded grid"}[name]
        return _workspace.scratch(
            f"conv.{name}",
            shape,
            self.weight.value.dtype,
            lambda: f"{self!r} on input of shape {x_shape}: its {array} {shape}",
        )

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """Fill weight.grad and bias.grad; return dL/dx, of the last input's shape."""
        # dL/dx, an array with input_grad=True; _backward returns None only without it
        return self._backward(grad_output, input_grad=True)  # type: ignore[return-value]

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """Fill weight.grad and bias.grad, skipping dL/dx (the first layer never needs it)."""
        self._backward(grad_output, input_grad=False)

    def _backward(self, grad_output: FloatArray, input_grad: bool) -> FloatArray | None:
        cache = self._cache
        if cache is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if cache is None else stale_backward(self)
        plan, x_shape, last, work = cache
        n, out_channels, groups = x_shape[0], self.out_channels, self._groups
        shape = (n, out_channels, *plan.out[2 - self._dims :])
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, shape)
        weight = self.weight.value
        if grad_output.dtype != weight.dtype:
            grad_output = in_dtype(grad_output, weight.dtype)
        try:  # looked up before either is written: a plain array fails here, untouched
            # a frozen parameter's gradient is not computed (its .grad is left as it was)
            weight_grad = self.weight.grad_to_overwrite if self.weight.requires_grad else None
            bias_grad = (
                self.bias.grad_to_overwrite
                if self.bias is not None and self.bias.requires_grad
                else None
            )
        except AttributeError:
            raise _not_parameters(self) from None
        if not input_grad and weight_grad is None and bias_grad is None:
            return None
        if isinstance(plan, _windows.FlatPlan):
            g4 = grad_output.reshape(n, out_channels, *plan.out)
            return self._backward_flat(g4, plan, work, x_shape, weight_grad, bias_grad, input_grad)
        count = grad_output.size // out_channels  # N OH OW
        # g in the working layout of the columns: (O, N, OH, OW) or (O, OH, OW, N), a copy
        g = grad_output.reshape(n, out_channels, *plan.out).transpose(_windows.work_axes(last))
        g = g.reshape(groups, out_channels // groups, count)
        with np.errstate(over="ignore", invalid="ignore"):
            if weight_grad is not None:
                columns = self._im2col(work, plan, x_shape, last)  # built again from the input
                _weight_gradient(
                    g,
                    columns.reshape(groups, columns.shape[0] // groups, count),
                    weight_grad().reshape(groups, out_channels // groups, -1),
                )
            if bias_grad is not None:
                np.add.reduce(g.reshape(out_channels, count), axis=1, out=bias_grad())
            if not input_grad:
                return None
            return self._input_gradient(g, plan, x_shape, last)

    def _backward_flat(
        self,
        g: FloatArray,
        flat: _windows.FlatPlan,
        x: FloatArray,
        x_shape: tuple[int, ...],
        weight_grad: Any,
        bias_grad: Any,
        input_grad: bool,
    ) -> FloatArray | None:
        """Backward on the flat padded grid, for g (N, O, OH, OW) and x (N, C, H, W).

        With g laid out on the grid (zeros at the thrown-away positions) as G (O, N Hp Wp)
        and the columns X built again: dL/dW = G X^T and dL/db = G 1, per group. dL/dx
        is a correlation of G with the kernel's shifts negated: the columns of G (rows
        (o, k) = G[o] shifted back by shifts[k], zeros before the first image) times the
        weight as (C, O kh kw), per group, on the grid, whose padding is then cut away.
        """
        weight, groups = self.weight.value, self._groups
        n, channels = x.shape[:2]
        out_channels, taps, tail = self.out_channels, len(flat.shifts), flat.tail
        length = n * flat.grid[0] * flat.grid[1]
        if weight_grad is not None:  # first: it may share scratch memory with the grid
            columns = self._flat_columns(x, flat)  # built again from the input
        gradient = self._scratch("grid", (out_channels, tail + length), x.shape)
        gradient[:, :tail] = 0
        on_grid = gradient[:, tail:]
        _windows.to_grid(
            on_grid.reshape(out_channels, n, *flat.grid), g.transpose(1, 0, 2, 3), (0, 0), flat.out
        )
        with np.errstate(over="ignore", invalid="ignore"):
            if weight_grad is not None:
                _weight_gradient(
                    on_grid.reshape(groups, out_channels // groups, length),
                    columns.reshape(groups, -1, length),
                    weight_grad().reshape(groups, out_channels // groups, -1),
                )
            if bias_grad is not None:
                np.add.reduce(on_grid, axis=1, out=bias_grad())
            if not input_grad:
                return None
            columns = self._scratch("columns", (out_channels, taps, length), x.shape)
            _windows.shifted_columns(gradient, tuple(-s for s in flat.shifts), tail, columns)
            # (G, C/G, O/G kh kw): entry [gamma, c, (o, k)] = W[gamma O/G + o, c, k]
            transposed = weight.reshape(groups, out_channels // groups, channels // groups, taps)
            transposed = np.ascontiguousarray(transposed.transpose(0, 2, 1, 3))
            padded = self._scratch("grid", (channels, length), x.shape)
            np.matmul(
                transposed.reshape(groups, channels // groups, -1),
                columns.reshape(groups, -1, length),
                out=padded.reshape(groups, channels // groups, length),
            )
        pads = self._geometry[3]
        (top, _), (left, _) = pads
        rows, cols = x.shape[2:]
        inside = padded.reshape(channels, n, *flat.grid)[:, :, top : top + rows, left : left + cols]
        dx = np.empty(x.shape, weight.dtype)
        np.copyto(dx, inside.transpose(1, 0, 2, 3))
        return dx.reshape(x_shape)

    def _input_gradient(
        self, g: FloatArray, plan: _windows.Plan, x_shape: tuple[int, ...], last: bool
    ) -> FloatArray:
        """dL/dx = col2im(W^T g), one kernel offset at a time: W[:, :, i, j]^T g is the
        gradient of the entries that offset (i, j) read, added into dL/dx where they are."""
        weight, groups = self.weight.value, self._groups
        n, channels = x_shape[0], self.in_channels
        kernel = self._geometry[0]
        nchw = (n, channels, *((1, *x_shape[2:]) if self._dims == 1 else x_shape[2:]))
        # (kh kw, G, C/G, O/G): for each offset, the transposed weight of each group
        taps = weight.reshape(groups, g.shape[1], channels // groups, kernel[0] * kernel[1])
        taps = np.ascontiguousarray(taps.transpose(3, 0, 2, 1))
        part = np.empty((groups, channels // groups, g.shape[2]), weight.dtype)
        windows = part.reshape(channels, *((*plan.out, n) if last else (n, *plan.out)))
        # dL/dx in the working layout, as the columns
        grad = np.zeros([nchw[axis] for axis in _windows.work_axes(last)], weight.dtype)
        for offset in plan.offsets:
            np.matmul(taps[offset.k], g, out=part)
            grad[_windows.working(offset.source, last)] += windows[
                _windows.working(offset.target, last)
            ]
        return np.ascontiguousarray(grad.transpose(_windows.nchw_axes(last))).reshape(x_shape)

    def _im2col(
        self, work: FloatArray, plan: _windows.Plan, x_shape: tuple[int, ...], last: bool
    ) -> FloatArray:
        """The im2col matrix of the input in the working layout, after checking that it
        fits in memory (a batch too large says so in the layer's terms)."""
        kernel = self._geometry[0]
        shape = (self.in_channels * kernel[0] * kernel[1], x_shape[0] * plan.out[0] * plan.out[1])
        columns = self._scratch("columns", shape, x_shape)
        _windows.im2col(work, plan, kernel, last, columns)
        return columns

    # -- messages -------------------------------------------------------------------------

    def _input_error(self, x: FloatArray) -> ShapeError:
        expected = f"(batch, {self.in_channels}, {_windows.spatial(self._dims)})"
        if x.ndim != self._dims + 2:
            hint = "; for one sample use x[None]" if x.ndim == self._dims + 1 else ""
            return ShapeError(
                f"{self!r} expects input of shape {expected}, got a {x.ndim}-D array of "
                f"shape {x.shape}{hint}"
            )
        hint = ""
        if self._dims == 2 and x.shape[-1] == self.in_channels:
            hint = "; for channels-last (NHWC) images pass x.transpose(0, 3, 1, 2)"
        return ShapeError(
            f"{self!r} expects input of shape {expected}, got {x.shape}: {x.shape[1]} "
            f"channels instead of {self.in_channels}{hint}"
        )

    def _window_error(self, x: FloatArray) -> ShapeError:
        kernel, _, dilation, pads = self._geometry
        dims = self._dims
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))[2 - dims :]
        padded = tuple(
            size + lo + hi for size, (lo, hi) in zip((1, *x.shape[2:])[-2:], pads, strict=True)
        )[2 - dims :]
        return ShapeError(
            f"{self!r} needs an input at least as large as its kernel once padded: the kernel "
            f"spans {_windows.sizes_text(span)} (dilation included), but input of shape "
            f"{x.shape} is {_windows.sizes_text(padded)} after padding"
        )

    # -- configuration --------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments and the dtype name: what :meth:`from_config` rebuilds."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self._kernel_size),
            "stride": list(self._stride),
            "padding": _windows.as_config(self._padding),
            "dilation": list(self._dilation),
            "groups": self._groups,
            "bias": self.bias is not None,
            "dtype": self.weight.dtype.name,
        }

    @classmethod
    def from_config(cls: type[_ConvT], config: dict[str, Any]) -> _ConvT:
        """A layer of the configured shape with zero weights, for a load to fill in (zeros
        cost no memory until written, so a file that claims absurd sizes costs nothing
        before the load finds that its tensors do not match)."""
        name = cls.__name__
        keys = ("in_channels", "out_channels", "kernel_size", "stride", "padding")
        config = checked_config(name, config, (*keys, "dilation", "groups", "bias", "dtype"))
        if not isinstance(config["bias"], bool):
            raise TypeError(f"{name} bias must be true or false, got {shown(config['bias'])}")
        return cls(**config, init=_zeros)

    def extra_repr(self) -> str:
        """PyTorch's: ``in, out, kernel_size=..., stride=...``, then what differs from the
        defaults (padding, dilation, groups, bias=False)."""
        dims = self._dims
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self._kernel_size}, "
            f"stride={self._stride}"
        )
        if self._padding != (0,) * dims:
            text += f", padding={self._padding}"
        if self._dilation != (1,) * dims:
            text += f", dilation={self._dilation}"
        if self._groups != 1:
            text += f", groups={self._groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """A 2-d convolution over (batch, channels, height, width) images, as ``torch.nn.Conv2d``.

    Like PyTorch (and every deep-learning library) it computes a cross-correlation: the
    kernel is not flipped.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output; both divisible by ``groups``.
    kernel_size : int or pair of ints
        The kernel's (height, width); one int for a square kernel.
    stride : int or pair of ints, default 1
        The step between windows, vertically and horizontally.
    padding : int, pair of ints, "valid" or "same", default 0
        Zeros added on both sides of each spatial axis: (top and bottom, left and right).
        ``"valid"`` is no padding; ``"same"`` pads so that the output has the input's size
        (stride 1 only), with PyTorch's split: the total d (k - 1) of an axis is padded
        floor(d (k - 1) / 2) before and the rest after, so one more zero at the bottom
        (right) when the total is odd.
    dilation : int or pair of ints, default 1
        The step between the kernel's taps (2: a 3 x 3 kernel spans 5 x 5).
    groups : int, default 1
        Split the channels into this many groups, each convolved with its own filters:
        output channel o sees only the in_channels / groups input channels of its group
        (groups = in_channels is a depthwise convolution).
    bias : bool, default True
        Whether to learn the additive bias b (a bool: the string "False" is refused).
    padding_mode : "zeros"
        The only padding there is: PyTorch's "reflect", "replicate" and "circular" are
        refused.
    init : str or callable, default "he_uniform"
        How to draw W; see :mod:`minigrad.init`, whose fans count the kernel's taps
        (fan_in = in_channels / groups * kh * kw). He initialisation is the default, not
        Dense's Xavier, because convolutions are almost always followed by a ReLU, the case
        He et al. derived it for: it keeps the activations' variance through a deep stack,
        where Xavier would halve it at each layer of as many output as input channels.
        Pass "xavier_uniform" for tanh or sigmoid networks. (PyTorch's default,
        kaiming_uniform with a = sqrt(5), draws U(-1/sqrt(fan_in), 1/sqrt(fan_in)), a sixth
        of He's variance.) The bias starts at zero, as a Dense's does.
    rng : int, numpy.random.Generator or None
        Seed or generator for the initial weights (None: fresh entropy).
    dtype : float16, float32 or float64, default float32
        dtype of the parameters, and so of the output and of every gradient. An input of
        another dtype is converted to it first (float64 data through a float32 layer is
        computed in float32, as Dense does).

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels / groups, kh, kw)
        PyTorch's layout; ``state_dict()`` keys are ``"weight"`` and ``"bias"``.
    bias : Parameter of shape (out_channels,), or None
    kernel_size, stride, dilation : tuple of two ints
    padding : tuple of two ints, "valid" or "same"
    groups : int
        Fixed at construction (read-only): build a new layer to change them.

    Shape
    -----
    x: (batch, in_channels, H, W) -> y: (batch, out_channels, OH, OW) with

        OH = floor((H + pad_top + pad_bottom - dilation_h (kh - 1) - 1) / stride_h) + 1

    and OW alike. The padded input must be at least as large as the dilated kernel
    (a ShapeError says so otherwise). backward takes a floating-point grad_output of y's
    shape and returns dL/dx of x's shape, in the layer's dtype.

    Notes
    -----
    With x~ the input padded with zeros, G groups of Cg = in_channels / G input and
    Og = out_channels / G output channels, and output channel o in group
    gamma = floor(o / Og), the forward pass is::

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j]
                                x~[n, gamma Cg + c, p s_h + i d_h, q s_w + j d_w]

    and with g = dL/dy, backward computes::

        dL/dW[o, c, i, j] = sum_{n, p, q} g[n, o, p, q] x~[n, gamma Cg + c, p s_h + i d_h,
                                                          q s_w + j d_w]
        dL/db[o] = sum_{n, p, q} g[n, o, p, q]
        dL/dx~[n, gamma Cg + c, h, w] = sum over o in group gamma and the (p, i), (q, j)
                   with p s_h + i d_h = h and q s_w + j d_w = w of g[n, o, p, q] W[o, c, i, j]

    and dL/dx is dL/dx~ without its padding. In matrix form (im2col): X_col holds every
    window as a column, shape (Cg kh kw, N OH OW) per group, and per group

        Y = W_mat X_col + b,   dL/dW_mat = g_mat X_col^T,   dL/dX_col = W_mat^T g_mat

    one BLAS matrix product each, with dL/dX_col added back into dL/dx one kernel offset at
    a time (col2im). X_col holds in_channels kh kw x N OH OW values, about kh kw / (s_h s_w)
    times the input: the layer keeps only its input from forward to backward (as Dense
    does) and builds X_col again there, so that one such matrix exists at a time in a
    network, not one per convolution. That matrix lives in a scratch buffer shared by every
    convolution of the thread and reused from step to step (a fresh 75 MB array at every
    call would cost as much again in page faults); ``minigrad.layers.free_workspace()``
    frees it. A stride-1 convolution builds X_col from long shifted slices of its padded
    input laid out flat, computing a few outputs past each row's end that it then drops
    (13% more product for a 3 x 3 kernel on 32 x 32 maps, for copies several times faster).
    ``backward_parameters`` (what a Sequential asks of its first layer) skips dL/dx.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
    >>> conv
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> y = conv(np.ones((2, 3, 32, 32), dtype=np.float32))
    >>> y.shape, y.dtype
    ((2, 8, 32, 32), dtype('float32'))
    >>> dx = conv.backward(np.ones_like(y))
    >>> dx.shape, conv.weight.grad.shape, list(conv.state_dict())
    ((2, 3, 32, 32), (8, 3, 3, 3), ['weight', 'bias'])
    >>> Conv2d(4, 8, (3, 5), stride=2, dilation=(1, 2), groups=2, bias=False)
    Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), dilation=(1, 2), groups=2, bias=False)
    """

    _dims = 2


class Conv1d(_ConvNd):
    """A 1-d convolution over (batch, channels, length) sequences, as ``torch.nn.Conv1d``.

    Everything is as in :class:`Conv2d` with one spatial axis: ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` are an int or a 1-tuple (``padding`` also "valid" or
    "same"), the weight has shape (out_channels, in_channels / groups, k), and::

        y[n, o, p] = b[o] + sum_{c, i} W[o, c, i] x~[n, gamma Cg + c, p s + i d]
        dL/dW[o, c, i] = sum_{n, p} g[n, o, p] x~[n, gamma Cg + c, p s + i d]
        dL/db[o] = sum_{n, p} g[n, o, p]
        dL/dx~[n, gamma Cg + c, h] = sum over o in group gamma and (p, i) with p s + i d = h
                                     of g[n, o, p] W[o, c, i]

    with x~ the input padded with zeros and g = dL/dy (see Conv2d for the parameters,
    padding_mode "zeros" only, the default He initialisation and what it keeps in memory).

    Shape
    -----
    x: (batch, in_channels, L) -> y: (batch, out_channels, OL) with
    OL = floor((L + pad_left + pad_right - d (k - 1) - 1) / s) + 1.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv1d(2, 4, kernel_size=3, padding="same", dilation=2, rng=0)
    >>> conv
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same, dilation=(2,))
    >>> y = conv(np.ones((5, 2, 10)))
    >>> y.shape, y.dtype, conv.weight.shape
    ((5, 4, 10), dtype('float32'), (4, 2, 3))
    >>> conv.backward(np.ones_like(y)).shape
    (5, 2, 10)
    """

    _dims = 1


def _padding(
    name: str, padding: object, layer: _ConvNd
) -> tuple[tuple[int, ...] | str, tuple[tuple[int, int], ...]]:
    """``padding`` as the layer shows it (a tuple, "valid" or "same") and as (before, after)
    pairs per spatial axis. "same" needs stride 1 and splits d (k - 1) as PyTorch does."""
    dims = layer._dims
    if isinstance(padding, str):
        if padding not in _PADDING_NAMES:
            raise ValueError(
                f"{name} padding must be an integer >= 0, "
                f"{'an integer' if dims == 1 else 'a pair of integers'}, 'valid' or 'same', "
                f"got {shown(padding)}"
            )
        if padding == "valid":
            return padding, ((0, 0),) * dims
        if layer._stride != (1,) * dims:
            raise ValueError(
                f"{name} padding='same' needs stride 1 (a strided output cannot keep the "
                f"input's size), got stride={layer._stride}; give the padding as numbers"
            )
        totals = [d * (k - 1) for k, d in zip(layer._kernel_size, layer._dilation, strict=True)]
        return padding, tuple((total // 2, total - total // 2) for total in totals)
    sizes = _windows.int_tuple(name, "padding", padding, dims, 0)
    return sizes, tuple((p, p) for p in sizes)


def _initial_weight(
    layer: _ConvNd,
    init: str | Initializer,
    shape: tuple[int, ...],
    rng: int | np.random.Generator | None,
    dtype: np.dtype,
) -> FloatArray:
    """The initial weight of ``shape`` drawn by ``init``, checked and cast to ``dtype``."""
    name = type(layer).__name__
    what = f"{name}({layer.in_channels}, {layer.out_channels}, kernel_size={shape[2:]})"
    check_allocation(f"{what} is too large: its weight", shape, dtype)
    init = get_initializer(init)
    try:
        weight = np.asarray(init(shape, generator(rng, f"{name} rng"), dtype))
    except MemoryError as error:  # the init's draw, or memory that is not free now
        raise MemoryError(
            f"{what}: its weight of shape {shape} could not be allocated: {error}"
        ) from error
    if weight.shape != shape:
        raise ValueError(f"{name} init returned an array of shape {weight.shape}, expected {shape}")
    if weight.dtype.kind not in "fiu":
        raise TypeError(f"{name} init returned an array of dtype {weight.dtype}, not numbers")
    weight = weight.astype(dtype, copy=False)
    # A user's initialiser is checked; a load's zeros stay untouched (lazily allocated)
    if init is not _zeros and not np.isfinite(weight).all():
        raise ValueError(f"{name} init returned NaN or infinite weights")
    return weight


def _weight_gradient(g: FloatArray, columns: FloatArray, out: FloatArray) -> None:
    """dL/dW = g X_col^T per group, into ``out`` (G, O/G, C/G kh kw), for g (G, O/G, M)
    and X_col (G, C/G kh kw, M). Computed as its transpose, X_col g^T: with M (every
    output position of the batch) in the hundreds of thousands and the other two sides
    small, BLAS runs that orientation about 1.5 times as fast."""
    out[...] = np.matmul(columns, g.transpose(0, 2, 1)).transpose(0, 2, 1)


def _not_parameters(layer: _ConvNd) -> TypeError:
    """The error for a weight or bias that is no longer a Parameter (assigned an array)."""
    name = type(layer).__name__
    for attribute in ("weight", "bias"):
        value = getattr(layer, attribute, None)
        if not isinstance(value, Parameter) and not (attribute == "bias" and value is None):
            return TypeError(
                f"{name}.{attribute} must be a Parameter"
                f"{' or None' if attribute == 'bias' else ''}, got {type(value).__name__}: to "
                f"set its values, write into the parameter (layer.{attribute}.value[...] = "
                "array) instead of replacing it"
            )
    return TypeError(f"{name}.weight and {name}.bias must be Parameters")


def _zeros(shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype[Any]) -> FloatArray:
    return np.zeros(shape, dtype)
