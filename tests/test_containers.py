"""Residual and Concat: composition, gradients (finite differences and PyTorch), the container
conventions they share with Sequential, files, and Sequential's shape checks for layers without
a fixed width (image-shaped data)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import (
    GELU,
    Concat,
    Dense,
    Identity,
    Layer,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    ShapeError,
    Tanh,
)
from minigrad.data import make_blobs
from minigrad.gradient_bounds import GradientBounds
from minigrad.testing import batches_for, check_gradients, nested_containers

f64 = np.float64


def dense(n_in, n_out, seed=0, dtype=f64):
    layer = Dense(n_in, n_out, rng=seed, dtype=dtype)
    layer.bias.value[:] = np.random.default_rng(seed + 100).uniform(-1, 1, n_out)
    return layer


class Flatten(Layer):
    """A stand-in for a flattening layer: (batch, ...) -> (batch, features), no fixed width."""

    def forward(self, x):
        x = np.asarray(x)
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_output):
        return grad_output.reshape(self.shape)


class ChannelScale(Layer):
    """A stand-in for a convolution on images: y[:, c] = w_c x[:, c], no fixed width."""

    def __init__(self, channels, seed=0):
        super().__init__()
        self.weight = Parameter(np.random.default_rng(seed).uniform(0.5, 1.5, channels))

    def forward(self, x):
        self.x = np.asarray(x, dtype=np.float64)
        return self.x * self.weight.value[None, :, None, None]

    def backward(self, grad_output):
        self.weight.grad[...] = np.einsum("nchw,nchw->c", grad_output, self.x)
        return grad_output * self.weight.value[None, :, None, None]


# -- the law: composition and gradients -----------------------------------------------------------


@given(model=nested_containers(), data=st.data())
def test_random_nested_containers_pass_the_gradient_check(model, data):
    x = data.draw(batches_for(model))
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", *model.state_dict()}


@given(model=nested_containers(max_depth=1), data=st.data())
def test_backward_by_default_fills_the_same_gradients_and_returns_none(model, data):
    x = data.draw(batches_for(model))
    y = model(x)
    g = np.random.default_rng(0).normal(size=y.shape)
    dx = model.backward_input(g)
    expected = {key: p.grad.copy() for key, p in model.named_parameters()}
    for p in model.parameters():
        p.grad[...] = np.nan  # a gradient the default leaves unwritten would show
    assert model.backward_parameters(g) is None
    for key, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, expected[key])
    assert dx.shape == x.shape


def test_residual_is_block_plus_shortcut_and_its_gradient_the_sum():
    block, shortcut = Sequential(dense(3, 4, 0), Tanh()), dense(3, 4, 1)
    model = Residual(block, shortcut)
    x = np.random.default_rng(0).normal(size=(5, 3))
    g = np.random.default_rng(1).normal(size=(5, 4))
    np.testing.assert_array_equal(model(x), block(x) + shortcut(x))
    model(x)
    dx = model.backward(g, input_grad=True)
    block_grads = {k: p.grad.copy() for k, p in block.named_parameters()}
    shortcut_grads = {k: p.grad.copy() for k, p in shortcut.named_parameters()}
    block(x)
    shortcut(x)
    expected = block.backward(g, input_grad=True) + shortcut.backward(g)
    np.testing.assert_array_equal(dx, expected)
    for key, p in block.named_parameters():
        np.testing.assert_array_equal(p.grad, block_grads[key])
    for key, p in shortcut.named_parameters():
        np.testing.assert_array_equal(p.grad, shortcut_grads[key])


def test_the_identity_shortcut_adds_the_input_and_the_gradient():
    block = dense(3, 3)
    model = Residual(block)
    assert isinstance(model.shortcut, Identity)
    x, g = np.ones((2, 3)), np.full((2, 3), 0.5)
    np.testing.assert_array_equal(model(x), block(x) + x)
    model(x)
    np.testing.assert_array_equal(model.backward(g, input_grad=True), g + g @ block.weight.value)


def test_concat_joins_along_dim_and_splits_the_gradient():
    a, b = dense(3, 2, 0), Sequential(dense(3, 4, 1), GELU())
    model = Concat(a, b)
    x = np.random.default_rng(0).normal(size=(5, 3))
    g = np.random.default_rng(1).normal(size=(5, 6))
    np.testing.assert_array_equal(model(x), np.concatenate([a(x), b(x)], axis=1))
    model(x)
    dx = model.backward(g, input_grad=True)
    a(x)
    b(x)
    expected = a.backward(g[:, :2]) + b.backward(g[:, 2:], input_grad=True)
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_concat_along_any_dim_of_images(dim):
    model = Concat(ChannelScale(3, 0), Sequential(ChannelScale(3, 1), Tanh()), Identity(), dim=dim)
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 4))
    y = model(x)
    axis = dim % 4
    assert y.shape[axis] == 3 * x.shape[axis]
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", "branches.0.weight", "branches.1.0.weight"}


def test_residual_on_images_with_a_flattening_model_around_it():
    model = Sequential(
        Residual(Sequential(ChannelScale(2, 0), GELU(), ChannelScale(2, 1))),
        Concat(ChannelScale(2, 2), Identity()),
        Flatten(),
        dense(4 * 3 * 3, 2),
    )
    x = np.random.default_rng(0).normal(size=(3, 2, 3, 3))
    assert model(x).shape == (3, 2)
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", *model.state_dict()}


# -- the container conventions ---------------------------------------------------------------------


class CountingDense(Dense):
    """A Dense that counts the products g W it computes (its backward's dL/dx)."""

    products = 0

    def backward(self, grad_output):
        CountingDense.products += 1
        return super().backward(grad_output)


@pytest.mark.parametrize(
    ("build", "by_default", "when_asked"),
    [
        (lambda: Residual(CountingDense(3, 3)), 0, 1),
        (lambda: Residual(CountingDense(3, 2), shortcut=CountingDense(3, 2)), 0, 2),
        (lambda: Concat(CountingDense(3, 1), Sequential(CountingDense(3, 1), Tanh())), 0, 2),
        (lambda: Sequential(Residual(CountingDense(3, 3)), CountingDense(3, 2)), 1, 2),
        (lambda: Sequential(CountingDense(3, 3), Residual(CountingDense(3, 3))), 1, 2),
        (lambda: Sequential(Concat(CountingDense(3, 1), CountingDense(3, 1)), Tanh()), 0, 2),
        # behind an activation, the Dense's dL/dx is what Tanh needs: nothing to skip
        (lambda: Residual(Sequential(Tanh(), CountingDense(3, 3))), 1, 1),
    ],
    ids=["residual", "projection", "concat", "first", "later", "concat first", "activation"],
)
def test_dl_dx_is_computed_only_when_asked(build, by_default, when_asked):
    """How many products g W (a Dense's dL/dx) a backward computes by default and with
    ``input_grad=True``: a container's children skip theirs when nobody needs dL/dx."""
    model = build()
    y = model(np.ones((2, 3)))
    CountingDense.products = 0
    assert model.backward(np.ones_like(y)) is None
    assert CountingDense.products == by_default
    assert all(p.grad.any() for p in model.parameters())
    CountingDense.products = 0
    assert model.backward(np.ones_like(y), input_grad=True).shape == (2, 3)
    assert CountingDense.products == when_asked


def flat_and_nested(position):
    """A model whose layer at ``position`` (0: first, 1: later) is a Residual."""
    layers = [dense(3, 3, 0), Residual(Sequential(dense(3, 3, 1), Tanh())), dense(3, 2, 2)]
    return Sequential(*layers[1 - position :])


@pytest.mark.parametrize("position", [0, 1], ids=["first", "later"])
def test_a_residual_at_any_position_of_a_sequential(position):
    model = flat_and_nested(position)
    x = np.random.default_rng(0).normal(size=(4, 3))
    g = np.random.default_rng(1).normal(size=(4, 2))
    model(x)
    assert model.backward(g) is None
    dx = model.backward(g, input_grad=True)
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", *model.state_dict()}
    assert dx.shape == x.shape


def test_train_and_eval_reach_every_child():
    inner = Sequential(Dense(2, 2), Tanh())
    model = Sequential(Residual(inner, shortcut=Dense(2, 2)), Concat(Identity(), GELU()))
    model.eval()
    assert not any(layer.training for _, layer in model.named_layers())
    model.train()
    assert all(layer.training for _, layer in model.named_layers())
    model[1].eval()
    assert model.training and not model[1].branches[1].training


@pytest.mark.parametrize(
    "model",
    [Residual(Dense(2, 2, rng=0)), Concat(Dense(2, 1, rng=0), Tanh())],
    ids=["residual", "concat"],
)
def test_backward_after_an_eval_mode_forward_is_refused(model):
    x = np.array([[0.5, -1.0]])
    y = model(x)
    model.eval()
    model(x)  # what predict does between the loss and backward
    model.train()
    with pytest.raises(
        RuntimeError, match=rf"{type(model).__name__}\.backward\(\): the last forward pass ran"
    ):
        model.backward(np.ones_like(y))
    model.eval()
    model(x)
    assert model.backward(np.ones_like(y), input_grad=True).shape == (1, 2)  # both in eval


def test_backward_after_an_eval_forward_is_refused_inside_a_sequential():
    model = Sequential(Dense(2, 2, rng=0), Residual(Dense(2, 2, rng=1)))
    model(np.ones((1, 2)))
    mg.predict(model, np.ones((1, 2)))
    with pytest.raises(RuntimeError, match=r"Sequential\.backward\(\): the last forward pass"):
        model.backward(np.ones((1, 2)))


# -- PyTorch as an oracle ------------------------------------------------------------------------


def torch_model(torch, layer):
    """The same network in PyTorch: a Residual as a module with attributes ``block`` and
    ``shortcut``, a Concat as one with an ``nn.ModuleList`` called ``branches``, so that
    the state_dict keys are minigrad's."""
    nn = torch.nn

    class TorchResidual(nn.Module):
        def __init__(self, block, shortcut):
            super().__init__()
            self.block, self.shortcut = block, shortcut

        def forward(self, x):
            return self.block(x) + self.shortcut(x)

    class TorchConcat(nn.Module):
        def __init__(self, branches, dim):
            super().__init__()
            self.branches, self.dim = nn.ModuleList(branches), dim

        def forward(self, x):
            return torch.cat([branch(x) for branch in self.branches], dim=self.dim)

    def convert(layer):
        if isinstance(layer, Sequential):
            return nn.Sequential(*map(convert, layer))
        if isinstance(layer, Residual):
            return TorchResidual(convert(layer.block), convert(layer.shortcut))
        if isinstance(layer, Concat):
            return TorchConcat([convert(branch) for branch in layer.branches], layer.dim)
        if isinstance(layer, Dense):
            return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        if isinstance(layer, mg.LeakyReLU):
            return nn.LeakyReLU(layer.negative_slope)
        return eval(f"nn.{layer!r}")  # the activations' reprs are PyTorch's

    reference = convert(layer).to(torch.float64)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return reference


def compare_with_torch(torch, model, x, g, rtol=1e-10, atol=1e-12):
    reference = torch_model(torch, model)
    assert list(reference.state_dict()) == list(model.state_dict())
    tx = torch.tensor(x, requires_grad=True)
    ty = reference(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(model(x), ty.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(model.backward_input(g), tx.grad.numpy(), rtol=rtol, atol=atol)
    grads = dict(reference.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[key].grad.numpy(), rtol=rtol, atol=atol)


@given(model=nested_containers(max_depth=3), data=st.data())
def test_random_nested_containers_match_torch(torch, model, data):
    x = data.draw(batches_for(model))
    y = model(x)
    g = np.random.default_rng(len(x)).normal(size=y.shape)
    compare_with_torch(torch, model, x, g)


def test_a_resnet_like_float32_model_matches_torch(torch):
    def block(width, seed):
        body = Sequential(Dense(width, width, rng=seed), ReLU(), Dense(width, width, rng=seed + 1))
        return Residual(body)

    model = Sequential(
        Dense(6, 8, rng=0),
        block(8, 1),
        GELU(),
        Concat(block(8, 3), Sequential(Dense(8, 4, rng=5), mg.SiLU())),
        Dense(12, 3, rng=6),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    g = rng.normal(size=(16, 3)).astype(np.float32)
    y = model(x)
    dx = model.backward_input(g)
    assert y.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    # PyTorch in float64 on the same float32 parameters: the exact answer to compare with
    reference = torch_model(torch, model)
    tx = torch.tensor(x.astype(f64), requires_grad=True)
    ty = reference(tx)
    ty.backward(torch.from_numpy(g.astype(f64)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    grads = dict(reference.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[key].grad.numpy(), rtol=1e-4, atol=1e-5)


def test_state_dict_keys_are_those_of_the_torch_modules(torch):
    model = Sequential(
        Residual(Sequential(Dense(2, 2), Tanh()), shortcut=Dense(2, 2)),
        Concat(Dense(2, 1), Residual(Dense(2, 2))),
    )
    assert list(model.state_dict()) == [
        "0.block.0.weight",
        "0.block.0.bias",
        "0.shortcut.weight",
        "0.shortcut.bias",
        "1.branches.0.weight",
        "1.branches.0.bias",
        "1.branches.1.block.weight",
        "1.branches.1.block.bias",
    ]
    assert list(torch_model(torch, model).state_dict()) == list(model.state_dict())


# -- dtypes --------------------------------------------------------------------------------------


def test_float64_data_through_an_identity_keeps_a_float32_model_in_float32():
    x = np.random.default_rng(0).normal(size=(4, 3))  # float64 data
    for model in (
        Residual(Dense(3, 3, rng=0)),
        Concat(Identity(), Dense(3, 2, rng=0)),
        Concat(Dense(3, 2, rng=0), Identity()),
    ):
        y = model(x)
        assert y.dtype == np.float32, model
        assert model.backward(np.ones_like(y), input_grad=True).dtype == np.float32
    # a float64 model keeps float32 data's precision out of its output
    model = Residual(Dense(3, 3, rng=0, dtype=f64))
    assert model(x.astype(np.float32)).dtype == f64


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Residual(np.tanh),
            TypeError,
            r"Residual block must be a minigrad Layer, got ufunc",
        ),
        (lambda: Residual(Tanh), TypeError, r"block .*got type; pass an instance, Tanh\(\), not"),
        (lambda: Residual(Tanh(), "x"), TypeError, "Residual shortcut must be a minigrad Layer"),
        (lambda: Concat(), ValueError, "Concat needs at least one branch, got none"),
        (lambda: Concat([]), ValueError, "Concat needs at least one branch, got none"),
        (lambda: Concat(Tanh(), 3), TypeError, "Concat branch 1 must be a minigrad Layer, got int"),
        (lambda: Concat(Tanh(), dim=1.0), TypeError, r"Concat dim must be an integer, got 1\.0"),
        (lambda: Concat(Tanh(), dim="1"), TypeError, r"Concat dim must be an integer, got '1'"),
        (lambda: Concat(Tanh(), dim=True), TypeError, "Concat dim must be an integer, got True"),
        (lambda: Concat(Tanh(), dim=99), ValueError, r"Concat dim must be in \[-64, 63\], got 99"),
    ],
)
def test_construction_arguments_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_each_object_in_one_place():
    dense_ = Dense(2, 2)
    with pytest.raises(
        ValueError,
        match=r"^Residual: the same Dense object is at 'block' and at 'shortcut': a layer "
        "caches its input",
    ):
        Residual(dense_, dense_)
    with pytest.raises(ValueError, match=r"'branches\.0' and at 'branches\.1\.0'"):
        Concat(dense_, Sequential(dense_))
    other = Dense(2, 2)
    other.bias = dense_.bias
    with pytest.raises(ValueError, match=r"Parameter is at 'block\.bias' and at 'shortcut\.bias'"):
        Residual(dense_, other)
    with pytest.raises(ValueError, match=r"layer 1 is the same Residual object as layer 0"):
        block = Residual(Dense(2, 2))
        Sequential(block, block)
    tanh = Tanh()
    with pytest.raises(
        ValueError, match=r"holds at '1\.branches\.0' the same Tanh object as at '0'"
    ):
        Sequential(tanh, Concat(tanh))


def test_widths_that_cannot_be_added_or_joined_are_refused_at_construction():
    with pytest.raises(
        ShapeError,
        match=r"Residual block \(Dense\(in_features=4, out_features=8, bias=True\)\) maps 4 "
        r"features to 8, but the identity shortcut keeps 4: the two are added; give a "
        r"shortcut that maps 4 features to 8, such as shortcut=Dense\(4, 8\)",
    ):
        Residual(Dense(4, 8))
    with pytest.raises(
        ShapeError,
        match=r"Residual block \(Sequential of 2 layers\) outputs 8 features, but the "
        r"shortcut \(Dense\(in_features=4, out_features=6, bias=True\)\) outputs 6",
    ):
        Residual(Sequential(Dense(4, 8), Tanh()), shortcut=Dense(4, 6))
    with pytest.raises(ShapeError, match=r"expects 4 input features, but the shortcut .* 5"):
        Residual(Dense(4, 8), shortcut=Dense(5, 8))
    with pytest.raises(
        ShapeError,
        match=r"Concat branch 2 \(Dense\(in_features=5.*\)\) expects 5 input features, but "
        r"branch 0 \(Dense\(in_features=4.*\)\) expects 4: every branch takes the same input",
    ):
        Concat(Dense(4, 1), Tanh(), Dense(5, 1))
    with pytest.raises(
        ShapeError,
        match=r"Sequential layer 1 \(Residual around Dense\(in_features=4.*\)\) expects 4 "
        r"input features, but layer 0 .* outputs 3",
    ):
        Sequential(Dense(2, 3), Residual(Dense(4, 4)))
    with pytest.raises(
        ShapeError, match=r"layer 2 \(Dense.*\) expects 5 input features, but layer 1 \(Concat"
    ):
        Sequential(Dense(2, 3), Concat(Dense(3, 1), Dense(3, 3)), Dense(5, 1))


def test_widths_known_through_the_containers():
    assert Residual(Sequential(Tanh(), Dense(3, 3))).in_features == 3
    assert Residual(Tanh()).in_features is None
    assert Residual(Flatten(), shortcut=Dense(3, 2)).out_features == 2
    assert Residual(Flatten(), shortcut=Dense(3, 2)).in_features == 3
    assert Concat(Dense(3, 1), Dense(3, 4)).out_features == 5
    assert Concat(Dense(3, 1), Dense(3, 4), dim=0).out_features is None
    assert Concat(Dense(3, 1), Flatten()).out_features is None
    assert Concat(Flatten(), Dense(3, 1)).in_features == 3
    assert Sequential(Residual(Dense(3, 3)), Concat(Dense(3, 2), Dense(3, 2))).out_features == 4


def test_a_forward_shape_mismatch_names_both_shapes():
    model = Residual(Flatten())
    with pytest.raises(
        ShapeError,
        match=r"^Residual block \(Flatten\(\)\) outputs shape \(2, 12\), but the shortcut "
        r"\(Identity\(\)\) outputs \(2, 3, 4\): the two are added, so they must have the same",
    ):
        model(np.zeros((2, 3, 4)))
    model = Concat(Flatten(), Identity())
    with pytest.raises(
        ShapeError,
        match=r"^Concat branch 1 \(Identity\(\)\) outputs shape \(2, 3, 4\), but branch 0 "
        r"\(Flatten\(\)\) outputs \(2, 12\): they are joined along dim 1, so they must agree",
    ):
        model(np.zeros((2, 3, 4)))
    with pytest.raises(
        ShapeError, match=r"branch 1 .* outputs shape \(2, 3\), but branch 0 .*\(2, 5\)"
    ):
        Concat(Dense(4, 5), Dense(4, 3), dim=0)(np.zeros((2, 4)))
    with pytest.raises(
        ShapeError,
        match=r"^Concat\(dim=2\) needs outputs with a dimension 2, but branch 0 \(Tanh\(\)\) "
        r"outputs shape \(2, 3\) \(2-D\)",
    ):
        Concat(Tanh(), dim=2)(np.zeros((2, 3)))


def test_a_child_error_names_every_level():
    model = Sequential(Dense(2, 3), Residual(Sequential(Tanh(), Flatten(), Dense(4, 3))))
    with pytest.raises(
        ShapeError,
        match=r"^Sequential layer 1 \(Residual\) forward: Residual block \(Sequential\) "
        r"forward: Sequential layer 2 \(Dense\) forward: Dense\(in_features=4",
    ):
        model(np.zeros((1, 2)))
    model = Concat(Dense(2, 1), Sequential(Flatten(), Dense(3, 1)))
    with pytest.raises(ShapeError, match=r"^Concat branch 1 \(Sequential\) forward: Sequential"):
        model(np.zeros((1, 2)))


class Raising(Layer):
    def __init__(self, error, when="forward"):
        super().__init__()
        self.error, self.when = error, when

    def forward(self, x):
        if self.when == "forward":
            raise self.error
        return x

    def backward(self, grad_output):
        raise self.error


class Custom(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda layer: Residual(Tanh(), shortcut=layer), "Residual shortcut"),
        (lambda layer: Residual(layer), "Residual block"),
        (lambda layer: Concat(Tanh(), layer), "Concat branch 1"),
    ],
    ids=["shortcut", "block", "branch"],
)
@pytest.mark.parametrize("when", ["forward", "backward"])
def test_errors_keep_their_class_and_gain_the_childs_position(make, where, when):
    model = make(Raising(TypeError("wants strings"), when))
    with pytest.raises(TypeError, match=rf"^{where} \(Raising\) {when}: wants strings$"):
        y = model(np.zeros((1, 2)))
        model.backward(np.ones_like(y))
    error = Custom(7, "detail")
    model = make(Raising(error, when))
    with pytest.raises(Custom) as caught:
        y = model(np.zeros((1, 2)))
        model.backward(np.ones_like(y), input_grad=True)
    assert caught.value is error and caught.value.code == 7
    assert caught.value.__notes__ == [f"raised in {where} (Raising) {when}"]


@pytest.mark.parametrize(
    "model", [Residual(Dense(2, 2, rng=0)), Concat(Dense(2, 1, rng=0), Dense(2, 1, rng=1))],
    ids=["residual", "concat"],
)  # fmt: skip
def test_backward_checks_its_gradient_and_its_order(model):
    name = type(model).__name__
    with pytest.raises(RuntimeError, match=rf"{name}\.backward\(\) was called before forward"):
        model.backward(np.ones((1, 2)))
    model(np.ones((3, 2)))
    expected = rf"{name}\.backward expected grad_output of shape \(3, 2\) \(the forward output's\)"
    with pytest.raises(ShapeError, match=expected + r", got \(1, 2\)"):
        model.backward(np.ones((1, 2)))  # would have broadcast into the identity's g
    with pytest.raises(TypeError, match=rf"{name}\.backward takes the gradient as a NumPy array"):
        model.backward([[1.0, 1.0]] * 3)
    with pytest.raises(TypeError, match="takes a floating-point gradient, got dtype int64"):
        model.backward(np.ones((3, 2), np.int64))
    for flag in ("no", 0, None):
        with pytest.raises(TypeError, match=f"input_grad must be True or False, got {flag!r}"):
            model.backward(np.ones((3, 2)), input_grad=flag)
    with pytest.raises((ShapeError, TypeError)):
        model(np.ones((3, 5)))
    with pytest.raises(RuntimeError, match="after a forward pass that failed"):
        model.backward(np.ones((3, 2)))


def test_a_child_replaced_by_hand_with_something_else_is_named():
    model = Residual(Dense(2, 2))
    model.shortcut = np.tanh
    message = (
        r"Residual shortcut is <ufunc 'tanh'> \(ufunc\), not a minigrad Layer: it was replaced"
    )
    for call in (model.parameters, model.train, lambda: model(np.ones((1, 2)))):
        with pytest.raises(TypeError, match=message):
            call()
    assert "(shortcut): <ufunc 'tanh'>  # not a Layer" in repr(model)
    concat = Concat(Dense(2, 2))
    concat.branches.append(3)
    with pytest.raises(TypeError, match=r"Concat branch 1 is 3 \(int\), not a minigrad Layer"):
        concat.state_dict()


def test_a_child_that_returns_something_else_than_an_array_is_named():
    class Listing(Layer):
        def forward(self, x):
            return x.tolist()

    with pytest.raises(TypeError, match=r"Residual block \(Listing\) forward returned list, not"):
        Residual(Listing())(np.ones((1, 2)))


def test_a_child_whose_dl_dx_has_another_shape_is_named():
    class Shrinking(Layer):
        def forward(self, x):
            return x

        def backward(self, grad_output):
            return grad_output[:, :1]

    model = Residual(Shrinking())
    model(np.ones((2, 3)))
    with pytest.raises(
        ShapeError,
        match=r"Residual\.backward: the shortcut returned dL/dx of shape \(2, 3\), but the "
        r"block returned \(2, 1\)",
    ):
        model.backward(np.ones((2, 3)), input_grad=True)


# -- printing ---------------------------------------------------------------------------------


def test_the_repr_is_an_indented_tree_with_parameter_counts():
    model = Sequential(
        Dense(2, 4, rng=0),
        Residual(Sequential(Dense(4, 4, rng=1), ReLU())),
        Concat(Residual(Tanh(), shortcut=Dense(4, 4, bias=False)), Identity(), dim=-1),
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Dense(in_features=2, out_features=4, bias=True)  # 12 parameters\n"
        "  (1): Residual(\n"
        "    (block): Sequential(\n"
        "      (0): Dense(in_features=4, out_features=4, bias=True)  # 20 parameters\n"
        "      (1): ReLU()\n"
        "    )  # 20 parameters\n"
        "    (shortcut): Identity()\n"
        "  )  # 20 parameters\n"
        "  (2): Concat(\n"
        "    dim=-1\n"
        "    (branches.0): Residual(\n"
        "      (block): Tanh()\n"
        "      (shortcut): Dense(in_features=4, out_features=4, bias=False)  # 16 parameters\n"
        "    )  # 16 parameters\n"
        "    (branches.1): Identity()\n"
        "  )  # 16 parameters\n"
        ")  # 48 parameters"
    )


# -- configs and files -------------------------------------------------------------------------


def test_config_rebuilds_the_containers_from_their_children():
    residual = Residual(Tanh(), shortcut=Identity())
    assert residual.get_config() == {}
    copy = Residual.from_config({"block": Tanh(), "shortcut": Dense(2, 2)})
    assert isinstance(copy.shortcut, Dense)
    concat = Concat(Tanh(), GELU(), dim=-1)
    assert concat.get_config() == {"dim": -1}
    copy = Concat.from_config({**concat.get_config(), "branches": [Tanh(), Identity()]})
    assert copy.dim == -1 and len(copy.branches) == 2
    with pytest.raises(ValueError, match=r"a Concat config has the keys 'branches' .*\['dim'\]"):
        Concat.from_config({"dim": 1})
    with pytest.raises(TypeError, match="'branches' must be a list of layers, got str"):
        Concat.from_config({"branches": "abc"})
    with pytest.raises(TypeError, match=r"Concat\.from_config takes a dict"):
        Concat.from_config(None)


def nested_model(dtype=np.float32):
    return Sequential(
        Dense(4, 6, rng=0, dtype=dtype),
        Residual(Sequential(Dense(6, 6, rng=1, dtype=dtype), GELU())),
        Concat(
            Residual(Dense(6, 3, rng=2, dtype=dtype), shortcut=Dense(6, 3, rng=3, dtype=dtype)),
            Sequential(Dense(6, 2, rng=4, dtype=dtype), mg.ELU(0.5)),
            dim=1,
        ),
        Dense(5, 3, rng=5, dtype=dtype),
    )


def test_nested_containers_save_and_load(tmp_path):
    model = nested_model()
    path = tmp_path / "model.safetensors"
    mg.save(model, path)
    copy = mg.load(path)
    assert repr(copy) == repr(model)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_array_equal(copy(x), model(x))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value)


