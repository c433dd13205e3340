"""The statistics of a bench table: means, sample standard deviations and paired t-tests over seeds.

A strategy's runs and the reference's are paired by seed; the test is the two-sided paired t-test
(``scipy.stats.ttest_rel``; Student 1908), which needs at least two pairs and some variance.
"""

from __future__ import annotations

import math
import statistics
from typing import Any


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
