"""Metrics: accuracy for multi-class and binary outputs against every target layout,
predicted_classes, the confusion matrix against hand-computed and brute-force counts, its
invariants, PyTorch as an oracle for accuracy, scikit-learn as the oracle for MAE, MSE, R^2,
top-k accuracy, precision, recall and F1, and the errors for inputs that do not fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.metrics import (
    METRICS,
    accuracy,
    confusion_matrix,
    f1,
    mae,
    mse,
    precision,
    predicted_classes,
    r2,
    recall,
    top_k_accuracy,
)

seeds = st.integers(0, 2**32 - 1)

# 5 samples, 3 classes: predicted classes 0, 2, 1, 1, 2
LOGITS = np.array(
    [
        [2.0, 1.0, -1.0],
        [0.1, 0.2, 3.0],
        [-1.0, 4.0, 0.0],
        [0.0, 0.5, 0.4],
        [1.0, 1.5, 2.5],
    ]
)
LABELS = np.array([0, 2, 2, 1, 0])  # right, right, wrong, right, wrong: 3 / 5


def random_case(seed, n, classes):
    """Random logits (n, classes) and integer labels (n,)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, classes)), rng.integers(0, classes, size=n)


# -- accuracy: multi-class ------------------------------------------------------------------


def test_accuracy_multiclass_logits_against_integer_labels():
    assert accuracy(LOGITS, LABELS) == 0.6
    assert accuracy(LOGITS, np.array([0, 2, 1, 1, 2])) == 1.0
    assert accuracy(LOGITS, np.array([1, 0, 0, 0, 0])) == 0.0
    assert isinstance(accuracy(LOGITS, LABELS), float)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_accuracy_accepts_every_integer_dtype_and_column_labels(dtype):
    assert accuracy(LOGITS, LABELS.astype(dtype)) == 0.6
    assert accuracy(LOGITS, LABELS.astype(dtype).reshape(-1, 1)) == 0.6
    assert accuracy(LOGITS, list(LABELS)) == 0.6


def test_accuracy_against_one_hot_rows():
    one_hot = np.eye(3)[LABELS]
    assert accuracy(LOGITS, one_hot) == 0.6
    assert accuracy(LOGITS, one_hot.astype(np.float32)) == 0.6
    # probability rows pick their most likely class
    soft = 0.8 * one_hot + 0.1
    assert accuracy(LOGITS, soft) == 0.6


def test_accuracy_against_float_labels_with_integer_values():
    assert accuracy(LOGITS, LABELS.astype(np.float64)) == 0.6
    assert accuracy(LOGITS, LABELS.astype(np.float32).reshape(-1, 1)) == 0.6


@given(seed=seeds, n=st.integers(1, 60), classes=st.integers(2, 8))
def test_accuracy_is_the_fraction_of_rows_whose_argmax_is_the_label(seed, n, classes):
    pred, labels = random_case(seed, n, classes)
    right = 0
    for row, label in zip(pred, labels, strict=True):
        best = max(range(classes), key=lambda j, row=row: row[j])
        right += best == label
    expected = right / n
    assert accuracy(pred, labels) == expected
    assert accuracy(pred, np.eye(classes)[labels]) == expected
    assert accuracy(pred, labels.astype(np.float64)) == expected


@given(seed=seeds, n=st.integers(1, 60), classes=st.integers(2, 8))
def test_accuracy_matches_torch(torch, seed, n, classes):
    pred, labels = random_case(seed, n, classes)
    pred_t, labels_t = torch.from_numpy(pred), torch.from_numpy(labels)
    expected = (pred_t.argmax(1) == labels_t).float().mean().item()
    assert accuracy(pred, labels) == pytest.approx(expected, rel=1e-6)
    exact = (pred_t.argmax(1) == labels_t).double().mean().item()
    assert accuracy(pred, labels) == exact


# -- accuracy: binary -----------------------------------------------------------------------


