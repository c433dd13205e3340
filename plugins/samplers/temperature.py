"""Sampler ``temperature``: temperature-scaled proportional sampling, as jiant's ``TemperatureMultiTaskSampler``
(Phang et al., jiant 2.0, 2020; Wang et al., "Can you tell me how to get past Sesame Street?", ACL 2019).

p_t ∝ min(N_t, cap)^(1/T), normalised. T = 1 is the proportional sampler, T → ∞ the uniform one; ``cap``
(none = no cap) limits how much a large task can dominate before the temperature is applied.
"""

from __future__ import annotations

from mtl import Sampler, hookimpl, normalise


class Temperature(Sampler):
    def __init__(self, T: float = 2.0, cap: int | None = None):
        if not T > 0:
            raise ValueError(f"T must be > 0 (got {T})")
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be >= 1 or none (got {cap})")
        self.T, self.cap = float(T), cap

    def probabilities(self, progress: float) -> dict[str, float]:
        def capped(n: int) -> float:
            return float(n if self.cap is None else min(n, self.cap))

        return normalise({name: capped(self.sizes[name]) ** (1.0 / self.T) for name in self.names})


@hookimpl
def register_samplers(register):
    register("temperature", Temperature, description="p ∝ min(N_t, cap)^(1/T) (jiant's temperature sampling)")
