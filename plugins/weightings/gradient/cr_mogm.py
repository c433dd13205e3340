"""Weighting ``cr-mogm``: correlation-reduced multi-objective gradient manipulation (Zhou, Zhang, Jiang, Zhong, Gu &
Zhu, "On the Convergence of Stochastic Multi-Objective Gradient Manipulation and Beyond", NeurIPS 2022; TorchJD's
``CRMOGMWeighting``).

A base method's weights λ̂_k, computed from each step's stochastic gradients, are smoothed across steps,
λ_k = α·λ_{k−1} + (1 − α)·λ̂_k (λ₀ = ``initial_weights`` if given, else λ̂₁), and the update is Σ_i λ_{k,i} g_i: the
smoothing reduces the correlation between the weights and the gradient noise that biases stochastic MGDA-like
methods. ``base`` is a method with weights computed from the Gramian, with its own defaults (``mgda``, the paper's
case; ``pcgrad``, ``cagrad`` (c = 0.4), the paper's other examples; ``upgrad``, ``dualproj``, ``imtl-g``,
``aligned-mtl``, ``gradvac``, ``fairgrad`` (α = 1)). The smoothed weights are logged and checkpointed. The paper's
schedule α_k → 1 as the learning rate decays is not applied: α is constant.
"""

from __future__ import annotations

from typing import Literal

from mtl import hookimpl

from ._torchjd import TorchJDWeighting, check_preference, preference

BASES = ("mgda", "pcgrad", "cagrad", "upgrad", "dualproj", "imtl-g", "aligned-mtl", "gradvac", "fairgrad")


class CRMOGM(TorchJDWeighting):
    name = "cr-mogm"

    def __init__(self, base: Literal["mgda", "pcgrad", "cagrad", "upgrad", "dualproj", "imtl-g", "aligned-mtl",
                                     "gradvac", "fairgrad"] = "mgda",
                 alpha: float = 0.9, initial_weights: dict[str, float] | None = None):
        super().__init__()
        if base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)} (got {base!r})")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (got {alpha})")
        self.base, self.alpha, self.initial_weights = base, alpha, initial_weights

    def check(self, tasks, target):
        check_preference(self.initial_weights, tasks, self.name, "initial_weights")

    def build(self, tasks):
        from torchjd.aggregation import CRMOGMWeighting, GramianWeightedAggregator

        initial = preference(self.initial_weights, tasks, self.name, "initial_weights")
        return GramianWeightedAggregator(CRMOGMWeighting(base_weighting(self.base), alpha=self.alpha,
                                                         initial_weights=initial))


def base_weighting(name: str):
    """The Gramian weighting of a base method, with its defaults."""
    from torchjd import aggregation

    return {
        "mgda": lambda: aggregation.MGDAWeighting(),
        "pcgrad": lambda: aggregation.PCGradWeighting(),
        "cagrad": lambda: aggregation.CAGradWeighting(c=0.4),
        "upgrad": lambda: aggregation.UPGradWeighting(),
        "dualproj": lambda: aggregation.DualProjWeighting(),
        "imtl-g": lambda: aggregation.IMTLGWeighting(),
        "aligned-mtl": lambda: aggregation.AlignedMTLWeighting(),
        "gradvac": lambda: aggregation.GradVacWeighting(),
        "fairgrad": lambda: aggregation.FairGradWeighting(alpha=1.0),
    }[name]()


@hookimpl
def register_weightings(register):
    register("cr-mogm", CRMOGM, description="a base method's weights smoothed by a moving average "
                                            "(Zhou et al., NeurIPS 2022, CR-MOGM)")
