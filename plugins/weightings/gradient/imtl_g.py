"""Weighting ``imtl-g``: impartial multi-task learning, gradient part (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang,
"Towards Impartial Multi-task Learning", ICLR 2021; TorchJD's ``IMTLG``, generalised in Quinton & Rey,
arXiv 2406.16232, to linearly dependent rows).

The update d = Σ_i α_i g_i, Σ_i α_i = 1, has equal projections onto every task gradient's unit vector u_i = g_i/‖g_i‖:
dᵀu_i = dᵀu_j for all i, j (Eq. 10; closed form α_{2:T} = g₁Uᵀ(DUᵀ)⁻¹ with D, U the differences g₁ − g_i,
u₁ − u_i). On the Gramian G: v = G⁺·(‖g_i‖)_i, α = v / Σ v (zero where Σ v = 0). The weights α are logged.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting


class IMTLG(TorchJDWeighting):
    name = "imtl-g"

    def build(self, tasks):
        from torchjd.aggregation import IMTLG as Aggregator

        return Aggregator()


@hookimpl
def register_weightings(register):
    register("imtl-g", IMTLG, description="update with equal projections on every task gradient "
                                          "(Liu et al., ICLR 2021, IMTL-G)")
