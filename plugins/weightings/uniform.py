"""Weighting ``uniform``: every instance of every task counts 1 (vanilla MT-DNN, Liu et al. ACL 2019)."""

from mtl import Weighting, hookimpl


class Uniform(Weighting):
    """The mean of all instance losses in the step; the baseline every strategy is compared with."""

    family = "loss"


@hookimpl
def register_weightings(register):
    register("uniform", Uniform, description="every instance weight 1 (vanilla MT-DNN)")