def test_the_description_of_nested_containers():
    from minigrad.serialization.architecture import describe_layer

    description = describe_layer(Sequential(Residual(Tanh()), Concat(Identity(), dim=-1)))
    assert description == {
        "class": "Sequential",
        "layers": [
            {
                "class": "Residual",
                "block": {"class": "Tanh", "config": {}},
                "shortcut": {"class": "Identity", "config": {}},
            },
            {
                "class": "Concat",
                "config": {"dim": -1},
                "branches": [{"class": "Identity", "config": {}}],
            },
        ],
    }


def test_subclasses_of_the_containers_and_deep_nesting_are_refused_at_save(tmp_path):
    class MyResidual(Residual):
        pass

    path = tmp_path / "model.safetensors"
    with pytest.raises(ValueError, match=r"cannot save layer 0 \(.*MyResidual\): its class is not"):
        mg.save(Sequential(MyResidual(Tanh())), path)
    nested = Tanh()
    for _ in range(17):
        nested = Residual(Concat(nested))
    with pytest.raises(ValueError, match=r"layer (block\.branches\.0\.){16}.*nested more than 32"):
        mg.save(nested, path)
    assert not path.exists()


BAD_DESCRIPTIONS = [
    ({"class": "Residual", "block": {"class": "Tanh", "config": {}}},
     r"architecture: a Residual is described by 'class', 'block' and 'shortcut'"),
    ({"class": "Residual", "block": {"class": "Tanh", "config": {}}, "shortcut": "x"},
     r"architecture\.shortcut must be an object with a string 'class'"),
    ({"class": "Residual", "block": {"class": "os.system", "config": {}},
      "shortcut": {"class": "Identity", "config": {}}},
     r"architecture\.block names the layer class 'os\.system', which is not registered"),
    ({"class": "Residual", "config": {}, "block": {"class": "Tanh", "config": {}},
      "shortcut": {"class": "Identity", "config": {}}},
     r"a Residual is described by 'class', 'block' and 'shortcut'"),
    ({"class": "Residual",
      "block": {"class": "Dense", "config": {"in_features": 2, "out_features": 3, "bias": True,
                                             "dtype": "float32"}},
      "shortcut": {"class": "Identity", "config": {}}},
     r"architecture: cannot build Residual: Residual block .* maps 2 features to 3"),
    ({"class": "Concat", "branches": []},
     r"a Concat is described by 'class', a 'config' object and a 'branches' list"),
    ({"class": "Concat", "config": {"dim": 1}, "branches": {"0": {}}},
     r"a Concat is described by 'class', a 'config' object and a 'branches' list"),
    ({"class": "Concat", "config": {"dim": 1}, "branches": []},
     r"architecture: cannot build Concat: Concat needs at least one branch"),
    ({"class": "Concat", "config": {"dim": "1"}, "branches": [{"class": "Tanh", "config": {}}]},
     r"cannot build Concat: Concat dim must be an integer, got '1' \(str\)"),
    ({"class": "Concat", "config": {"dim": 1, "axis": 0},
      "branches": [{"class": "Tanh", "config": {}}]},
     r"cannot build Concat: a Concat config has the keys 'branches' .* and 'dim', got "
     r"\['axis', 'branches', 'dim'\]"),
    ({"class": "Concat", "config": {"branches": []}, "branches": []},
     r"architecture\.config: the branches belong in 'branches'"),
    ({"class": "Concat", "config": {}, "branches": [{"class": "Tanh", "config": {}}, 3]},
     r"architecture\.branches\[1\] must be an object with a string 'class'"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "message"), BAD_DESCRIPTIONS)
