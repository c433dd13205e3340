"""The optimizer and its schedule (``--lr-schedule``): ``linear``, linear warm-up then linear decay (Devlin et al.
2019); ``cosine``, warm-up then half a cosine down to 0 (Loshchilov & Hutter, SGDR, 2017) and ``constant``, warm-up
then the rate itself, both transformers' ``get_*_schedule_with_warmup``.

``adamw`` (Loshchilov & Hutter 2019: decoupled weight decay) is the default; ``adamax`` (Kingma & Ba 2015, §7.1:
Adam with the infinity norm) is what MT-DNN (Liu et al., ACL 2019) and SIWLM (Son et al. 2021) train with; its
weight decay is torch's L2 term added to the gradient. Biases, norms and task vectors are exempt from weight
decay; a weighting's own parameters (gates, log-variances) are trained without decay.
"""

from __future__ import annotations

import torch


def parameter_groups(model: torch.nn.Module, extra: list, weight_decay: float,
                     extra_lr: float | None = None) -> list[dict]:
    """torch parameter groups: the model's weight matrices with ``weight_decay``; biases, norms, task vectors and the
    weighting's ``extra`` parameters without; ``extra`` in a group of its own at ``extra_lr`` when that is given."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            exempt = p.ndim < 2 or "norm" in name.lower() or "task_embedding" in name  # biases, norms, task vectors
            (no_decay if exempt else decay).append(p)
    extra = [p for p in extra if all(p is not q for q in decay + no_decay)]
    if extra_lr is None or not extra:
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay + extra, "weight_decay": 0.0}]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0},
            {"params": extra, "weight_decay": 0.0, "lr": extra_lr}]


def _implementation(name: str, params: list[torch.Tensor]) -> dict:
    """``fused=True`` for AdamW when every parameter allows it (floating point on CPU or CUDA), else torch's default."""
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return {"fused": True} if name == "adamw" and params and fusable else {}


def linear_schedule(total_steps: int, warmup_steps: int):
    """The learning-rate factor of each step: (step+1)/(warmup+1) while warming up, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


OPTIMIZERS = {"adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}


def scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, warmup_steps: int):
    """The learning-rate scheduler ``schedule`` (linear, cosine, constant) of ``optimizer``."""
    if schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(total_steps, warmup_steps))
    import transformers

    if schedule == "cosine":
        return transformers.get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    if schedule == "constant":
        return transformers.get_constant_schedule_with_warmup(optimizer, warmup_steps)
    raise ValueError(f"lr schedule must be one of {', '.join(SCHEDULES)} (got {schedule!r})")


SCHEDULES = ("linear", "cosine", "constant")


def build(model: torch.nn.Module, extra: list, *, lr: float, weight_decay: float, warmup: float, total_steps: int,
          name: str = "adamw", extra_lr: float | None = None, schedule: str = "linear"):
    """``(optimizer, scheduler)`` for ``model`` plus the ``extra`` parameters of the weighting (at ``extra_lr``,
    default ``lr``); the schedule (:func:`scheduler`) scales every group's learning rate alike."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {name!r})")
    groups = parameter_groups(model, extra, weight_decay, extra_lr)
    optimizer = OPTIMIZERS[name](groups, lr=lr, **_implementation(name, [p for g in groups for p in g["params"]]))
    return optimizer, scheduler(optimizer, schedule, total_steps, int(warmup * total_steps))
