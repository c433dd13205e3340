"""Which tasks to train together (`mtl group`): budgeted network selection.

Standley et al., "Which Tasks Should Be Learned Together in Multi-task Learning?", ICML 2020 (arXiv 1905.07553).
A *candidate network* is a set of tasks trained together, with a cost (default 1: one network to train and
serve) and a score for each of its tasks (higher is better). A *solution* is a set of candidate networks of
total cost ≤ the budget in which every task is in some network; each task is *served* by its best network in
the set, and the objective is the sum of the served scores. :func:`select` finds an optimal solution exactly,
by branch and bound.

Candidates come from one of four sources (:func:`load`):

- ``bench``: a folder written by ``mtl bench`` (``--pairs`` or not). Every finished run is a measured network:
  its tasks are its target and auxiliary tasks (config.json), a task's score is its primary metric (the first
  metric of its first evaluation split in eval.json: every run evaluates each of its tasks) and a network's
  scores are the means over its runs (seeds). Networks are told apart by their tasks and their strategy (the
  run's folder ``<strategy>/seed-<s>``); fine-tuning stages (``SPEC>finetune``) are left out.
- the *higher-order approximation* (:func:`higher_order`, ``--higher-order N``): from the pairs of a bench or
  networks file, every group of 3..N tasks whose pairs were all measured (with one strategy) and that was not
  measured itself, with score_t(G) = mean over u in G \\ {t} of score_t({t, u}).
- ``affinity``: ``affinity.json`` of ``mtl affinity`` (TAG, Fifty et al., NeurIPS 2021), ``"matrix": {i: {j:
  Z_i→j}}``; every group G of up to N tasks is a candidate with score_j(G) = Σ_{i ∈ G, i ≠ j} Z_i→j (a task
  alone scores 0).
- ``networks``: a JSON file ``{"networks": [{"tasks": [...], "scores": {task: score}, "cost": 1}, ...]}``.

Every source must give every task a single-task network (the solution that trains each task alone must exist).
Nothing here imports torch; numpy is imported when a search runs.
"""

from mtl.study.grouping.measured import higher_order_networks, read_bench
from mtl.study.grouping.networks import (
                                         AFFINITY,
                                         APPROXIMATED,
                                         GIVEN,
                                         MAX_CANDIDATES,
                                         MEASURED,
                                         Candidates,
                                         Network,
                                         Selection,
)
from mtl.study.grouping.report import alone, command, options_note, record, target, text
from mtl.study.grouping.search import min_cover_cost, select
from mtl.study.grouping.sources import (
                                         KINDS,
                                         check_singles,
                                         detect,
                                         load,
                                         read_affinity,
                                         read_networks_file,
)

__all__ = [
    "AFFINITY", "APPROXIMATED", "GIVEN", "KINDS", "MAX_CANDIDATES", "MEASURED", "Candidates", "Network", "Selection",
    "alone", "check_singles", "command", "detect", "higher_order_networks", "load", "min_cover_cost", "options_note",
    "read_affinity", "read_bench", "read_networks_file", "record", "select", "target", "text",
]
