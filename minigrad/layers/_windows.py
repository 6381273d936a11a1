"""Sliding windows over the spatial axes of (batch, channels, height, width) arrays: their
geometry, their arguments, and the loops over kernel offsets that convolution (im2col and
col2im) and pooling share.

A window of ``kernel`` taps, ``dilation`` apart, moves by ``stride`` over an axis of ``size``
entries padded with ``pads[0]`` entries before and ``pads[1]`` after. Output ``o`` reads, at
kernel offset ``i``, the input entry

    h = o * stride + i * dilation - pads[0],   o = 0, ..., out - 1,   i = 0, ..., kernel - 1
    out = floor((size + pads[0] + pads[1] - dilation * (kernel - 1) - 1) / stride) + 1

For each offset, the outputs whose entry lies inside the input (not in the padding) form one
contiguous range, and the entries they read one strided slice of the input. So each
operation here is a loop over the kh * kw kernel offsets, every step one vectorised NumPy
operation over the whole batch, and the padding is never materialised: an entry in the
padding is simply not read (a zero for convolution, -inf for max pooling). One-dimensional
layers use the same code with a height of 1.
"""

from __future__ import annotations

import numbers
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from minigrad._validation import shown

#: the largest size an argument may have (no array has more entries along an axis)
LARGEST = np.iinfo(np.intp).max
#: the batch and channel axes, in front of the spatial slices of an Offset
_ALL = (slice(None), slice(None))


class Offset(NamedTuple):
    """One kernel offset, (i, j) and its row-major index ``k = i * kw + j``, with the parts
    of the arrays it joins: the input entries at ``source`` (indices of the four axes: all
    samples and channels, strided slices of the spatial axes) are read by the outputs at
    ``target`` (indices of the output's four axes). ``whole``: the target is every output
    (no output reads padding at this offset)."""

    i: int
    j: int
    k: int
    source: tuple[slice, slice, slice, slice]
    target: tuple[slice, slice, slice, slice]
    whole: bool


class Plan(NamedTuple):
    """A window's geometry over an input of a given spatial size: the output size, and the
    kernel offsets that touch the input (those that would read only padding are left out).

    ``full``: the first offset is (0, 0) and reads inside the input for every output (the
    case without padding). ``inside``: every offset does, so no window reads padding.
    ``overlap``: an input entry may be read by several outputs (the dilated window spans
    more than the stride), so gradients must be added, not written.
    """

    out: tuple[int, int]
    offsets: tuple[Offset, ...]
    full: bool
    inside: bool
    overlap: bool


