"""A bench folder's measured networks (Standley et al., ICML 2020) and the higher-order approximation from its pairs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from mtl.errors import DataError, MtlError
from mtl.study.bench.folder import BenchFolder
from mtl.study.bench.results import primary
from mtl.study.grouping.networks import (
    APPROXIMATED,
    MEASURED,
    Candidates,
    Network,
    check_count,
)


def read_bench(folder: Path) -> Candidates:
    """The measured networks of a bench folder (``--pairs`` or not): one per strategy and task set, each task's
    score its primary metric averaged over seeds; fine-tuning stages are left out."""
    bench = BenchFolder(folder)
    listed = bench.tasks()
    groups: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    metrics: dict[str, str] = {}
    tasks: list[str] = []
    for run in bench.finished_runs():
        config, _ = run.config()  # each option of the type it must have (a one-line error naming config.json)
        if config.parent:  # a fine-tuning stage: the target alone, trained from a multi-task run
            continue
        if not config.target:
            raise DataError(f"{run.config_path}: no target task")
        names = (config.target, *[a for a in config.aux if a != config.target])
        evaluation = run.eval() or {}
        scores = {}
        for name in names:
            split, metric, scores[name] = primary(evaluation, name, run.eval_path)
            metrics.setdefault(name, f"{split} {metric}")
        strategy = run.path.parent  # <strategy>/seed-<s>
        entry = groups.setdefault((strategy.name, names), {"tasks": names, "scores": {n: [] for n in names},
                                                           "options": None})
        for name in names:  # the same tasks with another target are another network
            entry["scores"][name].append(scores[name])
        options = strategy / BenchFolder.RUN_OPTIONS
        if entry["options"] is None and options.is_file():
            entry["options"] = str(options)
        tasks += [n for n in names if n not in tasks]
    if not groups:
        raise MtlError(f"{bench.path}: no finished runs (run folders with eval.json and config.json)")
    networks = [Network(entry["tasks"], {n: math.fsum(v) / len(v) for n, v in entry["scores"].items()}, 1.0,
                        label, MEASURED, len(next(iter(entry["scores"].values()))), entry["options"])
                for (label, _), entry in groups.items()]
    order = [t for t in listed if t in tasks] + [t for t in tasks if t not in listed]
    return Candidates(bench.path, "bench", order, networks, metrics)


def higher_order_networks(candidates: Candidates, max_size: int) -> list[Network]:
    """Standley's higher-order approximation: for each strategy (label) with pairs, every group of 3..max_size
    tasks whose pairs were all measured and that was not measured itself, score_t(G) = mean over u in
    G \\ {t} of score_t({t, u}); cost 1."""
    pairs: dict[str, dict[frozenset, Network]] = {}
    for net in candidates.networks:
        if len(net.tasks) == 2:
            pairs.setdefault(net.label, {}).setdefault(frozenset(net.tasks), net)
    if not pairs:
        raise MtlError(f"{candidates.source}: --higher-order needs networks of two tasks (pairs), and it has none "
                       "(`mtl bench --pairs` trains them)")
    measured = {(net.label, frozenset(net.tasks)) for net in candidates.networks}
    size = min(max_size, len(candidates.tasks))
    check_count(len(candidates.networks) + len(pairs) * sum(math.comb(len(candidates.tasks), k)
                                                             for k in range(3, size + 1)), size, candidates.source)
    out = []
    for label, by_pair in pairs.items():
        for k in range(3, size + 1):
            for group in itertools.combinations(candidates.tasks, k):
                if (label, frozenset(group)) in measured:
                    continue
                members = [by_pair.get(frozenset((t, u))) for t, u in itertools.combinations(group, 2)]
                if any(m is None for m in members):
                    continue
                scores = {t: math.fsum(by_pair[frozenset((t, u))].scores[t] for u in group if u != t) / (k - 1)
                          for t in group}
                out.append(Network(group, scores, 1.0, label, APPROXIMATED, 0, members[0].options))
    return out
