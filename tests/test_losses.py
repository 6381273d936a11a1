"""Losses: finite-difference gradients, invariants, exact values, extremes, a PyTorch oracle
and error messages for MSE, BinaryCrossEntropy (probabilities and logits) and CrossEntropy.

Every loss returns the batch mean as a Python float, and ``backward()`` returns dL/dpred
(the 1/N of the mean included) with the shape and dtype of ``pred``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import MSE, BinaryCrossEntropy, CrossEntropy, ShapeError, Sigmoid
from minigrad.testing import check_gradients

# -- strategies -----------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
moderate = st.floats(-10.0, 10.0)
probabilities = st.floats(0.02, 0.98)
logits = st.floats(-20.0, 20.0)
# BCE targets: hard 0/1 labels and soft labels anywhere in [0, 1].
targets01 = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@st.composite
def pred_target_pairs(draw, pred_elements, target_elements):
    """(pred, target) float64 arrays of one random shape."""
    shape = draw(shapes)
    pred = draw(hnp.arrays(np.float64, shape, elements=pred_elements))
    target = draw(hnp.arrays(np.float64, shape, elements=target_elements))
    return pred, target


@st.composite
def ce_cases(draw, soft, elements=moderate, max_classes=6):
    """(logits (m, C), target): integer class indices (m,) or probability rows (m, C)."""
    m = draw(st.integers(1, 6))
    classes = draw(st.integers(1, max_classes))
    z = draw(hnp.arrays(np.float64, (m, classes), elements=elements))
    if not soft:
        dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
        labels = draw(hnp.arrays(dtype, (m,), elements=st.integers(0, classes - 1)))
        return z, labels
    weights = draw(
        hnp.arrays(np.float64, (m, classes), elements=st.one_of(st.just(0.0), st.floats(0.05, 1.0)))
    )
    weights[weights.sum(axis=1) == 0, draw(st.integers(0, classes - 1))] = 1.0
    return z, weights / weights.sum(axis=1, keepdims=True)


LOSS_CASES = {
    "mse": (MSE, pred_target_pairs(moderate, moderate)),
    "bce": (BinaryCrossEntropy, pred_target_pairs(probabilities, targets01)),
    "bce_logits": (
        lambda: BinaryCrossEntropy(from_logits=True),
        pred_target_pairs(logits, targets01),
    ),
    "ce_labels": (CrossEntropy, ce_cases(soft=False)),
    "ce_soft": (CrossEntropy, ce_cases(soft=True)),
}
FACTORIES = {name: make for name, (make, _) in LOSS_CASES.items()}

# One fixed, valid (pred, target) pair per case, for deterministic tests.
BCE_TARGETS = np.array([[0.0, 1.0], [1.0, 0.3], [0.5, 0.0]])
CE_LOGITS = np.array([[1.0, -0.5, 2.0], [0.0, 0.3, -1.0], [2.0, 2.0, 0.1]])
FIXED = {
    "mse": (np.array([[0.5, -1.0], [2.0, 0.25], [1.5, 3.0]]), np.array([[0.0, 1.0]] * 3)),
    "bce": (np.array([[0.2, 0.7], [0.9, 0.4], [0.5, 0.05]]), BCE_TARGETS),
    "bce_logits": (np.array([[-2.0, 0.5], [3.0, -0.1], [0.0, 4.0]]), BCE_TARGETS),
    "ce_labels": (CE_LOGITS, np.array([2, 0, 1])),
    "ce_soft": (
        CE_LOGITS,
        np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.25, 0.75]]),
    ),
}


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def naive_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- 1. gradients by finite differences -----------------------------------------------------


@pytest.mark.parametrize("name", LOSS_CASES)
@given(data=st.data())
def test_gradient_matches_finite_differences(name, data):
    make, cases = LOSS_CASES[name]
    pred, target = data.draw(cases)
    report = check_gradients(make(), pred, target)
    assert set(report.errors) == {"pred"}
    assert report.errors["pred"] <= 1


@pytest.mark.parametrize("name", LOSS_CASES)
def test_gradient_matches_finite_differences_for_a_batch_of_one(name):
    pred, target = FIXED[name]
    report = check_gradients(FACTORIES[name](), pred[:1], target[:1])
    assert report.errors["pred"] <= 1


# -- 2. invariants --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_CASES)
@given(data=st.data())
def test_loss_is_a_non_negative_python_float(name, data):
    make, cases = LOSS_CASES[name]
    pred, target = data.draw(cases)
    value = make()(pred, target)
    assert type(value) is float
    assert value >= 0.0


@pytest.mark.parametrize("name", LOSS_CASES)
@given(data=st.data())
def test_backward_has_the_shape_and_dtype_of_pred(name, data):
    make, cases = LOSS_CASES[name]
    pred, target = data.draw(cases)
    loss = make()
    loss(pred, target)
    grad = loss.backward()
    assert grad.shape == pred.shape
    assert grad.dtype == np.float64
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", LOSS_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_keeps_the_pred_dtype_without_upcasting(name, dtype):
    pred, target = FIXED[name]
    loss = FACTORIES[name]()
    value = loss(pred.astype(dtype), target)  # target stays float64 / int64
    grad = loss.backward()
    assert type(value) is float
    assert grad.dtype == dtype
    assert grad.shape == pred.shape
    # the float32 result is the float64 one, rounded
    reference = FACTORIES[name]()
    expected_value = reference(pred, target)
    expected_grad = reference.backward()
    rtol = 1e-5 if dtype == np.float32 else 1e-15
    assert value == pytest.approx(expected_value, rel=rtol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol * 1e-2)


@given(ce_cases(soft=False) | ce_cases(soft=True))
def test_cross_entropy_gradient_rows_sum_to_zero(case):
    z, target = case
    loss = CrossEntropy()
    loss(z, target)
    grad = loss.backward()
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, rtol=0, atol=1e-15)


@given(ce_cases(soft=False))
def test_cross_entropy_labels_equal_one_hot_rows(case):
    z, labels = case
    one_hot = np.eye(z.shape[1])[labels]
    by_label, by_row = CrossEntropy(), CrossEntropy()
    assert by_label(z, labels) == pytest.approx(by_row(z, one_hot), rel=1e-15, abs=1e-300)
    np.testing.assert_allclose(by_label.backward(), by_row.backward(), rtol=1e-15, atol=1e-300)


@given(ce_cases(soft=False) | ce_cases(soft=True), st.floats(-1000.0, 1000.0))
def test_cross_entropy_is_unchanged_by_adding_a_constant_to_each_row(case, shift):
    z, target = case
    plain, shifted = CrossEntropy(), CrossEntropy()
    assert plain(z, target) == pytest.approx(shifted(z + shift, target), rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(plain.backward(), shifted.backward(), rtol=1e-9, atol=1e-11)


@given(pred_target_pairs(st.floats(-8.0, 8.0), targets01))
def test_bce_from_logits_equals_bce_of_sigmoid_probabilities(pair):
    z, t = pair
    s = naive_sigmoid(z)
    on_logits, on_probs = BinaryCrossEntropy(from_logits=True), BinaryCrossEntropy()
    assert on_logits(z, t) == pytest.approx(on_probs(s, t), rel=1e-9, abs=1e-12)
    # chain rule: dL/dz = dL/dp * sigmoid'(z) = dL/dp * s (1 - s)
    chained = on_probs.backward() * s * (1.0 - s)
    np.testing.assert_allclose(on_logits.backward(), chained, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", LOSS_CASES)
def test_forward_and_backward_leave_the_inputs_unchanged(name):
    pred, target = FIXED[name]
    pred_copy, target_copy = pred.copy(), target.copy()
    loss = FACTORIES[name]()
    loss(pred, target)
    loss.backward()
    np.testing.assert_array_equal(pred, pred_copy)
    np.testing.assert_array_equal(target, target_copy)


@pytest.mark.parametrize("name", LOSS_CASES)
def test_backward_is_repeatable_and_returns_a_fresh_array(name):
    pred, target = FIXED[name]
    loss = FACTORIES[name]()
    loss(pred, target)
    first = loss.backward()
    expected = first.copy()
    first[...] = 123.0  # a caller scribbling on the gradient must not corrupt the loss
    np.testing.assert_array_equal(loss.backward(), expected)


@pytest.mark.parametrize("name", LOSS_CASES)
def test_backward_uses_the_most_recent_call(name):
    pred, target = FIXED[name]
    loss, fresh = FACTORIES[name](), FACTORIES[name]()
    loss(pred, target)
    loss(pred[1:], target[1:])
    fresh(pred[1:], target[1:])
    np.testing.assert_array_equal(loss.backward(), fresh.backward())


def test_lists_and_integer_arrays_are_accepted_as_float64():
    loss = MSE()
    assert loss([[1, 2], [3, 4]], [[1, 1], [1, 1]]) == pytest.approx(14 / 4)
    grad = loss.backward()
    assert grad.dtype == np.float64
    np.testing.assert_array_equal(grad, [[0.0, 0.5], [1.0, 1.5]])


# -- 3. exact values ------------------------------------------------------------------------


def test_mse_of_a_small_array_by_hand():
    loss = MSE()
    # differences 1, 0, -2, 0: (1 + 0 + 4 + 0) / 4
    assert loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [5.0, 4.0]])) == 1.25
    np.testing.assert_array_equal(loss.backward(), [[0.5, 0.0], [-1.0, 0.0]])  # 2 d / 4


def test_mse_divides_by_every_element_not_the_batch():
    loss = MSE()
    assert loss(np.ones((2, 3)), np.zeros((2, 3))) == 1.0  # 6 / 6, not 6 / 2
    np.testing.assert_array_equal(loss.backward(), np.full((2, 3), 2.0 / 6))


def test_bce_of_one_half_is_log_two():
    loss = BinaryCrossEntropy()
    assert loss(np.array([[0.5], [0.5]]), np.array([[1.0], [0.0]])) == pytest.approx(
        math.log(2), rel=1e-15
    )
    # (p - t) / (p (1 - p) N) = (±0.5) / (0.25 * 2)
    np.testing.assert_allclose(loss.backward(), [[-1.0], [1.0]], rtol=1e-15)


def test_bce_of_known_probabilities():
    loss = BinaryCrossEntropy()
    value = loss(np.array([0.8, 0.2, 0.6]), np.array([1.0, 0.0, 0.25]))
    expected = -(math.log(0.8) + math.log(0.8) + 0.25 * math.log(0.6) + 0.75 * math.log(0.4)) / 3
    assert value == pytest.approx(expected, rel=1e-14)
    expected_grad = np.array([-0.2 / 0.16, 0.2 / 0.16, 0.35 / 0.24]) / 3
    np.testing.assert_allclose(loss.backward(), expected_grad, rtol=1e-13)


def test_bce_from_logits_at_zero_is_log_two():
    loss = BinaryCrossEntropy(from_logits=True)
    assert loss(np.array([0.0, 0.0]), np.array([1.0, 0.0])) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(loss.backward(), [-0.25, 0.25], rtol=1e-15)  # (0.5 - t) / 2


def test_cross_entropy_of_uniform_logits_is_log_of_class_count():
    loss = CrossEntropy()
    assert loss(np.zeros((1, 3)), np.array([2])) == pytest.approx(math.log(3), rel=1e-15)
    np.testing.assert_allclose(loss.backward(), [[1 / 3, 1 / 3, -2 / 3]], rtol=1e-15)


def test_cross_entropy_of_known_logits():
    # softmax(log [1, 2, 3]) = [1/6, 2/6, 3/6]
    z = np.log(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    loss = CrossEntropy()
    assert loss(z, np.array([2, 0])) == pytest.approx((math.log(2) + math.log(6)) / 2, rel=1e-14)
    p = np.array([1 / 6, 2 / 6, 3 / 6])
    expected = np.array([p - [0, 0, 1], p - [1, 0, 0]]) / 2
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-14, atol=1e-16)


def test_cross_entropy_of_soft_labels_by_hand():
    z = np.log(np.array([[1.0, 2.0, 3.0]]))
    target = np.array([[0.5, 0.5, 0.0]])
    loss = CrossEntropy()
    # -(0.5 log 1/6 + 0.5 log 2/6)
    assert loss(z, target) == pytest.approx(0.5 * (math.log(6) + math.log(3)), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), [[1 / 6 - 0.5, 1 / 3 - 0.5, 0.5]], rtol=1e-14)


def test_cross_entropy_docstring_example():
    loss = CrossEntropy()
    value = loss(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]))
    assert value == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-14)
    q = math.exp(-2.0) / (1 + math.exp(-2.0))  # the wrong class's probability
    np.testing.assert_allclose(loss.backward(), [[-q / 2, q / 2], [q / 2, -q / 2]], rtol=1e-14)


def test_cross_entropy_accepts_integer_valued_float_labels():
    z = FIXED["ce_labels"][0]
    by_int, by_float = CrossEntropy(), CrossEntropy()
    assert by_int(z, np.array([2, 0, 1])) == by_float(z, np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(by_int.backward(), by_float.backward())


@given(pred_target_pairs(moderate, moderate))
def test_mse_matches_its_formula(pair):
    pred, target = pair
    loss = MSE()
    assert loss(pred, target) == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(loss.backward(), 2 * (pred - target) / pred.size, rtol=1e-14)


@given(pred_target_pairs(probabilities, targets01))
def test_bce_matches_its_formula(pair):
    p, t = pair
    loss = BinaryCrossEntropy()
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert loss(p, t) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward(), (p - t) / (p * (1 - p)) / p.size, rtol=1e-12)


@given(pred_target_pairs(st.floats(-30.0, 30.0), targets01))
def test_bce_from_logits_matches_its_formula(pair):
    z, t = pair
    loss = BinaryCrossEntropy(from_logits=True)
    s = naive_sigmoid(z)
    # log(1 + e^z) - t z = -[t log s + (1 - t) log(1 - s)], fine for |z| <= 30
    expected = np.mean(np.log1p(np.exp(z)) - t * z)
    assert loss(z, t) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(loss.backward(), (s - t) / z.size, rtol=1e-10, atol=1e-15)


@given(ce_cases(soft=False) | ce_cases(soft=True))
def test_cross_entropy_matches_its_formula(case):
    z, target = case
    t = np.eye(z.shape[1])[target] if target.ndim == 1 else target
    p = naive_softmax(z)
    loss = CrossEntropy()
    expected = -np.mean(np.sum(t * np.log(p), axis=1))
    assert loss(z, target) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(loss.backward(), (p - t) / z.shape[0], rtol=1e-12, atol=1e-15)


# -- 4. extremes: finite, correct and silent (warnings are errors) --------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, 3e38])
@pytest.mark.parametrize("form", ["labels", "one_hot"])
def test_cross_entropy_confident_and_right_gives_zero_loss(dtype, scale, form):
    z = np.array([[scale, -scale, 0.0], [-scale, scale, -scale]], dtype=dtype)
    labels = np.array([0, 1])
    target = labels if form == "labels" else np.eye(3)[labels]
    loss = CrossEntropy()
    value = loss(z, target)
    grad = loss.backward()
    assert value == 0.0
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, 3e38])
@pytest.mark.parametrize("form", ["labels", "one_hot"])
def test_cross_entropy_confident_and_wrong_gives_a_finite_loss(dtype, scale, form):
    z = np.array([[scale, -scale, 0.0], [scale, -scale, 0.0]], dtype=dtype)
    labels = np.array([1, 2])  # -log p = 2 scale and scale
    target = labels if form == "labels" else np.eye(3)[labels]
    loss = CrossEntropy()
    value = loss(z, target)
    grad = loss.backward()
    assert math.isfinite(value)
    assert value == pytest.approx(1.5 * float(dtype(scale)), rel=1e-6)
    expected = (np.eye(3)[[0, 0]] - np.eye(3)[labels]) / 2
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_equal_logits(dtype):
    loss = CrossEntropy()
    assert loss(np.array([[3e38, 3e38], [-3e38, -3e38]], dtype=dtype), np.array([0, 1])) == (
        pytest.approx(math.log(2), rel=1e-6)
    )
    np.testing.assert_allclose(loss.backward(), [[-0.25, 0.25], [0.25, -0.25]], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_from_logits_at_plus_minus_1000(dtype):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype)
    t = np.array([1.0, 1.0, 0.0, 0.0])
    loss = BinaryCrossEntropy(from_logits=True)
    # per element: ~0, 1000, 1000, ~0
    assert loss(z, t) == pytest.approx(500.0, rel=1e-12)
    grad = loss.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, [0.0, -0.25, 0.25, 0.0], rtol=0, atol=1e-12)


def test_bce_from_logits_single_extremes_by_hand():
    loss = BinaryCrossEntropy(from_logits=True)
    assert loss(np.array([1000.0]), np.array([1.0])) == pytest.approx(0.0, abs=1e-300)
    assert loss.backward()[0] == 0.0
    assert loss(np.array([-1000.0]), np.array([1.0])) == pytest.approx(1000.0, rel=1e-15)
    assert loss.backward()[0] == -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_probabilities_exactly_zero_and_one_is_finite(dtype):
    p = np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0])
    eps = float(np.finfo(dtype).eps)
    loss = BinaryCrossEntropy()
    value = loss(p, t)
    grad = loss.backward()
    # p is clipped to [eps, 1 - eps]: the two wrong answers cost -log(eps) each, the right ~0
    assert math.isfinite(value)
    assert value == pytest.approx(-math.log(eps) / 2, rel=1e-5)
    assert grad.dtype == dtype
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [-1 / eps / 4, 1 / eps / 4, 0.25, -0.25], rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "pred", "target", "value", "grad"),
    [
        # mean of squares 1e38 fits float32, the sum 4e38 does not
        ("mse", np.full((2, 2), 1e19), np.zeros((2, 2)), 1e38, np.full((2, 2), 5e18)),
        # per element 0, 3e38, 3e38, 0: mean 1.5e38 fits float32, the sum does not
        (
            "bce_logits",
            np.array([3e38, -3e38, 3e38, -3e38]),
            np.array([1.0, 1.0, 0.0, 0.0]),
            1.5e38,
            np.array([0.0, -0.25, 0.25, 0.0]),
        ),
        # per row 2e38: mean 2e38 fits float32, the sum 6e38 does not
        (
            "ce_labels",
            np.array([[1e38, -1e38]] * 3),
            np.array([1, 1, 1]),
            2e38,
            np.array([[1.0, -1.0]] * 3) / 3,
        ),
    ],
    ids=["mse", "bce_logits", "ce_labels"],
)
def test_float32_loss_whose_mean_fits_does_not_overflow(name, pred, target, value, grad):
    loss = FACTORIES[name]()
    result = loss(pred.astype(np.float32), target)
    assert math.isfinite(result)
    assert result == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(loss.backward(), grad, rtol=1e-6)


# -- 5. PyTorch oracle ----------------------------------------------------------------------


def torch_value_and_grad(torch, fn, pred, target):
    """fn(pred, target) and d fn / d pred computed by PyTorch autograd, as NumPy."""
    p = torch.tensor(pred, requires_grad=True)
    value = fn(p, torch.as_tensor(target))
    value.backward()
    return value.item(), p.grad.numpy()


def assert_matches_torch(torch, loss, fn, pred, target, rtol=1e-10):
    value = loss(pred, target)
    grad = loss.backward()
    expected_value, expected_grad = torch_value_and_grad(torch, fn, pred, target)
    assert value == pytest.approx(expected_value, rel=rtol, abs=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=1e-15)


ORACLE_SHAPES = [(1,), (1, 1), (7, 3), (2, 3, 4)]


@pytest.mark.parametrize("shape", ORACLE_SHAPES)
def test_mse_matches_torch(torch, shape):
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=shape) * 3, rng.normal(size=shape) * 3
    assert_matches_torch(torch, MSE(), torch.nn.functional.mse_loss, pred, target)


@pytest.mark.parametrize("shape", ORACLE_SHAPES)
def test_bce_matches_torch(torch, shape):
    rng = np.random.default_rng(2)
    pred = rng.uniform(0.01, 0.99, size=shape)
    target = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, shape), rng.random(shape))
    fn = torch.nn.functional.binary_cross_entropy
    assert_matches_torch(torch, BinaryCrossEntropy(), fn, pred, target)


@pytest.mark.parametrize("shape", ORACLE_SHAPES)
def test_bce_from_logits_matches_torch(torch, shape):
    rng = np.random.default_rng(3)
    z = rng.normal(size=shape) * 6
    z.flat[0] = 40.0  # a saturated logit too
    target = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, shape), rng.random(shape))
    fn = torch.nn.functional.binary_cross_entropy_with_logits
    assert_matches_torch(torch, BinaryCrossEntropy(from_logits=True), fn, z, target)


@pytest.mark.parametrize(("m", "classes"), [(1, 1), (1, 4), (8, 5), (16, 10)])
def test_cross_entropy_with_class_indices_matches_torch(torch, m, classes):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(m, classes)) * 4
    labels = rng.integers(0, classes, size=m)
    fn = torch.nn.functional.cross_entropy
    assert_matches_torch(torch, CrossEntropy(), fn, z, labels)


@pytest.mark.parametrize(("m", "classes"), [(1, 1), (1, 4), (8, 5), (16, 10)])
def test_cross_entropy_with_probability_rows_matches_torch(torch, m, classes):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(m, classes)) * 4
    rows = rng.random((m, classes)) * (rng.random((m, classes)) < 0.7)
    rows[:, 0] += 1e-3  # no all-zero row
    rows /= rows.sum(axis=1, keepdims=True)
    fn = torch.nn.functional.cross_entropy
    assert_matches_torch(torch, CrossEntropy(), fn, z, rows)


# -- 6. errors ------------------------------------------------------------------------------


def test_shape_error_is_a_value_error():
    assert issubclass(ShapeError, ValueError)


@pytest.mark.parametrize("name", ["mse", "bce", "bce_logits"])
def test_column_prediction_against_flat_target_is_not_broadcast(name):
    pred, target = np.full((4, 1), 0.5), np.array([0.0, 1.0, 1.0, 0.0])
    expected = re.escape("pred has shape (4, 1) but target has shape (4,)")
    with pytest.raises(ShapeError, match=expected + r".*target\.reshape\(4, 1\)"):
        FACTORIES[name]()(pred, target)
    reverse = re.escape("pred has shape (4,) but target has shape (4, 1)")
    with pytest.raises(ShapeError, match=reverse + r".*target\.reshape\(4,\)"):
        FACTORIES[name]()(target, pred)


@pytest.mark.parametrize("name", ["mse", "bce", "bce_logits"])
def test_mismatched_sizes_raise_shape_error(name):
    message = re.escape("pred has shape (3, 2) but target has shape (3, 3)")
    with pytest.raises(ShapeError, match=message):
        FACTORIES[name]()(np.full((3, 2), 0.5), np.zeros((3, 3)))


def test_mse_rejects_a_non_numeric_target():
    with pytest.raises(TypeError, match="MSE target must be a numeric array"):
        MSE()(np.zeros(2), ["a", "b"])


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.array([0, 3]), ValueError, r"must lie in \[0, 3\) for 3 classes, got 3 at index 1"),
        (np.array([-1, 0]), ValueError, r"must lie in \[0, 3\) for 3 classes, got -1 at index 0"),
        (np.array([0.0, 2.5]), ValueError, r"must be integers, got 2\.5 at index 1"),
        (np.array([np.nan, 1.0]), ValueError, r"must be integers, got nan at index 0"),
        (np.array([np.inf, 1.0]), ValueError, r"must lie in \[0, 3\).*got inf at index 0"),
        (np.array([True, False]), TypeError, r"must be integers, got dtype bool"),
        (np.array(["0", "1"]), TypeError, r"must be integers, got dtype <U1"),
    ],
    ids=["equal-to-C", "negative", "fractional", "nan", "inf", "bool", "strings"],
)
def test_cross_entropy_rejects_bad_class_labels(labels, error, message):
    with pytest.raises(error, match=message):
        CrossEntropy()(np.zeros((2, 3)), labels)


def test_cross_entropy_rejects_a_wrong_label_count():
    with pytest.raises(ShapeError, match="pred has 3 rows but target has 2 labels"):
        CrossEntropy()(np.zeros((3, 4)), np.array([0, 1]))


def test_cross_entropy_label_column_suggests_ravel():
    message = re.escape("got (3, 1); class indices go in shape (batch,): use target.ravel()")
    with pytest.raises(ShapeError, match=message):
        CrossEntropy()(np.zeros((3, 4)), np.array([[0], [1], [2]]))


def test_cross_entropy_rejects_a_target_of_another_shape():
    message = re.escape(
        "class indices of shape (2,) or probability rows of shape (2, 3); got (2, 4)"
    )
    with pytest.raises(ShapeError, match=message):
        CrossEntropy()(np.zeros((2, 3)), np.zeros((2, 4)))


def test_cross_entropy_rejects_probability_rows_not_summing_to_one():
    rows = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.0]])
    with pytest.raises(ValueError, match=r"rows summing to 1; row 1 sums to 0\.5"):
        CrossEntropy()(np.zeros((2, 3)), rows)


def test_cross_entropy_rejects_probability_rows_outside_zero_one():
    rows = np.array([[1.5, -0.5, 0.0]])  # sums to 1, but not probabilities
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got values from -0\.5 to 1\.5"):
        CrossEntropy()(np.zeros((1, 3)), rows)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
def test_cross_entropy_pred_must_be_two_dimensional(shape):
    ndim = len(shape)
    message = re.escape(f"expected a 2-D array, got {ndim}-D with shape {shape}")
    with pytest.raises(ShapeError, match=message):
        CrossEntropy()(np.zeros(shape), np.zeros(shape[0], dtype=int))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize(
    ("target", "low", "high"), [([0.5, 1.5], "0.5", "1.5"), ([-0.5, 1.0], "-0.5", "1.0")]
)
def test_bce_rejects_targets_outside_zero_one(from_logits, target, low, high):
    message = rf"targets must lie in \[0, 1\], got values from {low} to {high}"
    with pytest.raises(ValueError, match=message):
        BinaryCrossEntropy(from_logits=from_logits)(np.array([0.5, 0.5]), np.array(target))


def test_bce_rejects_a_nan_target():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        BinaryCrossEntropy()(np.array([0.5, 0.5]), np.array([np.nan, 1.0]))


@pytest.mark.parametrize(
    ("pred", "low", "high"), [([0.5, 1.2], "0.5", "1.2"), ([-0.1, 0.5], "-0.1", "0.5")]
)
def test_bce_rejects_probabilities_outside_zero_one_and_suggests_logits(pred, low, high):
    message = (
        rf"expects probabilities in \[0, 1\], got values from {low} to {high}; "
        r"for raw scores use BinaryCrossEntropy\(from_logits=True\)"
    )
    with pytest.raises(ValueError, match=message):
        BinaryCrossEntropy()(np.array(pred), np.array([0.0, 1.0]))


def test_bce_from_logits_accepts_scores_outside_zero_one():
    loss = BinaryCrossEntropy(from_logits=True)
    assert loss(np.array([-3.0, 5.0]), np.array([0.0, 1.0])) == pytest.approx(
        (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(-5.0))) / 2, rel=1e-14
    )


@pytest.mark.parametrize(
    ("name", "pred", "target"),
    [
        ("mse", np.zeros((0, 3)), np.zeros((0, 3))),
        ("bce", np.zeros((0, 1)), np.zeros((0, 1))),
        ("bce_logits", np.zeros(0), np.zeros(0)),
        ("ce_labels", np.zeros((0, 3)), np.zeros(0, dtype=int)),
        ("ce_soft", np.zeros((2, 0)), np.zeros((2, 0))),
    ],
)
def test_empty_batch_is_rejected(name, pred, target):
    message = re.escape(f"got an empty batch (pred has shape {pred.shape})")
    with pytest.raises(ValueError, match=message):
        FACTORIES[name]()(pred, target)


@pytest.mark.parametrize("name", ["mse", "bce", "bce_logits", "ce_labels"])
def test_backward_before_any_call_raises(name):
    loss = FACTORIES[name]()
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before the loss was computed"):
        loss.backward()


def test_reprs_name_the_loss_and_its_options():
    assert repr(MSE()) == "MSE()"
    assert repr(CrossEntropy()) == "CrossEntropy()"
    assert repr(BinaryCrossEntropy()) == "BinaryCrossEntropy(from_logits=False)"
    assert repr(BinaryCrossEntropy(from_logits=True)) == "BinaryCrossEntropy(from_logits=True)"


# -- 7. the lesson: BCE after a Sigmoid layer gives dZ = (A - Y) / m -------------------------


@given(
    st.integers(1, 8).flatmap(
        lambda m: st.tuples(
            hnp.arrays(np.float64, (m, 1), elements=st.floats(-6.0, 6.0)),
            hnp.arrays(np.float64, (m, 1), elements=st.sampled_from([0.0, 1.0])),
        )
    )
)
def test_bce_through_sigmoid_gives_the_lessons_dz(case):
    z, y = case
    m = z.shape[0]
    sigmoid_layer, loss = Sigmoid(), BinaryCrossEntropy()
    a = sigmoid_layer(z)
    cost = loss(a, y)
    dz = sigmoid_layer.backward(loss.backward())
    np.testing.assert_allclose(dz, (a - y) / m, rtol=1e-9, atol=1e-15)
    # the lesson's cost J = -(1/m) sum [Y log A + (1 - Y) log(1 - A)]
    assert cost == pytest.approx(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / m, rel=1e-12)
    # and BCE on the logits skips the Sigmoid layer with the same dZ
    on_logits = BinaryCrossEntropy(from_logits=True)
    assert on_logits(z, y) == pytest.approx(cost, rel=1e-9)
    np.testing.assert_allclose(on_logits.backward(), dz, rtol=1e-9, atol=1e-15)


def test_mse_of_differences_beyond_float32_is_finite_and_silent():
    loss = MSE()
    pred, target = np.array([[3e38]], np.float32), np.array([[-3e38]], np.float32)
    np.testing.assert_allclose(loss(pred, target), 3.6e77, rtol=1e-6)
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize(
    ("pred_shape", "target_shape", "hint"),
    [
        ((4, 1), (4,), r"target\.reshape\(4, 1\)"),
        ((4, 1), (1, 4), r"target\.reshape\(4, 1\)"),
        ((2, 3), (3, 2), r"target\.T"),
        ((4, 1), (2, 2), r"exactly \(minigrad never broadcasts a loss\)$"),
    ],
)
def test_mse_shape_hints_only_suggest_safe_fixes(pred_shape, target_shape, hint):
    with pytest.raises(ShapeError, match=hint):
        MSE()(np.zeros(pred_shape), np.zeros(target_shape))


# -- inputs that are not real numbers are refused, not coerced ----------------------------------


def not_real(array, kind):
    """``array`` as complex numbers, numeric strings, or objects holding one None."""
    if kind == "complex":
        return array.astype(np.complex128)
    if kind == "strings":
        return array.astype(str)
    objects = array.astype(object)
    objects.flat[-1] = None
    return objects


KINDS = {"complex": "complex128", "strings": "<U", "object": "object"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FIXED))
def test_a_prediction_that_is_not_real_numbers_is_a_type_error(name, kind):
    pred, target = FIXED[name]
    loss = FACTORIES[name]()
    with pytest.raises(TypeError, match=rf"{type(loss).__name__} pred .*got dtype {KINDS[kind]}"):
        loss(not_real(pred, kind), target)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["mse", "bce", "bce_logits", "ce_soft", "ce_labels"])
def test_a_target_that_is_not_real_numbers_is_a_type_error(name, kind):
    pred, target = FIXED[name]
    loss = FACTORIES[name]()
    what = "class labels must be integers," if name == "ce_labels" else "target must be a numeric"
    with pytest.raises(TypeError, match=rf"{what} .*got dtype {KINDS[kind]}"):
        loss(pred, not_real(target, kind))


@pytest.mark.parametrize("name", ["mse", "bce", "bce_logits", "ce_soft"])
def test_integer_and_boolean_targets_are_converted(name):
    pred, target = FIXED[name]
    hard = (target > 0.5).astype(int) if name != "ce_soft" else np.eye(3, dtype=int)[[2, 0, 1]]
    loss = FACTORIES[name]()
    assert loss(pred, hard) == loss(pred, hard.astype(bool)) == loss(pred, hard.astype(float))


# -- negative labels in every integer dtype -----------------------------------------------------

INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_labels_beyond_the_classes_are_refused_in_every_integer_dtype(dtype):
    from minigrad.losses.classification import _class_indices

    info = np.iinfo(dtype)
    candidates = (2, 3, info.max // 2, info.max, info.max + 1, info.max + 2)
    # a class count is a width of the logits, so at most the largest intp
    for classes in [c for c in candidates if c <= np.iinfo(np.intp).max]:
        labels = np.array([0, info.max], dtype=dtype)
        if info.max >= classes:
            with pytest.raises(ValueError, match=f"got {info.max} at index 1"):
                _class_indices(labels, classes)
        else:
            assert _class_indices(labels, classes).tolist() == [0, int(info.max)]
        if info.min < 0:  # -1 and the most negative value, whatever the number of classes
            for negative in (-1, info.min):
                labels = np.array([1, negative], dtype=dtype)
                with pytest.raises(ValueError, match=f"got {negative} at index 1"):
                    _class_indices(labels, classes)


@pytest.mark.parametrize(("dtype", "classes"), [(np.int8, 300), (np.int16, 70_000)])
def test_a_negative_small_integer_label_with_many_classes_is_refused(dtype, classes):
    # int8 -1 viewed as uint8 is 255 < 300: it used to index the last class
    logits = np.zeros((2, classes), np.float32)
    with pytest.raises(ValueError, match=rf"\[0, {classes}\) .*got -1 at index 1"):
        CrossEntropy()(logits, np.array([3, -1], dtype=dtype))
    assert CrossEntropy()(logits, np.array([3, 127], dtype=dtype)) > 0


# -- flags are checked, not coerced --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"), [("False", r"'False' \(str\)"), (0, r"0 \(int\)"), (None, "None")]
)
def test_from_logits_must_be_a_bool(value, shown):
    with pytest.raises(
        TypeError, match=f"BinaryCrossEntropy from_logits must be True or False, got {shown}"
    ):
        BinaryCrossEntropy(from_logits=value)
    assert BinaryCrossEntropy(from_logits=np.bool_(True)).from_logits is True


# -- a diverged model's NaN predictions ----------------------------------------------------------


def test_bce_gives_a_nan_loss_for_nan_probabilities_like_the_other_losses():
    # a diverging Sigmoid model is reported as diverging (by fit's guard), not as a bad input
    pred = np.array([[0.5], [np.nan]])
    assert math.isnan(BinaryCrossEntropy()(pred, np.array([[1.0], [0.0]])))
    assert math.isnan(MSE()(pred, np.zeros((2, 1))))
    with pytest.raises(ValueError, match=r"got values from 0\.5 to 1\.5"):
        BinaryCrossEntropy()(np.array([[0.5], [np.nan], [1.5]]), np.zeros((3, 1)))


# -- extreme inputs: a value or NaN, never a warning (pytest turns warnings into errors) ----------


def test_cross_entropy_leaves_out_classes_of_zero_weight():
    # the gap to the -1e308 logit overflows float64 to inf; its weight 0 used to make 0 * inf
    loss = CrossEntropy()
    assert loss(np.array([[1e308, -1e308]]), np.array([[1.0, 0.0]])) == 0.0
    np.testing.assert_array_equal(loss.backward(), [[0.0, 0.0]])
    assert loss(np.array([[1e308, -1e308]]), np.array([0])) == 0.0


@pytest.mark.parametrize(
    ("logits", "target"),
    [
        ([[np.inf, 0.0]], [0]),
        ([[np.inf, 0.0]], [[1.0, 0.0]]),
        ([[-np.inf, -np.inf]], [1]),
        ([[np.nan, 0.0]], [0]),
    ],
    ids=["inf labels", "inf soft", "all -inf", "nan"],
)
def test_cross_entropy_of_non_finite_logits_is_nan_as_in_pytorch(logits, target):
    loss = CrossEntropy()
    assert math.isnan(loss(np.array(logits), np.array(target)))
    assert np.isnan(loss.backward()).all()


def test_bce_from_logits_of_an_infinite_logit_is_nan_or_inf_without_a_warning():
    loss = BinaryCrossEntropy(from_logits=True)
    # +inf with target 1: max(z, 0) - z t = inf - inf, NaN as in PyTorch
    assert math.isnan(loss(np.array([[np.inf, 0.0]]), np.array([[1.0, 0.0]])))
    # -inf with target 1: -log sigmoid(-inf) = inf, computed as 0 + inf (PyTorch: NaN)
    assert loss(np.array([[-np.inf, 0.0]]), np.array([[1.0, 0.0]])) == math.inf


def test_mse_beyond_float64_is_inf_without_a_warning():
    loss = MSE()
    assert loss(np.array([[1e308]]), np.array([[-1e308]])) == math.inf
    np.testing.assert_array_equal(loss.backward(), [[math.inf]])


def test_mse_against_a_target_beyond_the_prediction_dtype():
    # the value is exact (the difference is taken in float64); the gradient does not fit
    # float32 and is -inf, as PyTorch's float32 gradient is
    loss = MSE()
    value = loss(np.array([[1.0]], np.float32), np.array([[1e39]]))
    assert value == pytest.approx(1e78, rel=1e-12)
    grad = loss.backward()
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [[-np.inf]])
    assert loss(np.array([[1.0]], np.float32), np.array([[1e300]])) == math.inf


def test_mse_gradient_is_the_float64_gradient_rounded_once():
    pred = np.array([[0.1, 0.7]], np.float32)
    target = np.array([[0.3, -0.2]])
    loss = MSE()
    loss(pred, target)
    expected = (2 * (pred.astype(np.float64) - target) / 2).astype(np.float32)
    np.testing.assert_array_equal(loss.backward(), expected)


# -- a failed call leaves no gradient behind -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("mse", (np.zeros((2, 2)), np.zeros((3, 2)))),
        ("bce", (np.full((2, 2), 0.5), np.full((2, 2), 2.0))),
        ("bce_logits", (np.zeros((2, 2)), "not numbers")),
        ("ce_labels", (CE_LOGITS[:2], np.array([0, 9]))),
        ("ce_soft", (CE_LOGITS, np.full((3, 3), 0.5))),
    ],
)
def test_backward_after_a_failed_call_raises_instead_of_the_previous_gradient(name, bad):
    loss = FACTORIES[name]()
    loss(*FIXED[name])
    with pytest.raises((ValueError, TypeError)):
        loss(*bad)
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before the loss was computed"):
        loss.backward()


# -- flags are checked when assigned, not only in the constructor -------------------------------


def test_from_logits_is_checked_when_assigned():
    loss = BinaryCrossEntropy()
    with pytest.raises(
        TypeError, match=r"BinaryCrossEntropy from_logits must be True or False, got 'False'"
    ):
        loss.from_logits = "False"
    assert loss.from_logits is False  # unchanged
    loss.from_logits = np.bool_(True)
    assert loss.from_logits is True
    assert loss(np.array([[0.0]]), np.array([[1.0]])) == pytest.approx(math.log(2))
