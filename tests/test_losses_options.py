"""The losses' options and reductions: finite-difference gradients, the laws tying the
reductions together, dtypes, extreme inputs, argument checks, reprs and use in fit.

(tests/test_losses_torch.py compares every loss and option with PyTorch.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import (
    MSE,
    BinaryCrossEntropy,
    CrossEntropy,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MultiMarginLoss,
    NLLLoss,
    ShapeError,
    SmoothL1Loss,
)
from minigrad.testing import check_gradients

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
moderate = st.floats(-5.0, 5.0)
WEIGHT3 = np.array([0.5, 2.0, 1.5])

# -- one fixed case per loss and option set: (factory taking reduction, pred, target, divisor)

Z = np.array([[1.0, -0.5, 2.0], [0.0, 0.3, -1.0], [2.0, 2.5, 0.1], [-1.0, 0.2, 0.4]])
LABELS = np.array([2, 0, 1, 1])
ROWS = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
P = np.array([[0.2, 0.7, 0.5], [0.9, 0.4, 0.3], [0.5, 0.05, 0.6], [0.1, 0.8, 0.99]])
T01 = np.array([[0.0, 1.0, 1.0], [1.0, 0.3, 0.0], [0.5, 0.0, 1.0], [1.0, 1.0, 0.2]])
LOG_Q = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
D = np.array([[0.5, -1.7, 2.0], [0.25, 3.0, -0.1], [1.2, -0.3, 0.0], [4.0, -2.5, 0.7]])

CASES = {
    "mse": (lambda r: MSE(reduction=r), D, np.zeros_like(D) + 0.05, D.size),
    "l1": (lambda r: L1Loss(reduction=r), D, np.zeros_like(D) + 0.05, D.size),
    "huber": (lambda r: HuberLoss(1.5, reduction=r), D, np.zeros_like(D) + 0.05, D.size),
    "smooth_l1": (lambda r: SmoothL1Loss(0.7, reduction=r), D, np.zeros_like(D) + 0.05, D.size),
    "bce_weight": (
        lambda r: BinaryCrossEntropy(weight=WEIGHT3, reduction=r),
        P,
        T01,
        P.size,
    ),
    "bce_logits_weights": (
        lambda r: BinaryCrossEntropy(
            from_logits=True, weight=WEIGHT3, pos_weight=[3.0, 0.5, 1.0], reduction=r
        ),
        Z,
        T01,
        Z.size,
    ),
    "ce_weight": (
        lambda r: CrossEntropy(WEIGHT3, reduction=r),
        Z,
        LABELS,
        WEIGHT3[LABELS].sum(),
    ),
    "ce_ignore_smooth": (
        lambda r: CrossEntropy(WEIGHT3, ignore_index=1, reduction=r, label_smoothing=0.2),
        Z,
        LABELS,
        WEIGHT3[[2, 0]].sum(),
    ),
    "ce_rows_weight_smooth": (
        lambda r: CrossEntropy(WEIGHT3, reduction=r, label_smoothing=0.3),
        Z,
        ROWS,
        len(Z),
    ),
    "nll": (
        lambda r: NLLLoss(WEIGHT3, ignore_index=0, reduction=r),
        LOG_Q,
        LABELS,
        WEIGHT3[[2, 1, 1]].sum(),
    ),
    "kl_div": (lambda r: KLDivLoss(reduction=r), LOG_Q, ROWS, Z.size),
    "kl_div_log_target": (
        lambda r: KLDivLoss(reduction=r, log_target=True),
        LOG_Q,
        np.log(ROWS + 0.1),
        Z.size,
    ),
    "multi_margin": (lambda r: MultiMarginLoss(reduction=r), 1.3 * Z, LABELS, len(Z)),
    "multi_margin_squared": (
        lambda r: MultiMarginLoss(2, 0.8, WEIGHT3, reduction=r),
        1.3 * Z,  # no hinge exactly at its kink
        LABELS,
        len(Z),
    ),
}


# -- 1. gradients by finite differences ----------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", CASES)
def test_fixed_cases_pass_the_finite_difference_check(name, reduction):
    make, pred, target, _ = CASES[name]
    report = check_gradients(make(reduction), pred.copy(), target)
    assert report.errors["pred"] <= 1


class Weighted(mg.Loss):
    """sum(u * loss(pred, target)) for a loss with reduction="none": the law that
    backward(u) must follow, in a form check_gradients takes."""

    def __init__(self, inner, upstream):
        self.inner, self.upstream = inner, upstream

    def forward(self, pred, target):
        return float(np.sum(self.upstream * self.inner(pred, target)))

    def backward(self):
        return self.inner.backward(self.upstream)


@pytest.mark.parametrize("name", CASES)
def test_backward_of_none_with_an_upstream_gradient_passes_the_finite_difference_check(name):
    make, pred, target, _ = CASES[name]
    shape = np.shape(make("none")(pred, target))
    upstream = np.random.default_rng(0).normal(size=shape)
    report = check_gradients(Weighted(make("none"), upstream), pred.copy(), target)
    assert report.errors["pred"] <= 1


@st.composite
def regression_cases(draw):
    shape = draw(shapes)
    pred = draw(hnp.arrays(np.float64, shape, elements=moderate))
    target = draw(hnp.arrays(np.float64, shape, elements=moderate))
    parameter = draw(st.floats(0.1, 3.0))
    make = draw(st.sampled_from([L1Loss, HuberLoss, SmoothL1Loss]))
    loss = make() if make is L1Loss else make(parameter)
    diff = np.abs(pred - target)
    # away from the kinks at 0 and at delta (beta), where the difference quotient is not l'
    assume(np.all(diff > 1e-3) and np.all(np.abs(diff - parameter) > 1e-3))
    return loss, pred, target


@given(regression_cases(), st.sampled_from(["mean", "sum"]))
def test_regression_losses_pass_the_finite_difference_check(case, reduction):
    loss, pred, target = case
    loss.reduction = reduction
    assert check_gradients(loss, pred, target).errors["pred"] <= 1


@st.composite
def class_cases(draw):
    m, classes = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    z = draw(hnp.arrays(np.float64, (m, classes), elements=moderate))
    labels = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, classes - 1)))
    weight = draw(st.none() | hnp.arrays(np.float64, (classes,), elements=st.floats(0.1, 3.0)))
    return z, labels, weight


@given(class_cases(), st.floats(0.0, 1.0), st.sampled_from(["mean", "sum"]))
def test_cross_entropy_and_nll_pass_the_finite_difference_check(case, smoothing, reduction):
    z, labels, weight = case
    ce = CrossEntropy(weight, reduction=reduction, label_smoothing=smoothing)
    assert check_gradients(ce, z, labels).errors["pred"] <= 1
    assert check_gradients(NLLLoss(weight, reduction=reduction), z, labels).errors["pred"] <= 1


@given(class_cases(), st.sampled_from([1, 2]), st.floats(-1.0, 2.0))
def test_multi_margin_passes_the_finite_difference_check(case, p, margin):
    z, labels, weight = case
    hinge = margin - z[np.arange(len(z)), labels][:, None] + z
    assume(np.all(np.abs(hinge) > 1e-3))  # away from the hinge's kink
    loss = MultiMarginLoss(p, margin, weight)
    assert check_gradients(loss, z, labels).errors["pred"] <= 1


# -- 2. the reductions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_none_sums_to_sum_and_sum_is_mean_times_the_divisor(name):
    make, pred, target, divisor = CASES[name]
    per = make("none")(pred, target)
    total = make("sum")(pred, target)
    mean = make("mean")(pred, target)
    assert isinstance(per, np.ndarray) and per.dtype == np.float64
    assert type(total) is float and type(mean) is float
    assert per.sum() == pytest.approx(total, rel=1e-14)
    assert total == pytest.approx(mean * divisor, rel=1e-14)


@pytest.mark.parametrize("name", CASES)
def test_gradients_of_the_reductions_agree(name):
    make, pred, target, divisor = CASES[name]
    grads = {}
    for reduction in ("mean", "sum", "none"):
        loss = make(reduction)
        loss(pred, target)
        grads[reduction] = loss.backward()
    # backward with "none" and no grad_output is the gradient of the sum
    np.testing.assert_allclose(grads["none"], grads["sum"], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grads["mean"] * divisor, grads["sum"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "ce_ignore_smooth", "kl_div", "multi_margin"])
def test_a_scalar_grad_output_scales_the_gradient(name, reduction):
    make, pred, target, _ = CASES[name]
    loss = make(reduction)
    loss(pred, target)
    plain = loss.backward()
    for g in (2.5, np.float32(-0.5), np.array(3.0)):
        np.testing.assert_allclose(loss.backward(g), float(g) * plain, rtol=1e-15)


@given(class_cases(), st.sampled_from(["mean", "sum", "none"]))
def test_regression_losses_with_class_shaped_inputs_keep_the_laws(case, reduction):
    z, _, _ = case
    target = np.zeros_like(z)
    for loss in (MSE(reduction=reduction), L1Loss(reduction=reduction), HuberLoss(0.5)):
        value = loss(z, target)
        assert np.all(np.asarray(value) >= 0)


# -- 3. non-negative losses ---------------------------------------------------------------------


@given(class_cases(), st.floats(0.0, 1.0), st.sampled_from([-100, 0]))
def test_cross_entropy_per_row_losses_are_non_negative(case, smoothing, ignore_index):
    z, labels, weight = case
    per = CrossEntropy(
        weight, ignore_index=ignore_index, reduction="none", label_smoothing=smoothing
    )(z, labels)
    assert per.shape == labels.shape
    assert np.all(per >= 0)
    assert np.all(per[labels == ignore_index] == 0)


@given(class_cases(), st.sampled_from([1, 2]), st.floats(-1.0, 2.0))
def test_multi_margin_per_row_losses_are_non_negative(case, p, margin):
    z, labels, weight = case
    assert np.all(MultiMarginLoss(p, margin, weight, reduction="none")(z, labels) >= 0)


@given(class_cases())
def test_nll_of_log_probabilities_and_kl_of_distributions_are_non_negative(case):
    z, labels, weight = case
    log_q = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert NLLLoss(weight)(log_q, labels) >= 0
    p = np.exp(z[::-1] if len(z) > 1 else z * 0.5)
    p /= p.sum(axis=1, keepdims=True)
    # KL(p || q) >= 0 per row (Gibbs), though single elements may be negative
    rows = KLDivLoss(reduction="none")(log_q, p).sum(axis=1)
    assert np.all(rows >= -1e-12)
    assert KLDivLoss()(np.log(p), p) == pytest.approx(0.0, abs=1e-15)


# -- 4. dtypes: float32 in, float32 gradient out --------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", CASES)
def test_float32_predictions_give_float32_gradients_close_to_float64(name, reduction):
    make, pred, target, _ = CASES[name]
    loss, reference = make(reduction), make(reduction)
    value = loss(pred.astype(np.float32), target)
    grad = loss.backward(None if reduction == "mean" else np.ones(np.shape(value), np.float32))
    expected = reference(pred, target)
    assert grad.dtype == np.float32 and grad.shape == pred.shape
    assert np.asarray(value).dtype == np.float64
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, reference.backward(), rtol=1e-5, atol=1e-6)


# -- 5. extreme inputs: finite where the math is, and never a warning (warnings are errors) -------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, 3e38])
def test_class_losses_at_extreme_scores_are_finite_and_silent(dtype, scale):
    z = np.array([[scale, -scale, 0.0], [-scale, scale, -scale]], dtype=dtype)
    labels = np.array([1, 2])
    for loss in (
        CrossEntropy(WEIGHT3, label_smoothing=0.1),
        CrossEntropy(WEIGHT3, ignore_index=2),
        NLLLoss(WEIGHT3),
        MultiMarginLoss(1, 1.0, WEIGHT3),
        # squared hinges of 6e38 have gradients beyond float32: inf there, as in PyTorch
        MultiMarginLoss(2, 1.0, WEIGHT3) if scale == 1e4 else MSE(),
    ):
        if isinstance(loss, MSE):
            continue
        for reduction in ("mean", "sum", "none"):
            loss.reduction = reduction
            value = loss(z, labels)
            grad = loss.backward()
            assert np.all(np.isfinite(value)), loss
            assert grad.dtype == dtype and np.all(np.isfinite(grad)), loss


def test_cross_entropy_with_smoothing_of_a_confident_right_answer():
    # smoothing charges eps/C of each wrong class's -log p: here 2e4 each
    z = np.array([[1e4, -1e4, -1e4]])
    value = CrossEntropy(label_smoothing=0.3)(z, np.array([0]))
    assert value == pytest.approx(0.1 * 2e4 * 2, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_weights_at_exact_zero_and_one_and_extreme_logits(dtype):
    p = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    loss = BinaryCrossEntropy(weight=[2.0, 0.5], reduction="none")
    per = loss(p, t)
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(loss.backward()))
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype)
    loss = BinaryCrossEntropy(from_logits=True, weight=[2.0, 0.5], pos_weight=[3.0, 0.0])
    value = loss(z, np.array([[1.0, 0.0], [1.0, 1.0]]))
    # 0 + 0 + 2 * 3 * 1e4 + 0.5 * 0 * 1e4, over 4 elements
    assert value == pytest.approx(6e4 / 4, rel=1e-6)
    grad = loss.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, [[0.0, 0.0], [-6 / 4, 0.0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_losses_at_extremes_are_silent(dtype):
    big = 1e38 if dtype == np.float32 else 1e300  # differences of 2 big fit the dtype
    pred = np.array([[big, -big, 1e4, 0.0]], dtype=dtype)
    target = np.array([[-big, big, -1e4, 0.0]], dtype=dtype)
    for loss in (L1Loss(), HuberLoss(), SmoothL1Loss(), SmoothL1Loss(0.0), HuberLoss(1e-300)):
        value = loss(pred, target)
        grad = loss.backward()
        assert math.isfinite(value) and value > 0, loss
        assert grad.dtype == dtype and np.all(np.isfinite(grad)), loss
        assert np.all(np.abs(grad) <= 0.25 * (1 + 1e-6)), loss  # slopes of at most 1, over 4
    assert L1Loss()(pred, target) == pytest.approx((4 * big + 2e4) / 4, rel=1e-6)


def test_huber_beyond_float64_is_inf_without_a_warning():
    loss = HuberLoss(reduction="none")
    assert loss(np.array([1e308]), np.array([-1e308]))[0] == math.inf
    np.testing.assert_array_equal(loss.backward(), [1.0])


def test_kl_div_leaves_out_targets_of_probability_zero():
    # p = 0 contributes 0 log 0 = 0 even against log q = -inf; PyTorch's log_target=True
    # gives NaN there (exp(-inf) * (-inf - x)), minigrad the limit 0
    x = np.array([[-np.inf, -1e4, 0.0]])
    p = np.array([[0.0, 0.0, 1.0]])
    log_p = np.array([[-np.inf, -np.inf, 0.0]])
    for loss, target in ((KLDivLoss(), p), (KLDivLoss(log_target=True), log_p)):
        assert loss(x, target) == 0.0
        np.testing.assert_array_equal(loss.backward(), [[0.0, 0.0, -1 / 3]])
    # and q = 0 where p > 0 is an infinite divergence
    assert KLDivLoss()(np.array([[-np.inf, 0.0]]), np.array([[0.5, 0.5]])) == math.inf


def test_cross_entropy_leaves_out_smoothing_terms_of_weight_zero():
    # PyTorch gives NaN here: 0 * (-inf) for the class of weight 0 whose log p is -inf
    loss = CrossEntropy([1.0, 0.0], label_smoothing=0.1)
    assert loss(np.array([[1e308, -1e308]]), np.array([0])) == 0.0
    np.testing.assert_array_equal(loss.backward(), [[0.0, 0.0]])


def test_nll_of_an_impossible_label_is_infinite_and_silent():
    loss = NLLLoss()
    assert loss(np.array([[-np.inf, 0.0]]), np.array([0])) == math.inf
    np.testing.assert_array_equal(loss.backward(), [[-1.0, 0.0]])


# -- 6. exact values by hand ----------------------------------------------------------------------


def test_huber_and_smooth_l1_by_hand():
    pred, target = np.array([0.5, -3.0, 2.0]), np.zeros(3)
    huber = HuberLoss(2.0, reduction="none")
    np.testing.assert_allclose(huber(pred, target), [0.125, 2.0 * (3.0 - 1.0), 2.0])
    np.testing.assert_allclose(huber.backward(), [0.5, -2.0, 2.0])
    smooth = SmoothL1Loss(2.0, reduction="none")
    np.testing.assert_allclose(smooth(pred, target), [0.0625, 2.0, 1.0])
    np.testing.assert_allclose(smooth.backward(), [0.25, -1.0, 1.0])
    assert HuberLoss(2.0)(pred, target) == pytest.approx(2.0 * SmoothL1Loss(2.0)(pred, target))


def test_smooth_l1_with_beta_zero_is_l1():
    pred, target = np.array([0.0, 1.5, -2.0]), np.zeros(3)
    smooth, l1 = SmoothL1Loss(0.0), L1Loss()
    assert smooth(pred, target) == l1(pred, target) == pytest.approx(3.5 / 3)
    np.testing.assert_array_equal(smooth.backward(), l1.backward())
    np.testing.assert_array_equal(l1.backward(), [0.0, 1 / 3, -1 / 3])


def test_nll_after_log_softmax_is_cross_entropy():
    log_softmax = mg.LogSoftmax(1)
    nll, ce = NLLLoss(WEIGHT3, ignore_index=1), CrossEntropy(WEIGHT3, ignore_index=1)
    assert nll(log_softmax(Z), LABELS) == pytest.approx(ce(Z, LABELS), rel=1e-14)
    np.testing.assert_allclose(log_softmax.backward(nll.backward()), ce.backward(), atol=1e-15)


def test_kl_div_batchmean_is_the_mean_kl_and_mean_divides_by_every_element():
    kl = np.sum(ROWS * np.log(np.where(ROWS > 0, ROWS, 1.0)) - ROWS * LOG_Q) / len(Z)
    assert KLDivLoss(reduction="batchmean")(LOG_Q, ROWS) == pytest.approx(kl, rel=1e-14)
    assert KLDivLoss()(LOG_Q, ROWS) == pytest.approx(kl / Z.shape[1], rel=1e-14)


def test_multi_margin_by_hand():
    loss = MultiMarginLoss(2, 1.0, [1.0, 2.0, 3.0], reduction="none")
    # row 0, class 2 (w 3): hinges 1 - 0 + 1 = 2 and 1 - 0 + 0.5 = 1.5 -> 3 (4 + 2.25) / 3
    # row 1, class 0 (w 1): hinges 1 - 5 + 0 < 0, 1 - 5 + 4.5 = 0.5 -> 0.25 / 3
    per = loss(np.array([[1.0, 0.5, 0.0], [5.0, 0.0, 4.5]]), np.array([2, 0]))
    np.testing.assert_allclose(per, [6.25, 0.25 / 3], rtol=1e-15)
    np.testing.assert_allclose(
        loss.backward(), [[4.0, 3.0, -7.0], [-1 / 3, 0.0, 1 / 3]], rtol=1e-15
    )


# -- 7. argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: MSE(reduction="avg"),
            ValueError,
            "MSE reduction must be one of 'mean', 'sum', 'none', got 'avg'",
        ),
        (
            lambda: L1Loss(reduction=None),
            TypeError,
            r"L1Loss reduction must be one of .*got None \(NoneType\)",
        ),
        (lambda: CrossEntropy(reduction="batchmean"), ValueError, "got 'batchmean'"),
        (
            lambda: KLDivLoss(reduction="avg"),
            ValueError,
            "'mean', 'batchmean', 'sum', 'none', got 'avg'",
        ),
        (
            lambda: KLDivLoss(log_target="False"),
            TypeError,
            r"KLDivLoss log_target must be True or False, got 'False' \(str\)",
        ),
        (
            lambda: HuberLoss(delta=0.0),
            ValueError,
            "HuberLoss delta must be a finite number > 0, got 0.0",
        ),
        (
            lambda: HuberLoss(delta=True),
            TypeError,
            r"HuberLoss delta must be a real number, got True \(bool\)",
        ),
        (
            lambda: HuberLoss(delta=math.nan),
            ValueError,
            "delta must be a finite number > 0, got nan",
        ),
        (
            lambda: SmoothL1Loss(beta=-1.0),
            ValueError,
            "SmoothL1Loss beta must be a finite number >= 0, got -1.0",
        ),
        (lambda: SmoothL1Loss(beta=math.inf), ValueError, "got inf"),
        (lambda: SmoothL1Loss(beta="1"), TypeError, r"got '1' \(str\)"),
        (lambda: MultiMarginLoss(p=3), ValueError, r"MultiMarginLoss p must be in \[1, 2\], got 3"),
        (lambda: MultiMarginLoss(p=1.0), TypeError, r"p must be an integer, got 1.0 \(float\)"),
        (
            lambda: MultiMarginLoss(margin=math.inf),
            ValueError,
            "margin must be a finite number, got inf",
        ),
        (
            lambda: MultiMarginLoss(margin=False),
            TypeError,
            r"margin must be a real number, got False",
        ),
        (
            lambda: CrossEntropy(label_smoothing=1.5),
            ValueError,
            r"label_smoothing must be a finite number >= 0 and <= 1, got 1.5",
        ),
        (lambda: CrossEntropy(label_smoothing=math.nan), ValueError, "label_smoothing .*got nan"),
        (
            lambda: CrossEntropy(ignore_index=1.5),
            TypeError,
            r"CrossEntropy ignore_index must be an integer, got 1.5",
        ),
        (
            lambda: NLLLoss(ignore_index=True),
            TypeError,
            r"NLLLoss ignore_index must be an integer, got True \(bool\)",
        ),
        (
            lambda: CrossEntropy([1.0, -1.0]),
            ValueError,
            "CrossEntropy weight must hold finite numbers >= 0, got -1.0",
        ),
        (
            lambda: CrossEntropy([1.0, math.nan]),
            ValueError,
            "weight must hold finite numbers >= 0, got nan",
        ),
        (
            lambda: NLLLoss([[1.0, 2.0]]),
            ValueError,
            r"NLLLoss weight must be a 1-D array \(one weight per class\), got shape \(1, 2\)",
        ),
        (
            lambda: CrossEntropy(["a", "b"]),
            TypeError,
            "weight must be None or an array of numbers >= 0, got dtype <U1",
        ),
        (
            lambda: MultiMarginLoss(weight=True),
            TypeError,
            r"weight must be None or .*got True \(bool\)",
        ),
        (
            lambda: BinaryCrossEntropy(weight=[1.0, math.inf]),
            ValueError,
            "BinaryCrossEntropy weight must hold finite numbers >= 0, got inf",
        ),
        (
            lambda: BinaryCrossEntropy(pos_weight=[2.0]),
            ValueError,
            r"pos_weight needs from_logits=True",
        ),
        (
            lambda: BinaryCrossEntropy(True, pos_weight=-1.0),
            ValueError,
            "pos_weight must hold finite numbers >= 0, got -1.0",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_settings_are_checked_when_assigned_too():
    loss = CrossEntropy()
    with pytest.raises(ValueError, match="CrossEntropy reduction must be one of"):
        loss.reduction = "means"
    with pytest.raises(TypeError, match="CrossEntropy label_smoothing must be a real number"):
        loss.label_smoothing = "0.1"
    assert loss.reduction == "mean" and loss.label_smoothing == 0.0
    huber = HuberLoss()
    with pytest.raises(ValueError, match="delta must be a finite number > 0"):
        huber.delta = -1
    loss.weight = [1, 2]
    assert loss.weight.dtype == np.float64 and not loss.weight.flags.writeable


@pytest.mark.parametrize(
    ("loss", "pred", "target", "error", "message"),
    [
        (
            CrossEntropy([1.0, 2.0]),
            Z,
            LABELS,
            ShapeError,
            "CrossEntropy weight has 2 entries .* pred has 3 classes",
        ),
        (NLLLoss(np.ones(4)), Z, LABELS, ShapeError, "NLLLoss weight has 4 entries"),
        (
            MultiMarginLoss(weight=np.ones(2)),
            Z,
            LABELS,
            ShapeError,
            "MultiMarginLoss weight has 2 entries",
        ),
        (
            BinaryCrossEntropy(weight=np.ones(4)),
            P,
            T01,
            ShapeError,
            r"weight of shape \(4,\) must broadcast to pred's shape \(4, 3\)",
        ),
        (
            BinaryCrossEntropy(True, pos_weight=np.ones((2, 3))),
            Z,
            T01,
            ShapeError,
            "pos_weight of shape",
        ),
        (
            CrossEntropy(ignore_index=0),
            Z,
            ROWS,
            ValueError,
            "ignore_index=0 applies to class-index targets only",
        ),
        (
            CrossEntropy(),
            Z,
            np.array([2, 0, -1, 1]),
            ValueError,
            r"must lie in \[0, 3\) for 3 classes, got -1 at index 2 \(or equal ignore_index=-100\)",
        ),
        (
            NLLLoss(ignore_index=-1),
            Z,
            np.array([2, 0, -100, 1]),
            ValueError,
            r"got -100 at index 2 \(or equal ignore_index=-1\)",
        ),
        (
            MultiMarginLoss(),
            Z,
            np.array([2, 0, 3, 1]),
            ValueError,
            r"MultiMarginLoss class labels must lie in \[0, 3\) for 3 classes, got 3 at index 2$",
        ),
        (
            MultiMarginLoss(),
            Z,
            np.array([2.5, 0, 1, 1]),
            ValueError,
            "MultiMarginLoss class labels must be integers, got 2.5",
        ),
        (
            NLLLoss(),
            Z,
            LABELS[:, None],
            ShapeError,
            r"4 class indices of shape \(4,\), got shape \(4, 1\); use target.ravel\(\)",
        ),
        (NLLLoss(), Z[0], LABELS[:1], ShapeError, "NLLLoss pred expected a 2-D array"),
        (
            KLDivLoss(),
            LOG_Q,
            -ROWS,
            ValueError,
            "KLDivLoss targets must be probabilities >= 0, got -1.0",
        ),
        (KLDivLoss(), LOG_Q, ROWS * np.nan, ValueError, "got NaN"),
        (
            KLDivLoss(log_target=True),
            LOG_Q,
            ROWS + np.inf,
            ValueError,
            "log_target=True takes log-probabilities, got NaN or \\+inf",
        ),
        (KLDivLoss(), LOG_Q, ROWS[:, :2], ShapeError, "KLDivLoss: pred has shape"),
        (HuberLoss(), D, D.T, ShapeError, "looks transposed"),
    ],
)
def test_bad_inputs_are_refused(loss, pred, target, error, message):
    with pytest.raises(error, match=message):
        loss(pred, target)
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before"):
        loss.backward()


def test_pos_weight_is_refused_once_from_logits_is_switched_off():
    loss = BinaryCrossEntropy(True, pos_weight=[2.0])
    loss.from_logits = False
    with pytest.raises(ValueError, match="pos_weight needs from_logits=True"):
        loss(np.array([0.5]), np.array([1.0]))


@pytest.mark.parametrize(
    ("reduction", "grad_output", "error", "message"),
    [
        (
            "mean",
            np.ones(4),
            ShapeError,
            r'must be a number \(the shape of the loss with reduction="mean"\), got shape \(4,\)',
        ),
        ("none", np.ones(3), ShapeError, r"must be an array of shape \(4,\) .*got shape \(3,\)"),
        ("none", 1.0, ShapeError, r"must be an array of shape \(4,\)"),
        (
            "sum",
            "1",
            TypeError,
            "CrossEntropy.backward grad_output must be a numeric array of real numbers",
        ),
    ],
)
def test_a_grad_output_of_the_wrong_shape_or_kind_is_refused(
    reduction, grad_output, error, message
):
    loss = CrossEntropy(reduction=reduction)
    loss(Z, LABELS)
    with pytest.raises(error, match=message):
        loss.backward(grad_output)


@pytest.mark.parametrize(
    "loss_class", [L1Loss, HuberLoss, SmoothL1Loss, KLDivLoss, NLLLoss, MultiMarginLoss]
)
def test_backward_before_any_call_raises(loss_class):
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before the loss was computed"):
        loss_class().backward()


# -- 8. reprs -----------------------------------------------------------------------------------


def test_reprs_show_the_options_that_are_not_the_defaults():
    assert repr(MSE(reduction="sum")) == "MSE(reduction='sum')"
    assert repr(L1Loss()) == "L1Loss()"
    assert repr(HuberLoss()) == "HuberLoss(delta=1.0)"
    assert repr(SmoothL1Loss(0.5, reduction="none")) == "SmoothL1Loss(beta=0.5, reduction='none')"
    assert repr(CrossEntropy([1, 2], ignore_index=0, label_smoothing=0.1)) == (
        "CrossEntropy(weight=[1.0, 2.0], ignore_index=0, label_smoothing=0.1)"
    )
    assert repr(CrossEntropy(np.ones(10))) == "CrossEntropy(weight=<array of shape (10,)>)"
    assert repr(NLLLoss(reduction="sum")) == "NLLLoss(reduction='sum')"
    assert repr(BinaryCrossEntropy(True, pos_weight=2.0)) == (
        "BinaryCrossEntropy(from_logits=True, pos_weight=2.0)"
    )
    assert repr(KLDivLoss("batchmean", log_target=True)) == (
        "KLDivLoss(reduction='batchmean', log_target=True)"
    )
    assert repr(MultiMarginLoss(2, 0.5)) == "MultiMarginLoss(p=2, margin=0.5)"


# -- 9. in fit ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "head", "targets"),
    [
        (HuberLoss(), [], "regression"),
        (SmoothL1Loss(0.5), [], "regression"),
        (L1Loss(), [], "regression"),
        (NLLLoss(), [mg.LogSoftmax(1)], "labels"),
        (MultiMarginLoss(), [], "labels"),
        (CrossEntropy([1.0, 2.0], label_smoothing=0.1), [], "labels"),
        (KLDivLoss(reduction="batchmean"), [mg.LogSoftmax(1)], "rows"),
    ],
    ids=lambda value: repr(value) if isinstance(value, mg.Loss) else "",
)
def test_fit_trains_with_the_new_losses_and_options(loss, head, targets):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    y = {"regression": x[:, :1] * 2 - x[:, 1:], "labels": labels, "rows": np.eye(2)[labels]}[
        targets
    ]
    width = 1 if targets == "regression" else 2
    model = mg.Sequential(mg.Dense(2, width, rng=1), *head)
    history = mg.fit(
        model, loss, mg.SGD(model.parameters(), lr=0.2), x, y, epochs=15, progress=False
    )
    assert history["loss"][-1] < 0.7 * history["loss"][0]
