"""Weighting ``dualproj``: the mean gradient projected onto the dual cone of the task gradients (Lopez-Paz & Ranzato,
"Gradient Episodic Memory for Continual Learning", NeurIPS 2017, arXiv 1706.08840, Eq. 11, used as an aggregator in
Quinton & Rey, arXiv 2406.16232; TorchJD's ``DualProj``).

The update is the vector closest to the preference-weighted gradient Jᵀu (default: the mean) that conflicts with no
task: argmin_x ‖x − Jᵀu‖² s.t. Jx ≥ 0, computed as Jᵀw with w = argmin_v vᵀGv s.t. v ≥ u on the Gramian (quadprog,
Gramian normalised by its trace and regularised by ``reg_eps``·I). Options as ``upgrad``.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting, check_preference, preference


class DualProj(TorchJDWeighting):
    name = "dualproj"

    def __init__(self, pref_vector: dict[str, float] | None = None, norm_eps: float = 1e-4, reg_eps: float = 1e-4):
        super().__init__()
        if norm_eps < 0 or reg_eps < 0:
            raise ValueError(f"norm_eps and reg_eps must be >= 0 (got {norm_eps}, {reg_eps})")
        self.pref_vector, self.norm_eps, self.reg_eps = pref_vector, norm_eps, reg_eps

    def check(self, tasks, target):
        check_preference(self.pref_vector, tasks, self.name)

    def build(self, tasks):
        from torchjd.aggregation import DualProj as Aggregator
        from torchjd.linalg import QuadprogProjector

        return Aggregator(preference(self.pref_vector, tasks, self.name),
                          projector=QuadprogProjector(norm_eps=self.norm_eps, reg_eps=self.reg_eps))


@hookimpl
def register_weightings(register):
    register("dualproj", DualProj, description="mean gradient projected onto the dual cone of the task gradients "
                                               "(Lopez-Paz & Ranzato, NeurIPS 2017, Eq. 11)")
