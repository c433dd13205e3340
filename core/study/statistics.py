"""The statistics of a bench table: means, sample standard deviations, paired t-tests over seeds, and the paired
bootstrap interval of a difference over evaluation examples.

A strategy's runs and the reference's are paired by seed; the test is the two-sided paired t-test
(``scipy.stats.ttest_rel``; Student 1908), which needs at least two pairs and some variance.

:func:`paired_bootstrap` is the percentile bootstrap of a paired difference of a metric (Efron & Tibshirani 1993;
for NLP evaluation, Koehn 2004, Berg-Kirkpatrick et al. 2012): each of ``resamples`` resamples draws n of the n
evaluation examples with replacement; on it, the metric of the strategy's predictions minus the metric of the
reference's predictions, for every seed on the *same* examples (paired example by example within each seed, and
the seeds share the resample because they were evaluated on the same examples), averaged over the seeds; the
interval is the 2.5th and 97.5th percentile of those differences. The metrics are computed on a whole array of
resamples at once (:func:`metric_scores`: accuracy, F1 of class 1, Matthews correlation, Pearson and Spearman
correlation, with :mod:`mtl.data.metrics`' conventions: an undefined value is 0); any other metric is a function
``(predictions, labels) -> float`` called once per resample. benchmarks/parity.py uses the same function.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

RESAMPLES = 2000  # bootstrap resamples of a bench's intervals
LEVEL = 0.95  # their coverage: percentiles 2.5 and 97.5
BOOTSTRAP_SEED = 0  # numpy.random.default_rng seed of the resampled indices (the same intervals every time)
VECTORISED = ("accuracy", "f1", "mcc", "pearson", "spearman")
_CHUNK_ELEMENTS = 2_000_000  # resampled indices held at once (rows × examples): memory stays small for big dev sets


LARGEST = 1e12  # scores, costs and budgets beyond it are mistakes, and their sums could overflow


def bounded(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool) within ±:data:`LARGEST`, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= LARGEST:
        return None
    return float(value)


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def sample_std(values: list[float]) -> float | None:
    """The sample standard deviation (ddof = 1); 0 for one value, None for none."""
    return statistics.stdev(values) if len(values) >= 2 else (0.0 if values else None)


def paired_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided paired t-test p value; None with fewer than two pairs or no variance."""
    if len(a) < 2:
        return None
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = stats.ttest_rel(a, b).pvalue
    return finite(p)


# ---------------------------------------------------------------------------------------------- bootstrap
def metric_scores(metric: str | Callable[[Any, Any], float], predictions, labels):
    """The metric of each row of ``predictions`` [R, n] against ``labels`` [R, n], an array [R].

    ``metric`` is one of :data:`VECTORISED` (the GLUE metrics of :mod:`mtl.data.metrics`, with its conventions:
    F1 of class 1 with 0 when there is no positive, Matthews correlation of any number of classes with 0 when it
    is undefined, correlations of a constant row 0) or a function of one row's predictions and labels.
    """
    import numpy as np

    pred, ref = np.asarray(predictions), np.asarray(labels)
    if callable(metric) and pred.shape == ref.shape and pred.ndim >= 2:  # an example may be a row (a sentence's tags)
        return np.array([float(metric(p, r)) for p, r in zip(pred, ref, strict=False)], dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 2:
        raise ValueError(f"predictions {pred.shape} and labels {ref.shape}: expected two arrays [resamples, n]")
    n = pred.shape[1]
    if metric == "accuracy":
        return (pred == ref).mean(axis=1, dtype=np.float64)
    if metric == "f1":
        tp = ((pred == 1) & (ref == 1)).sum(axis=1)
        fp = ((pred == 1) & (ref != 1)).sum(axis=1)
        fn = ((pred != 1) & (ref == 1)).sum(axis=1)
        denominator = 2 * tp + fp + fn
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    if metric == "mcc":  # Gorodkin's R_K from the confusion counts, as sklearn.metrics.matthews_corrcoef
        correct = (pred == ref).sum(axis=1).astype(np.float64)
        predicted_sq = np.zeros(len(pred))
        true_sq = np.zeros(len(pred))
        cross = np.zeros(len(pred))
        for k in np.union1d(np.unique(pred), np.unique(ref)):
            p_k = (pred == k).sum(axis=1).astype(np.float64)
            t_k = (ref == k).sum(axis=1).astype(np.float64)
            predicted_sq += p_k * p_k
            true_sq += t_k * t_k
            cross += p_k * t_k
        denominator = (n * n - predicted_sq) * (n * n - true_sq)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = (correct * n - cross) / np.sqrt(denominator)
        return np.where(denominator > 0, value, 0.0)
    if metric in ("pearson", "spearman"):
        x, y = pred.astype(np.float64), ref.astype(np.float64)
        constant = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0)
        if metric == "spearman":
            from scipy.stats import rankdata

            x, y = rankdata(x, axis=1), rankdata(y, axis=1)
        x = x - x.mean(axis=1, keepdims=True)
        y = y - y.mean(axis=1, keepdims=True)
        denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            value = (x * y).sum(axis=1) / denominator
        return np.where(constant | ~np.isfinite(value), 0.0, np.clip(value, -1.0, 1.0))
    raise ValueError(f"no vectorised bootstrap for metric {metric!r}: pass a function (predictions, labels) -> float")


