"""The multi-task model: one shared backbone, one head per task (Liu et al., MT-DNN, ACL 2019).

A head is dropout + linear on the backbone's pooled feature, the same shape as the classifier of
``BertForSequenceClassification``. A weighting may put a module between backbone and heads (MMoE's
experts and gates) through ``feature_map``; it is then trained and saved with the model.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl.model.backbone import Backbone


class Head(nn.Module):
    def __init__(self, hidden_size: int, outputs: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, outputs)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class MultiTaskModel(nn.Module):
    def __init__(self, backbone: Backbone, outputs: dict[str, int], dropout: float = 0.1) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({name: Head(backbone.hidden_size, n, dropout) for name, n in outputs.items()})
        self.feature_map: nn.Module | None = None  # optional module(pooled, task) -> task feature
        self.task_ids = {name: i for i, name in enumerate(outputs)}  # stable ids, in run order (target first)
        if hasattr(backbone, "configure_tasks"):  # e.g. task embeddings need the number of tasks
            backbone.configure_tasks(list(outputs))

    @property
    def hidden_size(self) -> int:
        return self.backbone.hidden_size

    def encode(self, task: str, batch: dict[str, torch.Tensor]):
        """The backbone's (pooled, hidden_states) for ``batch`` as an instance of ``task``."""
        if getattr(self.backbone, "uses_task_ids", False):  # task embeddings (TEA-BERT)
            batch = {**batch, "task_ids": torch.full((batch["input_ids"].shape[0],), self.task_ids[task],
                                                     dtype=torch.long, device=batch["input_ids"].device)}
        return self.backbone(batch)

    def forward(self, task: str, batch: dict[str, torch.Tensor]):
        """Logits of ``task`` for ``batch``, with the pooled feature and all hidden states."""
        pooled, hidden_states = self.encode(task, batch)
        feature = self.feature_map(pooled, task) if self.feature_map is not None else pooled
        return self.heads[task](feature), pooled, hidden_states
