"""Sequential: composition, chained gradients, structure, state_dict and errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
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
    dx = model.backward(g, input_grad=True)
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
    dx = model.backward(loss.backward(), input_grad=True)

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


def test_backward_returns_none_by_default_and_fills_the_parameter_gradients_of_input_grad():
    model = mlp(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 4))
    g = np.random.default_rng(1).normal(size=(5, 3))
    model(x)
    dx = model.backward(g, input_grad=True)
    assert dx.shape == x.shape
    expected = {key: p.grad.copy() for key, p in model.named_parameters()}
    for p in model.parameters():
        p.grad[...] = np.nan  # so that a gradient the default leaves unwritten shows
    assert model.backward(g) is None
    for key, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, expected[key])
    assert model.backward(g, input_grad=False) is None
    np.testing.assert_array_equal(model.backward_input(g), dx)
    assert model.backward_parameters(g) is None


class CountingDense(Dense):
    """A Dense that counts the products g W it computes (its backward's dL/dx)."""

    products = 0

    def backward(self, grad_output):
        CountingDense.products += 1
        return super().backward(grad_output)


@pytest.mark.parametrize(
    ("build", "by_default", "when_asked"),
    [
        (lambda: Sequential(CountingDense(3, 4), Tanh(), CountingDense(4, 2)), 1, 2),
        (
            lambda: Sequential(
                Sequential(CountingDense(3, 4), Tanh()), Sequential(CountingDense(4, 2))
            ),
            1,
            2,
        ),
        (
            lambda: Sequential(
                Sequential(Sequential(CountingDense(3, 4)), Tanh()), CountingDense(4, 2)
            ),
            1,
            2,
        ),
        # the first layer is Tanh, whose backward needs the Dense's dL/dx: nothing to skip
        (lambda: Sequential(Tanh(), Sequential(Sequential(CountingDense(3, 2)))), 1, 1),
    ],
    ids=["flat", "nested", "nested twice", "behind an activation"],
)
def test_the_first_layers_input_gradient_is_computed_only_when_asked(build, by_default, when_asked):
    """How many products g W (a Dense's dL/dx) a backward computes, by default and with
    ``input_grad=True``: a Dense first, at any depth, skips its own."""
    model = build()
    model(np.ones((2, 3)))
    CountingDense.products = 0
    assert model.backward(np.ones((2, 2))) is None
    assert CountingDense.products == by_default
    assert all(p.grad.any() for p in model.parameters())
    CountingDense.products = 0
    assert model.backward(np.ones((2, 2)), input_grad=True).shape == (2, 3)
    assert CountingDense.products == when_asked


def flat_and_nested(position):
    """The same five-layer float64 stack twice: flat, and with layers grouped into inner
    Sequentials, one of them at ``position`` (0: first, 1: in the middle, 2: last)."""
    flat = Sequential(
        Dense(3, 4, rng=0, dtype=np.float64),
        Tanh(),
        Dense(4, 5, rng=1, dtype=np.float64),
        Sigmoid(),
        Dense(5, 2, rng=2, dtype=np.float64),
    )
    copy = Sequential(
        Dense(3, 4, rng=9, dtype=np.float64),
        Tanh(),
        Dense(4, 5, rng=9, dtype=np.float64),
        Sigmoid(),
        Dense(5, 2, rng=9, dtype=np.float64),
    )
    copy.load_state_dict(flat.state_dict())
    layers = copy.layers
    groups = {
        0: [Sequential(*layers[:3]), *layers[3:]],
        1: [layers[0], Sequential(*layers[1:4]), layers[4]],
        2: [*layers[:3], Sequential(Sequential(*layers[3:]))],
    }[position]
    return flat, Sequential(*groups)


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_nested_sequential_at_any_position_gives_the_flat_models_gradients(position):
    flat, nested = flat_and_nested(position)
    rng = np.random.default_rng(3)
    x, g = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    np.testing.assert_array_equal(nested(x), flat(x))
    expected_dx = flat.backward(g, input_grad=True)
    np.testing.assert_array_equal(nested.backward(g, input_grad=True), expected_dx)
    expected = [p.grad.copy() for p in flat.parameters()]
    for p in nested.parameters():
        p.grad[...] = np.nan
    flat.backward(g)
    assert nested.backward(g) is None
    for mine, theirs, want in zip(nested.parameters(), flat.parameters(), expected, strict=True):
        np.testing.assert_array_equal(mine.grad, want)
        np.testing.assert_array_equal(theirs.grad, want)
    report = check_gradients(nested, x)  # and against finite differences
    assert set(report.errors) == {"input", *nested.state_dict()}


class Residual(Layer):
    """y = x + body(x), for a Sequential body: dL/dx = g + dL/dx of the body."""

    def __init__(self, body, ask):
        super().__init__()
        self.body = body
        self.ask = ask

    def forward(self, x):
        return x + self.body(x)

    def backward(self, grad_output):
        return grad_output + self.ask(self.body, grad_output)


@pytest.mark.parametrize(
    "ask",
    [
        lambda body, g: body.backward_input(g),
        lambda body, g: body.backward(g, input_grad=True),
    ],
    ids=["backward_input", "input_grad=True"],
)
def test_a_layer_holding_a_sequential_gets_its_input_gradient_by_asking(ask):
    def block(seed):
        body = Sequential(Dense(3, 3, rng=seed, dtype=np.float64), Tanh())
        return Residual(body, ask)

    model = Sequential(block(0), Dense(3, 3, rng=1, dtype=np.float64), block(2))
    x = np.random.default_rng(4).normal(size=(5, 3))
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", *model.state_dict()}


def test_a_layer_holding_a_sequential_that_does_not_ask_gets_none():
    model = Residual(Sequential(Dense(3, 3, rng=0)), lambda body, g: body.backward(g))
    model(np.ones((2, 3)))
    with pytest.raises(TypeError, match="NoneType"):
        model.backward(np.ones((2, 3)))


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


# -- building is linear in the number of layers --------------------------------------------------


def test_thirty_thousand_layers_build_and_walk_in_linear_time():
    # append used to compare each layer with every earlier one (and look back over every
    # activation for the last width): 20,000 layers took seconds, a hostile file hours.
    # Linear, this takes a fraction of a second; the bound only catches the quadratic.
    start = time.perf_counter()
    model = Sequential(Dense(3, 4), *(Tanh() for _ in range(30_000)), Dense(4, 2))
    assert len(model.parameters()) == 4 and len(model.state_dict()) == 4
    assert model.out_features == 2
    assert time.perf_counter() - start < 5.0


def test_widths_are_still_checked_across_a_long_run_of_activations():
    model = Sequential(Dense(3, 4), *(ReLU() for _ in range(100)))
    with pytest.raises(ShapeError, match=r"layer 101 .*expects 5 input features, but layer 0"):
        model.append(Dense(5, 2))
    assert model.append(Dense(4, 2)).out_features == 2


def test_layers_removed_by_hand_can_be_appended_again():
    tanh = Tanh()
    model = Sequential(Dense(2, 2), tanh)
    model.layers.pop()  # bypasses append's bookkeeping
    model.append(tanh)  # the stale record of tanh is checked against the actual tree
    assert model[1] is tanh and model.out_features == 2


# -- each object in one place: the whole tree, not only direct siblings --------------------------


def test_one_activation_in_two_nested_sequentials_is_refused():
    tanh = Tanh()
    first = Sequential(Dense(2, 3), tanh)
    with pytest.raises(
        ValueError,
        match=r"Sequential layer 1 \(Sequential\) holds at '1\.0' the same Tanh object as at "
        r"'0\.1'; a layer caches its input for backward",
    ):
        Sequential(first, Sequential(tanh, Dense(3, 1)))


def test_a_layer_added_later_to_an_inner_sequential_is_caught_by_the_tree_walk():
    tanh = Tanh()
    inner = Sequential(Dense(3, 3))
    model = Sequential(Dense(2, 3), tanh, inner)
    inner.append(tanh)  # inner cannot know that tanh is at model[1]
    message = r"the same Tanh object is at '1' and at '2\.1'"
    for walk in (
        model.parameters,
        model.state_dict,
        lambda: list(model.named_layers()),
        lambda: list(model.named_buffers()),
    ):
        with pytest.raises(ValueError, match=message):
            walk()


def test_a_sequential_cannot_contain_itself():
    inner = Sequential(Tanh())
    model = Sequential(Dense(2, 2), inner)
    with pytest.raises(ValueError, match=r"layer 1 \(Sequential\) contains this Sequential itself"):
        inner.append(model)
    with pytest.raises(ValueError, match="contains this Sequential itself"):
        model.append(model)


def test_tied_parameters_are_refused_at_append_naming_both_positions():
    first, second = Dense(2, 2), Dense(2, 2)
    second.weight = first.weight
    with pytest.raises(
        ValueError,
        match=r"layer 2 \(Dense\) would share the Parameter at '2\.weight' with '0\.weight': "
        r"tied parameters are not supported: backward overwrites \.grad",
    ):
        Sequential(first, Tanh(), second)


def test_a_tie_made_after_construction_is_refused_by_everything_that_reads_parameters(tmp_path):
    model = Sequential(Dense(4, 4), Tanh(), Dense(4, 4), Tanh(), Dense(4, 3))
    model[2].weight = model[0].weight
    message = r"the same Parameter is at '0\.weight' and at '2\.weight': tied parameters"
    x, y = np.ones((4, 4)), np.array([0, 1, 2, 0])
    for use in (
        model.parameters,
        model.state_dict,
        model.zero_grad,
        model.num_parameters,
        lambda: mg.SGD(model.parameters()),
        lambda: mg.save(model, tmp_path / "model.safetensors"),
        lambda: check_gradients(model, x),
    ):
        with pytest.raises(ValueError, match=message):
            use()
    with pytest.raises(ValueError, match=message):
        mg.fit(model, CrossEntropy(), mg.SGD(mlp().parameters()), x, y, epochs=1, progress=False)
    assert not (tmp_path / "model.safetensors").exists()


def test_tied_gradients_would_have_been_wrong():
    # what the refusal prevents: the shared bias kept only the last use's gradient
    model = Sequential(
        Dense(2, 2, rng=0, dtype=np.float64), Tanh(), Dense(2, 2, rng=1, dtype=np.float64)
    )
    model[2].bias = model[0].bias
    with pytest.raises(ValueError, match="tied parameters"):
        check_gradients(model, np.array([[0.3, -0.7]]))


# -- a forward in eval mode between the loss and backward ----------------------------------------


def loss_then(model, between):
    """The loss on a batch, then ``between(model)``, then backward: the parameter gradients."""
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    loss = CrossEntropy()
    loss(model(x), labels)
    between(model)
    model.backward(loss.backward())
    return {key: p.grad.copy() for key, p in model.named_parameters()}


@pytest.mark.parametrize(
    "between",
    [
        lambda model: mg.predict(model, np.ones((6, 4))),
        lambda model: mg.evaluate(model, CrossEntropy(), np.ones((6, 4)), np.zeros(6, int)),
    ],
    ids=["predict", "evaluate"],
)
def test_predict_or_evaluate_between_the_loss_and_backward_is_refused(between):
    with pytest.raises(
        RuntimeError,
        match=r"Sequential\.backward\(\): the last forward pass ran in evaluation mode .*"
        r"Run the forward pass and the loss again before backward",
    ):
        loss_then(mlp(np.float64), between)


def test_forward_and_backward_in_eval_mode_give_the_training_gradients():
    # no layer here behaves differently in eval mode, so a saliency map in eval mode is the
    # same computation
    train = loss_then(mlp(np.float64), lambda model: None)
    model = mlp(np.float64).eval()
    assert not model.training
    evaluated = loss_then(model, lambda model: None)
    for key, grad in train.items():
        np.testing.assert_array_equal(evaluated[key], grad)


def test_backward_takes_an_array_not_a_list():
    model = mlp()
    model(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"Sequential\.backward takes the gradient as a NumPy "):
        model.backward([[0.0, 0.0, 0.0]] * 2)
    for flag in ("no", "False", 0, None):
        with pytest.raises(TypeError, match=f"input_grad must be True or False, got {flag!r}"):
            model.backward(np.zeros((2, 3), np.float32), input_grad=flag)


# -- errors keep their identity ------------------------------------------------------------------


class NeedsTwo(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


class Raising(Layer):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def forward(self, x):
        raise self.error

    def backward(self, grad_output):
        raise self.error


def notes(error):
    return getattr(error, "__notes__", [])


def test_a_custom_exception_is_re_raised_as_it_is_with_the_position_as_a_note():
    error = NeedsTwo(7, "detail")
    model = Sequential(Dense(2, 2), Raising(error))
    with pytest.raises(NeedsTwo) as caught:
        model(np.zeros((1, 2)))
    assert caught.value is error  # not a RuntimeError built from its message
    assert caught.value.args == (7, "detail") and caught.value.code == 7
    assert notes(caught.value) == ["raised in Sequential layer 1 (Raising) forward"]


def test_an_os_error_keeps_its_errno_and_filename():
    model = Sequential(Raising(FileNotFoundError(2, "No such file", "weights.npy")))
    with pytest.raises(FileNotFoundError) as caught:
        model(np.zeros((1, 2)))
    assert (caught.value.errno, caught.value.filename) == (2, "weights.npy")
    assert notes(caught.value) == ["raised in Sequential layer 0 (Raising) forward"]


def test_keyboard_interrupt_passes_through_untouched():
    interrupt = KeyboardInterrupt()
    model = Sequential(Dense(2, 2), Raising(interrupt))
    with pytest.raises(KeyboardInterrupt) as caught:
        model(np.zeros((1, 2)))
    assert caught.value is interrupt and caught.value.args == () and not notes(interrupt)


def test_nested_sequentials_name_every_level_in_the_message():
    class Identity(Layer):  # hides the width from the construction check
        def forward(self, x):
            return x

        def backward(self, grad_output):
            return grad_output

    model = Sequential(Dense(2, 3), Sequential(Identity(), Dense(4, 1)))
    with pytest.raises(
        ShapeError,
        match=r"^Sequential layer 1 \(Sequential\) forward: Sequential layer 1 \(Dense\) "
        r"forward: Dense\(in_features=4",
    ) as caught:
        model(np.zeros((1, 2)))
    assert not notes(caught.value)  # in the message, not twice


# -- the summary ---------------------------------------------------------------------------------


def test_the_summary_says_one_parameter_not_one_parameters():
    text = repr(Sequential(Dense(1, 1, bias=False), Tanh()))
    assert text == (
        "Sequential(\n"
        "  (0): Dense(in_features=1, out_features=1, bias=False)  # 1 parameter\n"
        "  (1): Tanh()\n"
        ")  # 1 parameter"
    )
    assert repr(Sequential(Tanh())).endswith(")  # 0 parameters")


def test_indexing_errors_say_what_is_wrong():
    with pytest.raises(IndexError, match="Sequential index 5 is out of range for 5 layers"):
        mlp()[5]
    with pytest.raises(TypeError, match="Sequential indices are integers or slices, got str"):
        mlp()["0"]
    assert mlp()[np.int64(-1)].out_features == 3


def test_a_width_mismatch_with_a_big_container_gives_a_one_line_message():
    inner = Sequential(*(Dense(4, 4) for _ in range(1000)))
    with pytest.raises(ShapeError) as caught:
        Sequential(Dense(2, 3), inner)
    assert str(caught.value) == (
        "Sequential layer 1 (Sequential of 1000 layers) expects 4 input features, but layer 0 "
        "(Dense(in_features=2, out_features=3, bias=True)) outputs 3"
    )


# -- an item put into .layers by hand that is not a Layer -----------------------------------------


@pytest.mark.parametrize("item", [3, np.tanh, Tanh], ids=["int", "function", "class"])
def test_a_non_layer_put_into_layers_by_hand_is_a_type_error_naming_its_position(item):
    model = Sequential(Dense(2, 2, rng=0), Tanh())
    model.layers.append(item)
    message = r"Sequential layer 2 is .* not a minigrad Layer: .*by hand; add layers with append"
    for call in (
        lambda: model(np.ones((1, 2), np.float32)),
        lambda: model.backward(np.ones((1, 2), np.float32)),
        model.parameters,
        model.state_dict,
        model.train,
    ):
        with pytest.raises(TypeError, match=message):
            call()
    text = repr(model)  # printing never raises
    assert "(2): " in text and "# not a Layer" in text and "parameters not counted" in text


def test_backward_after_a_failed_forward_raises_instead_of_mixing_batches():
    model = Sequential(Dense(3, 4, rng=0), ReLU(), Dense(4, 2, rng=1))
    model(np.ones((5, 3), np.float32))
    with pytest.raises(ShapeError):
        model(np.ones((5, 4), np.float32))  # fails in layer 0: layers 1 and 2 keep the old batch
    with pytest.raises(RuntimeError, match=r"layer 0 \(Dense\) backward.*after a forward pass"):
        model.backward(np.ones((5, 2), np.float32))
