"""Accuracy of the weighting strategies on real GLUE, with the pretrained MiniLM backbone (`minilm`).

Two settings, each an `mtl bench` (one process per run, 3 seeds, the single-task run first so that every Δ
and its paired bootstrap 95 % interval over the dev examples is against training the target alone):

- MRPC helped by STS-B: the MAMT paper's MRPC(STS-B) setting (Yan et al., IEEE TII 2022);
- RTE helped by MRPC, STS-B and SST-2.

Strategies: ``single`` (the target alone), ``uniform``, ``uniform+sequential`` (all auxiliary steps, then
the target: the transfer-learning baseline), ``mamt+adaptive`` (MAMT with its Eq. 6 sampler), ``siwlm``,
``mmoe``. A strategy whose plugin is not installed is left out with a note; ``--strategy a,b`` runs only those
(e.g. ``--strategy single,uniform,mamt+adaptive,siwlm`` for the medium MRPC(STS-B) table in README).

Protocols:

- ``quick``: fits in under 45 minutes on two CPU cores: at most 256 training examples per task
  (``--limit``; 8 batches of 32), one epoch, at most 200 evaluation examples per task (``--eval-limit``).
  A smoke test of the whole pipeline on real data: the differences it shows are mostly noise.
- ``medium``: the conclusive comparison that fits a GPU afternoon: the target's whole training set, each
  auxiliary task capped at its first 2,000 training examples (``--limit TASK=2000`` per auxiliary task: MRPC with
  STS-B 2,000; RTE with MRPC, STS-B and SST-2 2,000 each, so SST-2's 67k examples do not swamp RTE's 2.5k), every
  evaluation example (no ``--eval-limit``: the intervals are over the whole dev set), 3 epochs, 3 seeds (0, 1, 2),
  training batches of similar lengths (``--group-by-length``: MRPC's batches hold 1.5 times fewer padded tokens
  than random ones). With the four strategies single, uniform, mamt+adaptive, siwlm: about 1.4 h for MRPC(STS-B)
  and 1.9 h for RTE(MRPC, STS-B, SST-2) on two CPU cores by the time model below (``--dry-run`` prints it; fitted to
  the measured MRPC(STS-B) runs); with all six strategies 2.2 h and 3.1 h. Far less on a GPU.
- ``full``: every training and evaluation example, 3 epochs (the `mtl run` defaults): the real comparison
  (hours per run on a CPU; use a GPU).

All use batch 32, max length 128, learning rate 5e-5. ``--dry-run`` prints the `mtl bench` commands and
the time estimate (about 2 s per training step of random batches of 32 with minilm at max length 128 on two cores,
pessimistic; 0.8 s for batches of similar lengths) without running anything. Re-running continues a stopped
benchmark: finished runs are kept.

    python benchmarks/glue.py [--protocol quick|medium|full] [--glue-dir DIR] [--output DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_GLUE = Path(os.environ.get("MTL_GLUE_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))
SEEDS = "0,1,2"
BATCH, MAX_LENGTH = 32, 128

SETTINGS = {  # folder name -> (target, auxiliary tasks)
    "mrpc-stsb": ("mrpc", ["stsb"]),
    "rte-mrpc-stsb-sst2": ("rte", ["mrpc", "stsb", "sst2"]),
}
# (strategy spec, the plugins it needs)
STRATEGIES = [
    ("single", []),
    ("uniform", [("weighting", "uniform")]),
    ("uniform+sequential", [("weighting", "uniform"), ("sampler", "sequential")]),
    ("mamt+adaptive", [("weighting", "mamt"), ("sampler", "adaptive")]),
    ("siwlm", [("weighting", "siwlm")]),
    ("mmoe", [("weighting", "mmoe")]),
]
PROTOCOLS = {  # limit: every task; aux_limit: each auxiliary task (--limit TASK=N), the target uncapped
    "quick": {"limit": 256, "aux_limit": None, "epochs": 1, "eval_limit": 200, "group_by_length": False},
    "medium": {"limit": None, "aux_limit": 2000, "epochs": 3, "eval_limit": None, "group_by_length": True},
    "full": {"limit": None, "aux_limit": None, "epochs": 3, "eval_limit": None, "group_by_length": False},
}

# The time model of --dry-run (two CPU cores, minilm, batch 32, max length 128).
SECONDS_PER_STEP = 2.0  # one training step of batch 32 (random batches; pessimistic: 27 min measured for 41 estimated)
SECONDS_PER_EVAL_EXAMPLE = 2.0 / BATCH / 3  # a forward pass is about a third of forward + backward
# batches of similar lengths (the medium protocol): fitted to its MRPC(STS-B) runs on the idle 2-core VM
# (2026-12-01: single-task 321 s for 345 steps, multi-task 420 s for 534 steps with 3 × 1,908 evaluations)
GROUPED_SECONDS_PER_STEP = 0.8
GROUPED_SECONDS_PER_EVAL_EXAMPLE = 0.005
SECONDS_PER_RUN = 15.0  # process start, imports, loading MiniLM and the data, tokenising
GLUE_FOLDERS = {"mrpc": "MRPC", "stsb": "STS-B", "rte": "RTE", "sst2": "SST-2"}
# Sizes of the GLUE files (examples), used when the folder is not there (dry run on another machine).
GLUE_SIZES = {"mrpc": (3668, 408), "stsb": (5749, 1500), "rte": (2490, 277), "sst2": (67349, 872)}


def strategies(wanted: list[str] | None = None) -> tuple[list[str], list[str]]:
    """The strategies (``wanted``, default all of :data:`STRATEGIES`) whose plugins are installed, and a note for
    each one left out."""
    import mtl

    installed = {kind: set(mtl.available(kind)) for kind in ("weighting", "sampler")}
    needed = dict(STRATEGIES)
    kept, notes = [], []
    for spec in wanted or list(needed):
        needs = needed[spec]
        missing = [f"{kind} {name!r}" for kind, name in needs if name not in installed[kind]]
        if missing:
            notes.append(f"note: strategy {spec} left out: {', '.join(missing)} is not installed")
        else:
            kept.append(spec)
    return kept, notes


def bench_command(setting: str, protocol: str, specs: list[str], glue: Path, output: Path,
                  seeds: str) -> list[str]:
    target, aux = SETTINGS[setting]
    caps = PROTOCOLS[protocol]
    cmd = [sys.executable, "-m", "mtl.cli", "bench", "--target", target, "--aux", ",".join(aux),
           "--data-dir", str(glue), "--backbone", "minilm", "--strategy", ",".join(specs), "--seeds", seeds,
           "--epochs", str(caps["epochs"]), "--batch-size", str(BATCH), "--max-length", str(MAX_LENGTH),
           "--lr", "5e-5"]
    if caps["limit"]:
        cmd += ["--limit", str(caps["limit"])]
    if caps["aux_limit"]:
        for task in aux:
            cmd += ["--limit", f"{task}={caps['aux_limit']}"]
    if caps["eval_limit"]:
        cmd += ["--eval-limit", str(caps["eval_limit"])]
    if caps.get("group_by_length"):
        cmd += ["--group-by-length"]
    return cmd + ["--output", str(output / setting)]


def _size(glue: Path, task: str, split: str) -> int:
    """Examples in a GLUE file (lines minus the header), or the known size when the file is not here."""
    path = glue / GLUE_FOLDERS[task] / f"{split}.tsv"
    try:
        with open(path, "rb") as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return GLUE_SIZES[task][0 if split == "train" else 1]


def duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 3 * 3600 else f"{seconds / 3600:.1f} h"


def rates(protocol: str) -> tuple[float, float]:
    """The time model's seconds per training step and per evaluation example for a protocol's batching."""
    if PROTOCOLS[protocol]["group_by_length"]:
        return GROUPED_SECONDS_PER_STEP, GROUPED_SECONDS_PER_EVAL_EXAMPLE
    return SECONDS_PER_STEP, SECONDS_PER_EVAL_EXAMPLE


def estimate(setting: str, protocol: str, specs: list[str], glue: Path, seeds: int) -> tuple[float, str]:
    """Seconds for one setting under the time model above, and a one-line account of it."""
    target, aux = SETTINGS[setting]
    caps = PROTOCOLS[protocol]

    def capped(n: int, cap: int | None) -> int:
        return min(n, cap) if cap else n

    def train_cap(task: str) -> int | None:
        return caps["aux_limit"] if task != target and caps["aux_limit"] else caps["limit"]

    def run_seconds(tasks: list[str]) -> tuple[float, int]:
        steps = caps["epochs"] * sum(math.ceil(capped(_size(glue, t, "train"), train_cap(t)) / BATCH) for t in tasks)
        evals = caps["epochs"] * sum(capped(_size(glue, t, "dev"), caps["eval_limit"]) for t in tasks)
        step, example = rates(protocol)
        return SECONDS_PER_RUN + steps * step + evals * example, steps

    single, single_steps = run_seconds([target])
    multi, multi_steps = run_seconds([target, *aux])
    n_multi = sum(1 for s in specs if s != "single")
    n_single = sum(1 for s in specs if s == "single")
    total = seeds * (n_single * single + n_multi * multi)
    account = (f"{setting}: single-task run {single_steps} steps ≈ {single:.0f} s, multi-task run {multi_steps} "
               f"steps ≈ {multi:.0f} s; {n_single + n_multi} strategies × {seeds} seeds ≈ {duration(total)}")
    return total, account


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="quick")
    parser.add_argument("--glue-dir", type=Path, default=DEFAULT_GLUE,
                        help=f"GLUE folder (glue_data/ layout) [default: $MTL_GLUE_DIR or {DEFAULT_GLUE}]")
    parser.add_argument("--output", type=Path, default=None, help="[default: bench/glue-<protocol>]")
    parser.add_argument("--seeds", default=SEEDS, help=f"comma list [default: {SEEDS}]")
    parser.add_argument("--setting", choices=sorted(SETTINGS), action="append",
                        help="run only this setting (repeatable) [default: both]")
    parser.add_argument("--strategy", default=None,
                        help=f"comma list of {', '.join(spec for spec, _ in STRATEGIES)} [default: all]")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and the time estimate only")
    args = parser.parse_args()
    wanted = [s.strip() for s in args.strategy.split(",") if s.strip()] if args.strategy is not None else None
    known = [spec for spec, _ in STRATEGIES]
    unknown = [s for s in wanted or [] if s not in known]
    if unknown or wanted == []:
        print(f"error: --strategy {args.strategy!r}: choose from {', '.join(known)}", file=sys.stderr)
        return 2

    output = args.output or Path("bench") / f"glue-{args.protocol}"
    settings = args.setting or list(SETTINGS)
    specs, notes = strategies(wanted)
    for note in notes:
        print(note)
    if not args.dry_run and not (args.glue_dir / "RTE" / "train.tsv").exists():
        print(f"error: no GLUE data at {args.glue_dir} (give --glue-dir or set MTL_GLUE_DIR)", file=sys.stderr)
        return 1

    seeds = len([s for s in args.seeds.split(",") if s.strip()])
    total = 0.0
    commands = []
    for setting in settings:
        seconds, account = estimate(setting, args.protocol, specs, args.glue_dir, seeds)
        total += seconds
        commands.append((setting, bench_command(setting, args.protocol, specs, args.glue_dir, output, args.seeds)))
        print(f"estimate {account}")
    grouped = PROTOCOLS[args.protocol]["group_by_length"]
    step, example = rates(args.protocol)
    print(f"estimate total ({args.protocol}): {duration(total)} "
          f"(model: {step:g} s per training step of {BATCH}{' of similar lengths' if grouped else ''}, "
          f"{SECONDS_PER_RUN:g} s start per run, {example * 1000:.0f} ms per evaluation example; two CPU cores)")
    for setting, cmd in commands:
        shown = ["mtl", *cmd[3:]]
        print(f"{setting}: {shlex.join(shown)}")
    if args.dry_run:
        return 0

    for setting, cmd in commands:
        print(f"\n=== {setting} ===", flush=True)
        code = subprocess.run(cmd, check=False).returncode
        if code != 0:
            print(f"error: the bench of {setting} failed (exit {code}); run this script again to continue it",
                  file=sys.stderr)
            return code
    print()
    for setting, _ in commands:
        print((output / setting / "bench.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
