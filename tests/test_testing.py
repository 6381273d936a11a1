"""minigrad.testing: the gradient check must catch broken layers; strategies keep their promises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad import MSE, Dense, Layer, Loss, Normalization, Parameter, ReLU, Sequential, Tanh
from minigrad.testing import (
    GradientCheckError,
    batches,
    batches_for,
    check_gradients,
    conv_stacks,
    floats_away_from_zero,
    image_batches,
    numerical_gradient,
    sequential_stacks,
)
from minigrad.testing.strategies import DEFAULT_ACTIVATIONS

X = np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5]])


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(np.sum(np.sin(x))), x)
    np.testing.assert_allclose(grad, np.cos(x), rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored


class WrongInputGradient(Tanh):
    def backward(self, grad_output):
        return super().backward(grad_output) * 1.01


class WrongWeightGradient(Dense):
    def backward(self, grad_output):
        dx = super().backward(grad_output)
        self.weight.grad *= -1
        return dx


class ForgetsBiasGradient(Dense):
    def backward(self, grad_output):
        dx = super().backward(grad_output)
        self.bias.grad[:] = 0
        return dx


class AccumulatesGradient(Dense):
    def backward(self, grad_output):
        before = self.weight.grad.copy()
        dx = super().backward(grad_output)
        self.weight.grad += before  # PyTorch-style accumulation: wrong in minigrad
        return dx


class WrongLossGradient(MSE):
    def backward(self):
        return super().backward() / 2  # forgets the factor 2 of d(e^2)/de


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        (WrongInputGradient(), "input"),
        (WrongWeightGradient(3, 2, rng=0, dtype=np.float64), "weight"),
        (ForgetsBiasGradient(3, 2, rng=0, dtype=np.float64), "bias"),
        (Sequential(Dense(3, 4, rng=0, dtype=np.float64), WrongInputGradient()), "input"),
    ],
)
def test_a_wrong_backward_is_caught(layer, name):
    if isinstance(layer, Dense):
        layer.bias.value[:] = 0.5  # a non-zero bias gradient to miss
    with pytest.raises(GradientCheckError, match=f"gradient of '{name}' at"):
        check_gradients(layer, X)


def test_a_backward_that_accumulates_is_caught():
    with pytest.raises(GradientCheckError, match=r"changed between two identical.*overwrite"):
        check_gradients(AccumulatesGradient(3, 2, rng=0, dtype=np.float64), X)


def test_a_nan_finite_difference_never_passes():
    class BrokenLog(Layer):
        def forward(self, x):
            self.x = x
            return np.log(x)

        def backward(self, grad_output):
            return grad_output * 12345.0

    with np.errstate(invalid="ignore"), pytest.raises(GradientCheckError, match="'input'"):
        check_gradients(BrokenLog(), -np.ones((1, 2)))


def test_a_wrong_loss_gradient_is_caught():
    with pytest.raises(GradientCheckError, match="gradient of 'pred'"):
        check_gradients(WrongLossGradient(), X, np.zeros_like(X))


def test_a_correct_layer_reports_small_errors():
    report = check_gradients(Sequential(Dense(3, 4, rng=0, dtype=np.float64), Tanh()), X)
    assert set(report.errors) == {"input", "0.weight", "0.bias"}
    assert 0 <= report.worst <= 1


def test_float32_layers_are_refused():
    with pytest.raises(TypeError, match="float64"):
        check_gradients(Dense(3, 2), X)


def test_a_loss_needs_a_target_and_other_objects_are_refused():
    with pytest.raises(ValueError, match="needs a target"):
        check_gradients(MSE(), X)
    with pytest.raises(TypeError, match="Layer or a Loss"):
        check_gradients(np.tanh, X)


def test_custom_loss_and_layer_subclasses_work():
    class Quartic(Loss):
        def forward(self, pred, target):
            self.diff = pred - target
            return float(np.mean(self.diff**4))

        def backward(self):
            return 4 * self.diff**3 / self.diff.size

    class Cube(Layer):
        def __init__(self):
            super().__init__()
            self.k = Parameter(np.array([0.7]))

        def forward(self, x):
            self.x = x
            return self.k.value * x**3

        def backward(self, grad_output):
            self.k.grad[:] = np.sum(grad_output * self.x**3)
            return grad_output * 3 * self.k.value * self.x**2

    check_gradients(Quartic(), X, np.ones_like(X))
    check_gradients(Cube(), X)


@given(batches(3, min_batch=2, max_batch=5))
def test_batches_have_the_promised_shape_and_values(x):
    assert x.dtype == np.float64 and x.ndim == 2
    assert 2 <= x.shape[0] <= 5 and x.shape[1] == 3
    assert np.all(np.abs(x) >= 0.05) and np.all(np.abs(x) <= 3.0)


@given(floats_away_from_zero(0.5, 1.0))
def test_floats_away_from_zero(v):
    assert 0.5 <= abs(v) <= 1.0


@given(sequential_stacks(min_layers=2, max_layers=4, max_width=5, activations=(ReLU,)))
def test_sequential_stacks_are_valid_float64_models(model):
    dense = [layer for layer in model if isinstance(layer, Dense)]
    assert 2 <= len(dense) <= 4
    assert all(layer.weight.dtype == np.float64 for layer in dense)
    assert all(isinstance(layer, (Dense, ReLU)) for layer in model)
    assert model(np.ones((2, model.in_features))).shape == (2, model.out_features)


def test_batches_for_needs_a_known_width():
    assert batches_for(Dense(3, 2)) is not None
    with pytest.raises(ValueError, match="in_features"):
        batches_for(Tanh())


def test_batches_include_a_batch_of_one():
    from hypothesis import find

    assert find(batches(3), lambda x: x.shape[0] == 1).shape == (1, 3)


# -- arguments are checked -----------------------------------------------------------------------


def test_a_class_instead_of_an_instance_says_so():
    with pytest.raises(TypeError, match=r"got the class Tanh; pass Tanh\(\.\.\.\)"):
        check_gradients(Tanh, np.ones((1, 2)))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eps": 0.0}, ValueError, "eps must be a finite number > 0"),
        ({"eps": "1e-6"}, TypeError, "eps must be a real number"),
        ({"atol": -1.0}, ValueError, "atol must be a finite number >= 0"),
        ({"rtol": np.nan}, ValueError, "rtol must be a finite number >= 0"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
    ],
)
def test_tolerances_and_seed_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        check_gradients(Tanh(), np.ones((1, 2)), **kwargs)


def test_the_input_must_be_real_numbers():
    with pytest.raises(TypeError, match=r"check_gradients x .*got dtype complex128"):
        check_gradients(Tanh(), np.ones((1, 2), complex))


def test_numerical_gradient_refuses_an_integer_array_it_could_not_perturb():
    # x + 1e-6 written into an integer array is x again: the estimate would be 0
    x = np.array([1, 2])
    with pytest.raises(TypeError, match="x must be a floating-point NumPy array, got int64"):
        numerical_gradient(lambda: float((x**3).sum()), x)
    with pytest.raises(TypeError, match="needs a function"):
        numerical_gradient(3.0, np.ones(2))


def test_float32_buffers_are_refused_like_float32_parameters():
    with pytest.raises(TypeError, match="float64 parameters and buffers, but 'mean' is float32"):
        check_gradients(Normalization(2), np.ones((1, 2)))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: batches(True), TypeError, r"features must be an integer, got True \(bool\)"),
        (lambda: batches(3, min_batch=4, max_batch=2), ValueError, "max_batch must be >= 4"),
        (lambda: floats_away_from_zero(-1.0), ValueError, "min_magnitude must be"),
        (
            lambda: given(sequential_stacks(max_width="6"))(lambda model: None)(),
            TypeError,
            "max_width must be an integer",
        ),
    ],
)
def test_strategies_check_their_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- a check that cannot pass a wrong gradient, and arguments that cannot mislead it -------------


class CubeOfReLUWithWrongFactor(Layer):
    """y = max(x, 0)^3, whose backward says 2 max(x, 0)^2 instead of 3 max(x, 0)^2."""

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0) ** 3

    def backward(self, grad_output):
        return 2 * np.maximum(self.x, 0) ** 2 * grad_output


def test_zero_absolute_tolerance_still_fails_a_wrong_gradient():
    # At x = -1 both gradients are 0, so the tolerance there is 0 and the ratio was 0 / 0:
    # NaN, which argmax picked as the worst entry and which is never > 1
    x = np.array([[-1.0, 2.0, 3.0]])
    with pytest.raises(GradientCheckError, match=r"gradient of 'input' at \(0, [12]\)"):
        check_gradients(CubeOfReLUWithWrongFactor(), x, atol=0.0)


def test_zero_tolerance_entries_pass_only_when_both_gradients_are_equal():
    class CubeOfReLU(CubeOfReLUWithWrongFactor):
        def backward(self, grad_output):
            return 3 * np.maximum(self.x, 0) ** 2 * grad_output

    report = check_gradients(CubeOfReLU(), np.array([[-1.0, 2.0, 3.0]]), atol=0.0)
    assert 0 < report.errors["input"] <= 1
    assert check_gradients(MSE(), np.zeros((1, 2)), np.zeros((1, 2)), atol=0.0).worst == 0.0


def test_numerical_gradient_refuses_a_read_only_array():
    x = np.ones(2)
    x.flags.writeable = False
    with pytest.raises(ValueError, match=r"x must be writeable, got a read-only array"):
        numerical_gradient(lambda: float(x.sum()), x)


@pytest.mark.parametrize(
    ("dtype", "eps", "shown"),
    [(np.float16, 1e-6, "1"), (np.float32, 1e-9, "1"), (np.float64, 1e-320, "1")],
    ids=["float16", "float32", "denormal eps"],
)
def test_numerical_gradient_refuses_a_step_that_rounds_away(dtype, eps, shown):
    # x + eps rounded to x's dtype is x again: the estimate was silently all zeros
    x = np.ones(2, dtype=dtype)
    with pytest.raises(
        ValueError, match=rf"eps={eps!r} does not change x\[0\] = {shown} in {np.dtype(dtype)}"
    ):
        numerical_gradient(lambda: float((x.astype(np.float64) ** 2).sum()), x, eps)
    np.testing.assert_array_equal(x, 1.0)  # restored


def test_numerical_gradient_of_float32_uses_the_step_actually_taken():
    x = np.array([3.0], dtype=np.float32)
    # eps = 1e-3 is rounded in float32; the quotient divides by the step that was taken
    grad = numerical_gradient(lambda: float(x.astype(np.float64)[0] * 7.0), x, 1e-3)
    assert grad[0] == pytest.approx(7.0, rel=1e-12)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (np.ones(2), r"got an array of shape \(2,\) \(ndarray\)"),
        ("0.5", r"got '0\.5' \(str\)"),
        (None, r"got None \(NoneType\)"),
    ],
    ids=["array", "string", "None"],
)
def test_numerical_gradient_needs_f_to_return_one_real_number(returned, message):
    with pytest.raises(TypeError, match=r"f\(\) must return a real number .*" + message):
        numerical_gradient(lambda: returned, np.ones(2))


def test_numerical_gradient_takes_numpy_scalars_and_zero_dimensional_arrays():
    x = np.array([2.0])
    assert numerical_gradient(lambda: np.float32(x[0]), x, 1e-3)[0] == pytest.approx(1.0, 1e-4)
    assert numerical_gradient(lambda: np.array(x[0] ** 2), x)[0] == pytest.approx(4.0)


def test_an_empty_input_is_named_not_called_non_contiguous():
    assert numerical_gradient(lambda: 0.0, np.ones((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"at least one input value, got x of shape \(0, 3\)"):
        check_gradients(Tanh(), np.ones((0, 3)))


def test_a_strided_view_is_named_with_the_fix():
    x = np.ones((3, 4))[:, :2]
    with pytest.raises(ValueError, match=r"strided view of shape \(3, 2\).*ascontiguousarray"):
        numerical_gradient(lambda: float(x.sum()), x)


def test_a_step_too_large_to_measure_a_derivative_is_refused():
    with pytest.raises(ValueError, match=r"eps must be <= 1, got 1e\+308: .*secant"):
        check_gradients(Tanh(), np.ones((1, 2)), eps=1e308)
    with pytest.raises(ValueError, match=r"eps=1e-320 does not change x\[0, 0\] = 1 in float64"):
        check_gradients(Tanh(), np.ones((1, 2)), eps=1e-320)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: sequential_stacks(activations="abc"),
            TypeError,
            r"activations must be a list or tuple of Activation classes .*got 'abc' \(str\)",
        ),
        (
            lambda: sequential_stacks(activations=[Dense]),
            TypeError,
            r"activations\[0\] must be an Activation class .*Dense does not keep its input's",
        ),
        (
            lambda: sequential_stacks(activations=[Tanh()]),
            TypeError,
            r"activations\[0\] .*got Tanh\(\): pass the class Tanh, not an instance",
        ),
        (
            lambda: batches(3, elements=3.0),
            TypeError,
            r"elements must be a hypothesis strategy of floats .*got 3\.0 \(float\)",
        ),
        (
            lambda: batches(10**12),
            MemoryError,
            r"batches\(1000000000000, max_batch=8\) is too large: a batch would hold 8e\+12",
        ),
        (
            lambda: sequential_stacks(max_width=10**7),
            MemoryError,
            r"sequential_stacks\(max_width=10000000\) is too large: a Dense weight would hold",
        ),
    ],
    ids=["string", "layer class", "instance", "elements", "huge batch", "huge width"],
)
def test_strategies_refuse_bad_arguments_when_built_not_when_drawn(make, error, message):
    with pytest.raises(error, match=message):
        make()  # no draw: the strategy itself is refused


def test_an_activation_that_needs_arguments_is_refused_when_the_strategy_is_built():
    from minigrad import Activation

    class Scaled(Activation):
        def __init__(self, factor):
            super().__init__()

    with pytest.raises(TypeError, match=r"activations\[0\]: Scaled\(\) must build without"):
        sequential_stacks(activations=(Scaled,))


def test_integer_inputs_are_indices_whose_gradient_is_not_checked():
    model = Sequential(Dense(2, 3, rng=0, dtype=np.float64), Tanh())
    # a Dense takes integers as numbers; as indices its input gradient is left unchecked
    assert set(check_gradients(model, np.array([[1, 2], [0, 3]])).errors) == {
        "0.weight",
        "0.bias",
    }
    assert "input" in check_gradients(model, np.array([[1.0, 2.0], [0.0, 3.0]])).errors
    with pytest.raises(ValueError, match=r"integer x as indices.*Tanh has no parameters: nothing"):
        check_gradients(Tanh(), np.array([[1, 2]]))
    # a Loss's prediction is converted, as before
    check_gradients(MSE(), np.array([[1, 2]]), np.zeros((1, 2)))


class SquarePlusNoise(Layer):
    """y = x^2 + z, with z ~ N(0, 1) drawn afresh at every forward pass from its generator."""

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def forward(self, x):
        self.x = x
        return x * x + self.rng.normal(size=x.shape)

    def backward(self, grad_output):
        return 2 * grad_output * self.x


def test_every_forward_pass_of_a_check_draws_the_same_random_numbers():
    layer = SquarePlusNoise()
    before = layer.rng.bit_generator.state
    check_gradients(layer, X)  # fresh noise at each pass would swamp the finite differences
    assert layer.rng.bit_generator.state == before  # left where it was


# -- image batches and convolutional networks ------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(image_batches(st.integers(1, 3), st.integers(1, 5), min_batch=1, max_batch=3))
def test_image_batches_are_square_float64_images_away_from_zero(x):
    assert x.dtype == np.float64 and x.ndim == 4
    assert 1 <= x.shape[0] <= 3 and 1 <= x.shape[1] <= 3 and x.shape[2] == x.shape[3] <= 5
    assert (np.abs(x) >= 0.05).all()


@settings(max_examples=10, deadline=None)
@given(image_batches(2, 3, 7, max_batch=2, distinct=True))
def test_image_batches_take_fixed_sizes_and_distinct_entries(x):
    assert x.shape[1:] == (2, 3, 7)
    assert len(np.unique(x)) == x.size


@pytest.mark.parametrize("dropout", [False, True])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_stacks_are_valid_networks_with_correct_gradients(dropout, data):
    from minigrad import Conv2d, Dropout, Flatten

    model, input_shape = data.draw(conv_stacks(max_blocks=3, dropout=dropout))
    kinds = [type(layer) for layer in model]
    assert kinds[0] is Conv2d and Flatten in kinds and isinstance(model[-1], Dense)
    assert dropout or Dropout not in kinds
    assert all(p.dtype == np.float64 for p in model.parameters())
    x = data.draw(image_batches(*input_shape, max_batch=2, distinct=True))
    y = model(x)
    assert y.shape == (len(x), model[-1].out_features)
    check_gradients(model, x)  # training mode: batch statistics, dropout with a fixed mask


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_conv_stacks_without_a_head_give_images(data):
    model, input_shape = data.draw(
        conv_stacks(head=False, batch_norm=False, pooling=False, residual=False)
    )
    x = data.draw(image_batches(*input_shape, max_batch=2))
    assert model(x).ndim == 4
    assert {type(layer).__name__ for layer in model} <= {
        "Conv2d",
        *(cls.__name__ for cls in DEFAULT_ACTIVATIONS),
    }


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: image_batches("3", 4), TypeError, r"channels must be an integer"),
        (lambda: image_batches(3, 0), ValueError, r"height must be >= 1"),
        (lambda: image_batches(3, 4, True), TypeError, r"width must be an integer, got True"),
        (lambda: image_batches(3, 4, elements=1.0), TypeError, r"elements must be a hypothesis"),
        (
            lambda: image_batches(10**6, 10**6, 10**6),
            MemoryError,
            r"image_batches\(1000000, 1000000, 1000000\) with max_batch=4 is too large",
        ),
        (lambda: conv_stacks(max_blocks=0), ValueError, r"max_blocks must be in \[1, 8\], got 0"),
        (
            lambda: conv_stacks(min_size=5, max_size=4),
            ValueError,
            r"max_size must be in \[5, 256\], got 4",
        ),
        (lambda: conv_stacks(dropout="False"), TypeError, r"dropout must be True or False"),
        (lambda: conv_stacks(activations=[ReLU()]), TypeError, r"pass the class ReLU"),
    ],
)
def test_image_strategies_refuse_bad_arguments_when_built(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_batch_norm_whose_channel_ties_does_not_land_on_a_relu_kink():
    """A found case: one sample whose two values tie after the convolutions, so BatchNorm
    outputs its shift; at 0 the ReLU's kink broke the finite differences."""
    from hypothesis import find

    model, _ = find(
        conv_stacks(max_blocks=1, pooling=False, residual=False, head=False),
        lambda case: any(type(layer).__name__ == "BatchNorm2d" for layer in case[0]),
    )
    norm = next(layer for layer in model if type(layer).__name__ == "BatchNorm2d")
    assert (np.abs(norm.bias.value) >= 0.2).all() and (norm.weight.value >= 0.5).all()
