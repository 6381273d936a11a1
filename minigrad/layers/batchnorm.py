"""Batch normalization: BatchNorm1d over (batch, C) and (batch, C, length), BatchNorm2d over
(batch, C, height, width), with PyTorch's semantics, arguments and state_dict keys."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from minigrad._validation import (
    Checked,
    check_allocation,
    check_bool,
    check_real,
    forward_not_called,
)
from minigrad.errors import ShapeError
from minigrad.layers._checks import (
    bad_gradient,
    checked_config,
    in_dtype,
    layer_width,
    parameter_dtype,
    real_array,
)
from minigrad.layers._moments import (
    standardize,
    standardized_input_gradient,
    sum_of_products,
)
from minigrad.layers.base import Layer, stale_backward
from minigrad.parameter import Buffer, Parameter
from minigrad.typing import FloatArray

__all__ = ["BatchNorm1d", "BatchNorm2d"]

_BatchNormT = TypeVar("_BatchNormT", bound="_BatchNorm")

_CONFIG_KEYS = ("num_features", "eps", "momentum", "affine", "bias", "track_running_stats", "dtype")


def _momentum(name: str, value: object) -> float | None:
    """None (a cumulative average) or a real number in [0, 1]."""
    if value is None:
        return None
    return check_real(name, value, minimum=0, maximum=1)


class _BatchNorm(Layer):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the inputs they take.

    Subclasses set ``_LAYOUTS``, the input layouts they accept by number of dimensions.
    """

    #: {ndim: layout} of the inputs the class takes, for its messages
    _LAYOUTS: ClassVar[dict[int, str]] = {}
    #: what to suggest for an input of another number of dimensions
    _OTHER: ClassVar[str] = ""

    eps = Checked(
        partial(check_real, above=0), "Added to the variance: 1/sqrt(var + eps), eps > 0."
    )
    momentum = Checked(
        _momentum,
        "The running statistics' update weight, in [0, 1]; None: a cumulative average.",
    )

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self._build(num_features, eps, momentum, affine, bias, track_running_stats, dtype, True)

    def _build(
        self,
        num_features: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        bias: bool,
        track_running_stats: bool,
        dtype: DTypeLike,
        filled: bool,
    ) -> None:
        """Check the arguments and make the parameters and buffers. ``filled=False`` leaves
        the weight and the running variance at zero instead of one, for a load to fill:
        zeros cost no memory until written, so a file that claims an absurd width costs
        nothing before the load refuses its tensors."""
        name = type(self).__name__
        self.num_features = n = layer_width(f"{name} num_features", num_features)
        self.eps = eps
        self.momentum = momentum
        affine = check_bool(f"{name} affine", affine)
        bias = check_bool(f"{name} bias", bias)
        track = check_bool(f"{name} track_running_stats", track_running_stats)
        dtype = parameter_dtype(name, dtype)
        check_allocation(
            f"{name}({n}) is too large: its parameters and running statistics", (4, n), dtype
        )
        ones = np.ones if filled else np.zeros
        # in PyTorch's order, which the state_dict keys follow
        self.weight = Parameter(ones(n, dtype), name="weight") if affine else None
        self.bias = Parameter(np.zeros(n, dtype), name="bias") if affine and bias else None
        self.running_mean = Buffer(np.zeros(n, dtype), name="running_mean") if track else None
        self.running_var = Buffer(ones(n, dtype), name="running_var") if track else None
        self.num_batches_tracked = (
            Buffer(np.zeros((), np.int64), name="num_batches_tracked") if track else None
        )
        self._dtype = dtype
        # What backward needs from the last forward: xhat, 1/sqrt(var + eps) per channel
        # (float64), whether the batch's own statistics were used, and the group size
        self._xhat: FloatArray | None = None
        self._inv_std: NDArray[np.float64] | None = None
        self._batch_statistics = True
        self._count = 0

    @property
    def affine(self) -> bool:
        """Whether the layer has a learnable weight (and bias): y = xhat w + b."""
        return self.weight is not None

    @property
    def track_running_stats(self) -> bool:
        """Whether the layer keeps running statistics (and uses them in evaluation mode)."""
        return self.running_mean is not None

    # -- forward ------------------------------------------------------------------------

    def forward(self, x: ArrayLike) -> FloatArray:
        """Normalise each channel of ``x`` with the batch's statistics (training mode, or
        no running statistics) or the running ones (evaluation mode); then y = xhat w + b."""
        dtype = self._dtype
        if type(x) is not np.ndarray or x.dtype != dtype:
            self._xhat = None  # a failed forward leaves nothing for backward
            x = real_array(x, dtype, f"{type(self).__name__} input")
        if x.ndim not in self._LAYOUTS or x.shape[1] != self.num_features:
            self._xhat = None
            raise self._shape_error(x)
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-channel vector against x
        count = x.size // self.num_features
        batch_statistics = self.training or self.running_mean is None
        if batch_statistics:
            if count < 2:
                self._xhat = None
                raise self._too_few_values(x, count)
            xhat, mean, var, inv_std = standardize(x, axes, self.eps)
            inv_std = inv_std.reshape(-1)
            if self.training and self.running_mean is not None:
                self._track(mean.reshape(-1), var.reshape(-1), count)
        else:
            # evaluation mode with running statistics: they exist here, which mypy cannot follow
            mean = self.running_mean.value  # type: ignore[union-attr]
            inv_std = 1.0 / np.sqrt(self.running_var.value.astype(np.float64) + self.eps)  # type: ignore[union-attr]
            with np.errstate(over="ignore", invalid="ignore"):
                xhat = x - mean.reshape(shape)
                xhat *= inv_std.astype(dtype).reshape(shape)
        self._xhat, self._inv_std, self._count = xhat, inv_std, count
        self._batch_statistics = batch_statistics
        self._forward_training = self.training
        if self.weight is None:
            return xhat
        with np.errstate(over="ignore", invalid="ignore"):
            y = xhat * self.weight.value.reshape(shape)
            if self.bias is not None:
                y += self.bias.value.reshape(shape)
        return y

    def _track(self, mean: NDArray[np.float64], var: NDArray[np.float64], count: int) -> None:
        """running = (1 - f) running + f batch, with the unbiased variance var n / (n - 1);
        f = momentum, or 1 / num_batches_tracked for momentum None (a cumulative average)."""
        # called only by a layer that tracks running statistics (so it counts batches)
        tracked = self.num_batches_tracked.value  # type: ignore[union-attr]
        tracked += 1
        factor = 1.0 / float(tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / (count - 1))
        for buffer, batch in ((self.running_mean, mean), (self.running_var, unbiased)):
            # called only by a layer that tracks running statistics
            running = buffer.value  # type: ignore[union-attr]
            with np.errstate(over="ignore"):  # a variance beyond float32 becomes inf, as a cast
                running[...] = factor * batch + (1.0 - factor) * running

    # -- backward -----------------------------------------------------------------------

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """Fill weight.grad and bias.grad; return dL/dx, through the batch statistics when
        forward used them."""
        g, sum_g, sum_gx = self._gradient_sums(grad_output)
        xhat, inv_std = self._xhat, self._inv_std
        assert xhat is not None and inv_std is not None
        shape = (1, -1) + (1,) * (xhat.ndim - 2)
        scale: FloatArray = inv_std if self.weight is None else inv_std * self.weight.value
        with np.errstate(over="ignore"):
            scale = scale.astype(xhat.dtype).reshape(shape)
        if not self._batch_statistics:  # the running statistics are constants
            return g * scale
        return standardized_input_gradient(g, xhat, scale, sum_g, sum_gx, self._count)

    def backward_parameters(self, grad_output: FloatArray) -> None:
        """Fill weight.grad = sum(g xhat) and bias.grad = sum(g) per channel, skipping dL/dx."""
        self._gradient_sums(grad_output)

    def _gradient_sums(
        self, grad_output: FloatArray
    ) -> tuple[FloatArray, NDArray[np.float64], NDArray[np.float64]]:
        """grad_output checked and in the layer's dtype, and its per-channel sums sum(g) and
        sum(g xhat) (float64, axes kept), written into bias.grad and weight.grad."""
        xhat = self._xhat
        if xhat is None or (self.training and not self._forward_training):
            raise forward_not_called(self) if xhat is None else stale_backward(self)
        if (
            not isinstance(grad_output, np.ndarray)
            or grad_output.shape != xhat.shape
            or grad_output.dtype.kind != "f"
        ):
            raise bad_gradient(self, grad_output, xhat.shape)
        g = grad_output
        if g.dtype is not xhat.dtype and g.dtype != xhat.dtype:
            g = in_dtype(g, xhat.dtype)
        axes = (0, *range(2, xhat.ndim))
        # keepdims=True gives an array; the stubs say "float64 or an array"
        sum_g = cast(NDArray[np.float64], np.sum(g, axis=axes, dtype=np.float64, keepdims=True))
        sum_gx = sum_of_products(g, xhat, axes)
        with np.errstate(over="ignore"):  # a float64 sum beyond the dtype becomes inf
            # a frozen parameter's .grad is left as it was (the sums serve dL/dx too)
            if self.weight is not None and self.weight.requires_grad:
                self.weight.grad_to_overwrite()[...] = sum_gx.reshape(-1)
            if self.bias is not None and self.bias.requires_grad:
                self.bias.grad_to_overwrite()[...] = sum_g.reshape(-1)
        return g, sum_g, sum_gx

    # -- messages -----------------------------------------------------------------------

    def _short(self) -> str:
        return f"{type(self).__name__}({self.num_features})"

    def _shape_error(self, x: FloatArray) -> ShapeError:
        layouts = " or ".join(
            f"a {ndim}-D input {layout.format(self.num_features)}"
            for ndim, layout in self._LAYOUTS.items()
        )
        if x.ndim not in self._LAYOUTS:
            return ShapeError(
                f"{self._short()} expected {layouts}, got {x.ndim}-D with shape {x.shape}"
                + (f"; {self._OTHER}" if x.ndim in (2, 3, 4) else "")
            )
        return ShapeError(
            f"{self._short()} expected {self.num_features} channels along axis 1 ({layouts}), "
            f"got shape {x.shape} with {x.shape[1]}"
        )

    def _too_few_values(self, x: FloatArray, count: int) -> ValueError:
        when = "when training" if self.training else "with track_running_stats=False"
        return ValueError(
            f"{self._short()}: expected more than 1 value per channel {when}, got input of "
            f"shape {x.shape} ({count} per channel): a batch's variance needs 2 values or "
            "more; use batches of 2 samples or more (a data set whose size leaves a last "
            "batch of one sample does this: change batch_size)"
        )

    # -- state, configuration, printing -------------------------------------------------

    def _check_loaded(self, arrays: dict[str, NDArray[Any]], prefix: str) -> None:
        """Refuse running statistics forward cannot use: a mean that is not finite, a
        variance that is not finite and >= 0, a negative batch count."""
        for name, what in (("running_mean", "mean"), ("running_var", "variance")):
            if name not in arrays:
                continue
            values = arrays[name]
            finite = np.isfinite(values)
            bad = ~finite if name == "running_mean" else ~(finite & (values >= 0))
            if bad.any():
                channel = int(np.argmax(bad))
                raise ValueError(
                    f"state_dict[{prefix + name!r}] holds {values[channel]} for channel "
                    f"{channel}: a running {what} must be finite"
                    + (" and >= 0" if name == "running_var" else "")
                )
        tracked = arrays.get("num_batches_tracked")
        if tracked is not None and tracked < 0:
            raise ValueError(
                f"state_dict[{prefix + 'num_batches_tracked'!r}] is {int(tracked)}; a count of "
                "batches is >= 0"
            )

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, the dtype as its name: what :meth:`from_config` takes."""
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "bias": self.bias is not None,
            "track_running_stats": self.track_running_stats,
            "dtype": self._dtype.name,
        }

    @classmethod
    def from_config(cls: type[_BatchNormT], config: dict[str, Any]) -> _BatchNormT:
        """A layer of the configured shape, its weight and running variance left at zero
        (memory untouched) for a load to fill in."""
        config = checked_config(cls.__name__, config, _CONFIG_KEYS)
        layer = cls.__new__(cls)
        Layer.__init__(layer)
        layer._build(**config, filled=False)
        return layer

    def extra_repr(self) -> str:
        """PyTorch's: ``C, eps=, momentum=, affine=, bias=, track_running_stats=``."""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (batch, C) or (batch, C, length) inputs, as in PyTorch.

    Each channel c is standardised with statistics over the batch (and the length), then
    scaled and shifted: y = (x - mu_c) / sqrt(var_c + eps) * w_c + b_c (Ioffe and Szegedy,
    2015). In training mode mu and var are the batch's own; in evaluation mode the running
    estimates learned in training.

    Parameters
    ----------
    num_features : int
        C, the number of channels (features).
    eps : float > 0, default 1e-5
        Added to the variance, so a constant channel gives xhat = 0 rather than 0 / 0.
    momentum : float in [0, 1] or None, default 0.1
        The weight of each batch in the running statistics; None: a cumulative average of
        all batches seen (1 / num_batches_tracked).
    affine : bool, default True
        Learn the weight w (ones) and the bias b (zeros); False: y = xhat.
    track_running_stats : bool, default True
        Keep running estimates and use them in evaluation mode; False: no running buffers,
        and the batch's statistics are used in both modes.
    bias : bool, default True
        With ``affine``, learn b too (keyword only, as in PyTorch 2).
    dtype : float16, float32 or float64, default float32
        dtype of the parameters, the buffers, the output and every gradient; inputs are
        converted to it.

    Attributes
    ----------
    weight, bias : Parameter of shape (C,), or None
    running_mean, running_var : Buffer of shape (C,), or None
        Start at zeros and ones.
    num_batches_tracked : Buffer of shape () and dtype int64, or None
        Training-mode forward passes so far.

    ``state_dict()`` keys are PyTorch's: ``weight``, ``bias``, ``running_mean``,
    ``running_var``, ``num_batches_tracked`` (the ones that exist).

    Shape
    -----
    x: (batch, C) or (batch, C, length) -> y of the same shape. Statistics are taken over
    n = batch (x length) values per channel; a batch's statistics need n >= 2 (ValueError,
    as in PyTorch). Floating-point inputs of another precision, integers and booleans are
    converted to the layer's dtype; complex numbers, strings and objects are refused.

    Notes
    -----
    Forward, per channel over its n values x_i (training mode)::

        mu = (1/n) sum_i x_i,  var = (1/n) sum_i (x_i - mu)^2   (biased, to normalise)
        xhat_i = (x_i - mu) / sqrt(var + eps),  y_i = w xhat_i + b
        running_mean <- (1 - m) running_mean + m mu
        running_var  <- (1 - m) running_var + m var n / (n - 1)   (unbiased)

    with m = momentum, or 1 / num_batches_tracked when momentum is None;
    num_batches_tracked counts the training-mode forward passes. In evaluation mode mu and
    var are the running estimates and nothing is updated.

    Backward, with g = dL/dy and the sums over the channel's n values::

        dL/dw = sum_i g_i xhat_i,   dL/db = sum_i g_i
        dL/dx_i = w / (n sqrt(var + eps)) (n g_i - sum_j g_j - xhat_i sum_j g_j xhat_j)

    the full derivative through the batch mean and variance (training mode); in
    evaluation mode the statistics are constants and dL/dx_i = w g_i / sqrt(var + eps).

    The statistics are computed in two passes, each accumulated in float64 (no float64
    copy of the input): the mean, then the squared deviations from it, so a float32 batch
    of values near 1e30 normalises without overflow. Values so large that x - mu
    overflows the dtype are handled exactly, on a slower path scaled by each channel's
    largest magnitude. A running variance too large for the dtype becomes inf, as a cast
    makes it.

    Examples
    --------
    >>> import numpy as np
    >>> norm = BatchNorm1d(2)
    >>> norm
    BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> norm(x).round(3)  # each column standardised with the batch's statistics
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> norm.running_mean.value, norm.running_var.value  # 0.1 of the batch's (unbiased var)
    (array([0.2, 2. ], dtype=float32), array([ 1.1, 20.9], dtype=float32))
    >>> dx = norm.backward(np.ones((2, 2), np.float32))  # a shift changes nothing
    >>> dx, norm.bias.grad
    (array([[0., 0.],
           [0., 0.]], dtype=float32), array([2., 2.], dtype=float32))
    >>> list(norm.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    >>> norm.eval()(x).round(2)  # the running statistics now
    array([[0.76, 1.75],
           [2.67, 6.12]], dtype=float32)
    """

    _LAYOUTS: ClassVar[dict[int, str]] = {2: "(batch, {})", 3: "(batch, {}, length)"}
    _OTHER: ClassVar[str] = "for (batch, C, height, width) images use BatchNorm2d"

    @property
    def in_features(self) -> int:
        """The input width of a (batch, C) input, ``num_features`` (Sequential checks its
        neighbours with it)."""
        return self.num_features

    @property
    def out_features(self) -> int:
        """The output width, ``num_features``."""
        return self.num_features


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (batch, C, height, width) images, per channel, as in PyTorch.

    :class:`BatchNorm1d` on images: each channel c is standardised with statistics over
    the batch and every position, y = (x - mu_c) / sqrt(var_c + eps) * w_c + b_c, the
    batch's statistics in training mode and the running ones in evaluation mode.

    Parameters
    ----------
    num_features : int
        C, the number of channels.
    eps : float > 0, default 1e-5
    momentum : float in [0, 1] or None, default 0.1
        None: a cumulative average (1 / num_batches_tracked).
    affine : bool, default True
    track_running_stats : bool, default True
    bias : bool, default True (keyword only)
    dtype : float16, float32 or float64, default float32

    The arguments mean what they mean for :class:`BatchNorm1d`.

    Attributes
    ----------
    weight, bias : Parameter of shape (C,), or None
    running_mean, running_var : Buffer of shape (C,), or None
    num_batches_tracked : Buffer of shape () and dtype int64, or None

    Shape
    -----
    x: (batch, C, height, width) -> y of the same shape, with n = batch x height x width
    values per channel (n >= 2 for a batch's statistics).

    Notes
    -----
    As for :class:`BatchNorm1d`, with sums over the batch and the positions::

        xhat = (x - mu) / sqrt(var + eps),  y = w xhat + b
        running_var <- (1 - m) running_var + m var n / (n - 1)
        dL/dw = sum g xhat,  dL/db = sum g
        dL/dx = w / (n sqrt(var + eps)) (n g - sum g - xhat sum g xhat)   (training)
        dL/dx = w g / sqrt(running_var + eps)                              (evaluation)

    Examples
    --------
    >>> import numpy as np
    >>> norm = BatchNorm2d(3, dtype=np.float64)
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, (4, 3, 8, 8))
    >>> y = norm(x)
    >>> y.shape, bool(np.allclose(y.mean(axis=(0, 2, 3)), 0.0))
    ((4, 3, 8, 8), True)
    >>> int(norm.num_batches_tracked.value), norm.running_mean.value.round(1)
    (1, array([0.5, 0.5, 0.5]))
    >>> norm.backward(np.ones_like(y)).shape, norm.weight.grad.shape
    ((4, 3, 8, 8), (3,))
    """

    _LAYOUTS: ClassVar[dict[int, str]] = {4: "(batch, {}, height, width)"}
    _OTHER: ClassVar[str] = "for (batch, C) or (batch, C, length) inputs use BatchNorm1d"
