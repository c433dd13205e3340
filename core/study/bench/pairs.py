"""The plan of a ``--pairs`` bench: every task alone and every pair of tasks, each network an ordinary bench of its
own in ``DIR/<task>/`` or ``DIR/<a>+<b>/`` (the pair's target is the task listed first)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.errors import MtlError, OptionError
from mtl.study.bench.folder import BenchFolder
from mtl.study.bench.plan import (
    BenchPlan,
    bench_options,
    make_plan,
    refuse_other_options,
)
from mtl.study.bench.strategy import ALONE, Strategy
from mtl.study.bench.validate import check_task_limits


@dataclass(frozen=True)
class Network:
    """One network of a --pairs bench: its tasks (the target first) and its bench."""

    tasks: tuple[str, ...]
    plan: BenchPlan

    @property
    def name(self) -> str:
        return "+".join(self.tasks)


@dataclass
class PairsPlan:
    """A --pairs bench: every task alone and every pair of tasks, each network an ordinary bench of its own."""

    output: Path
    base: dict[str, Any]  # the run options shared by every run (no target, aux, weighting, sampler, seed, output)
    tasks: list[str]
    strategies: list[Strategy]  # the pairs' multi-task strategies (the single-task runs are ``single``)
    seeds: list[int]
    networks: list[Network]

    @property
    def bench(self) -> BenchFolder:
        return BenchFolder(self.output)

    @property
    def runs(self) -> int:
        return sum(len(n.plan.strategies) * len(n.plan.seeds) for n in self.networks)

    @property
    def pairs(self) -> int:
        return len(self.networks) - len(self.tasks)


def networks(tasks: list[str]) -> list[tuple[str, ...]]:
    """Every task alone, then every pair (in the order of ``tasks``)."""
    return [(t,) for t in tasks] + list(itertools.combinations(tasks, 2))


def make_pairs_plan(base: dict[str, Any], strategies: list[Strategy], seeds: list[int], output: Path) -> PairsPlan:
    """Every task of ``--target``/``--aux`` alone and every pair of them (target: the task given first) with each
    multi-task strategy; everything checked before anything is written."""
    base = bench_options(base)
    aux = base.get("aux") or []
    twice = [a for i, a in enumerate(aux) if a in aux[:i]]
    if twice:
        raise OptionError(f"--aux {','.join(aux)}: task {twice[0]!r} is given twice")
    tasks = [base["target"], *[a for a in aux if a != base["target"]]]
    if len(tasks) < 2:
        raise OptionError("--pairs needs at least two tasks: --target A --aux B[,C...]")
    check_task_limits(base)
    if any(s.stage for s in strategies):
        raise OptionError("--pairs trains networks of one or two tasks: a fine-tuning stage (SPEC>finetune) "
                          "has no place there")
    multi = [s for s in strategies if not s.single]
    if not multi:
        raise OptionError("--pairs: give the pairs' multi-task strategy (e.g. --strategy uniform); every task is "
                          "trained alone (single) anyway")
    shared = json.loads(json.dumps({k: v for k, v in base.items() if k not in ("target", "aux")}))
    _check_existing(BenchFolder(output), shared, tasks)
    found = [Network(network, make_plan(network_values(shared, tasks, network),
                                        [ALONE] if len(network) == 1 else multi, seeds,
                                        BenchFolder(output).network(network).path))
             for network in networks(tasks)]
    return PairsPlan(Path(output), shared, tasks, multi, seeds, found)


def network_values(shared: dict[str, Any], tasks: list[str], network: tuple[str, ...]) -> dict[str, Any]:
    """One network's run options: the shared ones, its target and aux, and only its own tasks' --set options,
    teachers and --limit TASK=N."""
    values = dict(shared, target=network[0], aux=list(network[1:]))
    others = set(tasks) - set(network)
    for key in ("options", "teachers", "task_limits"):  # keyed by plugin or task name
        if values.get(key):
            values[key] = {k: v for k, v in values[key].items() if k not in others}
    return values


def _check_existing(bench: BenchFolder, shared: dict[str, Any], tasks: list[str]) -> None:
    old = bench.existing()
    if old is None:
        return
    if not old.get("pairs"):
        raise MtlError(f"{bench.path} holds a bench without --pairs; choose another --output")
    if old["tasks"] != tasks:  # another order makes other pairs (their first task is their target)
        raise MtlError(f"{bench.path} holds the --pairs bench of {', '.join(old['tasks'])} (in that order, the first "
                       f"as --target); give the same tasks to continue it, or choose another --output")
    refuse_other_options(bench.path, old["run_options"], shared)


def load_pairs_plan(folder: Path) -> PairsPlan:
    """The plan of a --pairs bench folder, from its bench.json (nothing is checked or run)."""
    bench = BenchFolder(folder)
    data = bench.record()
    if not data.get("pairs"):
        raise MtlError(f"{bench.path}: not a --pairs bench")
    strategies = [Strategy.from_dict(s) for s in data["strategies"]]
    tasks, seeds, shared = list(data["tasks"]), list(data["seeds"]), data["run_options"]
    found = [Network(network, BenchPlan(bench.network(network).path, network_values(shared, tasks, network),
                                        [ALONE] if len(network) == 1 else strategies, seeds))
             for network in networks(tasks)]
    return PairsPlan(bench.path, shared, tasks, strategies, seeds, found)
