"""Sampler ``sequential``: all auxiliary steps first, then the target — the transfer-learning baseline of
MAMT's Table II (Yan et al., IEEE TII 2022; sequential fine-tuning as in Phang et al., STILTs, 2018).

The auxiliary phase is the first round(S · N_aux / (N_aux + N_target)) of the S steps of the run, so each
phase gets its share of an epoch-based budget. During it, auxiliary task d is drawn with p ∝ N_d (from the
run's generator); after it, every step trains the target. Without a target (or without auxiliary tasks)
it is the proportional sampler.
"""

from __future__ import annotations

from mtl import Sampler, hookimpl, normalise


class Sequential(Sampler):
    def setup(self, sizes, target, total_steps, rng) -> None:
        super().setup(sizes, target, total_steps, rng)
        self.aux = [name for name in self.names if name != target]
        if target in self.sizes and self.aux:
            n_aux = sum(self.sizes[name] for name in self.aux)
            self.aux_steps = round(total_steps * n_aux / (n_aux + self.sizes[target]))
        else:  # no target: proportional over all tasks; target alone: always the target
            self.aux_steps = total_steps if target not in self.sizes else 0

    def _phase(self, step: int) -> dict[str, float]:
        if step < self.aux_steps:
            weights = {name: (self.sizes[name] if name in self.aux else 0) for name in self.names}
            return normalise(weights)
        return {name: float(name == self.target) for name in self.names}

    def probabilities(self, progress: float) -> dict[str, float]:
        return self._phase(round(progress * self.total_steps))

    def tasks(self, step: int, progress: float) -> list[str]:
        if step >= self.aux_steps:
            return [self.target]
        import torch

        probs = self._phase(step)
        weights = torch.tensor([probs[name] for name in self.names], dtype=torch.float64)
        return [self.names[int(torch.multinomial(weights, 1, generator=self.rng))]]


@hookimpl
def register_samplers(register):
    register("sequential", Sequential,
             description="all auxiliary steps first (p ∝ N_d), then the target (transfer-learning baseline)")
