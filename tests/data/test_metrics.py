"""Metrics: values worked out by hand, agreement with a pure-Python reference written from the definitions
(no scikit-learn or scipy here, so a wrong metric definition in ``compute`` cannot go unnoticed), and the
undefined cases (a constant input), which ``compute`` scores 0.0."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl
from mtl.data.metrics import METRICS, compute

# --- the reference: plain Python, exact arithmetic (Fraction / int) up to the final square root ----------------


def ref_confusion(pred, ref):
    """(TP, FP, FN, TN) with 1 as the positive class."""
    tp = sum(1 for p, r in zip(pred, ref, strict=True) if p == 1 and r == 1)
    fp = sum(1 for p, r in zip(pred, ref, strict=True) if p == 1 and r != 1)
    fn = sum(1 for p, r in zip(pred, ref, strict=True) if p != 1 and r == 1)
    tn = sum(1 for p, r in zip(pred, ref, strict=True) if p != 1 and r != 1)
    return tp, fp, fn, tn


def ref_accuracy(pred, ref):
    return sum(1 for p, r in zip(pred, ref, strict=True) if p == r) / len(ref)


def ref_f1(pred, ref):
    """F1 = 2TP / (2TP + FP + FN); 0.0 where undefined (no positive anywhere)."""
    tp, fp, fn, _ = ref_confusion(pred, ref)
    return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0


def ref_binary_mcc(pred, ref):
    """MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0.0 where the denominator is 0."""
    tp, fp, fn, tn = ref_confusion(pred, ref)
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return (tp * tn - fp * fn) / math.sqrt(den) if den else 0.0


def ref_gorodkin_mcc(pred, ref):
    """Multiclass MCC (Gorodkin 2004) from the confusion matrix C (rows: reference, columns: prediction):
    (c·s − Σ_k p_k·t_k) / sqrt((s² − Σ_k p_k²)(s² − Σ_k t_k²)), c = Σ_k C_kk, s = Σ C, p_k / t_k = column / row sums.
    0.0 where the denominator is 0."""
    labels = sorted(set(pred) | set(ref))
    matrix = {(t, p): 0 for t in labels for p in labels}
    for p, r in zip(pred, ref, strict=True):
        matrix[r, p] += 1
    c = sum(matrix[k, k] for k in labels)
    s = sum(matrix.values())
    p_k = {k: sum(matrix[t, k] for t in labels) for k in labels}
    t_k = {k: sum(matrix[k, q] for q in labels) for k in labels}
    num = c * s - sum(p_k[k] * t_k[k] for k in labels)
    den = (s * s - sum(v * v for v in p_k.values())) * (s * s - sum(v * v for v in t_k.values()))
    return num / math.sqrt(den) if den else 0.0


def ref_pearson(x, y):
    """r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² · Σ(y−ȳ)²), exactly; 0.0 where an input is constant."""
    x, y = [Fraction(v) for v in x], [Fraction(v) for v in y]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return 0.0
    return math.copysign(math.sqrt(sxy * sxy / (sxx * syy)), sxy) if sxy else 0.0


def ref_average_ranks(values):
    """1-based ranks; tied values share the mean of the positions they occupy."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [Fraction(0)] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = Fraction((start + 1) + (end + 1), 2)
        start = end + 1
    return ranks


def ref_spearman(x, y):
    """Spearman's rho: Pearson's r of the average ranks."""
    return ref_pearson(ref_average_ranks(list(x)), ref_average_ranks(list(y)))


TOL = {"rel": 1e-9, "abs": 1e-12}


# --- values worked out by hand ----------------------------------------------------------------------------------


def test_hand_checkable_values():
    assert compute(["accuracy"], [1, 0, 1], [1, 1, 1]) == {"accuracy": pytest.approx(2 / 3)}
    # tp = 2, fp = 1, fn = 1: precision = recall = 2/3, F1 = 2/3
    assert compute(["f1"], [1, 1, 0, 1], [1, 0, 1, 1])["f1"] == pytest.approx(2 / 3)
    assert compute(["mcc"], [0, 1, 0, 1], [0, 1, 0, 1]) == {"mcc": 1.0}
    assert compute(["mcc"], [1, 0, 1, 0], [0, 1, 0, 1]) == {"mcc": -1.0}
    assert compute(["pearson"], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0])["pearson"] == pytest.approx(1.0)
    assert compute(["pearson"], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0])["pearson"] == pytest.approx(-1.0)
    assert compute(["spearman"], [1.0, 2.0, 3.0, 4.0], [1.0, 10.0, 100.0, 1000.0]) == {"spearman": pytest.approx(1.0)}


