"""Where a training step's time goes: `mtl run` vs `transformers.Trainer`, by operator (``torch.profiler``).

The setting of benchmarks/throughput.py (RTE, all-MiniLM-L6-v2, batch 32, max length 128, dynamic padding), the same
number of steps for both in this one process, and the operators sorted by self CPU time. README ("Benchmarks") quotes
its bf16 runs: with torch's dropout (``--mtl-dropout torch``) its random masks (``aten::bernoulli_``) take a fifth of
the step in both frameworks; mtl's default on CPU is its C++ dropout kernel (``--mtl-dropout cpp``).

    python benchmarks/profile_step.py [--data-dir ../shared/data/glue] [--steps 12] [--precision bf16] [--rows 22]
                                      [--mtl-dropout cpp|torch]
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
    parser.add_argument("--mtl-dropout", choices=("cpp", "torch"), default="cpp",
                        help="mtl's dropout: its C++ kernel (the default on CPU) or torch's (what Trainer runs)")
    args = parser.parse_args()
    from torch.profiler import ProfilerActivity, profile

    data = glue_dir(args.data_dir)
    runs = (("transformers.Trainer", throughput.bench_hf),
            (f"mtl, {args.mtl_dropout} dropout",
             lambda *a: throughput.bench_mtl(*a, dropout=args.mtl_dropout)))
    for name, bench in runs:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            bench(data, args.steps, False, args.precision)
        print(f"===== {name} ({args.precision}, {args.steps} steps)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=48))
    return 0


if __name__ == "__main__":
    sys.exit(main())
