"""Pooling layers: max and average pooling over windows, and adaptive average pooling.

Each pools every channel of (batch, channels, height, width) images, or of (batch,
channels, length) sequences for the 1-d versions, with no parameters. Like the activations,
each keeps the dtype of a floating-point input (integers and booleans become float64;
complex numbers, strings and objects are refused) and returns dL/dx in that dtype.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import Checked, check_bool, forward_not_called
from minigrad.errors import ShapeError
from minigrad.layers import _windows
from minigrad.layers._checks import bad_gradient, in_dtype, listed, real_array, shown
from minigrad.layers.base import Layer, stale_backward
from minigrad.typing import FloatArray

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "MaxPool1d",
    "MaxPool2d",
]

_WindowPoolT = TypeVar("_WindowPoolT", bound="_WindowPool")
_AdaptiveT = TypeVar("_AdaptiveT", bound="_AdaptiveAvgPoolNd")


class _Pool(Layer):
    """What the pooling layers share: the input's checks and the cache's."""

    #: the number of spatial axes: 1 or 2
    _dims: ClassVar[int]
    #: what backward needs, set by a forward that succeeded (None before or after a failure)
    _cache: Any = None
    #: the dtype of the last forward output, which backward returns
    _dtype: np.dtype = np.dtype(np.float64)

    def _input(self, x: ArrayLike) -> FloatArray:
        """``x`` as a float array of (batch, channels, *spatial), with the mode and dtype
        recorded for backward."""
        self._cache = None  # a failed forward leaves nothing for backward
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            x = real_array(x, None, f"{type(self).__name__} input")
        if x.ndim != self._dims + 2:
            hint = "; for one sample use x[None]" if x.ndim == self._dims + 1 else ""
            raise ShapeError(
                f"{self!r} expects input of shape (batch, channels, "
                f"{_windows.spatial(self._dims)}), got a {x.ndim}-D array of shape "
                f"{x.shape}{hint}"
            )
        self._forward_training = self.training
        self._dtype = x.dtype
        return x

    def _gradient(self, grad_output: FloatArray, shape: tuple[int, ...]) -> FloatArray:
        """grad_output in the forward dtype, after checking that it fits ``shape``."""
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, shape)
        if grad_output.dtype != self._dtype:
            grad_output = in_dtype(grad_output, self._dtype)
        return grad_output

    def _last(self) -> Any:
        """The cache of the last forward, or the error for a backward without one."""
        cache = self._cache
        if cache is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if cache is None else stale_backward(self)
        return cache


# -- max and average pooling over windows -------------------------------------------------------


class _WindowPool(_Pool):
    """Pooling over windows of ``kernel_size`` moved by ``stride`` (the kernel size by
    default) over the input padded by ``padding`` (at most half the kernel size)."""

    #: the constructor arguments that get_config gives (and from_config takes)
    _config_keys: ClassVar[tuple[str, ...]]

    def _window(
        self,
        kernel_size: object,
        stride: object,
        padding: object,
        dilation: object,
        as_given: bool,
    ) -> None:
        """Check the window's arguments; keep them as given (an int or a tuple, as PyTorch
        shows them, or always tuples) and in 2-d form for the plan."""
        name, dims = type(self).__name__, self._dims
        kernel = _windows.int_tuple(name, "kernel_size", kernel_size, dims, 1)
        steps = kernel if stride is None else _windows.int_tuple(name, "stride", stride, dims, 1)
        pads = _windows.int_tuple(name, "padding", padding, dims, 0)
        spread = _windows.int_tuple(name, "dilation", dilation, dims, 1)
        if any(2 * p > k for p, k in zip(pads, kernel, strict=True)):
            raise ValueError(
                f"{name} padding must be at most half the kernel size (as PyTorch requires), "
                f"got padding={shown(padding)} for kernel_size={shown(kernel_size)}"
            )

        def kept(given: object, checked: tuple[int, ...]) -> int | tuple[int, ...]:
            return checked[0] if as_given and not isinstance(given, (tuple, list)) else checked

        self._kernel_size = kept(kernel_size, kernel)
        self._stride = kept(kernel_size if stride is None else stride, steps)
        self._padding = kept(padding, pads)
        self._dilation = kept(dilation, spread)
        lead = 2 - dims
        self._geometry = (
            (1,) * lead + kernel,
            (1,) * lead + steps,
            (1,) * lead + spread,
            ((0, 0),) * lead + tuple((p, p) for p in pads),
        )

    # The window is fixed at construction (read-only), as the cached plans depend on it

    @property
    def kernel_size(self) -> int | tuple[int, ...]:
        """The window's size: an int for every axis, or one per spatial axis."""
        return self._kernel_size

    @property
    def stride(self) -> int | tuple[int, ...]:
        """The step between windows (the kernel size unless given)."""
        return self._stride

    @property
    def padding(self) -> int | tuple[int, ...]:
        """The entries added on both sides of each spatial axis."""
        return self._padding

    def _plan(self, x: FloatArray) -> tuple[FloatArray, _windows.Plan]:
        """``x`` as (N, C, H, W) and the window's plan over it, or a ShapeError when the
        padded input is smaller than the window."""
        x4 = x if self._dims == 2 else x[:, :, None, :]
        kernel, stride, dilation, pads = self._geometry
        sizes = x4.shape[2:]
        axes = list(zip(sizes, kernel, stride, dilation, pads, strict=True))
        if any(_windows.out_size(*axis) < 1 for axis in axes):
            lead = 2 - self._dims
            span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))[lead:]
            padded = tuple(n + lo + hi for n, (lo, hi) in zip(sizes, pads, strict=True))[lead:]
            raise ShapeError(
                f"{self!r} needs an input at least as large as its window once padded: the "
                f"window spans {_windows.sizes_text(span)}, but input of shape {x.shape} is "
                f"{_windows.sizes_text(padded)} after padding"
            )
        return x4, _windows.plan(sizes, kernel, stride, dilation, pads)

    def _output_shape(self, x_shape: tuple[int, ...], plan: _windows.Plan) -> tuple[int, ...]:
        """The output's shape for an input of (N, C, H, W) ``x_shape``: (N, C, OL) in 1-d."""
        return (*x_shape[:2], *plan.out[2 - self._dims :])

    def _input_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the caller gave, from its (N, C, H, W) form."""
        return x_shape if self._dims == 2 else (*x_shape[:2], x_shape[3])

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (sizes as ints or lists): what from_config rebuilds."""
        values = {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self._dilation,
            "count_include_pad": getattr(self, "count_include_pad", None),
        }
        return {key: _windows.as_config(values[key]) for key in self._config_keys}

    @classmethod
    def from_config(cls: type[_WindowPoolT], config: dict[str, Any]) -> _WindowPoolT:
        """The layer :meth:`get_config` describes (its values are checked as arguments)."""
        name = cls.__name__
        if not isinstance(config, dict):
            raise TypeError(f"a {name} config is a dict, got {type(config).__name__}")
        if set(config) != set(cls._config_keys):
            raise ValueError(
                f"a {name} config has the keys {sorted(cls._config_keys)}, got {listed(config)}"
            )
        return cls(**config)