def test_binary_metrics_from_confusion_counts_by_hand():
    pred = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    ref = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # positions 0-2: TP = 3; 3-4: FN = 2; 5: FP = 1; 6-9: TN = 4
    tp, fp, fn, tn = 3, 1, 2, 4
    result = compute(["accuracy", "f1", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx((tp + tn) / 10)
    assert result["accuracy"] == pytest.approx(0.7)
    # F1 = 2TP / (2TP + FP + FN) = 6 / 9; with 0 as the positive class it would be 8 / 11
    assert result["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert result["f1"] == pytest.approx(2 / 3)
    # MCC = (3·4 − 1·2) / sqrt(4·5·6·5) = 10 / sqrt(600)
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert result["mcc"] == pytest.approx(mcc)
    assert result["mcc"] == pytest.approx(10 / math.sqrt(600))
    # precision 3/4 and recall 3/5: the harmonic mean is the same F1
    assert result["f1"] == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))


def test_f1_is_for_the_positive_class_one():
    # TP = 1, FP = 0, FN = 3 (TN = 0): F1 = 2 / 5; for class 0 it would be 0
    assert compute(["f1"], [1, 0, 0, 0], [1, 1, 1, 1]) == {"f1": pytest.approx(2 / 5)}
    # TP = 0, FP = 2, FN = 0, TN = 2: F1 = 0; for class 0 it would be 4 / 6
    assert compute(["f1"], [1, 1, 0, 0], [0, 0, 0, 0]) == {"f1": 0.0}


def test_pearson_by_hand_from_the_definition():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0]
    # means 3 and 3; deviations (-2, -1, 0, 1, 2) and (-1, -2, 1, 0, 2): Σdx·dy = 8, Σdx² = Σdy² = 10
    assert compute(["pearson"], x, y)["pearson"] == pytest.approx(8 / 10)
    # a monotone but non-linear relation: Pearson < 1 while Spearman = 1
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0]
    mx, my = sum(x) / len(x), sum(y) / len(y)  # 2.5 and 7.5
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))  # 25
    sxx = sum((a - mx) ** 2 for a in x)  # 5
    syy = sum((b - my) ** 2 for b in y)  # 129
    assert (sxy, sxx, syy) == (25.0, 5.0, 129.0)
    result = compute(["pearson", "spearman"], x, y)
    assert result["pearson"] == pytest.approx(sxy / math.sqrt(sxx * syy))
    assert result["pearson"] == pytest.approx(25 / math.sqrt(645))
    assert result["spearman"] == pytest.approx(1.0)
    # Pearson is invariant to positive affine maps of either input and flips sign under a negative one
    moved = compute(["pearson"], [3 * a + 7 for a in x], [-2 * b + 1 for b in y])["pearson"]
    assert moved == pytest.approx(-25 / math.sqrt(645))


def test_spearman_by_hand_with_ties():
    x = [1.0, 2.0, 2.0, 3.0, 5.0]
    y = [2.0, 1.0, 4.0, 4.0, 4.0]
    # average ranks: x -> (1, 2.5, 2.5, 4, 5) (the two 2.0 share positions 2 and 3);
    #                y -> (2, 1, 4, 4, 4)     (the three 4.0 share positions 3, 4 and 5)
    rx, ry = [1, 2.5, 2.5, 4, 5], [2, 1, 4, 4, 4]
    assert ref_average_ranks(x) == rx and ref_average_ranks(y) == ry
    # both rank means are 3: deviations (-2, -0.5, -0.5, 1, 2) and (-1, -2, 1, 1, 1)
    # Σdx·dy = 2 + 1 − 0.5 + 1 + 2 = 5.5, Σdx² = 9.5, Σdy² = 8
    rho = 5.5 / math.sqrt(9.5 * 8)
    assert compute(["spearman"], x, y) == {"spearman": pytest.approx(rho)}
    # the no-ties shortcut 1 − 6Σd²/(n(n²−1)) would give 1 − 6·6.5/120 = 0.675, which is wrong here
    assert rho != pytest.approx(0.675, abs=1e-3)
    # ranks only: any strictly increasing transform of an input leaves rho unchanged
    assert compute(["spearman"], [math.exp(v) for v in x], [v**3 for v in y]) == {"spearman": pytest.approx(rho)}


