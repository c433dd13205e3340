"""Benchmark: `mtl group` on 20 tasks with random scores (exact branch and bound; nothing asserted).

Networks files are written the way a `mtl bench --pairs` over 20 tasks would give them: every task alone and
every pair (20 + 190 = 210 candidate networks, cost 1 each), with two kinds of random scores:

* uniform   every task's score in every network drawn from U(0, 1) independently (no structure at all)
* bench     a task's score alone from U(0.5, 0.9), in a pair that plus N(0, 0.03) (small transfer effects,
            many near ties: what real pair benches look like)

Each is run through the real command line (`python -m mtl.cli group FILE --budget B --json`, a new process),
at budgets from the cheapest cover (10: a perfect matching) to 20 (every task its own network), and with
`--higher-order 3` (the 1140 triples approximated from the pairs: 1350 candidates) at budgets from 7 (the
cheapest cover with triples) to 14. Reported: the objective, the search-tree nodes, the search seconds (from
the JSON) and the wall seconds of the whole command (Python start-up and reading the file included).
Markdown on stdout.

    python benchmarks/grouping.py                    # 20 tasks, both score kinds, all budgets
    python benchmarks/grouping.py --tasks 12 --quick # fewer tasks, fewer budgets
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def networks(n: int, kind: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    tasks = [f"task{i:02d}" for i in range(n)]
    alone = {t: rng.uniform(0.5, 0.9) for t in tasks}
    out = []
    for size in (1, 2):
        for group in itertools.combinations(tasks, size):
            if kind == "uniform":
                scores = {t: rng.random() for t in group}
            else:
                scores = {t: alone[t] + (rng.gauss(0.0, 0.03) if size == 2 else 0.0) for t in group}
            out.append({"tasks": list(group), "scores": scores})
    return out


def run(path: Path, budget: float, higher_order: int | None) -> dict:
    command = [sys.executable, "-m", "mtl.cli", "group", str(path), "--budget", f"{budget:g}", "--json"]
    if higher_order:
        command += ["--higher-order", str(higher_order)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr}")
    data = json.loads(done.stdout)
    return {"wall": wall, **data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="two budgets per setting")
    args = parser.parse_args()
    n = args.tasks
    pair_budgets = [n // 2 + n % 2, n // 2 + 2, (3 * n) // 4, n]
    triple_budgets = [-(-n // 3), n // 2, (7 * n) // 10]
    if args.quick:
        pair_budgets, triple_budgets = pair_budgets[:2], triple_budgets[:1]
    print(f"`mtl group`, {n} tasks, seed {args.seed}\n")
    print("| scores | candidates | budget | objective | nodes | search s | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("uniform", "bench"):
            path = Path(tmp) / f"{kind}.json"
            path.write_text(json.dumps({"networks": networks(n, kind, args.seed)}))
            for higher_order, budgets in ((None, pair_budgets), (3, triple_budgets)):
                for budget in budgets:
                    r = run(path, budget, higher_order)
                    label = kind + (" + triples" if higher_order else "")
                    print(f"| {label} | {r['candidates']} | {budget:g} | {r['objective']:.4f} | "
                          f"{r['search']['nodes']} | {r['search']['seconds']:.2f} | {r['wall']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