def test_accuracy_binary_probabilities_cut_at_one_half():
    prob = np.array([[0.9], [0.4], [0.5], [0.6], [0.51]])
    # predicted 1, 0, 0 (0.5 does not exceed 0.5), 1, 1
    target = np.array([1, 0, 1, 0, 1])
    assert accuracy(prob, target) == 0.6
    assert accuracy(prob, target.reshape(-1, 1)) == 0.6
    assert accuracy(prob, target.astype(np.float64).reshape(-1, 1)) == 0.6
    assert accuracy(prob, np.eye(2)[target]) == 0.6  # one-hot targets for a binary output
    assert accuracy(prob.reshape(-1), target) == 0.6  # (n,) outputs


def test_accuracy_binary_logits_cut_at_zero():
    logits = np.array([[2.0], [-1.0], [0.0], [0.3], [-0.2], [0.55]])
    target = np.array([[1], [0], [0], [1], [1], [0]])
    # threshold 0.0: predicted 1, 0, 0, 1, 0, 1 -> 4 of 6 right
    assert accuracy(logits, target, threshold=0.0) == pytest.approx(4 / 6)
    # the default 0.5 reads them as probabilities: predicted 1, 0, 0, 0, 0, 1
    assert accuracy(logits, target) == pytest.approx(3 / 6)
    assert accuracy(logits.reshape(-1), target.reshape(-1), threshold=0.0) == pytest.approx(4 / 6)


def test_accuracy_binary_boolean_targets():
    assert accuracy(np.array([0.9, 0.2, 0.7]), np.array([True, False, False])) == pytest.approx(
        2 / 3
    )


@given(seed=seeds, n=st.integers(1, 60), threshold=st.floats(-2.0, 2.0))
def test_accuracy_binary_matches_a_loop(seed, n, threshold):
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(n)
    target = rng.integers(0, 2, size=n)
    right = sum(int(o > threshold) == t for o, t in zip(out, target, strict=True))
    assert accuracy(out[:, None], target, threshold=threshold) == right / n
    assert accuracy(out, target[:, None], threshold=threshold) == right / n


def test_metrics_registry_names_accuracy():
    assert METRICS["accuracy"] is accuracy


# -- accuracy: errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        np.array([0, 1, 2, 1]),  # 4 labels for 5 predictions
        np.array([0, 1, 2, 1, 0, 1]),  # 6 labels
        np.eye(3)[[0, 1, 2, 1]],  # 4 one-hot rows
        np.zeros((5, 1, 2)),  # 10 values once flattened
    ],
    ids=["short", "long", "one-hot short", "3-d"],
)
def test_accuracy_mismatched_lengths_raise(target):
    with pytest.raises(ValueError, match="do not fit 5 predictions"):
        accuracy(LOGITS, target)


@pytest.mark.parametrize(
    "target",
    [
        np.array([0.0, 1.0, 2.0, 1.5, 0.0]),
        np.array([0.0, 1.0, 2.0, np.nan, 0.0]),
        np.array([0.0, 1.0, 2.0, 1.0, 1e-9]),
    ],
    ids=["half", "nan", "almost integer"],
)
def test_accuracy_non_integer_labels_raise(target):
    with pytest.raises(ValueError, match="class labels"):
        accuracy(LOGITS, target)


