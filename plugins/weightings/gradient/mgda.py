"""Weighting ``mgda``: the multiple-gradient descent algorithm (Désidéri, "Multiple-gradient descent algorithm (MGDA)
for multiobjective optimization", Comptes Rendus Mathématique 2012), with the Frank-Wolfe solver of Sener & Koltun,
"Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, arXiv 1810.04650 (Algorithm 2; TorchJD's
``MGDA``).

The update is the minimum-norm point of the convex hull of the task gradients, Σ_i α_i g_i with
α = argmin_{α ∈ Δ} ‖Σ_i α_i g_i‖² (Eq. 3), found on the Gramian by Frank-Wolfe from α = 1/T with exact line search,
stopping when the step γ̂ < ``epsilon`` or after ``max_iters`` iterations. The weights α are logged.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class MGDA(TorchJDWeighting):
    name = "mgda"

    def __init__(self, epsilon: float = 0.001, max_iters: int = 100):
        super().__init__()
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0 (got {epsilon})")
        if max_iters < 1:
            raise ValueError(f"max_iters must be >= 1 (got {max_iters})")
        self.epsilon, self.max_iters = epsilon, max_iters

    def build(self, tasks):
        from torchjd.aggregation import MGDA as Aggregator

        return Aggregator(epsilon=self.epsilon, max_iters=self.max_iters)


@hookimpl
def register_weightings(register):
    register("mgda", MGDA, description="minimum-norm point of the task gradients' convex hull "
                                       "(Désidéri 2012; Sener & Koltun, NeurIPS 2018)")
