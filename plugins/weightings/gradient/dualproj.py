"""Weighting ``dualproj``: the mean gradient projected onto the dual cone of the task gradients (Lopez-Paz & Ranzato,
"Gradient Episodic Memory for Continual Learning", NeurIPS 2017, arXiv 1706.08840, Eq. 11, used as an aggregator in
Quinton & Rey, arXiv 2406.16232; TorchJD's ``DualProj``).

The update is the vector closest to the preference-weighted gradient Jᵀu (default: the mean) that conflicts with no
task: argmin_x ‖x − Jᵀu‖² s.t. Jx ≥ 0, computed as Jᵀw with w = argmin_v vᵀGv s.t. v ≥ u on the Gramian (quadprog,
Gramian normalised by its trace and regularised by ``reg_eps``·I). Options as ``upgrad``.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import DualConeWeighting


class DualProj(DualConeWeighting):
    name = "dualproj"
    torchjd_class = "DualProj"


@hookimpl
def register_weightings(register):
    register("dualproj", DualProj, description="mean gradient projected onto the dual cone of the task gradients "
                                               "(Lopez-Paz & Ranzato, NeurIPS 2017, Eq. 11)")
