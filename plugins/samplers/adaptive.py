"""Sampler ``adaptive``: MAMT's progress-dependent task sampling (Yan et al., IEEE TII 2022, Eq. 6).

An auxiliary task d is drawn with weight N_d, the target with N_t + v·N_aux, where N_aux = Σ_d N_d and
v = training progress in [0, 1]; normalised. Training starts proportional and ends with the target drawn
with probability (N_t + N_aux) / (N_t + 2·N_aux). Without a target it is the proportional sampler.
"""

from mtl import Sampler, hookimpl, normalise


class Adaptive(Sampler):
    def probabilities(self, progress: float) -> dict[str, float]:
        v = min(1.0, max(0.0, float(progress)))
        n_aux = sum(size for name, size in self.sizes.items() if name != self.target)
        weights = {name: float(size) for name, size in self.sizes.items()}
        if self.target in weights:
            weights[self.target] += v * n_aux
        return normalise(weights)


@hookimpl
def register_samplers(register):
    register("adaptive", Adaptive, description="MAMT Eq. 6: target weight N_t + progress·N_aux, auxiliary N_d")
