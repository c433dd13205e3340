"""The GLUE metrics (Wang et al., ICLR 2019): accuracy, F1 (positive class 1), macro-F1 (SuperGLUE's CB), Matthews
correlation (CoLA), Pearson and Spearman correlation (STS-B).

scikit-learn and scipy are imported only when a metric is computed. Inputs may be lists, numpy arrays or
torch tensors; results are Python floats. Correlations that are undefined (a constant input) are 0.0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

from mtl.errors import unknown

METRICS = ("accuracy", "f1", "f1_macro", "mcc", "pearson", "spearman")


def _array(values: Any):
    import numpy as np

    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values).reshape(-1)


def compute(names: Iterable[str], predictions: Any, references: Any) -> dict[str, float]:
    """``{name: value}`` for each metric name; ValueError for an unknown name or mismatched inputs."""
    names = list(names)
    for name in names:
        if name not in METRICS:
            raise ValueError(unknown("metric", name, METRICS))
    pred, ref = _array(predictions), _array(references)
    if pred.shape != ref.shape:
        raise ValueError(f"{len(pred)} predictions but {len(ref)} references")
    if len(pred) == 0:
        raise ValueError("no predictions to score")
    return {name: _one(name, pred, ref) for name in names}


def _one(name: str, pred, ref) -> float:
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "accuracy":
            from sklearn.metrics import accuracy_score

            value = accuracy_score(ref, pred)
        elif name == "f1":
            from sklearn.metrics import f1_score

            value = f1_score(ref, pred, pos_label=1, average="binary", zero_division=0.0)
        elif name == "f1_macro":  # the mean over the classes of each class's F1 (CB in SuperGLUE)
            from sklearn.metrics import f1_score

            value = f1_score(ref, pred, average="macro", zero_division=0.0)
        elif name == "mcc":
            from sklearn.metrics import matthews_corrcoef

            value = matthews_corrcoef(ref, pred)
        else:
            pred, ref = pred.astype(np.float64), ref.astype(np.float64)
            if np.ptp(pred) == 0 or np.ptp(ref) == 0:  # a constant input: the correlation is undefined
                return 0.0
            from scipy.stats import pearsonr, spearmanr

            value = (pearsonr if name == "pearson" else spearmanr)(pred, ref)[0]
    value = float(value)
    return value if math.isfinite(value) else 0.0
