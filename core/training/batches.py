"""A step's batches: the sampler's task(s), ``grad_accum`` micro-batches of each from its stream, and this rank's
shard of each under torchrun (rank 0's choice of tasks for every rank)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtl.data.batching import Encoded, TaskStream
from mtl.training import distributed


@dataclass
class MicroBatch:
    """One micro-batch of a step: per task its tensors on the device and the training rows they hold (this rank's);
    ``split``: whether the global batch is sharded over the ranks (else every rank trains all of it)."""

    batches: dict[str, dict[str, torch.Tensor]]
    rows: dict[str, list[int]]
    split: bool

    @property
    def examples(self) -> int:
        return sum(len(r) for r in self.rows.values())


def choose(ctx: distributed.Context, sampler, step: int, progress: float, tasks: list[str]) -> list[str]:
    """The task(s) of ``step``: the sampler's choice on rank 0, the same on every rank."""
    return ctx.broadcast_choice(sampler.tasks(step, progress), tasks)


def draw(ctx: distributed.Context, names: list[str], streams: dict[str, TaskStream], data: dict[str, Encoded],
         device: torch.device) -> tuple[MicroBatch, int]:
    """The next batch of each task in ``names`` from its stream, sharded when distributed; and the number of
    instances of the global batch."""
    chosen = {name: streams[name].next_indices() for name in names}
    split = ctx.enabled and all(len(ix) >= ctx.world for ix in chosen.values())
    batches, rows = {}, {}
    for name, indices in chosen.items():
        local = rows[name] = ctx.shard(indices)[0] if split else indices
        batches[name] = {k: v.to(device) for k, v in data[name].collate(local).items()}
    return MicroBatch(batches, rows, split), sum(len(ix) for ix in chosen.values())
