"""Step time of every registered weighting relative to `uniform`, measured in one process on the same batches.

Three tasks trained together with the `all` sampler (every task each step, what gradient methods need): RTE, MRPC
and STS-B from a GLUE folder when there is one, else the built-in demo suite; all-MiniLM-L6-v2, batch 32 per task,
max length 128, the same seed (so the same batches) for every method. Each method gets its own trainer; the methods
are timed in rounds (every method once per round, the order shuffled each round) and each method's time is the
median over rounds of the mean step time within the round, so a slow minute on a shared machine hits every method
alike. Quote the ratio to `uniform`, not the milliseconds.

    python benchmarks/methods.py [--data-dir ../shared/data/glue] [--rounds 3] [--steps 3] [--methods a,b,...]
        [--backbone minilm] [--batch-size 32] [--max-length 128] [-o methods.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import glue_dir  # noqa: E402

GLUE_TASKS = ("rte", "mrpc", "stsb")


def trainer_for(method: str, args, data_dir: str | None, out: Path):
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    tasks = dict(target=GLUE_TASKS[0], aux=list(GLUE_TASKS[1:]), data_dir=data_dir) if data_dir else {}
    config = RunConfig(**tasks, backbone=args.backbone, weighting=method, sampler="all", batch_size=args.batch_size,
                       max_length=args.max_length, limit=args.batch_size * (args.rounds * args.steps + 2),
                       eval_limit=8, seed=0, log_every=10_000, output=str(out / method))
    trainer = Trainer(config).prepare()
    optimizer, scheduler = trainer._optimizer()
    return {"trainer": trainer, "optimizer": optimizer, "scheduler": scheduler, "step": 0}


def run_steps(state: dict, n: int) -> float:
    """Mean seconds per training step over ``n`` steps."""
    trainer = state["trainer"]
    start = time.perf_counter()
    for _ in range(n):
        trainer.train_step(state["step"], state["optimizer"], state["scheduler"])
        state["step"] += 1
    return (time.perf_counter() - start) / n


def main() -> None:
    import mtl
    from mtl.contract import loader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method per round")
    parser.add_argument("--methods", default="", help="comma list (default: every registered weighting)")
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("-o", "--output", default=None, help="also write the results as JSON")
    args = parser.parse_args()

    data_dir = glue_dir(args.data_dir)
    if not all((Path(data_dir) / folder).is_dir() for folder in ("RTE", "MRPC", "STS-B")):
        data_dir = None  # no GLUE folder here: the demo suite
    methods = [m for m in args.methods.split(",") if m] or sorted(mtl.available("weighting"))
    if "uniform" not in methods:
        methods.insert(0, "uniform")
    registry = loader.registry()
    family = {m: getattr(registry.get("weighting", m)[0].load(), "family", "other") for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        states = {}
        for method in methods:  # build every trainer first, with one warm-up step each (first-step costs)
            try:
                states[method] = trainer_for(method, args, data_dir, Path(tmp))
                run_steps(states[method], 1)
            except Exception as exc:  # a method that cannot run here is reported, not fatal
                failed[method] = f"{type(exc).__name__}: {exc}"
                states.pop(method, None)
        order = list(states)
        rng = random.Random(0)
        for _ in range(args.rounds):
            rng.shuffle(order)
            for method in order:
                times[method].append(run_steps(states[method], args.steps))

    base = statistics.median(times["uniform"])
    rows = [{"method": m, "family": family[m], "ms_per_step": 1000 * statistics.median(times[m]),
             "ratio_to_uniform": statistics.median(times[m]) / base, "rounds_ms": [1000 * t for t in times[m]]}
            for m in methods if m in states]
    where = f"GLUE {', '.join(GLUE_TASKS)} ({data_dir})" if data_dir else "the demo suite"
    print(f"{args.backbone}, {where}, sampler all, batch {args.batch_size} per task, max length {args.max_length}; "
          f"{args.rounds} rounds × {args.steps} steps; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| method | family | ms/step | × uniform |\n|---|---|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["ratio_to_uniform"], r["method"])):
        print(f"| {r['method']} | {r['family']} | {r['ms_per_step']:.0f} | {r['ratio_to_uniform']:.2f} |")
    for method, error in failed.items():
        print(f"{method}: failed: {error}")
    if args.output:
        Path(args.output).write_text(json.dumps({"rows": rows, "failed": failed, "args": vars(args),
                                                 "data": where}, indent=2))


if __name__ == "__main__":
    main()
