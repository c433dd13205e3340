"""Weighting ``upgrad``: Unconflicting Projection of Gradients (Quinton & Rey, "Jacobian Descent for Multi-Objective
Optimization", arXiv 2406.16232, 2024; TorchJD's ``UPGrad``).

Each task's gradient g_i (row i of the Jacobian J) is projected onto the dual cone of the rows,
{x : Jx ≥ 0} (Eq. 3: the closest vector that conflicts with no task), and the projections are combined with the
preference weights (default: their mean). By Proposition 1 of the paper the projection of Jᵀu is Jᵀw with w the
solution of min_v vᵀGv s.t. v ≥ u (G = JJᵀ), solved with quadprog on the Gramian normalised by its trace and
regularised by ``reg_eps``·I. Options: ``pref_vector`` ({task: weight}, every task; default 1/T each), the projector's
``norm_eps`` and ``reg_eps``.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import DualConeWeighting


class UPGrad(DualConeWeighting):
    name = "upgrad"
    torchjd_class = "UPGrad"


@hookimpl
def register_weightings(register):
    register("upgrad", UPGrad, description="mean of each task gradient projected onto the dual cone "
                                           "(Quinton & Rey, Jacobian descent, arXiv 2406.16232)")