@pytest.mark.parametrize(
    ("target", "dtype"),
    [
        (np.array(["0", "1", "2", "1", "0"]), "<U1"),
        (np.array([0, 1, 2, 1, 0], dtype=np.complex128), "complex128"),
        (np.array([0, 1, 2, 1, None], dtype=object), "object"),
    ],
    ids=["strings", "complex", "object"],
)
def test_accuracy_labels_that_are_not_real_numbers_are_a_type_error(target, dtype):
    with pytest.raises(TypeError, match=f"class labels .*got dtype {dtype}"):
        accuracy(LOGITS, target)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_accuracy_infinite_labels_raise(bad):
    target = np.array([0.0, 1.0, 2.0, bad, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see the ValueError, not the cast's RuntimeWarning
        with pytest.raises(ValueError, match="class labels"):
            accuracy(LOGITS, target)


@pytest.mark.parametrize(
    "pred",
    [np.zeros((5, 3, 2)), np.zeros((5, 0)), np.float64(0.3), np.zeros((1, 5, 1))],
    ids=["3-d", "no columns", "scalar", "3-d column"],
)
def test_accuracy_bad_prediction_shapes_raise(pred):
    with pytest.raises(ValueError, match=r"predictions must be \(n, classes\)"):
        accuracy(pred, LABELS)


# -- predicted_classes ----------------------------------------------------------------------


def test_predicted_classes():
    classes = predicted_classes(LOGITS)
    np.testing.assert_array_equal(classes, [0, 2, 1, 1, 2])
    assert classes.dtype.kind == "i"
    binary = predicted_classes(np.array([[0.2], [0.5], [0.7]]))
    np.testing.assert_array_equal(binary, [0, 0, 1])
    assert binary.dtype == np.int64 and binary.shape == (3,)
    np.testing.assert_array_equal(predicted_classes(np.array([-0.1, 0.0, 0.1]), 0.0), [0, 0, 1])
    np.testing.assert_array_equal(predicted_classes([[0.2], [0.9]], threshold=0.95), [0, 0])
    # (n, 2) is multi-class: the threshold does not apply
    np.testing.assert_array_equal(predicted_classes([[0.3, 0.2], [0.1, 0.2]], 100.0), [0, 1])


def test_predicted_classes_bad_shape_raises():
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        predicted_classes(np.zeros((2, 2, 2)))


# -- confusion matrix -----------------------------------------------------------------------


def test_confusion_matrix_hand_computed():
    # true 0 -> predicted 0 and 2; true 1 -> 1; true 2 -> 2 and 1
    expected = np.array(
        [
            [1, 0, 1],
            [0, 1, 0],
            [0, 1, 1],
        ]
    )
    counts = confusion_matrix(LOGITS, LABELS)
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(confusion_matrix(LOGITS, np.eye(3)[LABELS]), expected)


def test_confusion_matrix_docstring_example():
    pred = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(confusion_matrix(pred, np.array([0, 0, 1])), [[1, 1], [0, 1]])


def test_confusion_matrix_binary_outputs_are_two_by_two():
    prob = np.array([[0.9], [0.4], [0.5], [0.6], [0.51]])  # predicted 1, 0, 0, 1, 1
    target = np.array([1, 0, 1, 0, 1])
    np.testing.assert_array_equal(confusion_matrix(prob, target), [[1, 1], [1, 2]])
    logits = np.array([0.2, -0.3, 0.1])  # predicted 1, 0, 1 at threshold 0
    np.testing.assert_array_equal(
        confusion_matrix(logits, [0, 0, 1], threshold=0.0), [[1, 1], [0, 1]]
    )
    # all one class still gives both rows
    np.testing.assert_array_equal(confusion_matrix(np.array([0.1, 0.2]), [0, 0]), [[2, 0], [0, 0]])


@st.composite
def confusion_cases(draw):
    seed = draw(seeds)
    n = draw(st.integers(0, 50))
    classes = draw(st.integers(2, 7))
    return random_case(seed, n, classes)


@given(case=confusion_cases())
def test_confusion_matrix_matches_a_double_loop(case):
    pred, labels = case
    classes = pred.shape[1]
    predicted = [max(range(classes), key=lambda j, row=row: row[j]) for row in pred]
    expected = np.zeros((classes, classes), dtype=np.int64)
    for i in range(classes):
        for j in range(classes):
            expected[i, j] = sum(
                1 for t, p in zip(labels, predicted, strict=True) if t == i and p == j
            )
    counts = confusion_matrix(pred, labels)
    np.testing.assert_array_equal(counts, expected)
    # rows count the samples of each true class, columns those of each predicted class
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(labels, minlength=classes))
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(predicted, minlength=classes))
    assert counts.sum() == len(labels)
    if len(labels):
        assert np.trace(counts) / counts.sum() == accuracy(pred, labels)


@given(case=confusion_cases(), extra=st.integers(1, 4))
def test_confusion_matrix_classes_argument_widens_it(case, extra):
    pred, labels = case
    classes = pred.shape[1]
    wide = confusion_matrix(pred, labels, classes=classes + extra)
    assert wide.shape == (classes + extra, classes + extra)
    np.testing.assert_array_equal(wide[:classes, :classes], confusion_matrix(pred, labels))
    assert not wide[classes:].any() and not wide[:, classes:].any()


