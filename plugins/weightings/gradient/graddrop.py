"""Weighting ``graddrop``: gradient sign dropout (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a
Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020, arXiv 2010.06808; lines 10–15 of
Algorithm 1; TorchJD's ``GradDrop``).

For every coordinate the positive sign purity P = ½(1 + Σ_i g_i / Σ_i |g_i|) is compared with U ~ Uniform(0, 1): if
P > U only the positive components of the task gradients are kept there, if P < U only the negative ones; the kept
components are summed (with ``leak`` ℓ_i, task i keeps ℓ_i of its whole gradient besides: (ℓ_i + (1 − ℓ_i)·M_i)·g_i).
f(P) = P (the paper's default monotone function; other f are not offered as options). U is drawn from the run's
generator each step (see ``_torchjd``). It applies a mask per coordinate, not weights per task: no ``weight.<task>``.
"""

from __future__ import annotations

from mtl import hookimpl

from ._torchjd import TorchJDWeighting, check_preference, preference


class GradDrop(TorchJDWeighting):
    name = "graddrop"

    def __init__(self, leak: dict[str, float] | None = None):
        super().__init__()
        for task, value in (leak or {}).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"leak: the leak of {task!r} must be in [0, 1] (got {value})")
        self.leak = leak

    def check(self, tasks, target):
        check_preference(self.leak, tasks, self.name, "leak")

    def build(self, tasks):
        from torchjd.aggregation import GradDrop as Aggregator

        return Aggregator(leak=preference(self.leak, tasks, self.name, "leak"))

    def run_aggregator(self, order, matrix):
        leak = self.aggregator(order).leak
        if leak is not None and (leak.device != matrix.device or leak.dtype != matrix.dtype):
            self.aggregator(order).leak = leak.to(matrix)
        return super().run_aggregator(order, matrix)


@hookimpl
def register_weightings(register):
    register("graddrop", GradDrop, description="keep one sign per coordinate by its sign purity "
                                               "(Chen et al., NeurIPS 2020, arXiv 2010.06808)")
