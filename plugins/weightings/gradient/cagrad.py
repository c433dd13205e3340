"""Weighting ``cagrad``: conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient
Descent for Multi-task Learning", NeurIPS 2021, arXiv 2110.14048; TorchJD's ``CAGrad``).

With g₀ the mean gradient, the update d maximises the worst task's improvement min_i ⟨g_i, d⟩ within the ball
‖d − g₀‖ ≤ c‖g₀‖ (Eq. 2). Its dual (Algorithm 1): w = argmin_{w ∈ Δ} g_wᵀg₀ + √φ‖g_w‖ with g_w = Σ_i w_i g_i and
√φ = c‖g₀‖, then d = g₀ + (√φ / ‖g_w‖) g_w, i.e. weights 1/T + (√φ / ‖g_w‖) w (logged). The dual is solved with
cvxpy (CLARABEL) on the Gramian normalised by its trace. ``c`` = 0.4 is the paper's choice for its multi-task
vision benchmarks; c = 0 is the mean gradient.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class CAGrad(TorchJDWeighting):
    name = "cagrad"

    def __init__(self, c: float = 0.4, norm_eps: float = 1e-4):
        super().__init__()
        if c < 0 or norm_eps < 0:
            raise ValueError(f"c and norm_eps must be >= 0 (got {c}, {norm_eps})")
        self.c, self.norm_eps = c, norm_eps

    def build(self, tasks):
        from torchjd.aggregation import CAGrad as Aggregator

        return Aggregator(c=self.c, norm_eps=self.norm_eps)


@hookimpl
def register_weightings(register):
    register("cagrad", CAGrad, description="best worst-task improvement near the mean gradient "
                                           "(Liu et al., NeurIPS 2021, arXiv 2110.14048)")
