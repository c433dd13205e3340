"""Weighting ``config``: conflict-free inverse gradients (Liu, Chu & Thuerey, "ConFIG: Towards Conflict-free Training of
Physics Informed Neural Networks", ICLR 2025, arXiv 2408.11104, Eq. 2; TorchJD's ``ConFIG``).

With u_i = g_i/‖g_i‖ the unit task gradients and w the preference weights (default 1 each), the direction
g_u = U⁺w (U the matrix of rows u_i, U⁺ its pseudo-inverse) makes with every task gradient an angle set by w (equal
angles by default) and the update is (Σ_i g_iᵀĝ_u)·ĝ_u, ĝ_u = g_u/‖g_u‖. It is not a weighted sum of the rows as the
method states it, so no ``weight.<task>`` is logged.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting, check_preference, preference


class ConFIG(TorchJDWeighting):
    name = "config"
    records_weights = False  # the aggregator's weighting is the preference w, not weights of the rows

    def __init__(self, pref_vector: dict[str, float] | None = None):
        super().__init__()
        self.pref_vector = pref_vector

    def check(self, tasks, target):
        check_preference(self.pref_vector, tasks, self.name)

    def build(self, tasks):
        from torchjd.aggregation import ConFIG as Aggregator

        return Aggregator(preference(self.pref_vector, tasks, self.name))


@hookimpl
def register_weightings(register):
    register("config", ConFIG, description="update at equal angles to every task gradient "
                                           "(Liu, Chu & Thuerey, ICLR 2025, arXiv 2408.11104)")
