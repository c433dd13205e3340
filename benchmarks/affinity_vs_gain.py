"""Does lookahead affinity predict which auxiliary task helps? An `mtl affinity` run against measured pairwise gains.

For each target T and auxiliary task A: Z(A→T) from the affinity run's ``affinity.json`` (TAG, Fifty et al.,
NeurIPS 2021), and the measured gain of training T with A = the mean over seeds of T's primary dev metric (the first
one its eval.json lists: F1 for MRPC, accuracy for RTE) in the pair's runs minus the same mean in T's single-task
runs. Pairwise runs are read from a folder laid out as ``mtl bench --pairs`` writes it: ``DIR/<T>/single/seed-*``
for T alone and ``DIR/<T>+<A>/<strategy>/seed-*`` for the pair (``DIR/<A>+<T>`` is used when there is no
``<T>+<A>``; then T was not the pair's selection target). Prints, per target, the auxiliary tasks ranked by
affinity next to their measured gain, and Spearman's rank correlation between the two (scipy), per target and
over all (target, auxiliary) pairs.

    python benchmarks/affinity_vs_gain.py --affinity RUN_DIR --pairs DIR [--targets mrpc,rte]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def primary_scores(network: Path, task: str) -> list[float]:
    """The task's primary dev metric in every finished run of a network's (only) strategy, ordered by seed."""
    scores = []
    for eval_file in sorted(network.glob("*/seed-*/eval.json")):
        dev = json.loads(eval_file.read_text(encoding="utf-8"))[task]["dev"]
        scores.append(next(iter(dev.values())))
    return scores


def pair_folder(root: Path, target: str, aux: str) -> Path | None:
    for name in (f"{target}+{aux}", f"{aux}+{target}"):
        if (root / name).is_dir():
            return root / name
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--affinity", type=Path, required=True, help="an `mtl affinity` run folder")
    parser.add_argument("--pairs", type=Path, required=True, help="the pairwise runs (see the docstring)")
    parser.add_argument("--targets", default=None, help="comma list [default: every task of the affinity run]")
    args = parser.parse_args()
    try:
        affinity = json.loads((args.affinity / "affinity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: {args.affinity / 'affinity.json'}: {exc}", file=sys.stderr)
        return 1
    from scipy.stats import spearmanr

    matrix, tasks = affinity["matrix"], affinity["tasks"]
    targets = args.targets.split(",") if args.targets else tasks
    everything: list[tuple[float, float]] = []
    for target in targets:
        alone = primary_scores(args.pairs / target, target)
        if not alone:
            print(f"{target}: no finished single-task runs under {args.pairs / target}; skipped")
            continue
        rows = []
        for aux in (t for t in tasks if t != target):
            folder = pair_folder(args.pairs, target, aux)
            together = primary_scores(folder, target) if folder else []
            if together and matrix[aux][target] is not None:
                rows.append((aux, matrix[aux][target], statistics.mean(together) - statistics.mean(alone),
                             len(together)))
        rows.sort(key=lambda r: -r[1])
        print(f"\n{target} alone: {statistics.mean(alone):.4f} (mean of {len(alone)} seeds: "
              f"{', '.join(f'{s:.4f}' for s in alone)})")
        print(f"| rank | auxiliary | Z(aux→{target}) | measured gain of {target} | seeds |")
        print("|---:|---|---:|---:|---:|")
        for rank, (aux, z, gain, n) in enumerate(rows, 1):
            print(f"| {rank} | {aux} | {z:+.4f} | {gain:+.4f} | {n} |")
        if len(rows) >= 3:
            rho, p = spearmanr([r[1] for r in rows], [r[2] for r in rows])
            print(f"Spearman ρ(affinity, gain) for {target}: {rho:+.2f} (p {p:.2f}, n {len(rows)})")
        everything += [(r[1], r[2]) for r in rows]
    if len(everything) >= 3:
        rho, p = spearmanr([z for z, _ in everything], [g for _, g in everything])
        print(f"\nSpearman ρ over all {len(everything)} (target, auxiliary) pairs: {rho:+.2f} (p {p:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
