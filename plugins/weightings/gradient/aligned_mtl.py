"""Weighting ``aligned-mtl``: independent component alignment (Senushkin, Patakin, Kuznetsov & Konushin,
"Independent Component Alignment for Multi-Task Learning", CVPR 2023, arXiv 2305.19000, Algorithm 1; TorchJD's
``AlignedMTL``).

The Jacobian J (rows g_i) is replaced by the closest matrix with orthogonal rows of equal norm, condition number 1:
with J = UΣVᵀ, Ĵ = σ·UVᵀ, σ the smallest non-zero singular value (``scale_mode`` min; ``median`` and ``rmse``, the
mean eigenvalue, are the other scales of the reference code). On the Gramian G = JJᵀ = QΛQᵀ this is the balance
matrix B = √λ·QΛ^{-1/2}Qᵀ and the update Jᵀ(Bw), w the preference weights (default 1/T; logged: Bw).
"""

from __future__ import annotations

from typing import Literal

from mtl import hookimpl

from ._torchjd import TorchJDWeighting, check_preference, preference


class AlignedMTL(TorchJDWeighting):
    name = "aligned-mtl"

    def __init__(self, pref_vector: dict[str, float] | None = None,
                 scale_mode: Literal["min", "median", "rmse"] = "min"):
        super().__init__()
        self.pref_vector, self.scale_mode = pref_vector, scale_mode

    def check(self, tasks, target):
        check_preference(self.pref_vector, tasks, self.name)

    def build(self, tasks):
        from torchjd.aggregation import AlignedMTL as Aggregator

        return Aggregator(preference(self.pref_vector, tasks, self.name), scale_mode=self.scale_mode)


@hookimpl
def register_weightings(register):
    register("aligned-mtl", AlignedMTL, description="align the task gradients to an orthogonal, equal-norm basis "
                                                    "(Senushkin et al., CVPR 2023, arXiv 2305.19000)")
