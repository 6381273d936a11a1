"""Flatten: torch.nn.Flatten's shapes, a reshape back in backward, dtypes, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import Flatten, ShapeError
from minigrad.testing import check_gradients


@st.composite
def shapes_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=4))
    ndim = len(shape)
    start = draw(st.integers(-ndim, ndim - 1))
    end = draw(st.integers(-ndim, ndim - 1))
    if start % ndim > end % ndim:  # the order once both count from the front
        start, end = end, start
    return shape, start, end


@given(case=shapes_and_dims())
def test_shapes_and_values_are_torchs(torch, case):
    shape, start, end = case
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    layer = Flatten(start, end)
    y = layer(x)
    expected = torch.nn.Flatten(start, end)(torch.from_numpy(x)).numpy()
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)
    g = np.random.default_rng(0).normal(size=y.shape)
    np.testing.assert_array_equal(layer.backward(g), g.reshape(shape))


def test_the_defaults_keep_the_batch_axis_and_the_output_is_a_view():
    layer = Flatten()
    assert repr(layer) == "Flatten(start_dim=1, end_dim=-1)"
    x = np.ones((4, 16, 5, 5), np.float32)
    y = layer(x)
    assert y.shape == (4, 400) and y.dtype == np.float32
    assert np.shares_memory(y, x)  # no copy
    assert layer.backward(np.ones((4, 400))).dtype == np.float32  # a float64 gradient converted
    assert layer(np.ones((2, 3), dtype=int)).dtype == np.float64


def test_gradients_match_finite_differences():
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 2))
    assert set(check_gradients(Flatten(1, 2), x).errors) == {"input"}


def test_repr_is_torchs(torch):
    for args in [(), (0,), (1, 2), (-3, -2)]:
        assert repr(Flatten(*args)) == repr(torch.nn.Flatten(*args))


def test_config_round_trip():
    layer = Flatten(0, -2)
    assert layer.get_config() == {"start_dim": 0, "end_dim": -2}
    assert repr(Flatten.from_config(layer.get_config())) == repr(layer)


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (None, TypeError, "a Flatten config is a dict, got NoneType"),
        ({"start_dim": 1}, ValueError, r"a Flatten config has the keys \['end_dim', "
         r"'start_dim'\], got \['start_dim'\]"),
        ({"start_dim": "1", "end_dim": -1}, TypeError, "Flatten start_dim must be an integer"),
    ],
)  # fmt: skip
def test_from_config_checks_what_a_file_says(config, error, message):
    with pytest.raises(error, match=message):
        Flatten.from_config(config)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("1",), TypeError, r"Flatten start_dim must be an integer, got '1' \(str\)"),
        ((True,), TypeError, r"Flatten start_dim must be an integer, got True \(bool\)"),
        ((1, 2.0), TypeError, r"Flatten end_dim must be an integer, got 2\.0 \(float\)"),
        ((3, 1), ValueError, r"Flatten start_dim \(3\) must not come after end_dim \(1\)"),
        ((-1, -2), ValueError, r"start_dim \(-1\) must not come after end_dim \(-2\)"),
        ((100,), ValueError, r"Flatten start_dim must be in \[-64, 63\], got 100"),
    ],
)
def test_constructor_arguments_are_checked(args, error, message):
    with pytest.raises(error, match=message):
        Flatten(*args)


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (Flatten(), np.zeros(3), r"Flatten\(start_dim=1, end_dim=-1\) needs an input with axes "
         r"1 and -1, got shape \(3,\) \(1-D\)"),
        (Flatten(0, 4), np.zeros((2, 3)), r"needs an input with axes 0 and 4, got shape \(2, 3\)"),
        (Flatten(2, -2), np.zeros((2, 3, 4)), r"Flatten\(start_dim=2, end_dim=-2\): on input of "
         r"shape \(2, 3, 4\) \(3-D\) start_dim is axis 2, after end_dim, axis 1"),
    ],
)  # fmt: skip
def test_input_shapes_are_checked_naming_the_layer(layer, x, message):
    with pytest.raises(ShapeError, match=message):
        layer(x)


def test_backward_checks_its_gradient_and_its_forward():
    layer = Flatten()
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.zeros((2, 6)))
    layer(np.zeros((2, 3, 2)))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(2, 6\)"):
        layer.backward(np.zeros((2, 3, 2)))
    with pytest.raises(TypeError, match="takes a floating-point gradient"):
        layer.backward(np.zeros((2, 6), bool))
    layer.eval()(np.zeros((5, 3, 2)))
    with pytest.raises(RuntimeError, match="last forward pass ran in evaluation mode"):
        layer.train().backward(np.zeros((2, 6)))
    with pytest.raises(ShapeError):
        layer(np.zeros(4))
    with pytest.raises(RuntimeError, match="or after a forward pass that failed"):
        layer.backward(np.zeros((5, 6)))
    with pytest.raises(TypeError, match="Flatten input must be a numeric array of real numbers"):
        layer(np.zeros((2, 2), complex))
