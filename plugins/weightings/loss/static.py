"""Weighting ``static``: fixed task weights, the "Constant" baseline of loss weighting (a hand-tuned weighted sum of
task losses, e.g. Kendall, Gal & Cipolla, CVPR 2018, arXiv 1705.07115, Eq. 1: L = Σ_i w_i·L_i, the baseline that
uncertainty weighting replaces; with every weight 1 it is LibMTL's equal weighting).

The loss is Σ_i w_i·L_i over the tasks of the step, L_i the task's mean instance loss and w_i the task's weight
given with option ``weights`` (``--set static.weights=mrpc:1,stsb:0.5``; a task not named weighs 1), computed by
TorchJD's ``torchjd.scalarization.Constant``. Nothing is learned and nothing is kept between steps.

Sampler: any. With ``all`` every step is the weighted sum of every task's loss; with one task per step a task's loss
is multiplied by its weight whenever it is trained (as siwlm's initial weights are).
"""

from __future__ import annotations

import difflib

from mtl import Weighting, hookimpl


class StaticWeights(Weighting):
    family = "loss"

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        for task, value in (weights or {}).items():
            if not value >= 0:
                raise ValueError(f"weights: the weight of {task!r} must be >= 0 (got {value})")
        self.given = {task: float(value) for task, value in (weights or {}).items()}
        self.task_weights: dict[str, float] = {}

    def setup(self, run) -> None:
        from mtl.errors import MtlError

        names = list(run.tasks)
        for task in self.given:
            if task not in names:
                close = difflib.get_close_matches(task, names, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise MtlError(f"weighting 'static': option 'weights' names task {task!r}, which is not in this run."
                               f"{hint} Tasks of this run: {', '.join(names)}")
        self.task_weights = {task: self.given.get(task, 1.0) for task in names}

    def loss(self, step):
        import torch
        from torchjd.scalarization import Constant

        losses = step.task_losses()
        values = torch.stack(list(losses.values()))
        weights = torch.tensor([self.task_weights.get(task, 1.0) for task in losses], dtype=values.dtype,
                               device=values.device)
        step.record_weights(dict(zip(losses, weights, strict=True)))
        return Constant(weights)(values)


@hookimpl
def register_weightings(register):
    register("static", StaticWeights,
             description="fixed task weights Σ w_i·L_i given as an option (the Constant baseline)")