def test_confusion_matrix_takes_its_classes_from_the_predictions_not_the_targets():
    prob = np.array([0.9, 0.1, 0.8])  # binary outputs, but a target says class 3 exists
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\) for 2 classes, got 3 at index 1"):
        confusion_matrix(prob, [1, 3, 0])
    counts = confusion_matrix(prob, [1, 3, 0], classes=4)  # asked for: counted
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1, 1] = expected[3, 0] = expected[0, 1] = 1
    np.testing.assert_array_equal(counts, expected)


def test_confusion_matrix_of_nothing_is_zero():
    np.testing.assert_array_equal(
        confusion_matrix(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)), np.zeros((3, 3))
    )


@pytest.mark.parametrize(
    ("target", "classes"),
    [([0, 1, 3, 1, 0], 3), ([0, 1, -1, 1, 0], None), ([0, 1, 2, 1, 0], 2)],
    ids=["too large", "negative", "classes too small"],
)
def test_confusion_matrix_out_of_range_target_raises(target, classes):
    with pytest.raises(ValueError, match="target classes must lie in"):
        confusion_matrix(LOGITS, np.array(target), classes=classes)


def test_confusion_matrix_classes_narrower_than_the_predictions_raises_value_error():
    # targets all fit in 2 classes, but the 3-column predictions pick class 2 twice
    with pytest.raises(ValueError):
        confusion_matrix(LOGITS, np.array([0, 1, 1, 1, 0]), classes=2)


def test_confusion_matrix_shape_errors():
    with pytest.raises(ValueError, match="do not fit 5 predictions"):
        confusion_matrix(LOGITS, np.array([0, 1]))
    with pytest.raises(ValueError, match="predictions must be"):
        confusion_matrix(np.zeros((5, 3, 1)), LABELS)
    with pytest.raises(ValueError, match="class labels"):
        confusion_matrix(LOGITS, LABELS + 0.5)


# -- hardening: NaN, empty input, stray labels, checked arguments -------------------------------


@pytest.mark.parametrize(
    "pred", [LOGITS, LOGITS[:, :1], LOGITS[:, 0]], ids=["multi-class", "(n, 1)", "(n,)"]
)
def test_a_nan_prediction_is_an_error_naming_its_row_not_class_zero(pred):
    pred = pred.copy()
    pred[3] = np.nan
    with pytest.raises(ValueError, match="predictions hold NaN in row 3"):
        accuracy(pred, np.zeros(5, dtype=int) if pred.ndim == 1 or pred.shape[1] == 1 else LABELS)
    with pytest.raises(ValueError, match="predictions hold NaN in row 3"):
        confusion_matrix(pred, np.zeros(5, dtype=int))


def test_nan_rows_against_zero_labels_are_not_perfect_accuracy():
    # NumPy's argmax of an all-NaN row is 0: counted as right, this scored 1.0
    with pytest.raises(ValueError, match="row 0"):
        accuracy(np.full((4, 3), np.nan), np.zeros(4, dtype=int))


@pytest.mark.parametrize(
    ("pred", "target"),
    [([], []), (np.zeros((0, 3)), np.zeros(0, dtype=int)), (np.zeros(0), np.zeros(0))],
    ids=["lists", "(0, 3)", "(0,)"],
)
def test_the_accuracy_of_nothing_is_an_error(pred, target):
    with pytest.raises(ValueError, match="accuracy needs at least one prediction, got none"):
        accuracy(pred, target)


def test_a_stray_label_is_refused_before_the_matrix_is_allocated():
    # widening to the largest label asked for a (10^6, 10^6) int64 matrix: 7 TiB
    target = LABELS.copy()
    target[4] = 10**6
    with pytest.raises(ValueError, match=r"\[0, 3\) for 3 classes, got 1000000 at index 4"):
        confusion_matrix(LOGITS, target)


