"""Weighting ``mo-do``: multi-objective gradient with double sampling (Chen, Fernando, Ying & Chen, "Three-Way Trade-Off
in Multi-Objective Learning: Optimization, Generalization and Conflict-Avoidance", NeurIPS 2023 / JMLR 2024,
arXiv 2305.20057, Eq. 2.9; TorchJD's ``MoDoWeighting``).

The task weights λ take a projected gradient step on ½‖J λ‖² + (ρ/2)‖λ‖² with an unbiased estimate of the
Gramian from two independent samples: λ ← Π_Δ(λ − γ(J₁J₂ᵀλ + ρλ)) (Eq. 2.9a, λ₀ = 1/T, Π_Δ the projection onto the
simplex), and the update is Σ_i λ_i g_i (Eq. 2.9b). The two samples are the even and the odd rows of each task's batch
and the update uses the whole batch (see ``_torchjd.TwoSampleWeighting``; LibMTL draws a third batch for it). λ is
logged and checkpointed.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TwoSampleWeighting


class MoDo(TwoSampleWeighting):
    name = "mo-do"

    def __init__(self, gamma: float = 0.1, rho: float = 0.1):
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0 (got {gamma})")
        if rho < 0:
            raise ValueError(f"rho must be >= 0 (got {rho})")
        self.gamma, self.rho = gamma, rho

    def build(self, tasks):
        from torchjd.aggregation import MoDoWeighting

        return MoDoWeighting(gamma=self.gamma, rho=self.rho)


@hookimpl
def register_weightings(register):
    register("mo-do", MoDo, description="MGDA weights from a two-sample Gramian estimate, double sampling "
                                        "(Chen et al., NeurIPS 2023, arXiv 2305.20057)")
