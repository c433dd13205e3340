"""Does lookahead affinity predict which auxiliary task helps? An `mtl affinity` run against measured pairwise gains.

For each target T and auxiliary task A: Z(A→T) from the affinity run's ``affinity.json`` (TAG, Fifty et al.,
NeurIPS 2021), and the measured gain of training T with A = the mean over seeds of T's primary dev metric (the first
one its eval.json lists: F1 for MRPC, accuracy for RTE) in the pair's runs minus the same mean in T's single-task
runs, with its paired bootstrap 95 % interval (:func:`mtl.study.statistics.paired_bootstrap`: the pair's and the
single-task run of the same seed scored on the same resampled dev examples, from their ``predictions.safetensors``;
``*`` where it excludes 0). Pairwise runs are read from a folder laid out as ``mtl bench --pairs`` writes it:
``DIR/<T>/single/seed-*`` for T alone and ``DIR/<T>+<A>/<strategy>/seed-*`` for the pair (``DIR/<A>+<T>`` is
used when there is no ``<T>+<A>``; then T was not the pair's selection target). Prints, per target, the auxiliary
tasks ranked by affinity next to their measured gain, and Spearman's rank correlation between the two (scipy), per
target and over all (target, auxiliary) pairs.

    python benchmarks/affinity_vs_gain.py --affinity RUN_DIR --pairs DIR [--targets mrpc,rte]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def primary_scores(network: Path, task: str) -> dict[str, tuple[str, float]]:
    """Per finished run (``seed-<n>`` folder) of a network's (only) strategy: the task's primary dev metric's name
    and value."""
    scores = {}
    for eval_file in sorted(network.glob("*/seed-*/eval.json")):
        dev = json.loads(eval_file.read_text(encoding="utf-8"))[task]["dev"]
        scores[eval_file.parent.name] = next(iter(dev.items()))
    return scores


def gain_interval(alone: Path, together: Path, task: str, metric: str) -> str:
    """The paired bootstrap 95 % interval of the gain over the seeds both networks ran, as ``[low, high]``."""
    from mtl.runs.folder import RunFolder
    from mtl.study.statistics import paired_bootstrap

    mine, reference, labels = [], [], []
    for run in sorted(together.glob("*/seed-*/eval.json")):
        single = next(alone.glob(f"*/{run.parent.name}/eval.json"), None)
        if single is None:
            continue
        pair, base = RunFolder(run.parent).predictions(), RunFolder(single.parent).predictions()
        if pair is None or base is None:
            return "[n/a]"
        mine.append(pair["splits"][f"{task}.dev"]["predictions"])
        reference.append(base["splits"][f"{task}.dev"]["predictions"])
        labels.append(base["splits"][f"{task}.dev"]["labels"])
    if not mine:
        return "[n/a]"
    interval = paired_bootstrap(metric, mine, reference, labels)
    return f"[{interval['low']:+.4f}, {interval['high']:+.4f}]{' *' if interval['excludes_zero'] else ''}"


def pair_folder(root: Path, target: str, aux: str) -> Path | None:
    for name in (f"{target}+{aux}", f"{aux}+{target}"):
        if (root / name).is_dir():
            return root / name
    return None


def correlation(rows: list[tuple]) -> str:
    """Spearman's ρ between the affinities (``row[1]``) and the gains (``row[2]``), with its p value and n; says
    why where it is undefined (all gains or all affinities equal)."""
    from scipy.stats import spearmanr

    affinities, gains = [row[1] for row in rows], [row[2] for row in rows]
    for name, values in (("gains", gains), ("affinities", affinities)):
        if len(set(values)) == 1:
            return f"undefined (all {len(rows)} {name} are equal: {values[0]:+.4f})"
    rho, p = spearmanr(affinities, gains)
    return f"{rho:+.2f} (p {p:.2f}, n {len(rows)})"


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
    matrix, tasks = affinity["matrix"], affinity["tasks"]
    targets = args.targets.split(",") if args.targets else tasks
    everything: list[tuple[float, float]] = []
    for target in targets:
        alone_runs = primary_scores(args.pairs / target, target)
        alone = [value for _, value in alone_runs.values()]
        if not alone:
            print(f"{target}: no finished single-task runs under {args.pairs / target}; skipped")
            continue
        rows = []
        for aux in (t for t in tasks if t != target):
            folder = pair_folder(args.pairs, target, aux)
            together_runs = primary_scores(folder, target) if folder else {}
            together = [value for _, value in together_runs.values()]
            if together and matrix[aux][target] is not None:
                metric = next(iter(together_runs.values()))[0]
                interval = gain_interval(args.pairs / target, folder, target, metric)
                rows.append((aux, matrix[aux][target], statistics.mean(together) - statistics.mean(alone),
                             len(together), interval))
        rows.sort(key=lambda r: -r[1])
        print(f"\n{target} alone: {statistics.mean(alone):.4f} (mean of {len(alone)} seeds: "
              f"{', '.join(f'{s:.4f}' for s in alone)})")
        print(f"| rank | auxiliary | Z(aux→{target}) | measured gain of {target} [95% CI] | seeds |")
        print("|---:|---|---:|---:|---:|")
        for rank, (aux, z, gain, n, interval) in enumerate(rows, 1):
            print(f"| {rank} | {aux} | {z:+.6f} | {gain:+.4f} {interval} | {n} |")
        if len(rows) >= 3:
            print(f"Spearman ρ(affinity, gain) for {target}: {correlation(rows)}")
        everything += [(aux, z, gain) for aux, z, gain, *_ in rows]
    if len(everything) >= 3:
        print(f"\nSpearman ρ over all {len(everything)} (target, auxiliary) pairs: {correlation(everything)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