def test_accuracy_refuses_labels_the_predictions_cannot_choose():
    with pytest.raises(ValueError, match=r"\[0, 3\) for 3 classes, got 5 at index 2"):
        accuracy(LOGITS, np.array([0, 2, 5, 1, 0]))
    with pytest.raises(ValueError, match=r"\[0, 2\) for 2 classes, got -1 at index 0"):
        accuracy(np.array([0.2, 0.9]), np.array([-1, 1], dtype=np.int8))
    with pytest.raises(ValueError, match="one-hot targets have 4 columns, but the predictions"):
        accuracy(LOGITS, np.eye(4)[[0, 1, 2, 1, 0]])


@pytest.mark.parametrize(
    ("classes", "error", "message"),
    [
        (True, TypeError, r"classes must be an integer, got True \(bool\)"),
        (3.0, TypeError, r"classes must be an integer, got 3\.0 \(float\)"),
        ("3", TypeError, r"classes must be an integer, got '3' \(str\)"),
        (0, ValueError, "classes must be >= 1, got 0"),
    ],
)
def test_confusion_matrix_classes_must_be_an_integer(classes, error, message):
    with pytest.raises(error, match=message):
        confusion_matrix(LOGITS, LABELS, classes=classes)


def test_numpy_integers_are_accepted_as_classes():
    np.testing.assert_array_equal(
        confusion_matrix(LOGITS, LABELS, classes=np.int64(3)), confusion_matrix(LOGITS, LABELS)
    )


@pytest.mark.parametrize(
    ("threshold", "error"), [("0.5", TypeError), (True, TypeError), (np.nan, ValueError)]
)
def test_the_threshold_must_be_a_number(threshold, error):
    with pytest.raises(error, match="threshold"):
        accuracy(np.array([0.2, 0.9]), np.array([0, 1]), threshold=threshold)


@pytest.mark.parametrize(
    ("pred", "dtype"),
    [
        (LOGITS.astype(np.complex128), "complex128"),
        (LOGITS.astype(str), "<U"),
        (np.array([[0.1, None]] * 5, dtype=object), "object"),
    ],
    ids=["complex", "strings", "object"],
)
def test_predictions_that_are_not_real_numbers_are_a_type_error(pred, dtype):
    with pytest.raises(TypeError, match=f"predictions must be real numbers, got dtype {dtype}"):
        accuracy(pred, LABELS)


# -- one-hot targets are checked, and a huge class count is refused by name ----------------------


@pytest.mark.parametrize(
    ("bad_row", "shown"),
    [
        ([np.nan, np.nan, np.nan], r"array\(\[nan, nan, nan\]\)"),
        ([0.0, 0.0, 0.0], r"array\(\[0\., 0\., 0\.\]\)"),
        ([-1.0, -2.0, -3.0], r"array\(\[-1\., -2\., -3\.\]\)"),
        ([np.inf, 0.0, 0.0], r"array\(\[inf,  0\.,  0\.\]\)"),
        ([1.0, np.nan, 0.0], r"array\(\[ 1\., nan,  0\.\]\)"),
    ],
    ids=["nan", "zeros", "negative", "inf", "one nan"],
)
@pytest.mark.parametrize("metric", [accuracy, confusion_matrix])
def test_a_one_hot_row_that_picks_no_class_is_refused_naming_it(metric, bad_row, shown):
    # argmax made each of these class 0: against label 0 it counted as right
    target = np.eye(3)[LABELS]
    target[2] = bad_row
    with pytest.raises(
        ValueError, match=r"rows of finite values >= 0, not all zero; row 2 is " + shown
    ):
        metric(LOGITS, target)


def test_the_finding_nan_and_zero_one_hot_rows_against_class_zero():
    with pytest.raises(ValueError, match="row 0 is"):
        accuracy(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[np.nan, np.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="row 1 is"):
        accuracy(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_soft_and_integer_and_boolean_one_hot_rows_are_still_accepted():
    one_hot = np.eye(3)[LABELS]
    assert accuracy(LOGITS, one_hot.astype(bool)) == 0.6
    assert accuracy(LOGITS, one_hot.astype(np.int8)) == 0.6
    assert accuracy(LOGITS, 0.8 * one_hot + 0.1) == 0.6  # unnormalised soft labels


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (10**6, r"would hold 1e\+12 values of int64 \(7\.28 TiB\), more than this machine's"),
        (10**12, r"would hold 1e\+24 values of int64 .*more than any array can hold"),
        (2**63, r"would hold 8\.51e\+37 values of int64 .*more than any array can hold"),
    ],
    ids=["1e6", "1e12", "2^63"],
)
def test_a_class_count_whose_matrix_cannot_fit_is_refused_by_name(classes, message):
    with pytest.raises(MemoryError, match=rf"confusion_matrix\(classes={classes}\) is too large: "):
        confusion_matrix(LOGITS, LABELS, classes=classes)
    with pytest.raises(MemoryError, match=message):
        confusion_matrix(LOGITS, LABELS, classes=classes)