def test_multiclass_accuracy_and_mcc():
    pred, ref = [0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 2]
    result = compute(["accuracy", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # confusion matrix C[reference][prediction]:
    #   ref 0: [1, 0, 0]   ref 1: [0, 2, 1]   ref 2: [1, 0, 1]
    # c = trace = 4, s = 6, column sums p = (2, 2, 2), row sums t = (1, 3, 2)
    # Gorodkin: (c·s − Σp·t) / sqrt((s² − Σp²)(s² − Σt²)) = (24 − 12) / sqrt((36 − 12)(36 − 14)) = 12 / sqrt(528)
    assert result["mcc"] == pytest.approx(12 / math.sqrt(528))
    # a perfect multiclass prediction has MCC 1; a cyclic relabelling of three balanced classes has −1/2
    assert compute(["mcc"], [0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]) == {"mcc": pytest.approx(1.0)}
    # (0·6 − (2·2·3)) / sqrt((36 − 12)(36 − 12)) = −12 / 24
    assert compute(["mcc"], [1, 2, 0, 1, 2, 0], [0, 1, 2, 0, 1, 2]) == {"mcc": pytest.approx(-0.5)}


def test_reference_reproduces_the_hand_values():
    # so that the property tests below compare against a reference that is itself right
    pred, ref = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert ref_confusion(pred, ref) == (3, 1, 2, 4)
    assert ref_accuracy(pred, ref) == pytest.approx(0.7)
    assert ref_f1(pred, ref) == pytest.approx(2 / 3)
    assert ref_binary_mcc(pred, ref) == pytest.approx(10 / math.sqrt(600))
    assert ref_gorodkin_mcc(pred, ref) == pytest.approx(10 / math.sqrt(600))
    assert ref_gorodkin_mcc([0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 2]) == pytest.approx(12 / math.sqrt(528))
    assert ref_pearson([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(25 / math.sqrt(645))
    assert ref_spearman([1, 2, 2, 3, 5], [2, 1, 4, 4, 4]) == pytest.approx(5.5 / math.sqrt(76))
    assert ref_pearson([2.5, 2.5], [1, 2]) == 0.0 and ref_f1([0, 0], [0, 0]) == 0.0


def test_all_metrics_at_once_in_order():
    result = compute(("f1", "accuracy"), [1, 0], [1, 0])
    assert list(result) == ["f1", "accuracy"] and result == {"f1": 1.0, "accuracy": 1.0}
    assert METRICS == ("accuracy", "f1", "f1_macro", "mcc", "pearson", "spearman")


def test_larger_random_inputs_against_the_reference():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.7, ref, 1 - ref)
    result = compute(["accuracy", "f1", "mcc"], pred, ref)
    pred_list, ref_list = pred.tolist(), ref.tolist()
    assert result["accuracy"] == pytest.approx(ref_accuracy(pred_list, ref_list), **TOL)
    assert result["f1"] == pytest.approx(ref_f1(pred_list, ref_list), **TOL)
    assert result["mcc"] == pytest.approx(ref_binary_mcc(pred_list, ref_list), **TOL)
    assert 0.2 < result["mcc"] < 0.6  # 70 % agreement: clearly positive, far from perfect
    scores = np.round(rng.uniform(0, 5, 100), 1)  # rounded, so that there are ties
    guesses = np.round(scores + rng.normal(0, 1, 100), 1)
    result = compute(["pearson", "spearman"], guesses, scores)
    assert result["pearson"] == pytest.approx(ref_pearson(guesses.tolist(), scores.tolist()), **TOL)
    assert result["spearman"] == pytest.approx(ref_spearman(guesses.tolist(), scores.tolist()), **TOL)


# --- inputs, undefined cases, errors ----------------------------------------------------------------------------


def test_accepts_tensors_numpy_and_lists_and_returns_python_floats():
    pred = torch.tensor([1, 0, 1, 1])
    ref = np.array([1, 0, 0, 1])
    # TP = 2, FP = 1, FN = 0, TN = 1
    expected = {"accuracy": 0.75, "f1": pytest.approx(4 / 5), "mcc": pytest.approx(2 / math.sqrt(3 * 2 * 2 * 1))}
    for p, r in [(pred, ref), (pred.tolist(), ref.tolist()), (pred.numpy(), torch.from_numpy(ref))]:
        result = compute(["accuracy", "f1", "mcc"], p, r)
        assert result == expected
        assert all(type(v) is float for v in result.values())
    # a (3, 1) tensor is flattened; y = 2x − 1 exactly, so both correlations are 1
    scores = compute(["pearson", "spearman"], torch.tensor([[0.5], [1.5], [2.0]]), torch.tensor([0.0, 2.0, 3.0]))
    assert scores == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0)}
    assert all(type(v) is float for v in scores.values())
    x, y = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), np.array([1, 4, 9, 16])
    assert compute(["pearson"], x, y) == {"pearson": pytest.approx(25 / math.sqrt(645))}


