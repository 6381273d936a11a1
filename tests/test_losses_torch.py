"""Every loss and every option against torch.nn.functional as the oracle: values and
gradients in float64, on hypothesis-drawn shapes, options and values (extreme ones
included), for each reduction; with ``reduction="none"`` the gradient of a drawn upstream
gradient, as ``out.backward(gradient)`` in PyTorch.

minigrad's deliberate departures from PyTorch are left out of the draws here and tested in
tests/test_losses_options.py: probabilities are clipped to [eps, 1 - eps] in
BinaryCrossEntropy (PyTorch clamps the log at -100), and terms of weight 0 are left out
(0 log 0 = 0, where PyTorch may give NaN).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import (
    MSE,
    BinaryCrossEntropy,
    CrossEntropy,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MultiMarginLoss,
    NLLLoss,
    SmoothL1Loss,
)

REDUCTIONS = ["mean", "sum", "none"]
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# moderate values, and now and then an extreme one
values = st.one_of(st.floats(-10.0, 10.0), st.sampled_from([-1e4, 1e4, 0.0]))
non_negative = st.one_of(st.just(0.0), st.floats(0.1, 5.0))


@dataclass
class Case:
    """A minigrad loss, the PyTorch call it must match, and its inputs."""

    loss: Any
    torch_fn: Any  # (torch, pred tensor, target tensor, reduction) -> tensor
    pred: np.ndarray
    target: np.ndarray
    reduction: str


def weights_for(draw, shape):
    """None, or non-negative weights of a shape that broadcasts to ``shape``."""
    choice = draw(st.sampled_from(["none", "last", "full", "scalar"]))
    if choice == "none":
        return None
    wshape = {"last": shape[-1:], "full": shape, "scalar": ()}[choice]
    return draw(hnp.arrays(np.float64, wshape, elements=non_negative))


@st.composite
def elementwise_cases(draw):
    shape = draw(shapes)
    pred = draw(hnp.arrays(np.float64, shape, elements=values))
    target = draw(hnp.arrays(np.float64, shape, elements=values))
    reduction = draw(st.sampled_from(REDUCTIONS))
    kind = draw(st.sampled_from(["mse", "l1", "huber", "smooth_l1"]))
    if kind == "mse":
        loss, fn = (
            MSE(reduction=reduction),
            lambda t, p, y, r: t.nn.functional.mse_loss(p, y, reduction=r),
        )
    elif kind == "l1":
        loss, fn = (
            L1Loss(reduction=reduction),
            lambda t, p, y, r: t.nn.functional.l1_loss(p, y, reduction=r),
        )
    elif kind == "huber":
        delta = draw(st.floats(0.01, 20.0))
        loss = HuberLoss(delta, reduction=reduction)

        def fn(t, p, y, r):
            return t.nn.functional.huber_loss(p, y, reduction=r, delta=delta)
    else:
        beta = draw(st.one_of(st.just(0.0), st.floats(0.01, 20.0)))
        loss = SmoothL1Loss(beta, reduction=reduction)

        def fn(t, p, y, r):
            return t.nn.functional.smooth_l1_loss(p, y, reduction=r, beta=beta)

    return Case(loss, fn, pred, target, reduction)


@st.composite
def bce_cases(draw):
    shape = draw(shapes)
    reduction = draw(st.sampled_from(REDUCTIONS))
    target = draw(
        hnp.arrays(
            np.float64, shape, elements=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
        )
    )
    weight = weights_for(draw, shape)
    tw = (lambda t: None) if weight is None else (lambda t: t.as_tensor(weight))
    if draw(st.booleans()):
        pred = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.02, 0.98)))
        loss = BinaryCrossEntropy(weight=weight, reduction=reduction)

        def fn(t, p, y, r):
            return t.nn.functional.binary_cross_entropy(p, y, weight=tw(t), reduction=r)
    else:
        pred = draw(hnp.arrays(np.float64, shape, elements=values))
        pos_weight = weights_for(draw, shape)
        loss = BinaryCrossEntropy(
            from_logits=True, weight=weight, pos_weight=pos_weight, reduction=reduction
        )

        def fn(t, p, y, r):
            pw = None if pos_weight is None else t.as_tensor(pos_weight)
            return t.nn.functional.binary_cross_entropy_with_logits(
                p, y, weight=tw(t), pos_weight=pw, reduction=r
            )

    return Case(loss, fn, pred, target, reduction)


@st.composite
def class_scores(draw, elements=values):
    m, classes = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return draw(hnp.arrays(np.float64, (m, classes), elements=elements))


@st.composite
def cross_entropy_cases(draw):
    z = draw(class_scores())
    m, classes = z.shape
    reduction = draw(st.sampled_from(REDUCTIONS))
    weight = draw(st.none() | hnp.arrays(np.float64, (classes,), elements=non_negative))
    smoothing = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
    if draw(st.booleans()):
        ignore_index = draw(st.sampled_from([-100, -1, 0, classes - 1]))
        choices = [*range(classes), ignore_index]
        target = np.array(draw(st.lists(st.sampled_from(choices), min_size=m, max_size=m)))
    else:
        ignore_index = -100
        rows = draw(hnp.arrays(np.float64, (m, classes), elements=non_negative))
        rows[:, draw(st.integers(0, classes - 1))] += 0.5  # no row of zeros
        target = rows / rows.sum(axis=1, keepdims=True)
    tw = None if weight is None else weight
    loss = CrossEntropy(
        weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing
    )

    def fn(t, p, y, r):
        return t.nn.functional.cross_entropy(
            p,
            y,
            weight=None if tw is None else t.as_tensor(tw),
            ignore_index=ignore_index,
            reduction=r,
            label_smoothing=smoothing,
        )

    return Case(loss, fn, z, target, reduction)


@st.composite
def nll_cases(draw):
    x = draw(class_scores())
    if draw(st.booleans()):  # log-probabilities, as after LogSoftmax
        x = x - np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))
        x -= x.max(axis=1, keepdims=True)
    m, classes = x.shape
    reduction = draw(st.sampled_from(REDUCTIONS))
    weight = draw(st.none() | hnp.arrays(np.float64, (classes,), elements=non_negative))
    ignore_index = draw(st.sampled_from([-100, -1, 0]))
    choices = [*range(classes), ignore_index]
    target = np.array(draw(st.lists(st.sampled_from(choices), min_size=m, max_size=m)))
    loss = NLLLoss(weight, ignore_index=ignore_index, reduction=reduction)

    def fn(t, p, y, r):
        w = None if weight is None else t.as_tensor(weight)
        return t.nn.functional.nll_loss(p, y, weight=w, ignore_index=ignore_index, reduction=r)

    return Case(loss, fn, x, target, reduction)


@st.composite
def kl_cases(draw):
    shape = draw(shapes)
    x = draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(-20, 0), st.just(-1e4))))
    log_target = draw(st.booleans())
    if log_target:
        target = draw(hnp.arrays(np.float64, shape, elements=st.floats(-30.0, 0.0)))
    else:
        target = draw(
            hnp.arrays(np.float64, shape, elements=st.one_of(st.just(0.0), st.floats(0, 1)))
        )
    reduction = draw(st.sampled_from([*REDUCTIONS, "batchmean"]))
    loss = KLDivLoss(reduction=reduction, log_target=log_target)

    def fn(t, p, y, r):
        with warnings.catch_warnings():  # PyTorch warns about "mean"; minigrad does not
            warnings.simplefilter("ignore")
            return t.nn.functional.kl_div(p, y, reduction=r, log_target=log_target)

    return Case(loss, fn, x, target, reduction)


@st.composite
def multi_margin_cases(draw):
    x = draw(class_scores())
    m, classes = x.shape
    labels = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, classes - 1)))
    p = draw(st.sampled_from([1, 2]))
    margin = draw(st.floats(-2.0, 3.0))
    weight = draw(st.none() | hnp.arrays(np.float64, (classes,), elements=non_negative))
    reduction = draw(st.sampled_from(REDUCTIONS))
    loss = MultiMarginLoss(p, margin, weight, reduction=reduction)

    def fn(t, s, y, r):
        w = None if weight is None else t.as_tensor(weight)
        return t.nn.functional.multi_margin_loss(s, y, p=p, margin=margin, weight=w, reduction=r)

    return Case(loss, fn, x, labels, reduction)


ALL_CASES = {
    "elementwise": elementwise_cases(),
    "bce": bce_cases(),
    "cross_entropy": cross_entropy_cases(),
    "nll": nll_cases(),
    "kl_div": kl_cases(),
    "multi_margin": multi_margin_cases(),
}


def torch_reference(torch, case: Case, upstream):
    """PyTorch's loss and its gradient for ``upstream`` (None: 1, the gradient of the sum)."""
    pred = torch.tensor(case.pred, requires_grad=True)
    out = case.torch_fn(torch, pred, torch.as_tensor(case.target), case.reduction)
    gradient = torch.ones_like(out) if upstream is None else torch.as_tensor(upstream)
    out.backward(gradient)
    return out.detach().numpy(), pred.grad.numpy()


