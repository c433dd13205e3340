"""Weighting ``pcgrad``: projecting conflicting gradients (Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery
for Multi-Task Learning", NeurIPS 2020, arXiv 2001.06782, Algorithm 1; TorchJD's ``PCGrad``).

For each task i, g_i^PC starts at g_i and, for every other task j in a random order, if g_i^PC·g_j < 0 (a conflict)
it is projected onto the normal plane of the original g_j: g_i^PC ← g_i^PC − (g_i^PC·g_j / ‖g_j‖²) g_j. The update is
Σ_i g_i^PC. TorchJD computes it on the Gramian, as coefficients of the original gradients (logged as
``weight.<task>``: 1 when nothing conflicts). Each task's visiting order is a ``torch.randperm`` of all tasks drawn
from the global generator seeded from the run's generator at each step (see ``_torchjd``), so it is reproducible and
the same on every rank. ``pcgrad.conflicts`` logs the number of task pairs whose gradients conflict.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class PCGrad(TorchJDWeighting):
    name = "pcgrad"

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def build(self, tasks):
        from torchjd.aggregation import PCGrad as Aggregator

        return Aggregator()

    def aggregate(self, jacobian, tasks, step):
        gramian = jacobian @ jacobian.T
        self.conflicts = int((gramian.triu(diagonal=1) < 0).sum())
        return super().aggregate(jacobian, tasks, step)

    def log(self) -> dict[str, float]:
        return {**super().log(), "pcgrad.conflicts": float(self.conflicts)}


@hookimpl
def register_weightings(register):
    register("pcgrad", PCGrad,
             description="gradient surgery: project conflicting task gradients (Yu et al., NeurIPS 2020)")
