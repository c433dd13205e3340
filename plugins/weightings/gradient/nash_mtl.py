"""Weighting ``nash-mtl``: multi-task learning as a bargaining game (Navon, Shamsian, Achituve, Maron, Kawaguchi,
Chechik & Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022, arXiv 2202.01017, Algorithm 1; TorchJD's
``NashMTL``, adapted from the authors' code).

The update is Σ_i α_i g_i with α the Nash bargaining solution: α > 0 and (GᵀG α)_i = 1/α_i for every task
(Eq. 5; G the matrix of task gradients as columns, GᵀG their Gramian), found by ``optim_niter`` steps of the paper's
sequence of convex problems (cvxpy/ECOS, on the Gramian divided by its Frobenius norm and the constraint rescaled
to match) started from the previous step's α;
α is recomputed every ``update_weights_every`` steps and rescaled so that ‖Σ_i α_i g_i‖ ≤ ``max_norm`` (0: no
clipping). The weights α are logged; the previous α, the step count and the normalisation are checkpointed.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class NashMTL(TorchJDWeighting):
    name = "nash-mtl"
    state_attributes = ("step", "prvs_alpha", "normalization_factor")

    def __init__(self, max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20):
        super().__init__()
        if max_norm < 0:
            raise ValueError(f"max_norm must be >= 0 (got {max_norm})")
        if update_weights_every < 1 or optim_niter < 1:
            raise ValueError(f"update_weights_every and optim_niter must be >= 1 "
                             f"(got {update_weights_every}, {optim_niter})")
        self.max_norm, self.update_weights_every, self.optim_niter = max_norm, update_weights_every, optim_niter

    def build(self, tasks):
        from torchjd.aggregation import NashMTL as Aggregator

        return Aggregator(n_tasks=len(tasks), max_norm=self.max_norm, update_weights_every=self.update_weights_every,
                          optim_niter=self.optim_niter)

    def run_aggregator(self, order, matrix):
        import warnings

        with warnings.catch_warnings():  # cvxpy's note that the problem is not DPP (re-compiled each solve): noise here
            warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP")
            return super().run_aggregator(order, matrix)

    def restore(self, aggregator, state):
        super().restore(aggregator, state)
        weighting = aggregator.weighting
        if weighting.step > 0:  # the convex problem is built at the first step, from the previous α: build it now
            weighting._init_optim_problem()


@hookimpl
def register_weightings(register):
    register("nash-mtl", NashMTL, description="Nash bargaining solution of the task gradients "
                                              "(Navon et al., ICML 2022, arXiv 2202.01017)")