def assert_close(actual, expected, rtol=1e-9):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", ALL_CASES)
@given(data=st.data())
def test_value_and_gradient_match_torch(torch, name, data):
    case = data.draw(ALL_CASES[name])
    value = case.loss(case.pred, case.target)
    if case.reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
        upstream = data.draw(st.none() | hnp.arrays(np.float64, value.shape, elements=values))
    else:
        assert type(value) is float
        upstream = data.draw(st.none() | st.floats(-3.0, 3.0))
    grad = case.loss.backward(upstream)
    expected_value, expected_grad = torch_reference(torch, case, upstream)
    assert np.shape(value) == expected_value.shape
    assert_close(value, expected_value)
    assert grad.shape == case.pred.shape and grad.dtype == np.float64
    assert_close(grad, expected_grad)


# -- fixed cases that the draws reach only by luck --------------------------------------------


def test_cross_entropy_with_every_label_ignored_is_nan_with_zero_gradient_as_torch(torch):
    z, labels = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]]), np.array([-100, -100])
    for smoothing in (0.0, 0.3):
        case = Case(
            CrossEntropy(label_smoothing=smoothing),
            lambda t, p, y, r, eps=smoothing: t.nn.functional.cross_entropy(
                p, y, label_smoothing=eps
            ),
            z,
            labels,
            "mean",
        )
        assert math.isnan(case.loss(z, labels))
        np.testing.assert_array_equal(case.loss.backward(), np.zeros_like(z))
        expected_value, expected_grad = torch_reference(torch, case, None)
        assert math.isnan(expected_value)
        np.testing.assert_array_equal(expected_grad, np.zeros_like(z))


