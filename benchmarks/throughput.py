"""Training throughput: `mtl run --weighting uniform` vs `transformers.Trainer`, same model, data and batch.

RTE train from a GLUE folder with the settings of benchmarks/settings.py (all-MiniLM-L6-v2, batch 32, max length
128, dynamic padding, the same optimizer and schedule; the settings benchmarks/parity.py compares accuracy with),
one epoch, both measured in this one process (machines are shared and noisy: compare the ratio, not absolute
numbers). Both frameworks batch at random (their default); ``--group-by-length`` switches both to batches of
similar lengths. ``--precision fp32,bf16`` (the default: both) measures each precision for both frameworks:
Trainer's ``bf16=True`` and mtl's ``--precision bf16`` (autocast to bfloat16 around the forward, as accelerate does
for Trainer). On CPU mtl trains with its C++ dropout kernel and its own attention function
(mtl.model.dropout, mtl.model.attention); ``--mtl-dropout cpp,torch`` adds a row of mtl with torch's dropout and
transformers' sdpa attention — what Trainer runs — to show what the kernel contributes.

What is timed: the training loop, the same work on both sides — for Trainer from its ``on_train_begin`` callback
to ``on_train_end`` (batches, forward, backward, clipping, the optimizer; it saves and evaluates nothing), for mtl
the sum of its steps (``summary.json`` ``train_seconds``: collation, forward, backward, clipping, the optimizer,
logging). mtl's epoch-end crash-safe checkpoint (model, optimizer state, fsync), which Trainer with
``save_strategy="no"`` does not write, is shown in a column of its own and left out of the ratio.

    pip install -e ".[bench]"
    python benchmarks/throughput.py [--data-dir ../shared/data/glue] [--steps N] [--precision fp32,bf16]
                                    [--mtl-dropout cpp,torch] [--group-by-length] [--warmup-steps N]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import SETTINGS, encode_for_transformers, glue_dir, run_config, training_arguments  # noqa: E402

BATCH, MAX_LENGTH = SETTINGS["batch_size"], SETTINGS["max_length"]


PRECISIONS = ("fp32", "bf16")


def bench_mtl(data_dir: str, steps: int | None, group_by_length: bool, precision: str,
              dropout: str = "cpp") -> tuple[float, float, int]:
    """(seconds of the training steps, seconds of the rest of the loop: the epoch-end checkpoint, examples).

    ``dropout``: ``cpp`` (mtl's default on CPU: the C++ dropout kernel and mtl's attention function) or ``torch``
    (torch's dropout and transformers' sdpa attention, as Trainer runs)."""
    from mtl.model import dropout as kernel_dropout
    from mtl.training.trainer import Trainer

    default = kernel_dropout.BACKEND
    kernel_dropout.BACKEND = dropout
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = run_config("rte", 0, str(Path(tmp) / "run"), data_dir, group_by_length=group_by_length,
                                epochs=1, max_steps=steps, eval_limit=32)
            config.precision = precision
            result = Trainer(config).train()
    finally:
        kernel_dropout.BACKEND = default
    s = result["summary"]
    return s["train_seconds"], s["total_seconds"] - s["eval_seconds"] - s["train_seconds"], s["train_examples"]


def bench_hf(data_dir: str, steps: int | None, group_by_length: bool, precision: str) -> tuple[float, int]:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
    )
    from transformers.utils import logging as hf_logging

    import mtl
    from mtl.plugins.backbones.minilm import model_path

    hf_logging.set_verbosity_error()
    task = mtl.create("task", "rte")
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    dataset, _ = encode_for_transformers(task, "train", data_dir, tokenizer)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=2)
    n_steps = steps or math.ceil(len(dataset) / BATCH)

    class LoopTimer(TrainerCallback):
        def on_train_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_train_end(self, *_, **__):
            self.seconds = time.perf_counter() - self.start

    timer = LoopTimer()
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(tmp, 0, group_by_length=group_by_length, epochs=1, max_steps=n_steps,
                                  logging_strategy="no", save_strategy="no", eval_strategy="no",
                                  bf16=precision == "bf16")
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=[timer])
        trainer.train()
    return timer.seconds, n_steps * BATCH if steps else len(dataset)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=glue_dir())
    parser.add_argument("--steps", type=int, default=None, help="steps per framework (default: one epoch of RTE)")
    parser.add_argument("--group-by-length", action="store_true", help="both frameworks: batches of similar lengths")
    parser.add_argument("--precision", default="fp32,bf16", help="comma list of fp32, bf16 (default: both)")
    parser.add_argument("--mtl-dropout", default="cpp",
                        help="comma list of cpp (mtl's C++ dropout kernel, the default on CPU), torch (torch's "
                             "dropout and sdpa attention): one mtl row each")
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="untimed steps of each framework before the timed ones, per precision (default: 5 on "
                             "CUDA, where the first steps load kernels and pick cuBLAS algorithms; 0 on CPU)")
    args = parser.parse_args()
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if not precisions or any(p not in PRECISIONS for p in precisions):
        print(f"--precision: a comma list of {', '.join(PRECISIONS)} (got {args.precision!r})", file=sys.stderr)
        return 2
    dropouts = [d.strip() for d in args.mtl_dropout.split(",") if d.strip()]
    if not dropouts or any(d not in ("cpp", "torch") for d in dropouts):
        print(f"--mtl-dropout: a comma list of cpp, torch (got {args.mtl_dropout!r})", file=sys.stderr)
        return 2
    warmup = args.warmup_steps if args.warmup_steps is not None else (5 if torch.cuda.is_available() else 0)
    if warmup < 0:
        print(f"--warmup-steps: 0 or more (got {warmup})", file=sys.stderr)
        return 2
    if not (Path(args.data_dir) / "RTE" / "train.tsv").exists():
        print(f"RTE not found under {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:  # transformers.Trainer needs it; mtl does not
        print('benchmarks/throughput.py needs accelerate for transformers.Trainer: pip install -e ".[bench]"',
              file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, max length {MAX_LENGTH}")
    batching = "group_by_length" if args.group_by_length else "random batches"
    print(f"batches: {batching}; examples/s of the training loop (see the docstring); mtl's epoch-end checkpoint apart")
    rows = []
    for precision in precisions:
        if warmup:  # whichever framework ran first would otherwise pay the device's one-time costs
            print(f"{precision}: {warmup} untimed warm-up steps of each framework")
            bench_hf(args.data_dir, warmup, args.group_by_length, precision)
            for dropout in dropouts:
                bench_mtl(args.data_dir, warmup, args.group_by_length, precision, dropout)
        hf_seconds, hf_examples = bench_hf(args.data_dir, args.steps, args.group_by_length, precision)
        for dropout in dropouts:
            mtl_seconds, checkpoint_seconds, mtl_examples = bench_mtl(args.data_dir, args.steps,
                                                                      args.group_by_length, precision, dropout)
            rows.append((precision, dropout, hf_examples / hf_seconds, mtl_examples / mtl_seconds,
                         checkpoint_seconds, hf_examples, hf_seconds, mtl_seconds))
    print("| precision | mtl dropout | transformers.Trainer | mtl run | ratio | examples | Trainer s | mtl s "
          "| mtl checkpoint s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for precision, dropout, hf_rate, mtl_rate, checkpoint_seconds, examples, hf_seconds, mtl_seconds in rows:
        print(f"| {precision} | {dropout} | {hf_rate:.1f} ex/s | {mtl_rate:.1f} ex/s | {mtl_rate / hf_rate:.2f} | "
              f"{examples} | {hf_seconds:.1f} | {mtl_seconds:.1f} | {checkpoint_seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
