"""Hypothesis strategies for property-based tests of layers and models.

Everything here draws float64 data, the precision gradient checks need. Use them in your
own tests::

    from hypothesis import given
    from minigrad.testing import batches, check_gradients

    @given(batches(4))
    def test_my_layer(x):
        check_gradients(MyLayer(4), x)
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad._validation import check_allocation, check_bool, check_integer, check_real, shown
from minigrad.layers.activations import (
    ELU,
    GELU,
    Activation,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from minigrad.layers.base import Layer
from minigrad.layers.containers import Concat, Residual, Sequential
from minigrad.layers.dense import Dense

__all__ = [
    "batches",
    "batches_for",
    "conv_stacks",
    "floats_away_from_zero",
    "image_batches",
    "nested_containers",
    "sequential_stacks",
]

#: the element-wise activations that build without arguments (Softmax and LogSoftmax, which
#: mix a row, and Identity, which adds nothing, are left out)
DEFAULT_ACTIVATIONS: tuple[type[Activation], ...] = (
    Tanh,
    Sigmoid,
    ReLU,
    LeakyReLU,
    GELU,
    SiLU,
    ELU,
    Softplus,
)


def floats_away_from_zero(
    min_magnitude: float = 0.05, max_magnitude: float = 3.0
) -> st.SearchStrategy[float]:
    """Floats with min_magnitude <= |v| <= max_magnitude: inputs that stay clear of the kink
    of ReLU-like functions at 0 by more than a finite-difference step.

    v = s m with the sign s drawn from {-1, 1} and m from [min_magnitude, max_magnitude].

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, database=None)
    ... @given(floats_away_from_zero(0.1, 2.0))
    ... def check_magnitude(v):
    ...     assert 0.1 <= abs(v) <= 2.0
    >>> check_magnitude()
    """
    min_magnitude = check_real("min_magnitude", min_magnitude, minimum=0)
    max_magnitude = check_real("max_magnitude", max_magnitude, minimum=min_magnitude)
    magnitude = st.floats(min_magnitude, max_magnitude, allow_nan=False, allow_infinity=False)
    return st.tuples(st.sampled_from((-1.0, 1.0)), magnitude).map(lambda pair: pair[0] * pair[1])


def batches(
    features: int | st.SearchStrategy[int],
    *,
    min_batch: int = 1,
    max_batch: int = 8,
    elements: st.SearchStrategy[float] | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of shape (batch, features), batch in [min_batch, max_batch].

    ``features`` is a width or a strategy for one; ``elements`` defaults to
    :func:`floats_away_from_zero`, which suits every built-in activation.

    Shape: (batch, features), min_batch <= batch <= max_batch.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, database=None)
    ... @given(batches(3, max_batch=4))
    ... def check_batch(x):
    ...     assert x.dtype == np.float64 and x.shape[1] == 3 and 1 <= len(x) <= 4
    ...     assert (np.abs(x) >= 0.05).all()
    >>> check_batch()
    """
    if not isinstance(features, st.SearchStrategy):
        features = check_integer("features", features, minimum=0)
    min_batch = check_integer("min_batch", min_batch, minimum=0)
    max_batch = check_integer("max_batch", max_batch, minimum=min_batch)
    if not isinstance(features, st.SearchStrategy):
        check_allocation(
            f"batches({features}, max_batch={max_batch}) is too large: a batch",
            (max_batch, features),
            np.float64,
        )
    if elements is not None and not isinstance(elements, st.SearchStrategy):
        raise TypeError(
            "elements must be a hypothesis strategy of floats (such as "
            f"st.floats(-1.0, 1.0)), got {shown(elements)} ({type(elements).__name__})"
        )
    widths = features if isinstance(features, st.SearchStrategy) else st.just(features)
    values = elements if elements is not None else floats_away_from_zero()
    return st.tuples(st.integers(min_batch, max_batch), widths).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=values)
    )


def batches_for(layer: Layer, **kwargs: object) -> st.SearchStrategy[np.ndarray]:
    """Batches shaped for ``layer``'s input: it must have ``in_features`` (Dense, Sequential).

    Keyword arguments go to :func:`batches`.

    Shape: (batch, layer.in_features).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from minigrad.testing import check_gradients
    >>> layer = Dense(5, 2, rng=0, dtype=np.float64)
    >>> @settings(max_examples=10, database=None, deadline=None)
    ... @given(batches_for(layer))
    ... def check_dense(x):
    ...     assert x.shape[1] == 5
    ...     check_gradients(layer, x)
    >>> check_dense()
    """
    width = getattr(layer, "in_features", None)
    if width is None:
        raise ValueError(
            f"batches_for needs a layer with a known in_features; {layer!r} has none. "
            "Use batches(width) instead."
        )
    # the keyword arguments are batches' own, passed on unchecked here
    return batches(width, **kwargs)  # type: ignore[arg-type]