@pytest.mark.parametrize("loss_class", [CrossEntropy, NLLLoss])
def test_classes_of_weight_zero_only_give_nan_as_torch(torch, loss_class):
    z, labels, weight = np.array([[0.5, -1.0, 2.0]]), np.array([0]), np.array([0.0, 1.0, 2.0])
    fn = {CrossEntropy: "cross_entropy", NLLLoss: "nll_loss"}[loss_class]
    case = Case(
        loss_class(weight),
        lambda t, p, y, r: getattr(t.nn.functional, fn)(p, y, weight=t.as_tensor(weight)),
        z,
        labels,
        "mean",
    )
    assert math.isnan(case.loss(z, labels))
    grad = case.loss.backward()
    expected_value, expected_grad = torch_reference(torch, case, None)
    assert math.isnan(expected_value)
    assert_close(grad, expected_grad)


@pytest.mark.parametrize("m", [1, 3, 8])
def test_cross_entropy_weighted_mean_divides_by_the_labels_weights(torch, m):
    rng = np.random.default_rng(m)
    z, labels = rng.normal(size=(m, 4)) * 3, rng.integers(0, 4, m)
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    loss = CrossEntropy(weight, label_smoothing=0.2)
    value = loss(z, labels)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    a = 0.8 * weight[labels][:, None] * np.eye(4)[labels] + 0.2 / 4 * weight
    assert value == pytest.approx(-(a * log_p).sum() / weight[labels].sum(), rel=1e-12)
    fn = torch.nn.functional.cross_entropy
    p = torch.tensor(z, requires_grad=True)
    fn(p, torch.as_tensor(labels), weight=torch.as_tensor(weight), label_smoothing=0.2).backward()
    assert_close(loss.backward(), p.grad.numpy())
