"""Type ``regression``: one or two texts, one score out (squared error; STS-B, Cer et al. 2017). The default type
of a task without labels."""

from __future__ import annotations

from mtl.contract.types.base import TaskType


class Regression(TaskType):
    name = "regression"
    default_metrics = ("pearson", "spearman")
    metric_names = ("pearson", "spearman")

    def check(self, task) -> None:
        if task.labels is not None:
            raise ValueError(f"task {task.name!r} (regression): a regression has no labels (got {task.labels!r})")
        if len(task.text_columns) not in (1, 2):
            raise ValueError(f"task {task.name!r} (regression): one or two text columns "
                             f"(got {len(task.text_columns)})")
        super().check(task)

    def outputs(self, task) -> int:
        return 1

    def problem_type(self, task) -> str | None:
        return "regression"

    def label_dtype(self, task):
        import torch

        return torch.float32

    def loss(self, task, logits, labels):
        import torch.nn.functional as F

        return F.mse_loss(logits.view(-1).float(), labels.float(), reduction="none")

    def categorical(self, task, logits):
        return None

    def predict(self, task, logits):
        return logits.view(-1)

    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        return [{"score": float(row.view(-1)[0])} for row in logits]
