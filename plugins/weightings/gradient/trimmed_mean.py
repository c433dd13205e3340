"""Weighting ``trimmed-mean``: coordinate-wise trimmed mean of the task gradients (Yin, Chen, Ramchandran & Bartlett,
"Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018, arXiv 1803.01498,
Definition 2; TorchJD's ``TrimmedMean``).

In every coordinate the ``trim_number`` largest and ``trim_number`` smallest task components are removed and the
remaining T − 2·trim_number are averaged (it needs T ≥ 2·trim_number + 1; with 3 tasks and the default 1 it is the
coordinate-wise median). The result is not a weighted sum of the rows: no ``weight.<task>`` is logged.
"""

from __future__ import annotations

from mtl import hookimpl
from mtl.errors import MtlError

from ._torchjd import TorchJDWeighting


class TrimmedMean(TorchJDWeighting):
    name = "trimmed-mean"

    def __init__(self, trim_number: int = 1):
        super().__init__()
        if trim_number < 0:
            raise ValueError(f"trim_number must be >= 0 (got {trim_number})")
        self.trim_number = trim_number

    def check(self, tasks, target):
        if len(tasks) < 2 * self.trim_number + 1:
            raise MtlError(f"weighting 'trimmed-mean' with trim_number={self.trim_number} needs at least "
                           f"{2 * self.trim_number + 1} tasks (this run has {len(tasks)})")

    def build(self, tasks):
        from torchjd.aggregation import TrimmedMean as Aggregator

        self.check(tasks, None)
        return Aggregator(trim_number=self.trim_number)


@hookimpl
def register_weightings(register):
    register("trimmed-mean", TrimmedMean, description="coordinate-wise trimmed mean of the task gradients "
                                                      "(Yin et al., ICML 2018, arXiv 1803.01498)")