# -- regression metrics against scikit-learn -------------------------------------------------


def regression_case(seed, n, outputs, flat):
    rng = np.random.default_rng(seed)
    shape = (n,) if flat else (n, outputs)
    return rng.standard_normal(shape) * 3, rng.standard_normal(shape) * 2 + 1


@given(seed=seeds, n=st.integers(1, 50), outputs=st.integers(1, 4), flat=st.booleans())
def test_mae_and_mse_match_scikit_learn(seed, n, outputs, flat):
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    pred, target = regression_case(seed, n, outputs, flat)
    assert mae(pred, target) == pytest.approx(mean_absolute_error(target, pred), rel=1e-12)
    assert mse(pred, target) == pytest.approx(mean_squared_error(target, pred), rel=1e-12)
    assert isinstance(mae(pred, target), float) and isinstance(mse(pred, target), float)


@given(
    seed=seeds,
    n=st.integers(2, 50),
    outputs=st.integers(1, 4),
    flat=st.booleans(),
    constant=st.sampled_from(["none", "target", "target and exact"]),
)
def test_r2_matches_scikit_learn(seed, n, outputs, flat, constant):
    from sklearn.metrics import r2_score

    pred, target = regression_case(seed, n, outputs, flat)
    if constant != "none":  # the first output's targets all equal: SS_tot = 0
        column = target if flat else target[:, 0]
        column[...] = 1.5
        if constant == "target and exact":
            (pred if flat else pred[:, 0])[...] = 1.5
    assert r2(pred, target) == pytest.approx(r2_score(target, pred), rel=1e-12, abs=1e-12)


def test_regression_metrics_by_hand():
    pred, target = np.array([[1.0], [2.0], [4.0]]), np.array([1.5, 2.0, 3.0])
    assert mae(pred, target) == 0.5
    assert mse(pred, target) == pytest.approx((0.25 + 1.0) / 3)
    assert r2(target, target) == 1.0
    assert r2(np.full(3, 2.0), np.array([1.0, 2.0, 3.0])) == 0.0  # the mean scores 0
    assert r2(np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])) == -3.0
    assert r2(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == 0.0  # SS_tot 0, not exact
    assert np.isnan(r2(np.array([1.0]), np.array([2.0])))  # R^2 of one sample: undefined
    assert mae(np.arange(3), [0, 1, 2]) == 0.0  # integers and lists


@pytest.mark.parametrize("metric", [mae, mse, r2])
@pytest.mark.parametrize(
    ("pred", "target", "error", "message"),
    [
        (np.zeros(0), np.zeros(0), ValueError, "needs at least one prediction, got none"),
        (np.zeros((3, 2)), np.zeros(3), ValueError, r"same number of values per sample"),
        (np.zeros(3), np.zeros(4), ValueError, r"same number of values per sample"),
        (np.zeros((3, 0)), np.zeros((3, 0)), ValueError, r"same number of values per sample"),
        (np.array([0.0, np.nan]), np.zeros(2), ValueError, r"predictions hold NaN .* row 1"),
        (np.zeros(2), np.array([np.inf, 0.0]), ValueError, r"targets hold NaN .* row 0"),
        (np.array(1.0), np.array(1.0), ValueError, r"predictions must be an array of samples"),
        (np.array(["1", "2"]), np.zeros(2), TypeError, r"predictions must be real numbers"),
        (np.zeros(2), np.array([1j, 2]), TypeError, r"targets must be real numbers"),
    ],
)
def test_regression_metrics_refuse_what_they_cannot_score(metric, pred, target, error, message):
    with pytest.raises(error, match=rf"^{metric.__name__}.*{message}"):
        metric(pred, target)


# -- top-k accuracy ------------------------------------------------------------------------------


@given(seed=seeds, n=st.integers(1, 60), classes=st.integers(3, 8), k=st.integers(1, 9))
def test_top_k_accuracy_matches_scikit_learn(seed, n, classes, k):
    from sklearn.metrics import top_k_accuracy_score

    pred, labels = random_case(seed, n, classes)  # continuous scores: no ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that k >= classes is meaningless
        expected = top_k_accuracy_score(labels, pred, k=k, labels=range(classes))
    assert top_k_accuracy(pred, labels, k=k) == pytest.approx(expected, rel=1e-12)
    assert top_k_accuracy(pred, np.eye(classes)[labels], k=k) == top_k_accuracy(pred, labels, k=k)


@given(seed=seeds, n=st.integers(1, 60), classes=st.integers(2, 6), k=st.integers(1, 7))
def test_top_k_accuracy_with_ties_ranks_the_lower_class_first(seed, n, classes, k):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 3, size=(n, classes)).astype(np.float64)  # many ties
    labels = rng.integers(0, classes, size=n)
    hits = 0
    for row, label in zip(pred, labels, strict=True):
        ranking = sorted(range(classes), key=lambda j, row=row: (-row[j], j))
        hits += label in ranking[:k]
    assert top_k_accuracy(pred, labels, k=k) == hits / n
    if k == 1:
        assert top_k_accuracy(pred, labels, k=1) == accuracy(pred, labels)