def test_a_file_describing_a_container_badly_is_refused_by_name(description, message):
    from minigrad.serialization.architecture import build_layer

    with pytest.raises(mg.ModelFileError, match=message):
        build_layer(description)


def test_a_file_nesting_containers_too_deep_is_refused():
    from minigrad.serialization.architecture import build_layer

    description = {"class": "Tanh", "config": {}}
    for _ in range(40):
        description = {"class": "Concat", "config": {}, "branches": [description]}
    with pytest.raises(mg.ModelFileError, match=r"containers nested more than 32 deep"):
        build_layer(description)


def test_no_other_class_can_take_the_containers_names():
    with pytest.raises(ValueError, match="another layer class is already registered as 'Residual'"):

        @mg.register_layer
        class Residual(Layer):
            pass


def test_a_checkpoint_of_nested_containers_resumes_the_uninterrupted_run(tmp_path):
    x, y = make_blobs(120, centers=3, spread=1.0, seed=0)
    x = np.column_stack([x, x[:, ::-1]])  # four features

    def run(epochs, **kwargs):
        model = nested_model()
        optimizer = mg.Adam(model.parameters(), lr=0.01)
        history = mg.fit(
            model, mg.CrossEntropy(), optimizer, x, y, epochs=epochs, batch_size=16,
            progress=False, **kwargs,
        )  # fmt: skip
        return model, history

    straight, straight_history = run(4, seed=3)
    path = tmp_path / "epoch{epoch}.safetensors"
    run(2, seed=3, callbacks=[mg.ModelCheckpoint(path)])
    checkpoint = mg.load_checkpoint(tmp_path / "epoch2.safetensors")
    assert repr(checkpoint.model) == repr(nested_model())
    resumed, resumed_history = run(4, seed=99, resume_from=tmp_path / "epoch2.safetensors")
    assert dict(resumed_history) == dict(straight_history)
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value)


