"""Weighting ``krum``: Krum and Multi-Krum, Byzantine-robust selection among the task gradients (Blanchard, El Mhamdi,
Guerraoui & Stainer, "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017,
arXiv 1703.02757; TorchJD's Gramian-weighted aggregator).

With T gradients of which at most f = ``n_byzantine`` may be adversarial, gradient i scores
s(i) = Σ_{i→j} ‖g_i − g_j‖², the sum over the T − f − 2 gradients closest to it (Section 4); the update is the gradient
of lowest score (Krum), or the mean of the m = ``n_selected`` lowest-scoring ones (Multi-Krum). It needs T ≥ f + 3.
Distances come from the Gramian: ‖g_i − g_j‖² = G_ii + G_jj − 2G_ij. The score sums *squared* distances, as the
paper defines it; TorchJD 0.18's ``KrumWeighting`` sums the distances themselves, which can select another gradient
(with T − f − 2 = 1, the 3-task default, both agree). The weights (1/m on the selected tasks) are logged.
"""

from __future__ import annotations

from mtl import hookimpl
from mtl.errors import MtlError

from ._torchjd import TorchJDWeighting


class Krum(TorchJDWeighting):
    name = "krum"

    def __init__(self, n_byzantine: int = 0, n_selected: int = 1):
        super().__init__()
        if n_byzantine < 0:
            raise ValueError(f"n_byzantine must be >= 0 (got {n_byzantine})")
        if n_selected < 1:
            raise ValueError(f"n_selected must be >= 1 (got {n_selected})")
        self.n_byzantine, self.n_selected = n_byzantine, n_selected

    def check(self, tasks, target):
        needed = max(self.n_byzantine + 3, self.n_selected)
        if len(tasks) < needed:
            raise MtlError(f"weighting 'krum' with n_byzantine={self.n_byzantine}, n_selected={self.n_selected} needs "
                           f"at least {needed} tasks (this run has {len(tasks)})")

    def build(self, tasks):
        from torchjd.aggregation import GramianWeightedAggregator

        self.check(tasks, None)
        return GramianWeightedAggregator(krum_weighting(self.n_byzantine, self.n_selected))


def krum_weighting(n_byzantine: int, n_selected: int):
    """The Gramian weighting of (Multi-)Krum with the paper's score (a TorchJD ``Weighting``)."""
    import torch
    from torchjd.aggregation import Weighting

    class KrumScore(Weighting):
        def forward(self, gramian):
            norms = torch.diagonal(gramian)
            squared = (norms[:, None] + norms[None, :] - 2 * gramian).clamp(min=0.0)
            squared.fill_diagonal_(float("inf"))  # a gradient is not its own neighbour
            closest = gramian.shape[0] - n_byzantine - 2
            scores = torch.topk(squared, k=closest, dim=1, largest=False).values.sum(dim=1)
            selected = torch.topk(scores, k=n_selected, largest=False).indices
            weights = torch.zeros_like(norms)
            weights[selected] = 1.0 / n_selected
            return weights

    return KrumScore()


@hookimpl
def register_weightings(register):
    register("krum", Krum, description="the task gradient(s) closest to the others, Byzantine-robust "
                                       "(Blanchard et al., NeurIPS 2017)")
