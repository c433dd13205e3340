"""Metrics: hand-checkable values, agreement with scikit-learn and scipy, and undefined cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

import mtl
from mtl.metrics import METRICS, compute


def test_hand_checkable_values():
    assert compute(["accuracy"], [1, 0, 1], [1, 1, 1]) == {"accuracy": pytest.approx(2 / 3)}
    # tp = 2, fp = 1, fn = 1: precision = recall = 2/3, F1 = 2/3
    assert compute(["f1"], [1, 1, 0, 1], [1, 0, 1, 1])["f1"] == pytest.approx(2 / 3)
    assert compute(["mcc"], [0, 1, 0, 1], [0, 1, 0, 1]) == {"mcc": 1.0}
    assert compute(["mcc"], [1, 0, 1, 0], [0, 1, 0, 1]) == {"mcc": -1.0}
    assert compute(["pearson"], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0])["pearson"] == pytest.approx(1.0)
    assert compute(["pearson"], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0])["pearson"] == pytest.approx(-1.0)
    assert compute(["spearman"], [1.0, 2.0, 3.0, 4.0], [1.0, 10.0, 100.0, 1000.0]) == {"spearman": pytest.approx(1.0)}


def test_all_metrics_at_once_in_order():
    result = compute(("f1", "accuracy"), [1, 0], [1, 0])
    assert list(result) == ["f1", "accuracy"] and result == {"f1": 1.0, "accuracy": 1.0}
    assert METRICS == ("accuracy", "f1", "mcc", "pearson", "spearman")


def test_against_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.7, ref, 1 - ref)
    result = compute(["accuracy", "f1", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(accuracy_score(ref, pred))
    assert result["f1"] == pytest.approx(f1_score(ref, pred))
    assert result["mcc"] == pytest.approx(matthews_corrcoef(ref, pred))
    scores = rng.uniform(0, 5, 100)
    guesses = scores + rng.normal(0, 1, 100)
    result = compute(["pearson", "spearman"], guesses, scores)
    assert result["pearson"] == pytest.approx(pearsonr(guesses, scores)[0])
    assert result["spearman"] == pytest.approx(spearmanr(guesses, scores)[0])


def test_multiclass_accuracy_and_mcc():
    pred, ref = [0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 2]
    result = compute(["accuracy", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["mcc"] == pytest.approx(matthews_corrcoef(ref, pred))


def test_accepts_tensors_numpy_and_lists_and_returns_python_floats():
    pred = torch.tensor([1, 0, 1, 1])
    ref = np.array([1, 0, 0, 1])
    for p, r in [(pred, ref), (pred.tolist(), ref.tolist()), (pred.numpy(), torch.from_numpy(ref))]:
        result = compute(["accuracy", "f1", "mcc"], p, r)
        assert result["accuracy"] == 0.75
        assert all(type(v) is float for v in result.values())
    scores = compute(["pearson", "spearman"], torch.tensor([[0.5], [1.5], [2.0]]), torch.tensor([0.0, 2.0, 3.0]))
    assert all(type(v) is float and -1 <= v <= 1 for v in scores.values())


def test_constant_predictions_give_finite_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classes = compute(["accuracy", "f1", "mcc"], [0, 0, 0, 0], [0, 1, 0, 1])
        assert classes == {"accuracy": 0.5, "f1": 0.0, "mcc": 0.0}
        assert compute(["f1", "mcc"], [1, 1, 1], [1, 1, 1]) == {"f1": 1.0, "mcc": 0.0}
        scores = compute(["pearson", "spearman"], [2.5, 2.5, 2.5], [1.0, 2.0, 3.0])
        assert scores == {"pearson": 0.0, "spearman": 0.0}
        assert compute(["pearson"], [1.0, 2.0], [3.0, 3.0]) == {"pearson": 0.0}


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
    assert set(mtl.create("task", "stsb").compute_metrics([0.1, 2.0, 4.0], [0.0, 2.5, 5.0])) == {"pearson", "spearman"}
    assert mtl.create("task", "cola").compute_metrics(torch.tensor([1, 0]), torch.tensor([1, 0])) == {"mcc": 1.0}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
def test_classification_metrics_match_sklearn(pairs):
    pred, ref = [p for p, _ in pairs], [r for _, r in pairs]
    result = compute(["accuracy", "f1", "mcc"], pred, ref)
    assert result["accuracy"] == pytest.approx(accuracy_score(ref, pred))
    assert result["f1"] == pytest.approx(f1_score(ref, pred, zero_division=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert result["mcc"] == pytest.approx(matthews_corrcoef(ref, pred))
    assert all(math.isfinite(v) for v in result.values())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 5)), min_size=2, max_size=30))
def test_correlations_are_finite_and_bounded(pairs):
    pred, ref = [p for p, _ in pairs], [r for _, r in pairs]
    result = compute(["pearson", "spearman"], pred, ref)
    assert all(math.isfinite(v) and -1 - 1e-9 <= v <= 1 + 1e-9 for v in result.values())
