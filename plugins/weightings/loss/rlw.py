"""Weighting ``rlw``: random loss weighting (Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting: A
Litmus Test for Multi-Task Learning", TMLR 2022, arXiv 2111.10603; RLW with normal draws, softmax-normalised).

Every step draws λ = softmax(ε), ε ~ N(0, I) with one entry per task of the step, and minimises Σ_i λ_i·L_i, L_i the
task's mean instance loss: positive weights summing to 1, new at every step (logged as ``weight.<task>``). The draws
come from the run's generator (``run.rng``, seeded from ``--seed``, saved in every checkpoint and identical on every
rank), so a run is reproducible and a resumed run draws what the uninterrupted one drew. Written by hand rather than
with ``torchjd.scalarization.Random``, which draws from torch's global generator.

Sampler: use ``all``. With one task per step its weight is softmax of one draw, 1 (plain training).
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class RandomLossWeighting(Weighting):
    family = "loss"

    def __init__(self) -> None:
        super().__init__()
        self.rng = None

    def setup(self, run) -> None:
        self.rng = run.rng

    def draw(self, count: int):
        """λ: the softmax of ``count`` standard normal draws from the run's generator."""
        import torch

        return torch.softmax(torch.randn(count, generator=self.rng), dim=0)

    def loss(self, step):
        losses = step.task_losses()
        weights = self.draw(len(losses))
        step.record_weights(dict(zip(losses, weights, strict=True)))
        return sum(float(weight) * value for weight, value in zip(weights, losses.values(), strict=True))


@hookimpl
def register_weightings(register):
    register("rlw", RandomLossWeighting,
             description="random softmax-normal task weights each step (Lin et al., TMLR 2022)")
