"""Multi-label classification: one or two texts and a *set* of ``labels`` (a ``classification`` task declared with
``multi_label = True``). One sigmoid per label; the per-instance loss is the mean over the labels of the binary
cross-entropy (transformers' ``problem_type="multi_label_classification"``); a label is predicted when its logit is
above 0. Metrics (scikit-learn on the label-indicator matrix): ``f1_micro`` (F1 of all (example, label) decisions
pooled), ``f1_macro`` (the mean over labels of each label's F1) and ``accuracy`` (the share of examples whose
predicted set is exactly their label set).

Rows are records (JSONL, JSON, Parquet, the Hub, CSV/TSV): the label column holds a list of label names (or
indices), or in a CSV/TSV cell the names joined by ``label_separator``.
"""

from __future__ import annotations

from typing import Any

from mtl.contract.types.choice import text
from mtl.contract.types.classification import Classification
from mtl.errors import DataError


class MultiLabelClassification(Classification):
    name = "multi-label-classification"
    structured = True
    default_metrics = ("f1_micro", "f1_macro", "accuracy")
    metric_names = ("f1_micro", "f1_macro", "accuracy")

    def convert_row(self, task, record: dict, where: str, labelled: bool) -> dict | None:
        row: dict[str, Any] = {column: text(record, column, where, task) for column in task.text_columns}
        if labelled:
            row["label"] = self.indicator(task, record, where)
        return row

    def indicator(self, task, record: dict, where: str) -> list[float]:
        """The row's label set as a 0/1 vector over ``task.labels``."""
        if task.label_column not in record:
            raise DataError(f"{where}: missing label column {task.label_column!r} of task {task.name!r}; the "
                            f"columns are: {', '.join(repr(k) for k in record)}")
        value = record[task.label_column]
        if hasattr(value, "tolist"):  # numpy from Parquet
            value = value.tolist()
        if isinstance(value, str):
            value = [part.strip() for part in value.split(task.label_separator) if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{where}: the labels of task {task.name!r} must be a list (got {value!r})")
        index = {name: i for i, name in enumerate(task.labels)}
        out = [0.0] * len(task.labels)
        for label in value:
            if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(task.labels):
                out[label] = 1.0
            elif isinstance(label, str) and label in index:
                out[index[label]] = 1.0
            else:
                raise DataError(f"{where}: unknown label {label!r} for task {task.name!r}; valid labels: "
                                f"{', '.join(task.labels)}")
        return out

    def label_dtype(self, task):
        import torch

        return torch.float32

    # ------------------------------------------------------------------------------------------ model
    def loss(self, task, logits, labels):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none").mean(dim=-1)

    def categorical(self, task, logits):
        """Each label's Bernoulli as a two-way categorical row [B·C, 2]: softmax([0, z]) = (1 − σ(z), σ(z))."""
        import torch

        return torch.stack([torch.zeros_like(logits), logits], dim=-1).reshape(-1, 2)

    def predict(self, task, logits):
        return (logits > 0).long()

    # ------------------------------------------------------------------------------------------ evaluation
    def score(self, task, data, predictions: list) -> tuple[Any, Any]:
        import torch

        return torch.stack(list(predictions)).long(), data.labels.long()

    def compute_metrics(self, task, predictions, references) -> dict[str, float]:
        import warnings

        import numpy as np
        from sklearn.metrics import accuracy_score, f1_score

        pred, ref = np.asarray(predictions).astype(int), np.asarray(references).astype(int)
        if pred.shape != ref.shape or pred.ndim != 2 or len(pred) == 0:
            raise ValueError(f"multi-label scores are [examples, labels] rows (got {pred.shape} and {ref.shape})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = {"f1_micro": lambda: f1_score(ref, pred, average="micro", zero_division=0.0),
                      "f1_macro": lambda: f1_score(ref, pred, average="macro", zero_division=0.0),
                      "accuracy": lambda: accuracy_score(ref, pred)}
            return {name: float(values[name]()) for name in task.metrics}

    # ------------------------------------------------------------------------------------------ output
    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """The predicted label set of each example, and every label's probability."""
        out = []
        for row_logits in logits:
            p = row_logits.float().sigmoid()
            out.append({"labels": [name for name, q in zip(task.labels, p, strict=True) if q > 0.5],
                        "probabilities": {name: float(q) for name, q in zip(task.labels, p, strict=True)}})
        return out

    def problem_type(self, task) -> str | None:
        return "multi_label_classification"
