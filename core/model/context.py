"""What a weighting sees at setup: the model, the tasks, the target, and a way to encode examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mtl.contract.task import Task
from mtl.data.batching import Encoded, sorted_batches
from mtl.model.multitask import MultiTaskModel
from mtl.model.perturbation import perturbed, word_embeddings


def cls_features(hidden_states: tuple[torch.Tensor, ...], layers: int = 1) -> torch.Tensor:
    """Memory feature Z (MAMT, Yan et al. 2022): the mean [CLS] vector of the last ``layers`` layers, detached."""
    stacked = torch.stack([hidden_states[-i][:, 0] for i in range(1, layers + 1)])
    return stacked.mean(dim=0).detach().float()


@dataclass
class Run:
    config: Any  # RunConfig
    model: MultiTaskModel
    tasks: dict[str, Task]
    target: str | None
    train: dict[str, Encoded]
    device: torch.device
    rng: torch.Generator  # the weighting's own generator, seeded from the run seed
    total_steps: int = 0
    steps_per_epoch: int = 0  # Σ_t ⌈N_t / B⌉: one epoch is every task's training data once
    extra: dict[str, Any] = field(default_factory=dict)
    gather_fn: Any = None  # set by the trainer on steps whose batch is split over distributed ranks

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """This step's ``tensor`` (first dimension = instances) over all ranks, in batch order.

        Under torchrun every rank sees a contiguous shard of the step's batch; a weighting that must see the
        whole batch (MAMT's memory replacement) gathers it here. In a single process it returns ``tensor``.
        """
        return self.gather_fn(tensor) if self.gather_fn is not None else tensor

    @property
    def hidden_size(self) -> int:
        return self.model.hidden_size

    @property
    def embedding_size(self) -> int:
        """Width E of the backbone's word embeddings (ValueError where it has no word-embedding table)."""
        return word_embeddings(self.model).embedding_dim

    def forward(self, task: str, batch: dict[str, torch.Tensor], *,
                embedding_delta: torch.Tensor | None = None) -> torch.Tensor:
        """``task``'s outputs for ``batch``; with ``embedding_delta`` [B, S, E], on word embeddings x + δ."""
        if embedding_delta is None:
            return self.model(task, batch)[0]
        with perturbed(word_embeddings(self.model), embedding_delta):
            return self.model(task, batch)[0]

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @torch.no_grad()
    def encode(self, task: str, n: int, layers: int = 1) -> torch.Tensor:
        """Features [min(n, N), D] of ``n`` training examples of ``task`` drawn with ``self.rng``."""
        data = self.train[task]
        order = torch.randperm(len(data), generator=self.rng)[:n].tolist()
        was_training = self.model.training
        self.model.eval()
        try:
            every = data.lengths
            lengths = [every[i] for i in order]
            out = torch.empty(len(order), self.hidden_size)
            for batch_positions in sorted_batches(lengths, self.config.eval_batch_size):
                batch = data.collate([order[p] for p in batch_positions])
                batch = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
                _, hidden_states = self.model.encode(task, self.model.backbone_batch(task, batch))
                features = self.model.features(task, batch, cls_features(hidden_states, layers))
                out[batch_positions] = features.cpu()
        finally:
            self.model.train(was_training)
        return out.to(self.device)
