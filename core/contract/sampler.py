"""The sampler base class of the plugin contract (see DESIGN.md, "Sampler").

A sampler chooses which task(s) each training step trains on. ``setup`` receives the number of training
examples per task, the target task, the total number of steps and the run's random generator; all
randomness must come from that generator so runs are reproducible and resumable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Sampler:
    """Base class: draws one task per step from ``probabilities(progress)`` with the run's generator."""

    def setup(self, sizes: dict[str, int], target: str | None, total_steps: int, rng: torch.Generator) -> None:
        self.sizes = dict(sizes)
        self.names = list(sizes)
        self.target = target
        self.total_steps = total_steps
        self.rng = rng

    def probabilities(self, progress: float) -> dict[str, float]:
        raise NotImplementedError

    def tasks(self, step: int, progress: float) -> list[str]:
        import torch

        probs = self.probabilities(progress)
        names = list(probs)
        weights = torch.tensor([probs[n] for n in names], dtype=torch.float64)
        return [names[int(torch.multinomial(weights, 1, generator=self.rng))]]

    def state_dict(self) -> dict:
        return {"rng": self.rng.get_state()} if getattr(self, "rng", None) is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if "rng" in state:
            self.rng.set_state(state["rng"])


def normalise(weights: dict[str, float]) -> dict[str, float]:
    """Scale non-negative weights to probabilities summing to 1."""
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("sampler weights must have a positive sum")
    return {name: float(w) / total for name, w in weights.items()}
