"""Weighting ``sdmgrad``: stochastic direction-oriented multi-objective gradient descent (Xiao, Ban & Ji,
"Direction-oriented Multi-objective Learning: Simple and Provable Stochastic Algorithms", NeurIPS 2023,
arXiv 2305.18409, Algorithm 1; TorchJD's ``SDMGradWeighting``).

The weights w ∈ Δ minimise ½‖J(w + λw̃)‖² (the MGDA objective regularised towards the preferred direction Jᵀw̃,
default the mean), by ``n_iter`` steps of projected SGD with momentum and step ``lr`` on the two-sample estimate
A = J₁J₂ᵀ (normalised by the squared mean of √diag A), warm-started from the previous w; the update is
Σ_i (w_i + λw̃_i)/(1 + λ)·g_i (logged). The two samples are the even and the odd rows of each task's batch and the
update uses the whole batch (see ``_torchjd.TwoSampleWeighting``; the paper draws a third sample ζ for it). w is
checkpointed. λ = ``lambda_`` (0.3, the authors' experiments).
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TwoSampleWeighting, check_preference, preference


class SDMGrad(TwoSampleWeighting):
    name = "sdmgrad"

    def __init__(self, lr: float = 10.0, momentum: float = 0.5, n_iter: int = 20, lambda_: float = 0.3,
                 pref_vector: dict[str, float] | None = None):
        super().__init__()
        if lr <= 0:
            raise ValueError(f"lr must be > 0 (got {lr})")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (got {momentum})")
        if n_iter < 1:
            raise ValueError(f"n_iter must be >= 1 (got {n_iter})")
        if lambda_ < 0:
            raise ValueError(f"lambda_ must be >= 0 (got {lambda_})")
        self.lr, self.momentum, self.n_iter, self.lambda_, self.pref_vector = lr, momentum, n_iter, lambda_, pref_vector

    def check(self, tasks, target):
        check_preference(self.pref_vector, tasks, self.name)

    def build(self, tasks):
        from torchjd.aggregation import SDMGradWeighting

        return SDMGradWeighting(lr=self.lr, momentum=self.momentum, n_iter=self.n_iter, lambda_=self.lambda_,
                                pref_vector=preference(self.pref_vector, tasks, self.name))


@hookimpl
def register_weightings(register):
    register("sdmgrad", SDMGrad, description="MGDA regularised towards a preferred direction, two-sample estimates "
                                             "(Xiao, Ban & Ji, NeurIPS 2023, arXiv 2305.18409)")
