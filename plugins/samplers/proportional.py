"""Sampler ``proportional``: a task is drawn with probability p_t = N_t / sum_s N_s (MT-DNN, Liu et al. 2019)."""

from mtl import Sampler, hookimpl, normalise


class Proportional(Sampler):
    """p_t proportional to the number of training examples N_t of task t."""

    def probabilities(self, progress: float) -> dict[str, float]:
        return normalise({name: self.sizes[name] for name in self.names})


@hookimpl
def register_samplers(register):
    register("proportional", Proportional, description="task t drawn with p ∝ N_t (its number of examples)")