def sequential_stacks(
    *,
    min_layers: int = 1,
    max_layers: int = 3,
    min_width: int = 1,
    max_width: int = 6,
    activations: Sequence[type[Activation]] = DEFAULT_ACTIVATIONS,
) -> st.SearchStrategy[Sequential]:
    """Random float64 Sequential stacks: Dense layers of random widths, each followed by a
    randomly chosen activation (or none).

    Biases are drawn at random rather than left at zero, so no pre-activation sits exactly
    on a ReLU kink for simple inputs. ``activations`` is a list or tuple of Activation
    classes that build without arguments (the classes, not instances). The arguments are
    checked when the strategy is built, not at the first draw.

    Shape: the stack maps (batch, widths[0]) -> (batch, widths[-1]), each width drawn from
    [min_width, max_width]; draw its inputs with :func:`batches_for`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from minigrad.testing import check_gradients
    >>> @settings(max_examples=10, database=None, deadline=None)
    ... @given(sequential_stacks(max_layers=2), st.data())
    ... def check_stack(model, data):
    ...     assert 1 <= sum(isinstance(layer, Dense) for layer in model) <= 2
    ...     check_gradients(model, data.draw(batches_for(model)))
    >>> check_stack()
    """
    # Checked here, when the strategy is built, so that a mistake fails where it is written
    # rather than inside hypothesis at the first draw
    min_layers = check_integer("min_layers", min_layers, minimum=1)
    max_layers = check_integer("max_layers", max_layers, minimum=min_layers)
    min_width = check_integer("min_width", min_width, minimum=1)
    max_width = check_integer("max_width", max_width, minimum=min_width)
    check_allocation(
        f"sequential_stacks(max_width={max_width}) is too large: a Dense weight",
        (max_width, max_width),
        np.float64,
    )
    return _stacks(min_layers, max_layers, min_width, max_width, _activation_classes(activations))


def _activation_classes(activations: object) -> tuple[type[Activation], ...]:
    """``activations`` as a tuple of Activation classes that build without arguments."""
    if isinstance(activations, (str, bytes)) or not isinstance(activations, Sequence):
        raise TypeError(
            "activations must be a list or tuple of Activation classes (such as [Tanh, ReLU]), "
            f"got {shown(activations)} ({type(activations).__name__})"
        )
    for index, activation in enumerate(activations):
        if not (isinstance(activation, type) and issubclass(activation, Activation)):
            hint = ""
            if isinstance(activation, Layer):
                hint = f": pass the class {type(activation).__name__}, not an instance"
            elif isinstance(activation, type) and issubclass(activation, Layer):
                hint = f": {activation.__name__} does not keep its input's shape"
            raise TypeError(
                f"activations[{index}] must be an Activation class such as Tanh, got "
                f"{shown(activation)}{hint}"
            )
        try:
            activation()
        except Exception as error:
            raise TypeError(
                f"activations[{index}]: {activation.__name__}() must build without arguments, "
                f"but raised {type(error).__name__}: {error}"
            ) from error
    return tuple(activations)


