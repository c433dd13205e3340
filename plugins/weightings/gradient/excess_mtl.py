"""Weighting ``excess-mtl``: robust multi-task learning with excess risks (He, Zhou, Zhang, Yun, Xu, Zeng, Chilimbi &
Zhao, "Robust Multi-Task Learning with Excess Risks", ICML 2024, arXiv 2402.02009; TorchJD's ``ExcessMTL``).

Each task's excess risk is estimated to second order as Ê_i = g_iᵀ H_i⁻¹ g_i with the diagonal AdaGrad
approximation H_i = diag(√(Σ_steps g_i² + 1e-7)) (Eqs. 6–7), divided by its value at the first step after
``n_warmup_steps`` (scale processing, Section 3.2; with warm-up: by its mean over the warm-up), and the task weights
take an exponentiated-gradient step α_i ∝ α_i·exp(η·Ê_i) (Eq. 9, η = ``robust_step_size``), from α = 1/T. The update
is Σ_i α_i g_i; α is logged. The state (α, the accumulated squared gradients, T × shared parameters, the baseline
and the step count) is checkpointed.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class ExcessMTL(TorchJDWeighting):
    name = "excess-mtl"

    def __init__(self, robust_step_size: float = 1.0, n_warmup_steps: int = 0):
        super().__init__()
        if robust_step_size <= 0:
            raise ValueError(f"robust_step_size must be > 0 (got {robust_step_size})")
        if n_warmup_steps < 0:
            raise ValueError(f"n_warmup_steps must be >= 0 (got {n_warmup_steps})")
        self.robust_step_size, self.n_warmup_steps = robust_step_size, n_warmup_steps

    def build(self, tasks):
        from torchjd.aggregation import ExcessMTL as Aggregator

        return Aggregator(robust_step_size=self.robust_step_size, n_warmup_steps=self.n_warmup_steps)


@hookimpl
def register_weightings(register):
    register("excess-mtl", ExcessMTL, description="task weights from estimated excess risks "
                                                  "(He et al., ICML 2024, arXiv 2402.02009)")
