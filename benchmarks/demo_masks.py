"""Do the dropout kernel's masks change what the quick start learns? The demo's headline run over many seeds with
three sources of dropout masks, and the tests that compare them.

    python benchmarks/demo_masks.py [--seeds 3-47] [--output demo-masks] [--variant kernel,torch,torch-masks]

Each run is the README's quick start, ``mtl run --weighting mamt --sampler adaptive --seed S`` on the built-in demo
(two epochs), in its own process, with ``--keep none``:

- ``kernel``: mtl's default on CPU — the C++ kernel's hashed masks (mtl.model.dropout) in every dropout module and
  in mtl's attention function (mtl.model.attention);
- ``torch``: ``MTL_DROPOUT_BACKEND=torch`` — torch's ``bernoulli_`` masks, transformers' sdpa attention (what
  transformers.Trainer runs);
- ``torch-masks``: the kernel's code path (its modules, its attention function, one seed drawn per call) with the
  mask bits drawn by ``torch.rand`` from a ``torch.Generator`` seeded with the call's seed instead of the hash —
  it separates the hash from everything else the kernel path changes.

A run whose target (demo-paraphrase) ends below dev accuracy 0.6 has not left chance (the dev set is balanced;
such runs predict one class). Printed: each variant's runs at chance and the accuracy of the others; Fisher's exact
test on the counts, Mann–Whitney and the paired Wilcoxon test (pairs: the same seed) on the accuracies (scipy).
Results go to OUTPUT/results.jsonl as they finish; an interrupted run of this script continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

VARIANTS = ("kernel", "torch", "torch-masks")
CHANCE = 0.6
TARGET = "demo-paraphrase"

# The torch-masks variant: the CLI with mtl.model.dropout._scale (the kernel call, forward and backward) replaced by
# the same computation on a mask from torch.rand; run with `python -c`.
TORCH_MASKS = """
import sys, torch
import mtl.model.dropout as dropout

def _scale(x, p, seed):
    keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed & (2**63 - 1))) >= p
    return (x.detach().float() * keep * (1.0 / (1.0 - p))).to(x.dtype)

dropout._scale = _scale
from mtl.cli import main
sys.argv = ["mtl", *sys.argv[1:]]
main()
"""


def seeds_of(text: str) -> list[int]:
    """``3-47`` or ``0,1,5`` (or both, comma-separated)."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high) + 1) if high else [int(low)])
    return seeds


def run_one(variant: str, seed: int, folder: Path) -> dict:
    args = ["run", "--weighting", "mamt", "--sampler", "adaptive", "--seed", str(seed), "--keep", "none",
            "--overwrite", "-q", "-o", str(folder)]
    env = dict(os.environ)
    env.pop("MTL_DROPOUT_BACKEND", None)
    if variant == "torch":
        env["MTL_DROPOUT_BACKEND"] = "torch"
    command = [sys.executable, "-c", TORCH_MASKS, *args] if variant == "torch-masks" else ["mtl", *args]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    scores = json.loads((folder / "eval.json").read_text())[TARGET]["dev"]
    return {"variant": variant, "seed": seed, "accuracy": scores["accuracy"], "f1": scores["f1"]}


def report(results: list[dict], variants: list[str]) -> None:
    from scipy import stats

    by = {v: {r["seed"]: r["accuracy"] for r in results if r["variant"] == v} for v in variants}
    seeds = sorted(set.intersection(*(set(d) for d in by.values())))
    print(f"{len(seeds)} seeds with every variant ({seeds[0]}-{seeds[-1]}); at chance: target dev accuracy < {CHANCE}")
    for v in variants:
        values = [by[v][s] for s in seeds]
        low = [s for s in seeds if by[v][s] < CHANCE]
        rest = sorted(x for x in values if x >= CHANCE)
        others = f"the others: median {rest[len(rest) // 2]:.3f}, mean {sum(rest) / len(rest):.4f}; " if rest else ""
        print(f"  {v:12s} at chance {len(low):2d}/{len(seeds)} (seeds {', '.join(map(str, low)) or '-'}); "
              f"{others}all: mean {sum(values) / len(values):.4f}")
    n = len(seeds)
    if n < 2:
        return
    for i, a in enumerate(variants):
        for b in variants[i + 1:]:
            x, y = [by[a][s] for s in seeds], [by[b][s] for s in seeds]
            na, nb = sum(v < CHANCE for v in x), sum(v < CHANCE for v in y)
            fisher = stats.fisher_exact([[na, n - na], [nb, n - nb]]).pvalue
            print(f"  {a} vs {b}: at chance {na} vs {nb}, Fisher p {fisher:.3f}; accuracies Mann-Whitney p "
                  f"{stats.mannwhitneyu(x, y).pvalue:.3f}, paired Wilcoxon p {stats.wilcoxon(x, y).pvalue:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="3-47", help="e.g. 3-47 or 0,1,2 (default 3-47)")
    parser.add_argument("--variant", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--output", default="demo-masks", help="results and run folders (default demo-masks)")
    args = parser.parse_args()
    variants = [v for v in args.variant.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"--variant: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    results_file = output / "results.jsonl"
    results = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
    done = {(r["variant"], r["seed"]) for r in results}
    for seed in seeds_of(args.seeds):
        for variant in variants:
            if (variant, seed) in done:
                continue
            result = run_one(variant, seed, output / f"{variant}-s{seed}")
            print(f"{variant} seed {seed}: accuracy {result['accuracy']:.3f}, f1 {result['f1']:.4f}", flush=True)
            with results_file.open("a") as handle:
                handle.write(json.dumps(result) + "\n")
            results.append(result)
    report(results, variants)


if __name__ == "__main__":
    main()
