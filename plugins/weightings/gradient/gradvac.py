"""Weighting ``gradvac``: gradient vaccine (Wang, Tsvetkov, Firat & Cao, "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models", ICLR 2021, arXiv 2010.05874, Algorithm 1; TorchJD's
``GradVac``).

For each task i and every other task j in a random order, with φ_ij the cosine of the (already corrected) g_i with the
original g_j and φ̂_ij its target, an exponential moving average of past cosines: if φ_ij < φ̂_ij, g_i gets
g_i ← g_i + g_j·‖g_i‖(φ̂_ij√(1 − φ_ij²) − φ_ij√(1 − φ̂_ij²)) / (‖g_j‖√(1 − φ̂_ij²)) (Eq. 5, which brings the cosine
up to φ̂_ij); then φ̂_ij ← (1 − β)φ̂_ij + βφ_ij (targets start at 0). The update is Σ_i g_i; the logged weights are each
original gradient's coefficient in it. The orders come from the run's generator and the targets φ̂ are checkpointed.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class GradVac(TorchJDWeighting):
    name = "gradvac"

    def __init__(self, beta: float = 0.5, eps: float = 1e-8):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] (got {beta})")
        if eps < 0:
            raise ValueError(f"eps must be >= 0 (got {eps})")
        self.beta, self.eps = beta, eps

    def build(self, tasks):
        from torchjd.aggregation import GradVac as Aggregator

        return Aggregator(beta=self.beta, eps=self.eps)


@hookimpl
def register_weightings(register):
    register("gradvac", GradVac, description="raise conflicting gradient cosines to their running targets "
                                             "(Wang et al., ICLR 2021, arXiv 2010.05874)")