class _MaxPoolNd(_WindowPool):
    _config_keys = ("kernel_size", "stride", "padding", "dilation")

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
    ) -> None:
        super().__init__()
        self._window(kernel_size, stride, padding, dilation, as_given=True)

    @property
    def dilation(self) -> int | tuple[int, ...]:
        """The step between the window's taps."""
        return self._dilation

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = the largest entry of each window, caching which one it was."""
        x, plan = self._plan(self._input(x))
        kernel = self._geometry[0]
        shape = (*x.shape[:2], *plan.out)
        # which offset of its window each output took: a byte for windows of <= 256 taps
        index_type = np.min_scalar_type(kernel[0] * kernel[1] - 1).type
        offsets = plan.offsets
        if plan.full:  # no padding: the first offset is inside every window
            best: FloatArray = x[offsets[0].source].copy()
            index = np.zeros(shape, index_type)
            offsets = offsets[1:]
        else:  # as PyTorch: -inf, at the first offset of each window inside the input
            best = np.full(shape, -np.inf, x.dtype)
            index = np.empty(shape, index_type)
            index[...] = self._first_inside(x.shape, plan)
        # Each offset's entries are copied side by side first: the comparisons then run
        # on contiguous arrays, several times faster than on the strided input
        entries = np.empty(shape, x.dtype)
        larger, nan, taken = np.empty(shape, bool), np.empty(shape, bool), np.empty_like(index)
        for offset in offsets:
            if not offset.whole:  # the outputs whose window is in the padding here
                entries.fill(-np.inf)
            np.copyto(entries[offset.target], x[offset.source])
            # PyTorch's rule: a later entry wins if it is larger, or NaN (so the first of
            # equal entries keeps the gradient). Offsets come in increasing order, so the
            # winner's offset is the largest index yet: max(index, k if it wins else 0)
            np.greater(entries, best, out=larger)
            np.not_equal(entries, entries, out=nan)
            np.logical_or(larger, nan, out=larger)
            np.maximum(best, entries, out=best)
            np.multiply(larger, index_type(offset.k), out=taken)
            np.maximum(index, taken, out=index)
        self._cache = (index, plan, x.shape)
        return best.reshape(self._output_shape(x.shape, plan))

    def _first_inside(self, shape: tuple[int, ...], plan: _windows.Plan) -> NDArray[np.intp]:
        """The row-major offset of the first entry of each window inside the input."""
        kernel, stride, dilation, pads = self._geometry
        rows, columns = (
            # axis is (kernel, stride, dilation), of a length a starred target does not keep
            _windows.first_inside(size, *axis, pad, out)  # type: ignore[call-arg]
            for size, *axis, (pad, _), out in zip(
                shape[2:], kernel, stride, dilation, pads, plan.out, strict=True
            )
        )
        return rows[:, None] * kernel[1] + columns[None, :]

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx: each output's gradient added to the entry it took (summed where windows
        overlap); zero for the other entries."""
        index, plan, x_shape = self._last()
        output_shape = (*x_shape[:2], *plan.out)
        g = self._gradient(grad_output, self._output_shape(x_shape, plan)).reshape(output_shape)
        grad = np.zeros(x_shape, self._dtype)
        chosen = np.empty(output_shape, bool)
        part = np.empty(output_shape, self._dtype)
        finite = bool(np.isfinite(g).all())
        for offset in plan.offsets:
            target, entries = offset.target, grad[offset.source]
            np.equal(index[target], offset.k, out=chosen[target])
            # g where the output took this offset, else 0: a product with the mask, or a
            # selection when g holds inf or NaN, which a product would spread (inf * 0)
            if not finite:
                routed = np.where(chosen[target], g[target], self._dtype.type(0))
            elif plan.overlap:
                routed = np.multiply(g[target], chosen[target], out=part[target])
            else:  # windows apart: each entry is in one window at most, so written once
                np.multiply(g[target], chosen[target], out=entries)
                continue
            if plan.overlap:
                entries += routed
            else:
                entries[...] = routed
        return grad.reshape(self._input_shape(x_shape))

    def extra_repr(self) -> str:
        """PyTorch's: ``kernel_size=..., stride=..., padding=..., dilation=...``."""
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}"
        )


