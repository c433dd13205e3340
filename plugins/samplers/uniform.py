"""Sampler ``uniform``: every task is drawn with probability 1/T, whatever its size."""

from mtl import Sampler, hookimpl


class UniformSampler(Sampler):
    """p_t = 1 / T."""

    def probabilities(self, progress: float) -> dict[str, float]:
        return {name: 1.0 / len(self.names) for name in self.names}


@hookimpl
def register_samplers(register):
    register("uniform", UniformSampler, description="every task drawn with p = 1/T")
