"""Sequential: composition, chained gradients, structure, state_dict and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import (
    CrossEntropy,
    Dense,
    Layer,
    ReLU,
    Sequential,
    ShapeError,
    Sigmoid,
    Softmax,
    Tanh,
)
from minigrad.testing import batches_for, check_gradients, sequential_stacks


def mlp(dtype=np.float32):
    return Sequential(
        Dense(4, 8, rng=0, dtype=dtype),
        ReLU(),
        Dense(8, 6, rng=1, dtype=dtype),
        Tanh(),
        Dense(6, 3, rng=2, dtype=dtype),
    )


@given(model=sequential_stacks(), data=st.data())
def test_random_stacks_pass_the_gradient_check(model, data):
    x = data.draw(batches_for(model))
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", *model.state_dict()}


@given(model=sequential_stacks(), data=st.data())
def test_sequential_is_the_composition_of_its_layers(model, data):
    x = data.draw(batches_for(model))
    expected = x
    for layer in model.layers:
        expected = layer.forward(expected)
    np.testing.assert_array_equal(model(x), expected)
    g = np.random.default_rng(0).normal(size=expected.shape)
    dx = model.backward(g)
    for layer in reversed(model.layers):
        g = layer.backward(g)
    np.testing.assert_array_equal(dx, g)


@given(model=sequential_stacks(), data=st.data())
def test_state_dict_round_trips(model, data):
    x = data.draw(batches_for(model))
    state = model.state_dict()
    copy = Sequential(
        *[
            type(layer)()
            if not isinstance(layer, Dense)
            else Dense(layer.in_features, layer.out_features, rng=99, dtype=np.float64)
            for layer in model.layers
        ]
    )
    copy.load_state_dict(state)
    np.testing.assert_array_equal(copy(x), model(x))
    for key, value in copy.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_state_dict_is_a_snapshot():
    model = mlp()
    state = model.state_dict()
    model[0].weight.value += 1
    assert not np.array_equal(state["0.weight"], model[0].weight.value)


def test_state_dict_keys_match_torch_sequential(torch):
    model = mlp(np.float64)
    reference = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 3),
    )
    assert list(model.state_dict()) == list(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert model.state_dict()[key].shape == tuple(value.shape)


def test_forward_backward_and_parameter_gradients_match_torch(torch):
    model = mlp(np.float64)
    reference = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 3),
    )
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4))
    labels = rng.integers(0, 3, size=7)

    loss = CrossEntropy()
    value = loss(model(x), labels)
    dx = model.backward(loss.backward())

    tx = torch.tensor(x, requires_grad=True)
    tvalue = torch.nn.functional.cross_entropy(reference(tx), torch.from_numpy(labels))
    tvalue.backward()
    np.testing.assert_allclose(value, tvalue.item(), rtol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    grads = dict(reference.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[key].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_len_indexing_iteration_and_slicing():
    model = mlp()
    assert len(model) == 5
    assert isinstance(model[0], Dense) and isinstance(model[-1], Dense)
    assert [type(layer) for layer in model] == [Dense, ReLU, Dense, Tanh, Dense]
    head = model[:2]
    assert isinstance(head, Sequential) and len(head) == 2 and head[0] is model[0]
    assert model.in_features == 4 and model.out_features == 3
    assert len(model.parameters()) == 6
    assert model.num_parameters() == 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3


def test_repr_lists_layers_with_parameter_counts():
    text = repr(Sequential(Dense(2, 3), Tanh(), Dense(3, 1), Sigmoid()))
    assert text == (
        "Sequential(\n"
        "  (0): Dense(in_features=2, out_features=3, bias=True)  # 9 parameters\n"
        "  (1): Tanh()\n"
        "  (2): Dense(in_features=3, out_features=1, bias=True)  # 4 parameters\n"
        "  (3): Sigmoid()\n"
        ")  # 13 parameters"
    )


def test_nested_sequentials_key_parameters_by_path():
    inner = Sequential(Dense(3, 3), Tanh())
    model = Sequential(Dense(2, 3), inner, Dense(3, 1))
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.0.weight",
        "1.0.bias",
        "2.weight",
        "2.bias",
    ]
    assert "(1): Sequential(\n    (0): Dense" in repr(model)


def test_train_and_eval_reach_every_layer():
    model = Sequential(Dense(2, 2), Sequential(Tanh()))
    model.eval()
    assert not model.training and not model[1].training and not model[1][0].training
    model.train()
    assert model[1][0].training


def test_layers_that_do_not_fit_are_rejected_at_construction():
    with pytest.raises(
        ShapeError,
        match=r"layer 2 \(Dense\(in_features=5.*expects 5 input "
        r"features, but layer 0 \(Dense\(in_features=4, "
        r"out_features=8.*outputs 8",
    ):
        Sequential(Dense(4, 8), ReLU(), Dense(5, 2))


def test_a_bad_input_names_the_layer_that_failed():
    with pytest.raises(
        ShapeError,
        match=r"Sequential layer 0 \(Dense\) forward: .*"
        r"\(batch, 4\), got \(2, 3\)",
    ):
        mlp()(np.zeros((2, 3)))


def test_an_error_deep_in_the_stack_names_its_index():
    class Broken(Layer):
        def forward(self, x):
            return x[:, :2]

        def backward(self, grad_output):
            return grad_output

    # Broken hides the width from the construction check; forward catches the mismatch
    model = Sequential(Dense(4, 5), Broken(), Dense(5, 2))
    with pytest.raises(ShapeError, match=r"Sequential layer 2 \(Dense\) forward"):
        model(np.zeros((3, 4)))


def test_backward_before_forward_names_the_layer():
    model = Sequential(Dense(2, 2), Softmax())
    with pytest.raises(RuntimeError, match=r"layer 1 \(Softmax\) backward.*before forward"):
        model.backward(np.ones((1, 2)))


def test_only_layers_can_be_added():
    with pytest.raises(TypeError, match="layer 1 must be a minigrad Layer, got ufunc"):
        Sequential(Dense(2, 2), np.tanh)
    with pytest.raises(TypeError, match=r"pass an instance, Tanh\(\), not the class"):
        Sequential(Dense(2, 2), Tanh)


def test_a_list_of_layers_also_works():
    model = Sequential([Dense(2, 3), Tanh()])
    assert len(model) == 2


def test_backward_without_input_gradient_fills_the_same_parameter_gradients():
    model = mlp(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 4))
    g = np.random.default_rng(1).normal(size=(5, 3))
    model(x)
    dx = model.backward(g)
    expected = {key: p.grad.copy() for key, p in model.named_parameters()}
    model.zero_grad()
    assert model.backward(g, input_grad=False) is None
    for key, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, expected[key])
    assert dx.shape == x.shape


def test_backward_without_input_gradient_skips_the_first_layers_product():
    class CountingDense(Dense):
        products = 0

        def backward(self, grad_output):
            CountingDense.products += 1
            return super().backward(grad_output)

    model = Sequential(CountingDense(3, 4), Tanh(), CountingDense(4, 2))
    model(np.ones((2, 3)))
    model.backward(np.ones((2, 2)), input_grad=False)
    assert CountingDense.products == 1  # only the second layer computed its dL/dx
    inner = Sequential(Tanh(), Sequential(Dense(3, 2)))
    inner(np.ones((2, 3)))
    assert inner.backward(np.ones((2, 2)), input_grad=False) is None
    assert inner[1][0].weight.grad.any()


def test_the_same_layer_object_twice_is_refused():
    dense = Dense(3, 3)
    with pytest.raises(ValueError, match="layer 2 is the same Dense object as layer 0"):
        Sequential(dense, Tanh(), dense)


def test_errors_keep_their_class_and_gain_the_layer_index():
    class Picky(Layer):
        def forward(self, x):
            raise TypeError("wants strings")

        def backward(self, grad_output):
            raise NotImplementedError("no backward")

    model = Sequential(Dense(2, 2), Picky())
    with pytest.raises(TypeError, match=r"layer 1 \(Picky\) forward: wants strings"):
        model(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError, match=r"layer 1 \(Picky\) backward: no backward"):
        model.backward(np.zeros((1, 2)))


def test_a_generator_of_layers_works():
    model = Sequential(layer for layer in (Dense(2, 3), Tanh()))
    assert len(model) == 2


def test_layers_in_a_list_attribute_are_found():
    class Blocks(Layer):
        def __init__(self):
            super().__init__()
            self.blocks = [Dense(2, 2), Dense(2, 2)]

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

        def backward(self, grad_output):
            for block in reversed(self.blocks):
                grad_output = block.backward(grad_output)
            return grad_output

    model = Blocks()
    assert list(model.state_dict()) == [
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.weight",
        "blocks.1.bias",
    ]
    model.eval()
    assert not model.blocks[1].training
