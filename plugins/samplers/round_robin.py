"""Sampler ``round-robin``: the tasks in run order (target first), one per step, cycling: step s trains
task s mod T. Deterministic; every task gets the same number of steps whatever its size (p_t = 1/T).
"""

from __future__ import annotations

from mtl import Sampler, hookimpl


class RoundRobin(Sampler):
    def probabilities(self, progress: float) -> dict[str, float]:
        return {name: 1.0 / len(self.names) for name in self.names}

    def tasks(self, step: int, progress: float) -> list[str]:
        return [self.names[step % len(self.names)]]


@hookimpl
def register_samplers(register):
    register("round-robin", RoundRobin, description="tasks in run order, one per step, cycling")
