"""Where a training step's time goes: `mtl run` vs `transformers.Trainer`, by operator (``torch.profiler``).

The setting of benchmarks/throughput.py (RTE, all-MiniLM-L6-v2, batch 32, max length 128, dynamic padding), the same
number of steps for both in this one process, and the operators sorted by self CPU time. README ("Benchmarks") quotes
its bf16 run: dropout's random masks (``aten::bernoulli_``) take a fifth of the step in both frameworks.

    python benchmarks/profile_step.py [--data-dir ../shared/data/glue] [--steps 12] [--precision bf16] [--rows 22]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (sets the offline switches)
from settings import glue_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--precision", choices=throughput.PRECISIONS, default="bf16")
    parser.add_argument("--rows", type=int, default=22)
    args = parser.parse_args()
    from torch.profiler import ProfilerActivity, profile

    data = glue_dir(args.data_dir)
    runs = (("transformers.Trainer", throughput.bench_hf), ("mtl", throughput.bench_mtl))
    for name, bench in runs:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            bench(data, args.steps, False, args.precision)
        print(f"===== {name} ({args.precision}, {args.steps} steps)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=48))
    return 0


if __name__ == "__main__":
    sys.exit(main())