def test_constant_predictions_give_finite_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classes = compute(["accuracy", "f1", "mcc"], [0, 0, 0, 0], [0, 1, 0, 1])
        assert classes == {"accuracy": 0.5, "f1": 0.0, "mcc": 0.0}
        assert compute(["f1", "mcc"], [1, 1, 1], [1, 1, 1]) == {"f1": 1.0, "mcc": 0.0}
        # no positive anywhere: F1 = 0/0 is scored 0.0 (MCC 0/0 too), accuracy is perfect
        assert compute(["accuracy", "f1", "mcc"], [0, 0, 0], [0, 0, 0]) == {"accuracy": 1.0, "f1": 0.0, "mcc": 0.0}
        assert compute(["mcc"], [2, 2, 2], [0, 1, 2]) == {"mcc": 0.0}  # multiclass, constant prediction
        scores = compute(["pearson", "spearman"], [2.5, 2.5, 2.5], [1.0, 2.0, 3.0])
        assert scores == {"pearson": 0.0, "spearman": 0.0}
        assert compute(["pearson"], [1.0, 2.0], [3.0, 3.0]) == {"pearson": 0.0}
        assert compute(["pearson", "spearman"], [1.0], [2.0]) == {"pearson": 0.0, "spearman": 0.0}


def test_unknown_metric_and_bad_inputs():
    with pytest.raises(ValueError, match="unknown metric 'acc'.*Did you mean .*'accuracy'"):
        compute(["acc"], [1], [1])
    with pytest.raises(ValueError, match="3 predictions but 2 references"):
        compute(["accuracy"], [1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="no predictions"):
        compute(["accuracy"], [], [])


def test_task_compute_metrics_uses_the_task_metrics():
    assert mtl.create("task", "mrpc").compute_metrics([1, 0, 1], [1, 1, 1]) == {
        "f1": pytest.approx(0.8), "accuracy": pytest.approx(2 / 3)}
    pred, ref = [0.1, 2.0, 4.0], [0.0, 2.5, 5.0]
    stsb = mtl.create("task", "stsb").compute_metrics(pred, ref)
    assert list(stsb) == ["pearson", "spearman"]
    # deviations (−29/15, −1/30, 59/30) and (−2.5, 0, 2.5): Σdx·dy = 9.75, Σdx² = 7.60667, Σdy² = 12.5
    assert stsb["pearson"] == pytest.approx(9.75 / math.sqrt((20.01 - 6.1**2 / 3) * 12.5))
    assert stsb["pearson"] == pytest.approx(ref_pearson(pred, ref), **TOL)
    assert stsb["spearman"] == pytest.approx(1.0)
    assert mtl.create("task", "cola").compute_metrics(torch.tensor([1, 0]), torch.tensor([1, 0])) == {"mcc": 1.0}


# --- properties against the reference ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
@pytest.mark.slow
def test_binary_classification_metrics_match_the_reference(pairs):
    pred, ref = [p for p, _ in pairs], [r for _, r in pairs]
    result = compute(["accuracy", "f1", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(ref_accuracy(pred, ref), **TOL)
    assert result["f1"] == pytest.approx(ref_f1(pred, ref), **TOL)
    assert result["mcc"] == pytest.approx(ref_binary_mcc(pred, ref), **TOL)
    assert all(type(v) is float and math.isfinite(v) for v in result.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
@pytest.mark.slow
def test_multiclass_accuracy_and_mcc_match_the_reference(pairs):
    pred, ref = [p for p, _ in pairs], [r for _, r in pairs]
    result = compute(["accuracy", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(ref_accuracy(pred, ref), **TOL)
    assert result["mcc"] == pytest.approx(ref_gorodkin_mcc(pred, ref), **TOL)
    assert -1 - 1e-12 <= result["mcc"] <= 1 + 1e-12


# scores on a 0.01 grid in [0, 5] (as STS-B's), so that ties are common and the inputs are well conditioned
grid_scores = st.integers(0, 500).map(lambda k: k / 100)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(grid_scores, grid_scores), min_size=1, max_size=30))
def test_correlations_match_the_reference(pairs):
    pred, ref = [p for p, _ in pairs], [r for _, r in pairs]
    result = compute(["pearson", "spearman"], pred, ref)
    assert result["pearson"] == pytest.approx(ref_pearson(pred, ref), **TOL)
    assert result["spearman"] == pytest.approx(ref_spearman(pred, ref), **TOL)
    assert all(math.isfinite(v) and -1 - 1e-9 <= v <= 1 + 1e-9 for v in result.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=20))
def test_correlations_with_heavy_ties_match_the_reference(pairs):
    pred, ref = [p / 2 for p, _ in pairs], [r / 2 for _, r in pairs]
    result = compute(["pearson", "spearman"], pred, ref)
    assert result["pearson"] == pytest.approx(ref_pearson(pred, ref), **TOL)
    assert result["spearman"] == pytest.approx(ref_spearman(pred, ref), **TOL)
