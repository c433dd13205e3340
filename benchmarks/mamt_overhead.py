"""End-to-end cost of MAMT: training-step time of `mamt` over `uniform`, minilm, RTE (target) + SST-2.

Both trainers are built with the same seed, so they draw the same task sequence and the same batches;
their steps are interleaved (uniform, mamt, uniform, mamt, ...) so that drift of a shared machine hits
both alike. Reported: mean step times and their ratio, and MAMT's own work per step (memory replacement
on target batches, similarity/weights on auxiliary batches) timed directly, as a share of the step.
Goal (issue 3): overhead <= 2 %.

    python benchmarks/mamt_overhead.py [--data-dir ../shared/data/glue] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"


def build(weighting: str, data_dir: str, tmp: str):
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    config = RunConfig(target="rte", aux=["sst2"], weighting=weighting, backbone="minilm", data_dir=data_dir,
                       limit=512, eval_limit=32, batch_size=32, max_length=128, seed=0,
                       output=str(Path(tmp) / weighting))
    start = time.perf_counter()
    trainer = Trainer(config).prepare()
    setup = time.perf_counter() - start
    optimizer, scheduler = trainer._optimizer()
    trainer.model.train()
    return trainer, optimizer, scheduler, setup


def instrument(weighting) -> list[float]:
    """Time MAMT's own memory work (replacement and scores) inside each step."""
    spent = [0.0]
    for name in ("remember", "scores"):
        original = getattr(weighting, name)

        def timed(*args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(weighting, name, timed)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MTL_GLUE_DIR", str(DEFAULT_GLUE)))
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    if not (Path(args.data_dir) / "RTE" / "train.tsv").exists():
        print(f"RTE not found under {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    from mtl import memory

    with tempfile.TemporaryDirectory() as tmp:
        uniform, opt_u, sched_u, setup_u = build("uniform", args.data_dir, tmp)
        mamt, opt_m, sched_m, setup_m = build("mamt", args.data_dir, tmp)
        spent = instrument(mamt.weighting)
        times_u, times_m, mamt_work, tasks = [], [], [], []
        for step in range(args.steps):
            start = time.perf_counter()
            names_u, *_ = uniform.train_step(step, opt_u, sched_u)
            times_u.append(time.perf_counter() - start)
            before = spent[0]
            start = time.perf_counter()
            names_m, *_ = mamt.train_step(step, opt_m, sched_m)
            times_m.append(time.perf_counter() - start)
            mamt_work.append(spent[0] - before)
            assert names_u == names_m, "the two runs must train the same task at each step"
            tasks.append(names_m[0])
    warm = slice(2, None)  # the first steps include one-off allocations
    mean_u, mean_m = statistics.mean(times_u[warm]), statistics.mean(times_m[warm])
    work = statistics.mean(mamt_work[warm])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, kernel backend {memory.BACKEND}, "
          f"{args.steps} steps ({tasks.count('rte')} RTE target, {tasks.count('sst2')} SST-2 auxiliary), "
          f"batch 32, max length 128, memory 5 batches = 160 slots, D = 384")
    print("| | uniform | mamt |")
    print("|---|---:|---:|")
    print(f"| mean step time (s) | {mean_u:.4f} | {mean_m:.4f} |")
    print(f"| median step time (s) | {statistics.median(times_u[warm]):.4f} | {statistics.median(times_m[warm]):.4f} |")
    print(f"| setup incl. memory fill (s) | {setup_u:.2f} | {setup_m:.2f} |")
    print(f"step-time ratio mamt / uniform = {mean_m / mean_u:.4f} (overhead {100 * (mean_m / mean_u - 1):+.2f} %)")
    print(f"MAMT memory work per step = {1000 * work:.3f} ms = {100 * work / mean_m:.3f} % of a MAMT step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
