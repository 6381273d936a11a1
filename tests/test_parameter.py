"""Parameter and Buffer: values whose shape and dtype are fixed, checked when assigned."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import Buffer, Dense, Parameter
from minigrad.testing import check_gradients


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
    with pytest.raises(AttributeError, match="'Buffer' object has no attribute 'grad'"):
        buffer.grad = np.zeros(3, np.float32)
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


class Counter(mg.Layer):
    """A layer keeping an int64 count (as BatchNorm's num_batches_tracked) and a float buffer."""

    def __init__(self):
        super().__init__()
        self.total = Buffer(np.zeros(2), name="total")
        self.count = Buffer(np.zeros((), np.int64), name="count")

    def forward(self, x):
        self.count.value += 1
        self.total.value += x.sum(axis=0)
        return x

    def backward(self, grad_output):
        return grad_output


def test_a_buffer_may_be_an_int64_count_and_a_parameter_may_not():
    count = Buffer(np.zeros((), np.int64), name="count")
    assert repr(count) == "Buffer(name='count', shape=(), dtype=int64)"
    count.value += 3
    assert count.value == 3 and count.dtype == np.int64
    with pytest.raises(TypeError, match="must keep its dtype int64, got float64"):
        count.value = np.zeros(())
    for dtype in (np.int32, np.uint64, np.bool_):
        with pytest.raises(TypeError, match="Buffer values must be floating point or int64, got"):
            Buffer(np.zeros(2, dtype))
    with pytest.raises(TypeError, match="Parameter values must be floating point, got dtype int64"):
        Parameter(np.zeros(2, np.int64))


def test_an_int64_buffer_goes_through_state_dict_files_checkpoints_and_gradient_checks(tmp_path):
    pytest.importorskip("safetensors")
    mg.register_layer(Counter)
    model = mg.Sequential(Dense(2, 2, rng=0, dtype=np.float64), Counter())
    model(np.ones((3, 2)))
    assert model.state_dict()["1.count"].dtype == np.int64
    mg.save(model, tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")
    assert loaded[1].count.value == 1 and loaded[1].count.dtype == np.int64
    optimizer = mg.SGD(model.parameters())
    mg.save_checkpoint(tmp_path / "c.safetensors", model, optimizer)
    fresh = mg.Sequential(Dense(2, 2, rng=1, dtype=np.float64), Counter())
    mg.load_checkpoint(tmp_path / "c.safetensors").restore(fresh, mg.SGD(fresh.parameters()))
    assert fresh[1].count.value == 1
    check_gradients(model, np.ones((2, 2)))  # an int64 buffer is no float32 buffer
    assert model[1].count.value == 1  # and the check restored it
    assert "Counter()" in repr(model)


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


# -- zero_grad is free: it marks the gradient, and reading grad fills in the zeros ---------------


class CountingFills(np.ndarray):
    """A gradient array that counts the passes ``fill`` makes over it."""

    fills = 0

    def fill(self, value):
        CountingFills.fills += 1
        super().fill(value)


def counted(p):
    """Give ``p`` a gradient array that counts its fills (holding 7s), and return it."""
    grad = np.full(p.shape, 7.0, p.dtype).view(CountingFills)
    p.grad = grad
    CountingFills.fills = 0
    return grad


def test_zero_grad_then_reading_grad_gives_zeros_in_the_same_array():
    p = weight()
    grad = p.grad
    grad[...] = 3.0
    p.zero_grad()
    assert p.grad is grad
    np.testing.assert_array_equal(p.grad, np.zeros((2, 3), np.float32))


def test_zero_grad_writes_nothing_and_the_zeros_are_filled_once_when_read():
    p = weight()
    grad = counted(p)
    p.zero_grad()
    p.zero_grad()
    assert CountingFills.fills == 0 and (grad == 7.0).all()  # marked, not written
    assert not p.grad.any()
    assert not p.grad.any()
    assert CountingFills.fills == 1


def test_writing_into_grad_after_zero_grad_keeps_what_was_written():
    p = weight()
    p.grad[...] = 3.0
    p.zero_grad()
    p.grad[0] = 5.0  # the zeros are filled in first, then the row is written
    np.testing.assert_array_equal(p.grad, [[5.0] * 3, [0.0] * 3])
    p.zero_grad()
    p.grad += 2.0
    np.testing.assert_array_equal(p.grad, np.full((2, 3), 2.0))


def test_assigning_an_array_after_zero_grad_keeps_its_values():
    p = weight()
    p.zero_grad()
    new = np.full((2, 3), 4.0, np.float32)
    p.grad = new
    assert p.grad is new
    np.testing.assert_array_equal(p.grad, np.full((2, 3), 4.0))


def test_grad_to_overwrite_skips_the_fill_and_reading_grad_after_it_keeps_the_values():
    p = weight()
    grad = counted(p)
    p.zero_grad()
    assert p.grad_to_overwrite() is grad
    grad[...] = 2.0  # what a backward writing every entry does
    np.testing.assert_array_equal(p.grad, np.full((2, 3), 2.0))
    assert CountingFills.fills == 0


@pytest.mark.parametrize("bias", [True, False])
def test_a_dense_backward_after_zero_grad_gives_its_gradient_without_a_fill(bias):
    layer = Dense(3, 2, bias=bias, rng=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    grads = [counted(p) for p in layer.parameters()]
    layer(x)
    layer.zero_grad()
    dx = layer.backward(g)
    assert CountingFills.fills == 0  # the products overwrote the arrays, no zeros first
    assert layer.weight.grad is grads[0]
    np.testing.assert_array_equal(layer.weight.grad, g.T @ x)
    if bias:
        np.testing.assert_array_equal(layer.bias.grad, np.add.reduce(g, axis=0))
    np.testing.assert_array_equal(dx, g @ layer.weight.value)
    assert CountingFills.fills == 0  # and reading them afterwards fills nothing in


def test_a_dense_backward_that_fails_on_a_replaced_bias_leaves_the_weights_zeros_pending():
    layer = Dense(3, 2, rng=0)
    layer(np.ones((1, 3), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    layer.zero_grad()
    layer.bias = np.zeros(2, np.float32)
    with pytest.raises(TypeError, match=r"Dense\.bias must be a Parameter"):
        layer.backward(np.ones((1, 2), np.float32))
    assert not layer.weight.grad.any()  # untouched: still the zeros zero_grad asked for


class Scale(mg.Layer):
    """y = a * x, whose backward adds into a.grad, PyTorch-style."""

    def __init__(self):
        super().__init__()
        self.a = Parameter(np.array([2.0]), name="a")

    def forward(self, x):
        self.x = x
        return self.a.value * x

    def backward(self, grad_output):
        self.a.grad += np.sum(grad_output * self.x)
        return self.a.value * grad_output


def test_a_backward_that_adds_into_grad_after_zero_grad_adds_to_zeros():
    layer = Scale()
    x = np.array([[1.0, 2.0]])
    layer(x)
    layer.backward(np.ones((1, 2)))
    layer.backward(np.ones((1, 2)))
    assert layer.a.grad[0] == 6.0  # accumulated: 3 + 3
    layer.zero_grad()
    layer.backward(np.ones((1, 2)))
    assert layer.a.grad[0] == 3.0


def test_a_parameter_with_zeros_pending_copies_and_pickles():
    import copy
    import pickle

    p = weight()
    p.grad[...] = 3.0
    p.zero_grad()
    for clone in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert not clone.grad.any()
        clone.grad[...] = 1.0
    assert not p.grad.any()
    p.grad[...] = 5.0
    clone = copy.deepcopy(p)
    np.testing.assert_array_equal(clone.grad, np.full((2, 3), 5.0))
    assert clone.grad is not p.grad