@given(seed=seeds, n=st.integers(1, 60))
def test_binary_top_k_accuracy_matches_scikit_learn(seed, n):
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(seed)
    prob, target = rng.random(n), rng.integers(0, 2, size=n)
    expected = top_k_accuracy_score(target, prob, k=1, labels=[0, 1])
    assert top_k_accuracy(prob[:, None], target, k=1) == pytest.approx(expected, rel=1e-12)
    assert top_k_accuracy(prob, target, k=2) == 1.0
    logits = np.log(prob) - np.log1p(-prob)
    assert top_k_accuracy(logits, target, k=1, threshold=0.0) == accuracy(prob, target)


@pytest.mark.parametrize(
    ("k", "error", "message"),
    [
        (0, ValueError, r"^top_k_accuracy k must be >= 1, got 0$"),
        (2.0, TypeError, r"^top_k_accuracy k must be an integer, got 2\.0 \(float\)$"),
        (True, TypeError, r"^top_k_accuracy k must be an integer, got True \(bool\)$"),
        ("3", TypeError, r"^top_k_accuracy k must be an integer, got '3' \(str\)$"),
    ],
)
def test_top_k_accuracy_checks_k(k, error, message):
    with pytest.raises(error, match=message):
        top_k_accuracy(LOGITS, LABELS, k=k)


# -- precision, recall and F1 against scikit-learn -----------------------------------------------


def classification_case(seed, n, classes, as_logits):
    """Predictions (n, classes) as logits or one-hot rows, the classes they pick, labels."""
    rng = np.random.default_rng(seed)
    # a few classes only: some classes occur in neither the targets nor the predictions
    used = rng.integers(1, classes + 1)
    picked, labels = rng.integers(0, used, size=n), rng.integers(0, used, size=n)
    rng.shuffle(perm := np.arange(classes))
    picked, labels = perm[picked], perm[labels]
    pred = np.eye(classes)[picked]
    if as_logits:
        pred = pred * 5 + rng.standard_normal((n, classes))
    return pred, pred.argmax(axis=1), labels


