"""Parameter and Buffer: values whose shape and dtype are fixed, checked when assigned."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import Buffer, Dense, Parameter


def weight():
    return Parameter(np.ones((2, 3), dtype=np.float32), name="weight")


# -- replacing value or grad is checked where it happens, not at the next step() --------------


@pytest.mark.parametrize("attribute", ["value", "grad"])
@pytest.mark.parametrize(
    ("new", "error", "message"),
    [
        (np.zeros((3, 2), np.float32), ValueError, r"must keep its shape \(2, 3\), got .*\(3, 2\)"),
        (np.zeros(6, np.float32), ValueError, r"must keep its shape \(2, 3\)"),
        (np.zeros((2, 3)), TypeError, "must keep its dtype float32, got float64"),
        (np.zeros((3, 2), np.float32).T, ValueError, "must be C-contiguous"),
        ([[0.0] * 3] * 2, TypeError, "must be a NumPy array, got list"),
    ],
    ids=["transposed shape", "flat", "float64", "strided", "list"],
)
def test_assigning_an_array_that_does_not_fit_names_the_parameter(attribute, new, error, message):
    p = weight()
    before = getattr(p, attribute)
    with pytest.raises(error, match=rf"Parameter 'weight'\.{attribute} {message}"):
        setattr(p, attribute, new)
    assert getattr(p, attribute) is before


@pytest.mark.parametrize("attribute", ["value", "grad"])
def test_a_read_only_array_is_refused(attribute):
    p = weight()
    frozen = np.zeros((2, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(
        ValueError, match=rf"'weight'\.{attribute} must be writeable.*\[\.\.\.\] = new"
    ):
        setattr(p, attribute, frozen)


def test_the_message_says_how_to_change_the_values():
    with pytest.raises(ValueError, match=r"write into the array: value\[\.\.\.\] = new"):
        weight().value = np.zeros((3, 2), np.float32)


def test_in_place_updates_and_fitting_replacements_work():
    p = weight()
    p.value += 1  # assigns the same array back
    p.value[...] = 4.0
    assert (p.value == 4.0).all()
    new = np.full((2, 3), 7.0, np.float32)
    p.value = new
    assert p.value is new
    p.grad = np.ones((2, 3), np.float32)
    assert (p.grad == 1).all()


def test_an_optimizer_steps_a_replaced_value():
    layer = Dense(3, 2, rng=0)
    optimizer = mg.SGD(layer.parameters(), lr=0.5)
    layer.weight.value = np.zeros((2, 3), np.float32)
    layer.weight.grad[...] = 1.0
    optimizer.step()
    np.testing.assert_array_equal(layer.weight.value, np.full((2, 3), -0.5, np.float32))


def test_a_read_only_or_strided_initial_value_is_copied_into_a_writeable_array():
    frozen = np.arange(6.0).reshape(2, 3)
    frozen.flags.writeable = False
    p = Parameter(frozen)
    assert p.value.flags.writeable and p.value is not frozen
    np.testing.assert_array_equal(p.value, frozen)
    strided = Parameter(np.arange(12.0).reshape(3, 4)[:, ::2])
    assert strided.value.flags.c_contiguous
    mg.SGD([p], lr=1.0).step()  # no error at step()


def test_a_contiguous_writeable_initial_value_is_not_copied():
    array = np.zeros(3)
    assert Parameter(array).value is array


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.arange(3), "floating point, got dtype int64"),
        (np.array([1 + 2j]), "floating point, got dtype complex128"),
        (np.array(["1.5"]), "floating point, got dtype <U3"),
        ([[1.0], [2.0, 3.0]], "must be a floating-point array, got list"),
    ],
)
def test_values_that_are_not_floating_point_are_refused(value, message):
    with pytest.raises(TypeError, match=message):
        Parameter(value)


def test_the_name_must_be_a_string():
    with pytest.raises(TypeError, match="Parameter name must be a str, got int"):
        Parameter(np.zeros(2), name=3)


# -- buffers --------------------------------------------------------------------------------


class Shift(mg.Layer):
    """y = x - offset, with a saved but untrained offset and a trainable scale."""

    def __init__(self, width):
        super().__init__()
        self.offset = Buffer(np.arange(float(width)), name="offset")
        self.scale = Parameter(np.ones(width), name="scale")

    def forward(self, x):
        return (x - self.offset.value) * self.scale.value

    def backward(self, grad_output):
        return grad_output * self.scale.value


def test_a_buffer_has_a_value_and_no_gradient():
    buffer = Buffer(np.zeros(3, np.float32), name="mean")
    assert repr(buffer) == "Buffer(name='mean', shape=(3,), dtype=float32)"
    assert not hasattr(buffer, "grad")
    assert not isinstance(buffer, Parameter)
    with pytest.raises(ValueError, match=r"Buffer 'mean'\.value must keep its shape \(3,\)"):
        buffer.value = np.zeros(4, np.float32)


def test_buffers_are_in_the_state_dict_but_never_trained():
    model = mg.Sequential(Dense(2, 2, rng=0, dtype=np.float64), Shift(2))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.offset", "1.scale"]
    assert [key for key, _ in model.named_buffers()] == ["1.offset"]
    assert [key for key, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.scale"]
    assert all(isinstance(p, Parameter) for p in model.parameters())
    optimizer = mg.SGD(model.parameters(), lr=1.0)
    assert model[1].offset not in optimizer.state


def test_load_state_dict_restores_buffers_in_place():
    source, target = Shift(3), Shift(3)
    source.offset.value[...] = [5.0, 6.0, 7.0]
    offset = target.offset.value
    target.load_state_dict(source.state_dict())
    assert target.offset.value is offset
    np.testing.assert_array_equal(offset, [5.0, 6.0, 7.0])
    with pytest.raises(ValueError, match=r"'offset'.* shape \(2,\), but the buffer has shape"):
        target.load_state_dict({"offset": np.zeros(2), "scale": np.ones(3)})


def test_models_with_parameters_and_buffers_copy_and_pickle():
    import copy
    import pickle

    model = mg.Sequential(mg.Normalization(2, mean=[1.0, 2.0]), Dense(2, 3, rng=0))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone[1].weight is not model[1].weight
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(clone.state_dict()[key], value)
        with pytest.raises(ValueError, match="must keep its shape"):
            clone[1].weight.value = np.zeros(3, np.float32)
        clone.append(Dense(3, 1))  # the copy's own bookkeeping holds
