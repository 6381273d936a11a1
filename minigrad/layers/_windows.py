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
from minigrad.typing import FloatArray

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


def im2col(
    x: FloatArray, plan: Plan, kernel: tuple[int, ...], last: bool, columns: FloatArray
) -> None:
    """Fill ``columns`` with the windows of ``x`` (C, N, H, W), or (C, H, W, N) when
    ``last``, as the columns of a matrix (C kh kw, N OH OW), or (C kh kw, OH OW N).

    Viewed as (C, kh, kw, N, OH, OW), entry [c, i, j, n, oh, ow] is the input entry that
    output (oh, ow) of sample n reads at kernel offset (i, j) of channel c, zero in the
    padding: one strided copy per kernel offset, after zeros where some window reads
    padding.
    """
    channels = x.shape[0]
    n = x.shape[-1] if last else x.shape[1]
    positions = (*plan.out, n) if last else (n, *plan.out)
    if not plan.inside:
        columns.fill(0)
    windows = columns.reshape(channels, *kernel, *positions)
    for offset in plan.offsets:
        windows[:, offset.i, offset.j][working(offset.target, last)] = x[
            working(offset.source, last)
        ]


# -- stride-1 convolution over the flat padded input -----------------------------------------
# With stride 1 there is a way to build the im2col matrix out of long contiguous copies
# instead of OW-entry rows: lay the padded input out flat, (C, N Hp Wp), and compute an
# output at every position of that padded grid. Output position p then reads, at kernel
# offset (i, j), the entry at p + i d_h Wp + j d_w: the row of the im2col matrix for
# channel c and offset (i, j) is one contiguous slice of channel c's flat input, shifted.
# The outputs at the grid positions past OH or OW read across a row's or an image's end:
# they are computed and thrown away, a fraction Hp Wp / (OH OW) - 1 of extra product (13%
# for a 3 x 3 convolution with padding 1 on 32 x 32 maps), bought back many times by copies
# that run at memory speed. The input gradient is the same construction run backwards: a
# correlation of the output gradient, laid out on the same grid with zeros at the thrown-away
# positions, with the kernel's offsets negated.


class FlatPlan(NamedTuple):
    """A stride-1 window over an input laid out flat on its padded grid.

    ``grid``: the padded size (Hp, Wp); ``out``: the output size (OH, OW), the top-left
    corner of the grid; ``shifts``: for each kernel offset in row-major order, the flat
    distance i d_h Wp + j d_w from an output position to the entry it reads; ``tail``: the
    largest shift, the zeros that follow the last image so that every shifted slice stays
    inside the array; ``waste``: Hp Wp / (OH OW), the grid's size against the output's.
    """

    grid: tuple[int, int]
    out: tuple[int, int]
    shifts: tuple[int, ...]
    tail: int
    waste: float


@lru_cache(maxsize=256)
def flat_plan(
    sizes: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> FlatPlan:
    """The flat-grid geometry of a stride-1 window over an input of spatial ``sizes``."""
    grid = (sizes[0] + sum(pads[0]), sizes[1] + sum(pads[1]))
    out = (grid[0] - dilation[0] * (kernel[0] - 1), grid[1] - dilation[1] * (kernel[1] - 1))
    shifts = tuple(
        i * dilation[0] * grid[1] + j * dilation[1]
        for i in range(kernel[0])
        for j in range(kernel[1])
    )
    return FlatPlan(grid, out, shifts, shifts[-1], grid[0] * grid[1] / (out[0] * out[1]))


def to_grid(
    grid: FloatArray, x: FloatArray, corner: tuple[int, int], size: tuple[int, int]
) -> None:
    """Write ``x`` (C, N, h, w) into ``grid`` (C, N, Hp, Wp) at ``corner`` and zeros
    around it (the padding, or the thrown-away positions of an output gradient)."""
    top, left = corner
    bottom, right = top + size[0], left + size[1]
    grid[:, :, :top] = 0
    grid[:, :, bottom:] = 0
    grid[:, :, top:bottom, :left] = 0
    grid[:, :, top:bottom, right:] = 0
    grid[:, :, top:bottom, left:right] = x


def shifted_columns(
    flat: FloatArray, shifts: tuple[int, ...], start: int, columns: FloatArray
) -> None:
    """Fill ``columns`` (C, K, L) with the K shifted slices of each channel of ``flat``
    (C, *): ``columns[c, k] = flat[c, start + shifts[k] : start + shifts[k] + L]``."""
    length = columns.shape[2]
    for k, shift in enumerate(shifts):
        columns[:, k] = flat[:, start + shift : start + shift + length]


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
        if not minimum <= int(item) <= LARGEST:  # typeshed compares an Integral with nothing
            raise ValueError(f"{expected}, got {shown(value)}")
    return tuple(int(item) for item in items)


def as_config(
    value: tuple[int | None, ...] | int | str | None,
) -> list[int | None] | int | str | None:
    """A size tuple as a JSON list; ints, strings and None as they are."""
    return list(value) if isinstance(value, tuple) else value


def spatial(dims: int) -> str:
    """The spatial axes' names for shapes in messages: ``"length"`` or ``"height, width"``."""
    return "length" if dims == 1 else "height, width"


def sizes_text(sizes: tuple[int, ...]) -> str:
    """``"5 x 5"`` for (5, 5), ``"5"`` for (5,)."""
    return " x ".join(str(n) for n in sizes)
