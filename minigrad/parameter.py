"""Arrays a layer owns: trainable parameters (a value and its gradient) and buffers (a value)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad._validation import check_bool
from minigrad.typing import FloatArray

__all__ = ["Buffer", "Parameter"]


class _Owned:
    """A named array of numbers that keeps its shape and dtype for life: floating point, or
    for a Buffer also int64 (a count).

    The value may be updated in place (``value[...] = new``, ``value -= step``) and replaced
    only by an array that fits: same shape and dtype, writeable and C-contiguous, since
    optimizers write into it in place and reshape it into views.
    """

    # Plain slots, so that reading value, which optimizers and layers do at every step, costs
    # a C-level attribute read (Parameter.grad adds one flag test); only assignments go
    # through __setattr__
    __slots__ = ("name", "value")

    name: str
    # A Parameter's value is floating point (FloatArray, below); a Buffer's is floating
    # point or int64 (a count), typed as any array: a union would need narrowing at every
    # use of a floating-point buffer (running statistics) that no check can give
    value: NDArray[Any]

    #: the array attributes whose replacement is checked, and the slot that holds each
    _array_slots: ClassVar[dict[str, str]] = {"value": "value"}
    #: dtypes allowed besides the floating-point ones (Buffer: int64, for counts)
    _other_dtypes: ClassVar[tuple[np.dtype[Any], ...]] = ()

    def __init__(self, value: ArrayLike, name: str) -> None:
        self.name = name
        kind = type(self).__name__
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{kind} {name!r}: the value must be a floating-point array, got "
                f"{type(value).__name__} ({error})"
            ) from None
        if not np.issubdtype(array.dtype, np.floating) and array.dtype not in self._other_dtypes:
            allowed = "".join(f" or {dtype}" for dtype in self._other_dtypes)
            raise TypeError(
                f"{kind} values must be floating point{allowed}, got dtype {array.dtype}; "
                "convert with .astype(np.float32) or np.float64"
            )
        # A read-only or strided array is copied: optimizers update values in place
        if not (array.flags.c_contiguous and array.flags.writeable):
            array = np.array(array, order="C")
        object.__setattr__(self, "value", array)

    def __setattr__(self, name: str, new: object) -> None:
        slot = self._array_slots.get(name)
        if slot is not None:
            # An unset slot is being filled (by __init__, copy or pickle): nothing to keep
            old = getattr(self, slot, None)
            if old is not None and new is not old:  # ``p.value -= step`` assigns it back
                new = _fitting(self, name, new, old)
            if slot == "_grad":  # the assigned array's values are the gradient now
                object.__setattr__(self, "_zero_pending", False)
            name = slot
        elif name == "requires_grad":
            new = check_bool(f"{type(self).__name__}.requires_grad", new)
        elif name == "name" and not isinstance(new, str):
            raise TypeError(f"{type(self).__name__} name must be a str, got {type(new).__name__}")
        object.__setattr__(self, name, new)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value``."""
        return self.value.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of ``value``."""
        return self.value.dtype

    @property
    def size(self) -> int:
        """The number of scalar entries in ``value``."""
        return self.value.size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"


def _fitting(owner: _Owned, what: str, new: object, old: NDArray[Any]) -> NDArray[Any]:
    """``new`` if it can take the place of ``old`` in ``owner``, else a TypeError/ValueError."""
    where = f"{type(owner).__name__} {owner.name!r}" if owner.name else type(owner).__name__
    hint = f"; to change the values write into the array: {what}[...] = new"
    if not isinstance(new, np.ndarray):
        raise TypeError(f"{where}.{what} must be a NumPy array, got {type(new).__name__}{hint}")
    if new.shape != old.shape:
        raise ValueError(
            f"{where}.{what} must keep its shape {old.shape}, got an array of shape "
            f"{new.shape}{hint}"
        )
    if new.dtype != old.dtype:
        raise TypeError(
            f"{where}.{what} must keep its dtype {old.dtype}, got {new.dtype}; write into "
            f"the array instead ({what}[...] = new casts) or cast with .astype({old.dtype})"
        )
    if not new.flags.writeable:
        raise ValueError(f"{where}.{what} must be writeable, got a read-only array{hint}")
    if not new.flags.c_contiguous:
        raise ValueError(
            f"{where}.{what} must be C-contiguous, got a strided view{hint}, "
            "or pass np.ascontiguousarray(new)"
        )
    return new


class Parameter(_Owned):
    """A trainable array and the gradient of the loss with respect to it.

    Layers own their parameters as attributes (``self.weight = Parameter(...)``); the
    attribute name becomes the parameter's key in ``state_dict()``. Optimizers update
    ``value`` in place, so a layer and its optimizer always see the same array.

    Parameters
    ----------
    value : ndarray
        The initial value, a floating-point array. It is used as it is (no copy) when it is
        C-contiguous and writeable, else copied into such an array.
    name : str, optional
        A label for messages and reprs; layers set it to the attribute name.

    Attributes
    ----------
    value : ndarray
        The parameter's current value. Its shape and dtype are fixed: change the numbers in
        place (``p.value[...] = new``); assigning another array is allowed only for one of
        the same shape and dtype, writeable and C-contiguous (anything else raises at once,
        naming the parameter, rather than at the optimizer's next step).
    grad : ndarray
        dL/dvalue, same shape and dtype as ``value``, allocated once. A layer's ``backward``
        overwrites it (gradients do not accumulate across backward calls). After
        :meth:`zero_grad` it reads as zeros. The same rules as for ``value`` apply to
        assigning it.
    requires_grad : bool, default True
        False freezes the parameter (``Layer.freeze()`` sets it for a whole model): layers
        skip its gradient's product in backward and leave ``grad`` untouched (stale, not
        computed), optimizers neither update it nor create or change its state (no weight
        decay either), gradient clipping and :class:`~minigrad.optim.SafeStep` ignore it.
        dL/dx still flows through a frozen layer to the layers before it. As in PyTorch,
        it is not saved: ``state_dict()``, model files and checkpoints hold values only.

    Notes
    -----
    :meth:`zero_grad` is free, like PyTorch's ``zero_grad(set_to_none=True)``: it only marks
    the gradient as zero. Reading ``grad`` then fills the array with zeros first (once), so
    code that reads it or adds into it (``p.grad += g``, gradient clipping, an optimizer
    step) sees zeros; a backward that writes every entry takes the array through
    :meth:`grad_to_overwrite` instead and skips that pass. The array stays the same object.

    A Parameter belongs to exactly one place in a model: layers refuse to share one (tied
    weights), because each backward overwrites ``grad`` and a shared parameter would keep
    only its last use's gradient (see :class:`~minigrad.layers.base.Layer`).

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.ones((2, 3), dtype=np.float32), name="weight")
    >>> p
    Parameter(name='weight', shape=(2, 3), dtype=float32)
    >>> p.grad.shape, p.grad.dtype
    ((2, 3), dtype('float32'))
    >>> p.grad[...] = 1.0
    >>> p.zero_grad()  # free: the zeros are written when grad is next read
    >>> p.grad.tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    >>> p.value[...] = 0.5  # change the values in place
    >>> p.requires_grad = False  # frozen: no gradient computed, never updated
    >>> p.requires_grad = "False"
    Traceback (most recent call last):
        ...
    TypeError: Parameter.requires_grad must be True or False, got 'False' (str)
    >>> p.value = np.zeros((3, 2), dtype=np.float32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: Parameter 'weight'.value must keep its shape (2, 3), got an array of shape (3, 2)...
    """

    # _grad holds the gradient array; _zero_pending says that zero_grad() was called since it
    # was last written, so that its zeros are still to be filled in
    __slots__ = ("_grad", "_zero_pending", "requires_grad")
    _array_slots: ClassVar[dict[str, str]] = {"value": "value", "grad": "_grad"}

    value: FloatArray
    _grad: FloatArray
    _zero_pending: bool
    requires_grad: bool

    def __init__(self, value: FloatArray, name: str = "") -> None:
        super().__init__(value, name)
        object.__setattr__(self, "requires_grad", True)
        # np.zeros, not zeros_like: the system hands out zeroed pages lazily, so a gradient
        # costs no memory until backward first writes it
        object.__setattr__(self, "_grad", np.zeros(self.value.shape, self.value.dtype))
        object.__setattr__(self, "_zero_pending", False)

    @property
    def grad(self) -> FloatArray:
        """dL/dvalue (see the class notes); zeros after :meth:`zero_grad`, filled in here."""
        if self._zero_pending:
            self._grad.fill(0)
            object.__setattr__(self, "_zero_pending", False)
        return self._grad

    @grad.setter
    def grad(self, new: FloatArray) -> None:
        # Never reached through ``p.grad = new``: __setattr__ routes that to the _grad slot,
        # checking the array. Declared for type checkers, and routed the same way
        _Owned.__setattr__(self, "grad", new)

    def grad_to_overwrite(self) -> FloatArray:
        """The gradient array, for a backward that writes every entry of it: skips a pending
        :meth:`zero_grad`'s fill, which the backward would overwrite anyway.

        A backward that adds into the gradient, or writes only some entries, reads
        ``grad`` instead, which holds zeros after ``zero_grad()``.
        """
        if self._zero_pending:
            object.__setattr__(self, "_zero_pending", False)
        return self._grad

    def zero_grad(self) -> None:
        """Mark the gradient as zero, for free: reading ``grad`` next fills it with zeros,
        a backward that overwrites it (through :meth:`grad_to_overwrite`) skips the fill."""
        object.__setattr__(self, "_zero_pending", True)


class Buffer(_Owned):
    """A non-trainable array a layer keeps and saves: statistics, running averages.

    A buffer is found by structure like a :class:`Parameter` (any attribute holding one) and
    goes into ``state_dict()`` and model files under its attribute name, but it has no
    gradient and optimizers never see it: ``parameters()`` lists only Parameters. This is
    PyTorch's buffer (``register_buffer``), for values such as batch norm's running mean.

    A buffer holds floating-point values, or int64 ones for a count (batch norm's
    ``num_batches_tracked``, an int64 0-d tensor in PyTorch too); model files and
    checkpoints store both. Gradient checks, clipping and optimizers read parameters only,
    so an integer buffer never meets float arithmetic there.

    Parameters
    ----------
    value : ndarray
        The initial value, a floating-point or int64 array (copied when it is not
        C-contiguous and writeable).
    name : str, optional
        A label for messages and reprs; layers set it to the attribute name.

    Attributes
    ----------
    value : ndarray
        The current value, with the same fixed shape and dtype rules as ``Parameter.value``.

    Examples
    --------
    >>> import numpy as np
    >>> from minigrad import Layer
    >>> class Shift(Layer):  # y = x - offset, with the offset saved but never trained
    ...     def __init__(self, offset):
    ...         super().__init__()
    ...         self.offset = Buffer(np.asarray(offset, dtype=np.float64), name="offset")
    ...     def forward(self, x):
    ...         return x - self.offset.value
    ...     def backward(self, grad_output):
    ...         return grad_output
    >>> layer = Shift([1.0, 2.0])
    >>> layer.parameters(), layer.state_dict()
    ([], {'offset': array([1., 2.])})
    >>> Buffer(np.zeros((), np.int64), name="count")  # a count: int64 is allowed too
    Buffer(name='count', shape=(), dtype=int64)
    >>> Buffer(np.zeros(2, np.int32))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    TypeError: Buffer values must be floating point or int64, got dtype int32; convert ...
    """

    __slots__ = ()
    _other_dtypes: ClassVar[tuple[np.dtype[Any], ...]] = (np.dtype(np.int64),)

    def __init__(self, value: NDArray[np.floating[Any] | np.int64], name: str = "") -> None:
        super().__init__(value, name)
