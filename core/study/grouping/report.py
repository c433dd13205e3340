"""What `mtl group` prints: the chosen networks, each task's served score, the objective, the commands that train
them (text, or the record of ``--json``)."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import Any

from mtl.study.grouping.networks import (
    APPROXIMATED,
    MEASURED,
    Candidates,
    Network,
    Selection,
)


def alone(candidates: Candidates) -> dict[str, float]:
    """Each task's best single-task score (the baseline of training every task alone)."""
    out: dict[str, float] = {}
    for net in candidates.networks:
        if len(net.tasks) == 1:
            t = net.tasks[0]
            out[t] = max(out.get(t, -math.inf), net.scores[t])
    return out


def target(net: Network, serves: Sequence[str] = ()) -> str:
    """The task to train a network for: a measured bench network's own target (its first task, the target its scores
    were measured with); any other network's first served task (in the order of the tasks), the task it was chosen
    for — its first task when it serves none."""
    if net.kind == MEASURED or not serves:
        return net.tasks[0]
    return serves[0]


def command(net: Network, serves: Sequence[str] = ()) -> str:
    """The `mtl run` command that trains a network: :func:`target` the target, the others --aux (in the network's
    order); a bench's network starts from the run options its runs (or its pairs) were started with."""
    parts = ["mtl", "run"]
    if net.options:
        parts += ["--config", net.options]
    chosen = target(net, serves)
    parts += ["--target", chosen]
    aux = [t for t in net.tasks if t != chosen]
    if aux:
        parts += ["--aux", ",".join(aux)]
    return shlex.join(parts)


def options_note(candidates: Candidates) -> str:
    if candidates.kind == "bench":
        return ("Each command starts from the run options of the bench's runs (--config); add -o DIR, and "
                "--weighting/--sampler or --epochs to train differently from the bench.")
    return ("Add your data and training options to each command (--data-dir or --data, --backbone, --epochs, "
            "--weighting, ...) and -o DIR.")


def record(candidates: Candidates, selection: Selection) -> dict[str, Any]:
    """The machine-readable result (`mtl group --json`)."""
    baseline = alone(candidates)
    networks = []
    for i, net in enumerate(selection.networks):
        entry = net.to_dict()
        entry["serves"] = [t for t in selection.tasks if selection.served[t][0] == i]
        entry["command"] = command(net, entry["serves"])
        networks.append(entry)
    served = {t: {"network": "+".join(selection.networks[i].tasks), "score": score, "alone": baseline.get(t)}
              for t, (i, score) in selection.served.items()}
    kinds: dict[str, int] = {}
    for net in candidates.networks:
        kinds[net.kind] = kinds.get(net.kind, 0) + 1
    return {"source": str(candidates.source), "kind": candidates.kind, "budget": selection.budget,
            "tasks": selection.tasks, "metrics": candidates.metrics, "candidates": len(candidates.networks),
            "candidate_kinds": kinds, "min_cost": selection.min_cost, "cost": selection.cost,
            "objective": selection.objective, "alone": math.fsum(baseline.values()),
            "networks": networks, "served": served, "note": options_note(candidates),
            "search": {"nodes": selection.nodes, "seconds": selection.seconds}}


def text(candidates: Candidates, selection: Selection) -> str:
    """The result for a terminal: the chosen networks, each task's served score, the objective, the commands."""
    data = record(candidates, selection)
    kinds = ", ".join(f"{n} {k}" for k, n in data["candidate_kinds"].items())
    head = (f"{len(selection.tasks)} tasks, {data['candidates']} candidate networks ({kinds}) from "
            f"{candidates.source} ({candidates.kind}); budget {selection.budget:g}, cheapest cover "
            f"{selection.min_cost:g}")
    lines = [head, "", "Chosen networks:"]
    name_width = max(len("+".join(n["tasks"])) for n in data["networks"])
    for net in data["networks"]:
        where = net["label"]
        if net["kind"] == APPROXIMATED:
            where = f"{where} (approximated)" if where else "approximated"
        serves = ", ".join(f"{t} {net['scores'][t]:.4f}" for t in net["serves"])
        lines.append(f"  {'+'.join(net['tasks']):<{name_width}}  cost {net['cost']:g}  {where + ': ' if where else ''}"
                     f"serves {serves}")
    lines += ["", "Served scores:"]
    task_width = max(len(t) for t in selection.tasks)
    for task, entry in data["served"].items():
        metric = f" ({candidates.metrics[task]})" if task in candidates.metrics else ""
        alone_score = entry["alone"]
        delta = "" if alone_score is None else f", alone {alone_score:.4f} ({entry['score'] - alone_score:+.4f})"
        lines.append(f"  {task:<{task_width}}  {entry['score']:.4f} by {entry['network']}{delta}{metric}")
    objective = (f"Objective (sum of served scores): {selection.objective:.4f} at cost {selection.cost:g} "
                 f"(every task alone: {data['alone']:.4f})")
    lines += ["", objective, "",
              "Train the chosen networks (target: the first task a network serves; a measured network's own target):"]
    lines += [f"  {n['command']}" for n in data["networks"]]
    lines += [f"  {data['note']}"]
    return "\n".join(lines)
