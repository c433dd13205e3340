"""Weighting ``gls``: the geometric loss strategy (Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream
Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019, arXiv 1904.08492).

The loss is the geometric mean of the task losses, (Π_i L_i)^{1/T} = exp(mean_i log L_i), over the T tasks of the
step, L_i the task's mean instance loss (TorchJD's ``torchjd.scalarization.GeometricMean``). Its gradient weights
L_i by GLS/(T·L_i): a task whose loss is small counts more, so no task is left behind; that weight is logged as
``weight.<task>``. Nothing is learned and nothing is kept between steps.

Sampler: use ``all``. With one task per step the geometric mean of one loss is that loss (plain training).
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class GeometricLossStrategy(Weighting):
    family = "loss"

    def loss(self, step):
        import torch
        from torchjd.scalarization import GeometricMean

        losses = step.task_losses()
        values = torch.stack(list(losses.values()))
        total = GeometricMean()(values)
        gradient_weights = total.detach() / (len(values) * values.detach())  # d GLS / d L_i
        step.record_weights(dict(zip(losses, gradient_weights, strict=True)))
        return total


@hookimpl
def register_weightings(register):
    register("gls", GeometricLossStrategy,
             description="geometric mean of the task losses (Chennupati et al., MultiNet++, CVPRW 2019)")
