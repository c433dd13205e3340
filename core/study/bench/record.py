"""The records bench.json holds: a bench's plan, its runs and table; a --pairs bench's plan, networks and table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mtl.study.bench.folder import FORMAT
from mtl.study.bench.plan import BenchPlan

if TYPE_CHECKING:
    from mtl.study.bench.pairs import PairsPlan


def bench_record(plan: BenchPlan, runs: list[dict[str, Any]], table: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "target": plan.target,
            "aux": plan.base.get("aux", []), "seeds": plan.seeds,
            "strategies": [s.to_dict() for s in plan.strategies], "run_options": plan.base,
            "runs": runs, "table": table}


def write_bench_file(plan: BenchPlan, runs: list[dict[str, Any]], table: dict[str, Any] | None = None) -> dict:
    record = bench_record(plan, runs, table)
    plan.bench.write(record)
    return record


def pairs_record(plan: PairsPlan, table: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "pairs": True, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": plan.tasks,
            "seeds": plan.seeds, "strategies": [s.to_dict() for s in plan.strategies], "run_options": plan.base,
            "networks": [{"tasks": list(n.tasks), "folder": str(n.plan.output),
                          "strategies": [s.label for s in n.plan.strategies]} for n in plan.networks],
            "table": table}


def write_pairs_file(plan: PairsPlan, table: dict[str, Any] | None = None) -> dict[str, Any]:
    record = pairs_record(plan, table)
    plan.bench.write(record)
    return record
