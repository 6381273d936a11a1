"""Scratch arrays that layers reuse from call to call instead of allocating them afresh.

A convolution's im2col matrix is the largest array of a training step (kh kw times its
input), and it only lives inside one forward or backward. Allocated afresh at every call,
such an array comes from the operating system each time (allocators hand large blocks
straight to mmap and back), and the kernel must fault in and zero every page before the
layer writes it: for a 75 MB matrix that costs as long as filling it. So layers take
these arrays from a workspace instead: one flat buffer per name, grown to the largest size
asked for and then reused by every layer and every step, which is also what keeps a deep
network's memory at one im2col matrix, however many convolutions it has.

The workspace is per thread (two threads training two models never share a buffer), and a
scratch array is valid only until the next request for the same name: a layer takes it,
uses it and is done with it before it returns. :func:`free_workspace` hands the memory
back, for a program that trains once and then does something else.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from minigrad._validation import check_allocation

__all__ = ["free_workspace", "scratch"]

_local = threading.local()


def scratch(
    name: str, shape: tuple[int, ...], dtype: DTypeLike, what: Callable[[], str]
) -> NDArray[Any]:
    """A C-contiguous array of ``shape`` and ``dtype``, uninitialised, from the buffer
    ``name`` of this thread's workspace (grown when it is too small). ``what()`` names the
    array in the MemoryError raised before an allocation that cannot succeed (called only
    then: building a message at every call would cost more than the lookup)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    buffers: dict[str, NDArray[np.uint8]] = _local.__dict__.setdefault("buffers", {})
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        check_allocation(what(), shape, dtype)
        buffers.pop(name, None)  # the old buffer is freed before the new one is allocated
        buffer = buffers[name] = np.empty(size, np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def free_workspace() -> None:
    """Free the scratch memory that convolutions keep between calls in this thread (about
    the size of the largest im2col matrix of the last network trained); the next
    convolution allocates it again.

    Examples
    --------
    >>> import numpy as np, minigrad as mg
    >>> conv = mg.Conv2d(1, 4, 3, padding=1, rng=0)
    >>> conv(np.ones((2, 1, 8, 8), np.float32)).shape
    (2, 4, 8, 8)
    >>> mg.layers.free_workspace()
    """
    _local.__dict__.pop("buffers", None)