@st.composite
def _stacks(
    draw: st.DrawFn,
    min_layers: int,
    max_layers: int,
    min_width: int,
    max_width: int,
    activations: tuple[type[Activation], ...],
) -> Sequential:
    depth = draw(st.integers(min_layers, max_layers))
    widths = draw(
        st.lists(st.integers(min_width, max_width), min_size=depth + 1, max_size=depth + 1)
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for fan_in, fan_out in pairwise(widths):
        dense = Dense(fan_in, fan_out, rng=rng, dtype=np.float64)
        assert dense.bias is not None  # built with one
        dense.bias.value[:] = rng.uniform(-1.0, 1.0, size=fan_out)
        layers.append(dense)
        activation = draw(st.sampled_from((None, *activations)))
        if activation is not None:
            layers.append(activation())
    return Sequential(*layers)


def nested_containers(
    *,
    max_depth: int = 2,
    min_width: int = 1,
    max_width: int = 4,
    activations: Sequence[type[Activation]] = DEFAULT_ACTIVATIONS,
) -> st.SearchStrategy[Layer]:
    """Random float64 models of nested containers: Residual, Concat and Sequential around
    Dense layers, each Dense followed by a randomly chosen activation (or none).

    Each block maps a drawn width to another: a Dense (with its activation); a Residual
    around a block, with the identity shortcut where the widths allow it or a Dense
    projection; a Concat (along dim 1, written 1 or -1) of one to three blocks whose output
    widths add up; or a Sequential of two blocks. Containers nest up to ``max_depth`` deep
    (0: a Dense alone). Biases are drawn at random, as in :func:`sequential_stacks`.

    Shape: the model maps (batch, in_features) -> (batch, out_features), widths drawn from
    [min_width, max_width]; every model knows its ``in_features``, so draw its inputs with
    :func:`batches_for`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from minigrad.testing import check_gradients
    >>> @settings(max_examples=10, database=None, deadline=None)
    ... @given(nested_containers(), st.data())
    ... def check_model(model, data):
    ...     x = data.draw(batches_for(model))
    ...     assert model(x).shape[0] == len(x)
    ...     check_gradients(model, x)
    >>> check_model()
    """
    max_depth = check_integer("max_depth", max_depth, minimum=0, maximum=8)
    min_width = check_integer("min_width", min_width, minimum=1)
    max_width = check_integer("max_width", max_width, minimum=min_width)
    check_allocation(
        f"nested_containers(max_width={max_width}) is too large: a Dense weight",
        (max_width, max_width),
        np.float64,
    )
    return _nested(max_depth, min_width, max_width, _activation_classes(activations))


def _distinct(values: list[int]) -> bool:
    return len(set(values)) == len(values)


@st.composite
def _nested(
    draw: st.DrawFn,
    depth: int,
    min_width: int,
    max_width: int,
    activations: tuple[type[Activation], ...],
) -> Layer:
    widths = st.integers(min_width, max_width)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def dense(fan_in: int, fan_out: int) -> Dense:
        layer = Dense(fan_in, fan_out, rng=rng, dtype=np.float64)
        assert layer.bias is not None  # built with one
        layer.bias.value[:] = rng.uniform(-1.0, 1.0, size=fan_out)
        return layer

    def block(fan_in: int, fan_out: int, depth: int) -> Layer:
        kinds = ["dense", "residual", "concat", "sequential"] if depth > 0 else ["dense"]
        kind = draw(st.sampled_from(kinds))
        if kind == "residual":
            identity = fan_in == fan_out and draw(st.booleans())
            inner = block(fan_in, fan_out, depth - 1)
            return Residual(inner, None if identity else dense(fan_in, fan_out))
        if kind == "concat":
            count = draw(st.integers(1, min(3, fan_out)))  # branches, each one wide at least
            cuts = st.lists(st.integers(1, fan_out - 1), min_size=count - 1, max_size=count - 1)
            bounds = (
                [0, *sorted(draw(cuts.filter(_distinct))), fan_out] if count > 1 else [0, fan_out]
            )
            branches = [block(fan_in, b - a, depth - 1) for a, b in pairwise(bounds)]
            return Concat(*branches, dim=draw(st.sampled_from((1, -1))))
        if kind == "sequential":
            middle = draw(widths)
            return Sequential(block(fan_in, middle, depth - 1), block(middle, fan_out, depth - 1))
        activation = draw(st.sampled_from((None, *activations)))
        layer = dense(fan_in, fan_out)
        return layer if activation is None else Sequential(layer, activation())

    return block(draw(widths), draw(widths), depth)


def image_batches(
    channels: int | st.SearchStrategy[int],
    height: int | st.SearchStrategy[int],
    width: int | st.SearchStrategy[int] | None = None,
    *,
    min_batch: int = 1,
    max_batch: int = 4,
    elements: st.SearchStrategy[float] | None = None,
    distinct: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """float64 image batches of shape (batch, channels, height, width), batch in
    [min_batch, max_batch]: the input of Conv2d, the pools and BatchNorm2d.

    Each size is an int or a strategy for one; ``width=None`` draws square images (the
    width equal to the height drawn). ``elements`` defaults to
    :func:`floats_away_from_zero`. ``distinct``: no two entries equal, which a finite-
    difference check through max pooling needs (a window whose largest entries tie has no
    derivative there).

    Shape: (batch, channels, height, width).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from minigrad.testing import check_gradients
    >>> from minigrad.layers import Conv2d
    >>> conv = Conv2d(2, 3, 3, padding=1, rng=0, dtype=np.float64)
    >>> @settings(max_examples=10, database=None, deadline=None)
    ... @given(image_batches(2, st.integers(1, 6)))
    ... def check_conv(x):
    ...     assert x.shape[1] == 2 and x.shape[2] == x.shape[3]
    ...     check_gradients(conv, x)
    >>> check_conv()
    """
    sizes: dict[str, int | st.SearchStrategy[int] | None] = {
        "channels": channels,
        "height": height,
        "width": width,
    }
    for name, value in sizes.items():
        if not (value is None or isinstance(value, st.SearchStrategy)):
            sizes[name] = check_integer(name, value, minimum=1)
    min_batch = check_integer("min_batch", min_batch, minimum=0)
    max_batch = check_integer("max_batch", max_batch, minimum=min_batch)
    distinct = check_bool("distinct", distinct)
    fixed = tuple(value for value in sizes.values() if isinstance(value, int))
    if len(fixed) == 3:
        check_allocation(
            f"image_batches{fixed} with max_batch={max_batch} is too large: a batch",
            (max_batch, *fixed),
            np.float64,
        )
    if elements is not None and not isinstance(elements, st.SearchStrategy):
        raise TypeError(
            "elements must be a hypothesis strategy of floats (such as "
            f"st.floats(-1.0, 1.0)), got {shown(elements)} ({type(elements).__name__})"
        )
    values = elements if elements is not None else floats_away_from_zero()

    def size(name: str) -> st.SearchStrategy[int]:
        value = sizes[name]
        # an int here: only sizes that are given are drawn (a width of None copies the height)
        return value if isinstance(value, st.SearchStrategy) else st.just(value)  # type: ignore[arg-type]

    @st.composite
    def draw_batch(draw: st.DrawFn) -> np.ndarray:
        rows = draw(size("height"))
        columns = rows if sizes["width"] is None else draw(size("width"))
        batch = draw(st.integers(min_batch, max_batch))
        shape = (batch, draw(size("channels")), rows, columns)
        return draw(hnp.arrays(np.float64, shape, elements=values, unique=distinct))

    return draw_batch()


def conv_stacks(
    *,
    max_blocks: int = 2,
    max_channels: int = 4,
    min_size: int = 4,
    max_size: int = 8,
    activations: Sequence[type[Activation]] = DEFAULT_ACTIVATIONS,
    batch_norm: bool = True,
    pooling: bool = True,
    residual: bool = True,
    dropout: bool = False,
    head: bool = True,
) -> st.SearchStrategy[tuple[Sequential, tuple[int, int, int]]]:
    """Random float64 convolutional networks, each with the (channels, height, width) of
    images it takes: ``(model, input_shape)``; draw its inputs with
    ``image_batches(*input_shape)``.

    The model is a Sequential of 1 to ``max_blocks`` blocks. Each block is a Conv2d with
    every hyperparameter drawn (kernel 1-3, stride 1-2, padding as numbers or "same",
    dilation 1-2, groups dividing both channel counts, with or without bias; its bias drawn
    at random), then, as the flags allow and a draw decides, a BatchNorm2d, an activation
    from ``activations``, a Residual around a size-keeping 3 x 3 convolution, a MaxPool2d or
    AvgPool2d, and a Dropout. With ``head``, Flatten (or AdaptiveAvgPool2d(1) and Flatten)
    and a Dense layer end it. Sizes are tracked so that every window fits.

    Max pooling and ReLU-like activations have kinks: draw inputs with
    ``image_batches(*input_shape, distinct=True)``, so that no two entries of a pooling
    window tie; inputs from :func:`floats_away_from_zero` and random biases keep
    finite differences off the activations' kinks in practice, as for
    :func:`sequential_stacks`. A BatchNorm2d comes only where a channel holds two values or
    more in a batch of one, with a random scale and a shift away from 0.

    Shape: ``(batch, *input_shape)`` -> (batch, out_features) with ``head``, else images.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from minigrad.testing import check_gradients
    >>> @settings(max_examples=5, database=None, deadline=None)
    ... @given(conv_stacks(max_blocks=2), st.data())
    ... def check_network(case, data):
    ...     model, input_shape = case
    ...     x = data.draw(image_batches(*input_shape, max_batch=2, distinct=True))
    ...     assert model(x).ndim == 2
    ...     check_gradients(model, x)
    >>> check_network()
    """
    max_blocks = check_integer("max_blocks", max_blocks, minimum=1, maximum=8)
    max_channels = check_integer("max_channels", max_channels, minimum=1, maximum=64)
    min_size = check_integer("min_size", min_size, minimum=1)
    max_size = check_integer("max_size", max_size, minimum=min_size, maximum=256)
    flags = {
        name: check_bool(name, value)
        for name, value in (
            ("batch_norm", batch_norm),
            ("pooling", pooling),
            ("residual", residual),
            ("dropout", dropout),
            ("head", head),
        )
    }
    return _conv_stacks(
        max_blocks, max_channels, min_size, max_size, _activation_classes(activations), flags
    )


@st.composite
def _conv_stacks(
    draw: st.DrawFn,
    max_blocks: int,
    max_channels: int,
    min_size: int,
    max_size: int,
    activations: tuple[type[Activation], ...],
    flags: dict[str, bool],
) -> tuple[Sequential, tuple[int, int, int]]:
    from minigrad.layers.batchnorm import BatchNorm2d
    from minigrad.layers.conv import Conv2d
    from minigrad.layers.dropout import Dropout
    from minigrad.layers.flatten import Flatten
    from minigrad.layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels = draw(st.integers(1, max_channels))
    size = [draw(st.integers(min_size, max_size)) for _ in range(2)]
    input_shape = (channels, size[0], size[1])

    def conv(c_in: int, c_out: int, **kwargs: object) -> Conv2d:
        # the keyword arguments are Conv2d's own (padding, stride), passed on
        layer = Conv2d(c_in, c_out, **kwargs, rng=rng, dtype=np.float64)  # type: ignore[arg-type]
        if layer.bias is not None:
            assert layer.bias is not None  # built with one
            layer.bias.value[:] = rng.uniform(-1.0, 1.0, size=c_out)
        return layer

    layers: list[Layer] = []
    for _ in range(draw(st.integers(1, max_blocks))):
        out = draw(st.integers(1, max_channels))
        divisors = [g for g in range(1, min(channels, out) + 1) if channels % g == out % g == 0]
        kernel, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        span = dilation * (kernel - 1) + 1
        stride = draw(st.integers(1, 2))
        padding: int | str = (
            "same" if stride == 1 and draw(st.booleans()) else draw(st.integers(0, kernel // 2))
        )
        pad = span - 1 if padding == "same" else 2 * int(padding)
        if min(size) + pad < span:  # the window would not fit: a 1 x 1 kernel always does
            kernel, dilation, span, padding, pad = 1, 1, 1, 0, 0
        layers.append(
            conv(
                channels,
                out,
                kernel_size=kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=draw(st.sampled_from(divisors)),
                bias=draw(st.booleans()),
            )
        )
        if padding != "same":
            size = [(s + pad - span) // stride + 1 for s in size]
        channels = out
        if flags["batch_norm"] and size[0] * size[1] >= 2 and draw(st.booleans()):
            norm = BatchNorm2d(channels, dtype=np.float64)
            # a random scale and a shift away from 0: a channel whose values all tie (zero
            # variance) normalises to the shift, which must not sit on a ReLU's kink
            assert norm.weight is not None  # built with one
            norm.weight.value[:] = rng.uniform(0.5, 1.5, size=channels)
            assert norm.bias is not None  # built with one
            norm.bias.value[:] = rng.choice([-1.0, 1.0], size=channels) * rng.uniform(
                0.2, 0.8, size=channels
            )
            layers.append(norm)
        activation = draw(st.sampled_from((None, *activations)))
        if activation is not None:
            layers.append(activation())
        if flags["residual"] and draw(st.booleans()):
            layers.append(Residual(conv(channels, channels, kernel_size=3, padding=1)))
        if flags["pooling"] and min(size) >= 2 and draw(st.booleans()):
            pool = draw(st.sampled_from((MaxPool2d, AvgPool2d)))
            layers.append(pool(2))
            size = [s // 2 for s in size]
        if flags["dropout"] and draw(st.booleans()):
            layers.append(Dropout(draw(st.sampled_from((0.25, 0.5))), rng=rng))
    if flags["head"]:
        if draw(st.booleans()):
            layers.append(AdaptiveAvgPool2d(1))
            size = [1, 1]
        layers.append(Flatten())
        features = channels * size[0] * size[1]
        dense = Dense(features, draw(st.integers(1, max_channels)), rng=rng, dtype=np.float64)
        assert dense.bias is not None  # built with one
        dense.bias.value[:] = rng.uniform(-1.0, 1.0, size=dense.out_features)
        layers.append(dense)
    return Sequential(*layers), input_shape