# -- fit with containers, and with image-shaped data ---------------------------------------------


def test_fit_trains_a_residual_gelu_model_with_measured_gradient_norms():
    x, y = make_blobs(150, centers=3, spread=1.0, seed=1)
    model = Sequential(
        Dense(2, 16, rng=0), Residual(Sequential(Dense(16, 16, rng=1), GELU())), Dense(16, 3, rng=2)
    )
    loss = mg.CrossEntropy()
    # no bounds for a Residual: fit measures the gradients' norms instead
    assert GradientBounds(model, loss, 1.0, 2).supported is False
    before = mg.evaluate(model, loss, x, y)["loss"]
    history = mg.fit(
        model, loss, mg.Adam(model.parameters(), lr=0.01), x, y, epochs=15, progress=False
    )
    assert history["loss"][-1] < 0.5 * before
    assert mg.evaluate(model, loss, x, y)["accuracy"] > 0.9


def image_data(n=60, seed=0):
    """(n, 2, 3, 3) images whose class is the channel with the larger mean."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2, 3, 3))
    x[np.arange(n), y] += 1.0
    return x.astype(np.float32), y


@pytest.mark.parametrize(
    "make",
    [
        lambda: Sequential(Flatten(), Dense(18, 2, rng=0)),
        lambda: Sequential(
            Residual(Sequential(ChannelScale(2), GELU())),
            Flatten(),
            Dense(18, 8, rng=1),
            ReLU(),
            Dense(8, 2, rng=2),
        ),
    ],
    ids=["flatten first", "residual on images"],
)
def test_fit_evaluate_and_predict_take_image_shaped_data(make):
    x, y = image_data()
    model = make()
    loss = mg.CrossEntropy()
    bounds = GradientBounds(model, loss, 1.0, 0)
    assert bounds.supported is False  # a layer it does not know: norms are measured
    history = mg.fit(
        model, loss, mg.Adam(model.parameters(), lr=0.05), x, y, epochs=10,
        validation_data=image_data(20, seed=1), progress=False,
    )  # fmt: skip
    assert history["loss"][-1] < history["loss"][0]
    assert mg.evaluate(model, loss, x, y)["accuracy"] > 0.8
    assert mg.predict(model, x, batch_size=7).shape == (60, 2)


def test_layers_without_a_fixed_width_break_the_chain_instead_of_failing():
    # Flatten's output width depends on the image size: nothing to check at construction
    model = Sequential(Dense(4, 8), Flatten(), Dense(5, 2))
    assert model.out_features == 2 and model.in_features == 4
    assert Sequential(Flatten(), Dense(784, 10)).in_features is None
    assert Sequential(Dense(4, 8), Flatten()).out_features is None

    class Odd(Layer):  # a layer of your own whose widths are not integers
        in_features, out_features = (1, 28, 28), None

        def forward(self, x):
            return x.reshape(len(x), -1)

    model = Sequential(Dense(3, 784), Odd(), Dense(784, 2))
    assert model.in_features == 3
    # the chain still checks known widths on either side
    with pytest.raises(ShapeError, match=r"layer 3 .*expects 3 input features, but layer 1"):
        Sequential(Flatten(), Dense(12, 4), ReLU(), Dense(3, 1))


def test_an_image_meeting_a_dense_names_the_layer_at_the_first_forward():
    model = Sequential(ChannelScale(2), Dense(18, 2))
    with pytest.raises(
        ShapeError,
        match=r"^Sequential layer 1 \(Dense\) forward: Dense\(in_features=18, out_features=2, "
        r"bias=True\) expected a 2-D array \(batch, 18\), got 4-D with shape \(5, 2, 3, 3\)$",
    ):
        model(np.zeros((5, 2, 3, 3)))
    x, y = image_data()
    with pytest.raises(
        ValueError,
        match=r"fit: x of shape \(60, 2, 3, 3\) does not fit the model: Sequential layer 0 "
        r"\(Dense\) forward: .*got 4-D",
    ):
        model = Sequential(Dense(18, 2))
        mg.fit(model, mg.CrossEntropy(), mg.SGD(model.parameters()), x, y, epochs=1)


def test_sums_beyond_float32_are_inf_without_a_warning():
    model = Residual(Identity(), shortcut=Identity())
    x = np.array([[3e38, -3e38, 1.0]], np.float32)
    np.testing.assert_array_equal(model(x), [[np.inf, -np.inf, 2.0]])
    np.testing.assert_array_equal(model.backward_input(np.full_like(x, 3e38)), [[np.inf] * 3])
    concat = Concat(Identity(), Identity(), dim=0)
    concat(x)
    assert np.isinf(concat.backward_input(np.full((2, 3), 3e38, np.float32))).all()


def test_a_registered_layer_of_your_own_that_holds_layers_is_refused_at_save(tmp_path, monkeypatch):
    from minigrad.serialization import architecture

    class Twice(Layer):
        def __init__(self):
            super().__init__()
            self.inner = Dense(2, 2)

        def forward(self, x):
            return self.inner(x)

    monkeypatch.setitem(architecture._LAYERS, "Twice", Twice)  # registered for this test only

    with pytest.raises(
        ValueError,
        match=r"cannot save layer 1 \(.*Twice\): it holds sub-layers, and only Sequential, "
        "Residual and Concat containers are rebuilt from files",
    ):
        mg.save(Sequential(Dense(2, 2), Twice()), tmp_path / "model.safetensors")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_depth": -1}, ValueError, r"max_depth must be in \[0, 8\], got -1"),
        ({"max_depth": 1.5}, TypeError, "max_depth must be an integer"),
        ({"min_width": 0}, ValueError, "min_width must be >= 1, got 0"),
        ({"min_width": 3, "max_width": 2}, ValueError, "max_width must be >= 3, got 2"),
        ({"max_width": 10**9}, MemoryError, r"nested_containers\(max_width=1000000000\) is too"),
        ({"activations": [Dense]}, TypeError, r"activations\[0\] must be an Activation class"),
    ],
)
def test_nested_containers_checks_its_arguments_when_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        nested_containers(**kwargs)


@given(model=nested_containers(max_depth=0))
def test_depth_zero_draws_a_dense_with_or_without_an_activation(model):
    dense_ = model if isinstance(model, Dense) else model[0]
    assert isinstance(dense_, Dense) and dense_.weight.dtype == f64
