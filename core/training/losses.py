"""A micro-batch's losses: one forward for all its tasks, each task's per-instance loss (with the ``loss`` hooks of
the run's callbacks, e.g. distillation's soft-target term), and the one collective that makes every rank agree on
what is not finite and on each task's mean over the global batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mtl.model.context import cls_features
from mtl.training import distributed
from mtl.training.batches import MicroBatch


@dataclass
class Losses:
    """What the weighting is given of a micro-batch: per task the per-instance losses, the memory features, every
    layer's hidden states and the float32 outputs."""

    losses: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    hidden: dict[str, tuple] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


def compute(forward, micro: MicroBatch, tasks: dict, hooks: tuple, autocast) -> Losses:
    """The forward of every task of ``micro`` (under ``autocast``) and each task's per-instance loss, passed through
    each hook's ``loss(task, losses, logits, rows)``."""
    with autocast():
        outputs = forward(micro.batches)
    out = Losses({})
    for name, (logits, _, hidden_states) in outputs.items():
        out.outputs[name] = logits = logits.float()
        losses = tasks[name].loss(logits, micro.batches[name]["labels"])
        for hook in hooks:
            losses = hook.loss(name, losses, logits, micro.rows[name])
        out.losses[name] = losses
        out.features[name] = tasks[name].kind.features(tasks[name], cls_features(hidden_states), micro.batches[name])
        out.hidden[name] = hidden_states
    return out


@dataclass
class Consensus:
    """What every rank agrees on for a micro-batch: the first task whose losses are not finite (None: all are),
    each task's mean instance loss over the global batch, and this rank's and the global instance counts."""

    bad: str | None
    means: dict[str, float]
    local: float
    total: float


def agree(ctx: distributed.Context, losses: dict[str, torch.Tensor], split: bool) -> Consensus:
    """One collective for non-finite flags, loss sums and instance counts (replicated micro-batches count once)."""
    names = list(losses)
    flags = [0.0 if bool(torch.isfinite(losses[n]).all()) else 1.0 for n in names]
    sums = [float(losses[n].detach().double().sum()) if not flags[i] else 0.0 for i, n in enumerate(names)]
    counts = [float(losses[n].numel()) for n in names]
    share = 1.0 if split or not ctx.enabled else 1.0 / ctx.world
    reduced = ctx.sum(flags + [x * share for x in sums + counts])
    k = len(names)
    bad = next((n for i, n in enumerate(names) if reduced[i] > 0), None)
    means = {n: reduced[k + i] / reduced[2 * k + i] for i, n in enumerate(names)}
    return Consensus(bad, means, sum(counts), sum(reduced[2 * k:]))


def after_update(forward, micro: MicroBatch, tasks: dict, hooks: tuple, autocast,
                 ctx: distributed.Context) -> dict[str, torch.Tensor]:
    """Each task's mean instance loss on ``micro`` under the updated model (no graph; over every rank), for
    :meth:`mtl.Step.losses_after_update`."""
    with torch.no_grad():
        computed = compute(forward, micro, tasks, hooks, autocast)
    names = list(computed.losses)
    sums = [float(computed.losses[n].double().sum()) for n in names]
    counts = [float(computed.losses[n].numel()) for n in names]
    share = 1.0 if micro.split or not ctx.enabled else 1.0 / ctx.world
    reduced = ctx.sum([x * share for x in sums + counts])
    k = len(names)
    return {n: torch.tensor(reduced[i] / reduced[k + i]) for i, n in enumerate(names)}
