"""Training throughput of `mtl run` with 1 and 2 processes on this machine (torchrun, DDP over gloo on CPU).

Same run each time: RTE from a GLUE folder (or the demo suite without one), `minilm`, batch 32 (the global batch:
each of N processes trains 32/N examples per step), max length 128, uniform weighting, the same seed. Configurations:

- 1 process, all cores as intra-op threads (what a plain `mtl run` does);
- 1 process, 1 thread (the per-process share under DDP, for reference);
- 2 processes (`mtl run --nproc 2`), 1 thread each.

Reports the training examples/s of each (summary.json: training steps only, no evaluation) and the ratios to the
first, all measured in one invocation. Machines are shared and noisy: read the ratios, not a single figure.

    python benchmarks/scaling.py [--steps 30] [--backbone minilm] [--glue-dir DIR] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_GLUE = Path(os.environ.get("MTL_GLUE_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))


def run(label: str, args: list[str], threads: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    folder = out / label.replace(" ", "-").replace(",", "")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mtl.cli", "run", *args, "-o", str(folder), "--quiet",
                             "--overwrite"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{label}: mtl run failed:\n{result.stderr[-2000:]}")
    summary = json.loads((folder / "summary.json").read_text())
    return {"label": label, "examples_per_second": summary["examples_per_second"],
            "train_seconds": summary["train_seconds"], "examples": summary["train_examples"], "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--glue-dir", type=Path, default=DEFAULT_GLUE)
    parser.add_argument("--output", type=Path, default=None)
    options = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args = ["--backbone", options.backbone, "--max-steps", str(options.steps), "--batch-size", "32",
            "--max-length", "128", "--eval-limit", "32", "--seed", "0", "--log-every", "1000"]
    if (options.glue_dir / "RTE" / "train.tsv").exists():
        args = ["--target", "rte", "--data-dir", str(options.glue_dir), *args]
        data = f"RTE ({options.glue_dir})"
    else:
        data = "the demo suite (no GLUE folder)"
    out = options.output or Path(tempfile.mkdtemp(prefix="mtl-scaling-"))
    print(f"{options.steps} steps of batch 32, {options.backbone}, max length 128, {data}; {cores} cores; "
          f"runs in {out}")
    rows = [
        run(f"1 process, {cores} threads", args, cores, out),
        run("1 process, 1 thread", args, 1, out),
        run("2 processes, 1 thread each", [*args, "--nproc", "2"], 1, out),
    ]
    base = rows[0]["examples_per_second"]
    print("\n| configuration | examples/s | ratio | train s | wall s |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['label']} | {row['examples_per_second']:.1f} | {row['examples_per_second'] / base:.2f} "
              f"| {row['train_seconds']:.1f} | {row['wall_seconds']:.1f} |")
    (out / "scaling.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
