"""Weighting ``imtl-l``: the loss balance of impartial multi-task learning (Liu et al., "Towards Impartial Multi-task
Learning", ICLR 2021, §3.2, IMTL-L).

Each task i of the run has a learnable scale parameter s_i (initially 0: weight 1); the loss is
Σ_i e^{s_i}·L_i − s_i over the tasks of the step, L_i the task's mean instance loss (TorchJD's
``torchjd.scalarization.IMTLL``). The network's gradient weights L_i by e^{s_i} (logged as ``weight.<task>``); the s_i
are extra parameters (``parameters()``) trained by the run's optimizer without weight decay, at the run's learning
rate or at option ``lr``, and checkpointed with it: dL/ds_i = e^{s_i}·L_i − 1, so the scaled loss e^{s_i}·L_i is
driven towards 1 for every task (at BERT learning rates slowly: ``--set imtl-l.lr=0.01`` speeds it up). IMTL's
gradient balance (IMTL-G) is a gradient method, not this one.

Sampler: each task's term involves that task alone, so it works with any sampler — a task trained on its own step
is still scaled by its own e^{s_i}; with ``all`` every step balances every task, as in the paper.
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class ImpartialLossBalance(Weighting):
    family = "loss"

    def __init__(self, lr: float | None = None) -> None:
        super().__init__()
        self.parameters_lr = lr  # the scale parameters' learning rate; None: the run's
        self.tasks: list[str] = []
        self.scalarizer = None  # torchjd.scalarization.IMTLL: one scale parameter per task of the run

    def setup(self, run) -> None:
        from torchjd.scalarization import IMTLL

        self.tasks = list(run.tasks)
        self.scalarizer = IMTLL(len(self.tasks)).to(run.device)

    def parameters(self) -> list:
        return [self.scalarizer.log_scale] if self.scalarizer is not None else []

    def loss(self, step):
        import torch
        from torch.func import functional_call

        losses = step.task_losses()
        scale = self.scalarizer.log_scale[[self.tasks.index(task) for task in losses]]  # the step's tasks, in order
        step.record_weights({task: torch.exp(s.detach()) for task, s in zip(losses, scale, strict=True)})
        return functional_call(self.scalarizer, {"log_scale": scale}, (torch.stack(list(losses.values())),))


@hookimpl
def register_weightings(register):
    register("imtl-l", ImpartialLossBalance,
             description="learned loss scales e^s·L − s, IMTL's loss balance (Liu et al., ICLR 2021)")
