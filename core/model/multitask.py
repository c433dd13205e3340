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
    """``tasks`` (name -> :class:`mtl.Task`) gives each head its task's type (:attr:`mtl.Task.kind`): how the batch
    is encoded, what the head reads (the pooled feature, or every token's last hidden state) and the shape of its
    logits; without it every head is a classification head on the pooled feature (``outputs`` per task)."""

    def __init__(self, backbone: Backbone, outputs: dict[str, int], dropout: float = 0.1,
                 tasks: dict | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({name: Head(backbone.hidden_size, n, dropout) for name, n in outputs.items()})
        self.feature_map: nn.Module | None = None  # optional module(pooled, task) -> task feature
        self.task_ids = {name: i for i, name in enumerate(outputs)}  # stable ids, in run order (target first)
        self.tasks = dict(tasks or {})  # not modules: the types' methods
        if hasattr(backbone, "configure_tasks"):  # e.g. task embeddings need the number of tasks
            backbone.configure_tasks(list(outputs))

    @property
    def hidden_size(self) -> int:
        return self.backbone.hidden_size

    def encode(self, task: str, batch: dict[str, torch.Tensor]):
        """The backbone's (pooled, hidden_states) for ``batch`` as an instance of ``task`` (already in the shape the
        backbone takes: see :meth:`backbone_batch`)."""
        if getattr(self.backbone, "uses_task_ids", False):  # task embeddings (TEA-BERT)
            batch = {**batch, "task_ids": torch.full((batch["input_ids"].shape[0],), self.task_ids[task],
                                                     dtype=torch.long, device=batch["input_ids"].device)}
        return self.backbone(batch)

    def backbone_batch(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``batch`` as the backbone encodes it (multiple choice: [B, k, L] flattened to [B·k, L])."""
        owner = self.tasks.get(task)
        return owner.kind.backbone_batch(batch) if owner is not None else batch

    def features(self, task: str, batch: dict[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """One feature vector per instance [B, H] from one per encoded sequence (the type pools choices)."""
        owner = self.tasks.get(task)
        return owner.kind.features(owner, features, batch) if owner is not None else features

    def forward(self, task: str, batch: dict[str, torch.Tensor]):
        """Logits of ``task`` for ``batch`` (in the shape of its type), with the pooled feature and all hidden
        states of the encoded sequences."""
        owner = self.tasks.get(task)
        pooled, hidden_states = self.encode(task, self.backbone_batch(task, batch))
        source = pooled if owner is None or owner.kind.reads == "pooled" else hidden_states[-1]
        if self.feature_map is not None:  # a module on vectors: every token's, for a type that reads them all
            source = self.feature_map(source.reshape(-1, source.shape[-1]), task).view(source.shape)
        logits = self.heads[task](source)
        if owner is not None:
            logits = owner.kind.logits(owner, logits, batch)
        return logits, pooled, hidden_states
