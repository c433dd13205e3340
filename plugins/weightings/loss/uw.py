"""Weighting ``uw``: uncertainty weighting (Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
Losses for Scene Geometry and Semantics", CVPR 2018, arXiv 1705.07115).

Each task i of the run has a learnable log-variance s_i = log σ_i² (initially 0: σ_i² = 1, weight ½). The loss is
the common form of the paper's Eq. 7, Σ_i ½·e^{−s_i}·L_i + ½·s_i over the tasks of the step, L_i the task's mean
instance loss (TorchJD's ``torchjd.scalarization.UW``; Eq. 7 itself has 1/σ² for a classification task and 1/(2σ²)
for a regression one, the common form — TorchJD, LibMTL — uses ½ for every task). The network's gradient weights
L_i by ½·e^{−s_i} (logged as ``weight.<task>``); the s_i are extra parameters (``parameters()``) trained by the run's
optimizer without weight decay, at the run's learning rate or at option ``lr``, and checkpointed with it:
dL/ds_i = ½·(1 − e^{−s_i}·L_i), so s_i drifts towards log L_i — at BERT learning rates (2·10⁻⁵) too slowly to
matter in a few epochs (Adam moves s_i by about lr per step), hence ``--set uw.lr=0.01``.

Sampler: each task's term involves that task alone, so it works with any sampler — a task trained on its own step
still gets its own weight ½·e^{−s_i}; with ``all`` every step weighs every task, as in the paper.
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class UncertaintyWeighting(Weighting):
    family = "loss"

    def __init__(self, lr: float | None = None) -> None:
        super().__init__()
        self.parameters_lr = lr  # the log-variances' learning rate; None: the run's
        self.tasks: list[str] = []
        self.scalarizer = None  # torchjd.scalarization.UW: one log-variance per task of the run

    def setup(self, run) -> None:
        from torchjd.scalarization import UW

        self.tasks = list(run.tasks)
        self.scalarizer = UW(len(self.tasks)).to(run.device)

    def parameters(self) -> list:
        return [self.scalarizer.log_var] if self.scalarizer is not None else []

    def loss(self, step):
        import torch
        from torch.func import functional_call

        losses = step.task_losses()
        log_var = self.scalarizer.log_var[[self.tasks.index(task) for task in losses]]  # the step's tasks, in order
        step.record_weights({task: 0.5 * torch.exp(-s.detach()) for task, s in zip(losses, log_var, strict=True)})
        return functional_call(self.scalarizer, {"log_var": log_var}, (torch.stack(list(losses.values())),))


@hookimpl
def register_weightings(register):
    register("uw", UncertaintyWeighting,
             description="learned homoscedastic-uncertainty task weights (Kendall, Gal & Cipolla, CVPR 2018)")