def out_size(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> int:
    """Positions of a window along one axis (<= 0 when the window does not fit)."""
    return (size + pads[0] + pads[1] - dilation * (kernel - 1) - 1) // stride + 1


def _axis_ranges(
    size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int], out: int
) -> list[tuple[slice, slice] | None]:
    """For each kernel offset along one axis, (input slice, output slice), or None when all
    of its entries fall in the padding."""
    ranges: list[tuple[slice, slice] | None] = []
    for i in range(kernel):
        shift = i * dilation - pads[0]  # the input entry output 0 reads
        first = -(shift // stride) if shift < 0 else 0  # ceil(-shift / stride)
        last = min(out - 1, (size - 1 - shift) // stride)
        if last < first:
            ranges.append(None)
        else:
            start, stop = first * stride + shift, last * stride + shift + 1
            ranges.append((slice(start, stop, stride), slice(first, last + 1)))
    return ranges


@lru_cache(maxsize=256)
def plan(
    sizes: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> Plan:
    """The window's output size and kernel offsets over an input of spatial ``sizes``.

    Memoised, as a layer asks for the same plan at every batch. The caller has checked
    that the window fits (each output size >= 1).
    """
    axes = list(zip(sizes, kernel, stride, dilation, pads, strict=True))
    out = tuple(out_size(*axis) for axis in axes)
    rows, columns = (_axis_ranges(*axis, n) for axis, n in zip(axes, out, strict=True))
    whole = (slice(0, out[0]), slice(0, out[1]))
    offsets = tuple(
        Offset(
            i,
            j,
            i * kernel[1] + j,
            (*_ALL, row[0], column[0]),
            (*_ALL, row[1], column[1]),
            (row[1], column[1]) == whole,
        )
        for i, row in enumerate(rows)
        if row is not None
        for j, column in enumerate(columns)
        if column is not None
    )
    full = bool(offsets) and offsets[0].k == 0 and offsets[0].whole
    inside = len(offsets) == kernel[0] * kernel[1] and all(offset.whole for offset in offsets)
    overlap = any(d * (k - 1) + 1 > s for k, s, d in zip(kernel, stride, dilation, strict=True))
    return Plan((out[0], out[1]), offsets, full, inside, overlap)


def first_inside(
    size: int, kernel: int, stride: int, dilation: int, pad: int, out: int
) -> NDArray[np.intp]:
    """For each output along one axis, the first kernel offset that reads inside the input
    (0 unless the window starts in the padding)."""
    starts = np.arange(out) * stride - pad  # the input entry offset 0 reads
    return np.clip(-(starts // dilation), 0, kernel - 1)  # ceil(-start / dilation), >= 0


# -- convolution's working layout -------------------------------------------------------------
# A convolution works on channels-first copies of its arrays, (C, N, H, W), so that its
# columns are one matrix (C kh kw, N OH OW) and each product one BLAS call. Each kernel
# offset then copies (im2col) or adds (col2im) rows of OW entries: for short rows (the small
# feature maps of a LeNet) NumPy's cost per row dominates, and the batch axis goes last
# instead, (C, H, W, N), which makes the rows OW N entries long at the price of moving the
# batch axis in and out (a transposition that costs more than it saves on large maps).

#: output rows shorter than this make a convolution work with the batch axis last
SHORT_ROWS = 16


def batch_last(plan: Plan) -> bool:
    """Whether a convolution over ``plan`` works with the batch axis last."""
    return plan.out[1] < SHORT_ROWS


def work_axes(last: bool) -> tuple[int, int, int, int]:
    """The axes that turn an (N, C, H, W) array into the working layout."""
    return (1, 2, 3, 0) if last else (1, 0, 2, 3)


def nchw_axes(last: bool) -> tuple[int, int, int, int]:
    """The axes that turn an array in the working layout back into (N, C, H, W)."""
    return (3, 0, 1, 2) if last else (1, 0, 2, 3)


def working(index: tuple[slice, ...], last: bool) -> tuple[slice, ...]:
    """An Offset's source or target (slices of N, C, H, W) for an array in the working
    layout: the same slices in the order (C, N, H, W) or (C, H, W)."""
    return index[1:] if last else index


def im2col(x: NDArray, plan: Plan, kernel: tuple[int, int], last: bool) -> NDArray:
    """The windows of ``x`` (C, N, H, W), or (C, H, W, N) when ``last``, as the columns of
    a matrix (C kh kw, N OH OW), or (C kh kw, OH OW N).

    Viewed as (C, kh, kw, N, OH, OW), entry [c, i, j, n, oh, ow] is the input entry that
    output (oh, ow) of sample n reads at kernel offset (i, j) of channel c, zero in the
    padding: one strided copy per kernel offset, into zeros only when some window reads
    padding.
    """
    channels = x.shape[0]
    n = x.shape[-1] if last else x.shape[1]
    positions = (*plan.out, n) if last else (n, *plan.out)
    shape = (channels * kernel[0] * kernel[1], n * plan.out[0] * plan.out[1])
    columns = (np.empty if plan.inside else np.zeros)(shape, x.dtype)
    windows = columns.reshape(channels, *kernel, *positions)
    for offset in plan.offsets:
        windows[:, offset.i, offset.j][working(offset.target, last)] = x[
            working(offset.source, last)
        ]
    return columns


# -- arguments --------------------------------------------------------------------------------


def int_tuple(owner: str, name: str, value: object, dims: int, minimum: int) -> tuple[int, ...]:
    """``value`` as a tuple of ``dims`` Python ints >= ``minimum``: one int (for every axis)
    or a tuple or list of ``dims`` of them, Python or NumPy integers but not bools.

    TypeError for another type, ValueError for a wrong length or a value out of range.
    """
    shape = "an integer" if dims == 1 else "an integer or a pair of integers"
    expected = f"{owner} {name} must be {shape} >= {minimum}"
    if isinstance(value, (tuple, list)):
        items = list(value)
        if len(items) != dims:
            raise ValueError(f"{expected}, got {shown(value)} of length {len(items)}")
    else:
        items = [value] * dims
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{expected}, got {shown(value)} ({type(item).__name__})")
        if not minimum <= item <= LARGEST:
            raise ValueError(f"{expected}, got {shown(value)}")
    return tuple(int(item) for item in items)


def as_config(value: tuple[int, ...] | int | str | None) -> list[int] | int | str | None:
    """A size tuple as a JSON list; ints, strings and None as they are."""
    return list(value) if isinstance(value, tuple) else value


def spatial(dims: int) -> str:
    """The spatial axes' names for shapes in messages: ``"length"`` or ``"height, width"``."""
    return "length" if dims == 1 else "height, width"


def sizes_text(sizes: tuple[int, ...]) -> str:
    """``"5 x 5"`` for (5, 5), ``"5"`` for (5,)."""
    return " x ".join(str(n) for n in sizes)
