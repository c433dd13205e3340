"""Weighting ``fairgrad``: α-fair resource allocation among tasks (Ban & Ji, "Fair Resource Allocation in Multi-Task
Learning", ICML 2024, arXiv 2402.15638; TorchJD's ``FairGrad``).

The update is Σ_i w_i g_i with w > 0 solving (G w)_i = w_i^{−1/α} for every task (Eq. 4; G the Gramian), found with
scipy's bounded least squares from w = 1/T (at most ``max_iters`` evaluations; none: scipy's default). α = 0 is the
mean gradient (utilitarian), α = 1 proportional fairness (Nash-MTL's condition), α → ∞ max-min fairness; α = 1 is
the default of the reference code. The weights w are logged.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class FairGrad(TorchJDWeighting):
    name = "fairgrad"

    def __init__(self, alpha: float = 1.0, max_iters: int | None = None):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0 (got {alpha})")
        if max_iters is not None and max_iters < 1:
            raise ValueError(f"max_iters must be >= 1 or none (got {max_iters})")
        self.alpha, self.max_iters = alpha, max_iters

    def build(self, tasks):
        from torchjd.aggregation import FairGrad as Aggregator

        return Aggregator(alpha=self.alpha, max_iters=self.max_iters)


@hookimpl
def register_weightings(register):
    register("fairgrad", FairGrad, description="alpha-fair allocation of the update among tasks "
                                               "(Ban & Ji, ICML 2024, arXiv 2402.15638)")
