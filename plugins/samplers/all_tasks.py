"""Sampler ``all``: every task at every step, for gradient methods that need one loss per task per step
(PCGrad, Yu et al. NeurIPS 2020, Alg. 1). ``probabilities`` reports 1/T each, for logging only.
"""

from __future__ import annotations

from mtl import Sampler, hookimpl


class AllTasks(Sampler):
    def probabilities(self, progress: float) -> dict[str, float]:
        return {name: 1.0 / len(self.names) for name in self.names}

    def tasks(self, step: int, progress: float) -> list[str]:
        return list(self.names)


@hookimpl
def register_samplers(register):
    register("all", AllTasks, description="every task each step (for gradient methods such as pcgrad)")
