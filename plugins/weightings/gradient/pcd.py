"""Weighting ``pcd``: priority-constrained descent ("Not All Objectives Are Born Equal: Priority-Constrained Descent for
Hierarchical Multi-Objective Optimization", TMLR 2026, arXiv 2606.29521; TorchJD's ``PCD``).

The target task is the primary objective (row 1), the auxiliary tasks secondary. With g̃_i = s_i g_i the gradients
normalised by s_i = 1/√(v̂_i + ε), v̂_i the bias-corrected moving average (decay β) of ‖g_i‖², the update follows the
target's gradient as closely as the constraints allow: d̃ = argmin_d ½‖d − g̃₁‖² s.t. g̃_jᵀd ≥ τ‖g̃_j‖² for every
auxiliary task j (each gets at least the fraction τ of the progress a step along its own normalised gradient would
give), rescaled to ‖g₁‖; infeasible constraints are dropped (the update is then g₁). Solved exactly on the Gramian
(Goldfarb–Idnani active set). It needs ``--target``; the moving averages are checkpointed; the weights are logged.
"""

from __future__ import annotations

from mtl import hookimpl
from mtl.errors import MtlError

from ._torchjd import TorchJDWeighting


class PCD(TorchJDWeighting):
    name = "pcd"
    target_first = True

    def __init__(self, tau: float = 0.02, beta: float = 0.999, eps: float = 1e-8):
        super().__init__()
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1] (got {tau})")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1) (got {beta})")
        if eps < 0:
            raise ValueError(f"eps must be >= 0 (got {eps})")
        self.tau, self.beta, self.eps = tau, beta, eps

    def check(self, tasks, target):
        if target is None or target not in tasks:
            raise MtlError("weighting 'pcd' needs a --target: the target task is its primary objective")

    def build(self, tasks):
        from torchjd.aggregation import PCD as Aggregator

        return Aggregator(tau=self.tau, beta=self.beta, eps=self.eps)


@hookimpl
def register_weightings(register):
    register("pcd", PCD, description="follow the target's gradient, guaranteeing each auxiliary task progress "
                                     "(priority-constrained descent, TMLR 2026, arXiv 2606.29521)")