class MaxPool2d(_MaxPoolNd):
    """2-d max pooling, as ``torch.nn.MaxPool2d``: the largest entry of each window.

    Parameters
    ----------
    kernel_size : int or pair of ints
        The window's (height, width).
    stride : int, pair of ints or None, default None
        The step between windows; None: the kernel size (windows side by side).
    padding : int or pair of ints, default 0
        Entries of -inf added on both sides of each spatial axis (so they are never the
        maximum), at most half the kernel size (dilation aside), as PyTorch requires.
    dilation : int or pair of ints, default 1
        The step between the window's taps.

    PyTorch's ``ceil_mode`` and ``return_indices`` are not offered: windows never go past
    the padded input (ceil_mode=False), and the indices stay inside the layer.

    Shape
    -----
    x: (batch, channels, H, W) -> y: (batch, channels, OH, OW) with
    OH = floor((H + 2 padding_h - dilation_h (kh - 1) - 1) / stride_h) + 1, and OW alike.

    Notes
    -----
    Forward: y[n, c, p, q] = max over the window's taps (i, j) of
    x~[n, c, p s_h + i d_h, q s_w + j d_w], with x~ the input padded with -inf; the layer
    caches the offset (i, j) of the entry each output took (one byte per output). Backward:
    dL/dx[n, c, h, w] = sum of g[n, c, p, q] over the outputs whose maximum was the entry
    (h, w), so where windows overlap (stride < kernel_size) an entry collects the gradient
    of every window it won. As in PyTorch, a tie goes to the first of the equal entries in
    row-major order within the window, a NaN entry is the maximum (the last NaN, if several),
    and a window whose entries are all -inf routes its gradient to its first entry that is
    not padding.

    Examples
    --------
    >>> import numpy as np
    >>> pool = MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1)
    >>> x = np.array([[[[1.0, 2.0, 0.0, 0.0],
    ...                 [3.0, 4.0, 0.0, 5.0]]]])
    >>> pool(x)
    array([[[[4., 5.]]]])
    >>> pool.backward(np.array([[[[10.0, 20.0]]]]))
    array([[[[ 0.,  0.,  0.,  0.],
             [ 0., 10.,  0., 20.]]]])

    A tie goes to the first of the equal entries:

    >>> pool(np.ones((1, 1, 2, 2)))
    array([[[[1.]]]])
    >>> pool.backward(np.array([[[[3.0]]]]))
    array([[[[3., 0.],
             [0., 0.]]]])
    """

    _dims = 2


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling, as ``torch.nn.MaxPool1d``: the largest entry of each window.

    As :class:`MaxPool2d` with one spatial axis: ``kernel_size``, ``stride`` (default:
    the kernel size), ``padding`` (-inf, at most half the kernel size) and ``dilation``
    are ints or 1-tuples; no ``ceil_mode`` or ``return_indices``.

    Shape
    -----
    x: (batch, channels, L) -> y: (batch, channels, OL), OL = floor((L + 2 padding -
    dilation (k - 1) - 1) / stride) + 1.

    Notes
    -----
    y[n, c, p] = max_i x~[n, c, p s + i d]; dL/dx[n, c, h] = sum of g[n, c, p] over the
    outputs whose maximum was entry h (ties to the first entry, as in PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> pool = MaxPool1d(3, stride=1)
    >>> pool(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
    array([[[3., 3.]]])
    >>> pool.backward(np.array([[[1.0, 1.0]]]))  # entry 1 won both windows
    array([[[0., 2., 0., 0.]]])
    """

    _dims = 1


class _AvgPoolNd(_WindowPool):
    _config_keys = ("kernel_size", "stride", "padding", "count_include_pad")

    # Checked on assignment too, so pool.count_include_pad = "False" fails where it is written
    count_include_pad = Checked(check_bool, "Whether the padding counts in the divisor.")

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        *,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self._window(kernel_size, stride, padding, 1, as_given=self._dims == 2)
        self.count_include_pad = count_include_pad

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = the mean of each window (over kh kw entries, or only those inside the input
        with count_include_pad=False)."""
        x, plan = self._plan(self._input(x))
        taps = self._taps()
        scale = self._scale(x.shape[2:], plan, x.dtype)
        # Each entry is divided by kh kw first, so that no sum of entries near the dtype's
        # largest overflows: every mean is within the range of its entries
        with np.errstate(over="ignore", invalid="ignore"):
            divided = x * x.dtype.type(1.0 / taps)
            y = np.zeros((*x.shape[:2], *plan.out), x.dtype)
            for offset in plan.offsets:
                y[offset.target] += divided[offset.source]
            if np.ndim(scale):  # border windows with fewer entries inside than kh kw
                y *= scale * taps
        self._cache = (scale, plan, x.shape)
        return y.reshape(self._output_shape(x.shape, plan))

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx: each output's gradient divided by its count, added to every entry of its
        window (summed where windows overlap)."""
        scale, plan, x_shape = self._last()
        output_shape = (*x_shape[:2], *plan.out)
        g = self._gradient(grad_output, self._output_shape(x_shape, plan)).reshape(output_shape)
        grad = np.zeros(x_shape, self._dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            g = g * scale
            for offset in plan.offsets:
                if plan.overlap:
                    grad[offset.source] += g[offset.target]
                else:  # windows apart: each entry is in one window at most
                    grad[offset.source] = g[offset.target]
        return grad.reshape(self._input_shape(x_shape))

    def _taps(self) -> int:
        kernel = self._geometry[0]
        return kernel[0] * kernel[1]

    def _scale(
        self, sizes: tuple[int, ...], plan: _windows.Plan, dtype: np.dtype[np.floating[Any]]
    ) -> FloatArray | np.floating[Any]:
        """1 / the divisor of each output: 1 / (kh kw), or with count_include_pad=False an
        (OH, OW) table of 1 / the number of entries of each window inside the input."""
        kernel, stride, _, pads = self._geometry
        if self.count_include_pad or pads == ((0, 0), (0, 0)):
            scale: np.floating[Any] = dtype.type(1.0 / self._taps())  # the stubs say Any
            return scale
        return _inverse_counts(tuple(sizes), kernel, stride, pads).astype(dtype)

    def extra_repr(self) -> str:
        """PyTorch's: ``kernel_size=..., stride=..., padding=...`` (and count_include_pad
        when it is False)."""
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return text if self.count_include_pad else text + ", count_include_pad=False"


@lru_cache(maxsize=64)
def _inverse_counts(
    sizes: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> NDArray[np.float64]:
    """1 / the number of entries inside the input of each window, an (OH, OW) table."""
    per_axis = []
    for size, k, s, (pad, _) in zip(sizes, kernel, stride, pads, strict=True):
        out = _windows.out_size(size, k, s, 1, (pad, pad))
        starts = np.arange(out) * s - pad
        per_axis.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
    table: NDArray[np.float64] = 1.0 / (per_axis[0][:, None] * per_axis[1][None, :])
    table.flags.writeable = False  # shared by every call with these sizes
    return table


class AvgPool2d(_AvgPoolNd):
    """2-d average pooling, as ``torch.nn.AvgPool2d``: the mean of each window.

    Parameters
    ----------
    kernel_size : int or pair of ints
        The window's (height, width).
    stride : int, pair of ints or None, default None
        The step between windows; None: the kernel size.
    padding : int or pair of ints, default 0
        Zeros added on both sides of each spatial axis, at most half the kernel size (as PyTorch
        requires).
    count_include_pad : bool, default True
        Whether the padding's zeros count in the mean's divisor (PyTorch's default): True
        divides every window by kh kw, False by the number of its entries inside the input.
        Keyword-only, since PyTorch's fourth positional argument is ``ceil_mode``.

    PyTorch's ``ceil_mode`` and ``divisor_override`` are not offered: windows never go past
    the padded input, and the divisor is kh kw or the count inside the input.

    Shape
    -----
    x: (batch, channels, H, W) -> y: (batch, channels, OH, OW) with
    OH = floor((H + 2 padding_h - kh) / stride_h) + 1, and OW alike.

    Notes
    -----
    Forward: y[n, c, p, q] = (1 / D[p, q]) sum_{i, j} x~[n, c, p s_h + i, q s_w + j], with
    x~ the input padded with zeros and D[p, q] = kh kw (or the count of the window's entries
    inside the input). Backward: dL/dx[n, c, h, w] = sum of g[n, c, p, q] / D[p, q] over
    the windows that hold (h, w). Entries are divided before they are summed, so the mean
    of entries near the largest float is that float, where PyTorch's float32 sum
    overflows to inf.

    Examples
    --------
    >>> import numpy as np
    >>> pool = AvgPool2d(2)
    >>> pool
    AvgPool2d(kernel_size=2, stride=2, padding=0)
    >>> pool(np.arange(8.0).reshape(1, 1, 2, 4))
    array([[[[2.5, 4.5]]]])
    >>> pool.backward(np.array([[[[4.0, 8.0]]]]))
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    >>> AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(np.ones((1, 1, 3, 3)))
    array([[[[1., 1., 1.],
             [1., 1., 1.],
             [1., 1., 1.]]]])
    """

    _dims = 2


class AvgPool1d(_AvgPoolNd):
    """1-d average pooling, as ``torch.nn.AvgPool1d``: the mean of each window.

    As :class:`AvgPool2d` with one spatial axis (``kernel_size``, ``stride``, ``padding``
    ints or 1-tuples, kept as 1-tuples as PyTorch does; ``count_include_pad`` keyword-only).

    Shape
    -----
    x: (batch, channels, L) -> y: (batch, channels, OL), OL = floor((L + 2 padding - k) /
    stride) + 1.

    Notes
    -----
    y[n, c, p] = (1 / D[p]) sum_i x~[n, c, p s + i]; dL/dx[n, c, h] = sum of g[n, c, p] / D[p]
    over the windows that hold h. D[p] = k, or the window's entries inside the input.

    Examples
    --------
    >>> import numpy as np
    >>> pool = AvgPool1d(2)
    >>> pool
    AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    >>> pool(np.array([[[1.0, 3.0, 5.0, 7.0]]]))
    array([[[2., 6.]]])
    """

    _dims = 1


# -- adaptive average pooling --------------------------------------------------------------------


@lru_cache(maxsize=64)
def _bins(size: int, out: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """PyTorch's adaptive bins of an axis of ``size`` entries split into ``out``: bin o
    spans [floor(o size / out), ceil((o + 1) size / out)). Returns (starts, lengths)."""
    o = np.arange(out)
    starts = (o * size) // out
    ends = -((-(o + 1) * size) // out)
    for array in (starts, ends):
        array.flags.writeable = False
    return starts, ends - starts


def _bin_means(x: FloatArray, axis: int, out: int) -> FloatArray:
    """The mean of each adaptive bin of ``x`` along ``axis`` (``out`` bins)."""
    size = x.shape[axis]
    if size % out == 0:  # equal bins side by side: a reshape and a sum
        length = size // out
        grouped = x.reshape(*x.shape[:axis], out, length, *x.shape[axis + 1 :])
        means: FloatArray = np.add.reduce(grouped * (1.0 / length), axis=axis + 1)
        return means
    starts, lengths = _bins(size, out)
    where = [1] * x.ndim
    where[axis] = out
    scale = (1.0 / lengths).astype(x.dtype).reshape(where)
    shape = list(x.shape)
    shape[axis] = out
    y = np.zeros(shape, x.dtype)
    for j in range(int(lengths.max())):  # the j-th entry of every bin that has one
        entries = np.take(x, np.minimum(starts + j, size - 1), axis=axis)
        np.add(y, entries * scale, out=y, where=(lengths > j).reshape(where))
    return y


def _bin_gradient(g: FloatArray, axis: int, size: int) -> FloatArray:
    """dL/dx along ``axis`` (of ``size`` entries) from the gradient of its bin means."""
    out = g.shape[axis]
    if size % out == 0:
        length = size // out
        return np.repeat(g * (1.0 / length), length, axis=axis)
    starts, lengths = _bins(size, out)
    where = [1] * g.ndim
    where[axis] = out
    divided = np.moveaxis(g * (1.0 / lengths).astype(g.dtype).reshape(where), axis, 0)
    shape = list(g.shape)
    shape[axis] = size
    grad = np.zeros(shape, g.dtype)
    target = np.moveaxis(grad, axis, 0)  # a view: writes reach grad
    for j in range(int(lengths.max())):
        inside = lengths > j
        entries = starts[inside] + j
        if out <= size:  # bins start at distinct entries: no entry repeats
            target[entries] += divided[inside]
        else:  # more bins than entries: neighbouring bins share entries
            np.add.at(target, entries, divided[inside])
    return grad


class _AdaptiveAvgPoolNd(_Pool):
    def __init__(self, output_size: int | tuple[int | None, ...] | None) -> None:
        super().__init__()
        name, dims = type(self).__name__, self._dims
        self._output_size: int | tuple[int | None, ...] | None
        items = list(output_size) if isinstance(output_size, (tuple, list)) else None
        if items is not None and len(items) != dims:
            raise ValueError(
                f"{name} output_size must be {_sizes_wanted(dims)}, got {shown(output_size)} "
                f"of length {len(items)}"
            )
        for item in items if items is not None else [output_size]:
            if item is None and dims == 2:
                continue
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
                raise TypeError(
                    f"{name} output_size must be {_sizes_wanted(dims)}, got "
                    f"{shown(output_size)} ({type(item).__name__})"
                )
            if not 1 <= item <= _windows.LARGEST:
                raise ValueError(
                    f"{name} output_size must be {_sizes_wanted(dims)}, got {shown(output_size)}"
                )
        if items is None:
            # not a tuple here (items is None), which the type cannot follow
            self._output_size = None if output_size is None else int(output_size)  # type: ignore[arg-type]
        else:
            self._output_size = tuple(None if item is None else int(item) for item in items)

    @property
    def output_size(self) -> int | tuple[int | None, ...] | None:
        """The output's spatial size, as given (fixed at construction)."""
        return self._output_size

    def _sizes(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        wanted = self.output_size
        if not isinstance(wanted, tuple):
            wanted = (wanted,) * self._dims
        return tuple(
            size if out is None else out for size, out in zip(spatial, wanted, strict=True)
        )

    def forward(self, x: ArrayLike) -> FloatArray:
        """y = the mean of each adaptive bin."""
        x = self._input(x)
        if 0 in x.shape[2:]:
            raise ShapeError(
                f"{self!r} needs at least one entry along each spatial axis, got input of "
                f"shape {x.shape}"
            )
        out = self._sizes(x.shape[2:])
        y = x
        with np.errstate(over="ignore", invalid="ignore"):
            for axis in range(x.ndim - 1, 1, -1):  # the last axis first, the contiguous one
                if out[axis - 2] != x.shape[axis]:
                    y = _bin_means(y, axis, out[axis - 2])
        if y is x:  # output_size = the input's size: a copy, so the output is its own
            y = x.copy()
        self._cache = x.shape
        return y

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dL/dx: each output's gradient divided by its bin's size, spread over the bin."""
        x_shape = self._last()
        out = self._sizes(x_shape[2:])
        grad = self._gradient(grad_output, (*x_shape[:2], *out))
        with np.errstate(over="ignore", invalid="ignore"):
            for axis in range(2, len(x_shape)):
                if out[axis - 2] != x_shape[axis]:
                    grad = _bin_gradient(grad, axis, x_shape[axis])
        return grad if grad is not grad_output else grad.copy()

    def get_config(self) -> dict[str, Any]:
        """``{"output_size": ...}``, an int, None or a list."""
        return {"output_size": _windows.as_config(self.output_size)}

    @classmethod
    def from_config(cls: type[_AdaptiveT], config: dict[str, Any]) -> _AdaptiveT:
        """The layer :meth:`get_config` describes (its value is checked as an argument)."""
        name = cls.__name__
        if not isinstance(config, dict):
            raise TypeError(f"a {name} config is a dict, got {type(config).__name__}")
        if set(config) != {"output_size"}:
            raise ValueError(f"a {name} config has the keys ['output_size'], got {listed(config)}")
        return cls(**config)

    def extra_repr(self) -> str:
        """``output_size=...``, as PyTorch shows it."""
        return f"output_size={self.output_size}"


def _sizes_wanted(dims: int) -> str:
    if dims == 1:
        return "an integer >= 1"
    return "an integer >= 1 or a pair of them (None for an axis keeps the input's size)"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-d adaptive average pooling, as ``torch.nn.AdaptiveAvgPool2d``: the mean over each
    of output_size bins, whatever the input's size. ``AdaptiveAvgPool2d(1)`` is global
    average pooling.

    Parameters
    ----------
    output_size : int or pair of (int or None)
        The output's (height, width); one int for a square output, None for an axis that
        keeps the input's size.

    Shape
    -----
    x: (batch, channels, H, W) -> y: (batch, channels, OH, OW), (OH, OW) = output_size.

    Notes
    -----
    PyTorch's bins: along an axis of H entries split into OH, bin p spans the entries
    [floor(p H / OH), ceil((p + 1) H / OH)) (neighbouring bins share an entry when OH does
    not divide H). Forward: y[n, c, p, q] = the mean of x[n, c] over bin p of the rows and
    bin q of the columns; backward: dL/dx[n, c, h, w] = sum of g[n, c, p, q] / (|bin p|
    |bin q|) over the bins that hold (h, w). Both are computed one axis at a time (a mean
    over a rectangle is the mean of the rows' means), with entries divided before they are
    summed so that no sum overflows.

    Examples
    --------
    >>> import numpy as np
    >>> pool = AdaptiveAvgPool2d(1)
    >>> pool
    AdaptiveAvgPool2d(output_size=1)
    >>> pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    >>> AdaptiveAvgPool2d((2, None))(np.arange(6.0).reshape(1, 1, 3, 2))
    array([[[[1., 2.],
             [3., 4.]]]])
    """

    _dims = 2


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-d adaptive average pooling, as ``torch.nn.AdaptiveAvgPool1d``: the mean over each of
    ``output_size`` bins (PyTorch's, see :class:`AdaptiveAvgPool2d`), whatever the length.

    Shape
    -----
    x: (batch, channels, L) -> y: (batch, channels, output_size).

    Notes
    -----
    y[n, c, p] = mean of x[n, c] over bin p = [floor(p L / OL), ceil((p + 1) L / OL));
    dL/dx[n, c, h] = sum of g[n, c, p] / |bin p| over the bins that hold h.

    Examples
    --------
    >>> import numpy as np
    >>> AdaptiveAvgPool1d(2)(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]))  # bins [0, 3), [2, 5)
    array([[[2., 4.]]])
    """

    _dims = 1