def paired_bootstrap(metric: str | Callable[[Any, Any], float], mine: Sequence[Any], reference: Sequence[Any],
                     labels: Sequence[Any] | Any, *, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = LEVEL) -> dict[str, Any]:
    """The paired bootstrap interval of ``mean over seeds of metric(mine[s]) − metric(reference[s])``.

    ``mine[s]`` and ``reference[s]`` are the predictions of seed s of the strategy and of the reference on the
    same n evaluation examples, whose labels are ``labels[s]`` (or one array for every seed). Returns ``delta``
    (the difference on the examples themselves), ``low`` and ``high`` (the percentiles (1 − level)/2 and
    (1 + level)/2 of the resampled differences), ``excludes_zero``, ``level``, ``resamples``, ``seed``,
    ``examples`` (n) and ``seeds``. The resampled indices come from ``numpy.random.default_rng(seed)``, drawn
    row after row (a resample is ``rng.integers(0, n, n)``), so the same inputs give the same interval.
    """
    import numpy as np

    if len(mine) != len(reference) or not len(mine):
        raise ValueError(f"{len(mine)} prediction arrays against {len(reference)}: give one per seed for both")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1 (got {resamples})")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    # with a metric function, an example may be a row of its own (a tagged sentence: [n, W]); resamples draw rows
    rows = callable(metric) and np.asarray(mine[0]).ndim > 1
    a = [np.asarray(m) if rows else np.asarray(m).reshape(-1) for m in mine]
    b = [np.asarray(r) if rows else np.asarray(r).reshape(-1) for r in reference]
    extra = a[0].ndim - 1  # the dimensions of one example
    try:
        given = np.asarray(labels)
    except ValueError:  # arrays of different lengths
        raise ValueError("every seed's labels must hold the same number of examples") from None
    ys = [given.reshape(-1) if not extra else given] * len(a) if given.ndim == 1 + extra else list(given)
    if given.ndim > 2 + extra or len(ys) != len(a):
        raise ValueError(f"labels: give one array, or one per seed ({len(a)})")
    n = len(ys[0])
    if n == 0 or any(len(x) != n for x in (*a, *b, *ys)):
        raise ValueError("every seed's predictions and labels must hold the same (non-zero) number of examples")

    def score(predictions, y):
        return metric_scores(metric, predictions, y)

    delta = float(np.mean([score(p[None], y[None])[0] - score(q[None], y[None])[0]
                           for p, q, y in zip(a, b, ys, strict=False)]))
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        index = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        total = np.zeros(len(index))
        for p, q, y in zip(a, b, ys, strict=False):
            total += score(p[index], y[index]) - score(q[index], y[index])
        diffs[start:start + len(index)] = total / len(a)
    tail = 100 * (1 - level) / 2
    low, high = (float(v) for v in np.percentile(diffs, [tail, 100 - tail]))
    return {"delta": delta, "low": low, "high": high, "excludes_zero": bool(low > 0 or high < 0), "level": level,
            "resamples": resamples, "seed": seed, "examples": n, "seeds": len(a)}

