"""AdamW with linear warm-up and linear decay (Devlin et al. 2019; MT-DNN, Liu et al. 2019).

Biases, norms and task vectors are exempt from weight decay; a weighting's own parameters (gates, log-variances)
are trained without decay.
"""

from __future__ import annotations

import torch


def parameter_groups(model: torch.nn.Module, extra: list, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            exempt = p.ndim < 2 or "norm" in name.lower() or "task_embedding" in name  # biases, norms, task vectors
            (no_decay if exempt else decay).append(p)
    extra = [p for p in extra if all(p is not q for q in decay + no_decay)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay + extra, "weight_decay": 0.0}]


def linear_schedule(total_steps: int, warmup_steps: int):
    """The learning-rate factor of each step: (step+1)/(warmup+1) while warming up, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def build(model: torch.nn.Module, extra: list, *, lr: float, weight_decay: float, warmup: float, total_steps: int):
    """``(optimizer, scheduler)`` for ``model`` plus the ``extra`` parameters of the weighting."""
    optimizer = torch.optim.AdamW(parameter_groups(model, extra, weight_decay), lr=lr)
    schedule = linear_schedule(total_steps, int(warmup * total_steps))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