@given(
    seed=seeds,
    n=st.integers(1, 60),
    classes=st.integers(2, 7),
    as_logits=st.booleans(),
    average=st.sampled_from(["macro", "micro", "weighted"]),
)
def test_precision_recall_f1_match_scikit_learn(seed, n, classes, as_logits, average):
    from sklearn.metrics import precision_recall_fscore_support

    pred, picked, labels = classification_case(seed, n, classes, as_logits)
    expected = precision_recall_fscore_support(labels, picked, average=average, zero_division=0)
    got = [metric(pred, labels, average=average) for metric in (precision, recall, f1)]
    assert got == pytest.approx(expected[:3], rel=1e-12, abs=1e-15)
    assert all(isinstance(value, float) for value in got)
    per_class = precision_recall_fscore_support(
        labels, picked, average=None, labels=range(classes), zero_division=0
    )
    for metric, values in zip((precision, recall, f1), per_class[:3], strict=True):
        np.testing.assert_allclose(metric(pred, labels, average=None), values, rtol=1e-12)
        np.testing.assert_allclose(
            metric(pred, np.eye(classes)[labels], average=None), values, rtol=1e-12
        )
    if average == "micro":  # one label per sample: micro precision = recall = F1 = accuracy
        assert got == pytest.approx([accuracy(pred, labels)] * 3, rel=1e-12)


@given(seed=seeds, n=st.integers(1, 60), layout=st.sampled_from(["(n, 1)", "(n,)", "(n, 2)"]))
def test_binary_precision_recall_f1_match_scikit_learn(seed, n, layout):
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(seed)
    prob, target = rng.random(n), rng.integers(0, 2, size=n)
    picked = (prob > 0.5).astype(int)
    pred = {"(n, 1)": prob[:, None], "(n,)": prob, "(n, 2)": np.stack([1 - prob, prob], 1)}
    for average in ("binary", "macro", "micro", "weighted"):
        expected = precision_recall_fscore_support(target, picked, average=average, zero_division=0)
        for metric, value in zip((precision, recall, f1), expected[:3], strict=True):
            assert metric(pred[layout], target, average=average) == pytest.approx(
                value, rel=1e-12, abs=1e-15
            )


def test_precision_recall_f1_by_hand_and_the_zero_division_rule():
    picked = np.array([0, 1, 1, 1, 0, 2])
    target = np.array([0, 1, 2, 1, 1, 2])
    pred = np.eye(4)[picked]  # four classes; class 3 occurs nowhere
    np.testing.assert_allclose(precision(pred, target, average=None), [1 / 2, 2 / 3, 1, 0])
    np.testing.assert_allclose(recall(pred, target, average=None), [1, 2 / 3, 1 / 2, 0])
    np.testing.assert_allclose(f1(pred, target, average=None), [2 / 3, 2 / 3, 2 / 3, 0])
    # the macro average leaves out class 3, which occurs in neither
    assert precision(pred, target) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert recall(pred, target, average="weighted") == accuracy(pred, target)
    # a class never predicted has precision 0 (0 / 0), one never in the targets recall 0
    never = np.eye(3)[[0, 0, 0]]
    assert precision(never, np.array([0, 1, 2]), average=None).tolist() == [1 / 3, 0.0, 0.0]
    assert recall(np.eye(3)[[0, 1, 2]], np.array([0, 0, 0]), average=None).tolist() == [
        1 / 3,
        0.0,
        0.0,
    ]


@pytest.mark.parametrize("metric", [precision, recall, f1])
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"average": "binary"}, ValueError, r"average='binary' scores class 1 of two classes"),
        ({"average": "samples"}, ValueError, r"average must be 'macro', 'micro', 'weighted'"),
        ({"average": 3}, ValueError, r"average must be .* or None, got 3$"),
        ({"threshold": "0.5"}, TypeError, r"threshold must be a real number"),
    ],
)
def test_precision_recall_f1_check_their_arguments(metric, kwargs, error, message):
    with pytest.raises(error, match=message):
        metric(LOGITS, LABELS, **kwargs)


@pytest.mark.parametrize("metric", [precision, recall, f1, top_k_accuracy])
def test_classification_metrics_check_inputs_as_accuracy_does(metric):
    with pytest.raises(ValueError, match=f"{metric.__name__} needs at least one prediction"):
        metric(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="predictions hold NaN in row 1"):
        metric(np.array([[0.1, 0.2], [np.nan, 0.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 3\)"):
        metric(LOGITS, np.array([0, 1, 2, 3, 0]))


def test_the_registry_names_every_metric():
    assert METRICS == {
        "accuracy": accuracy,
        "top_k_accuracy": top_k_accuracy,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mae": mae,
        "mse": mse,
        "r2": r2,
    }
