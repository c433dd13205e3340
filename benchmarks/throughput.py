"""Training throughput: `mtl run --weighting uniform` vs `transformers.Trainer`, same model, data and batch.

RTE train from a GLUE folder with the settings of benchmarks/settings.py (all-MiniLM-L6-v2, batch 32, max length
128, dynamic padding, the same optimizer and schedule; the settings benchmarks/parity.py compares accuracy with),
one epoch, both measured in this one process (machines are shared and noisy: compare the ratio, not absolute
numbers). Both frameworks batch at random (their default); ``--group-by-length`` switches both to batches of
similar lengths. Training time excludes evaluation for both.

    pip install -e ".[bench]"
    python benchmarks/throughput.py [--data-dir ../shared/data/glue] [--steps N] [--group-by-length]
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


def bench_mtl(data_dir: str, steps: int | None, group_by_length: bool) -> tuple[float, int]:
    from mtl.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        config = run_config("rte", 0, str(Path(tmp) / "run"), data_dir, group_by_length=group_by_length, epochs=1,
                            max_steps=steps, eval_limit=32)
        result = Trainer(config).train()
    s = result["summary"]
    return s["total_seconds"] - s["eval_seconds"], s["train_examples"]


def bench_hf(data_dir: str, steps: int | None, group_by_length: bool) -> tuple[float, int]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer
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
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(tmp, 0, group_by_length=group_by_length, epochs=1, max_steps=n_steps,
                                  logging_strategy="no", save_strategy="no", eval_strategy="no")
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return seconds, n_steps * BATCH if steps else len(dataset)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=glue_dir())
    parser.add_argument("--steps", type=int, default=None, help="steps per framework (default: one epoch of RTE)")
    parser.add_argument("--group-by-length", action="store_true", help="both frameworks: batches of similar lengths")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "RTE" / "train.tsv").exists():
        print(f"RTE not found under {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:  # transformers.Trainer needs it; mtl does not
        print('benchmarks/throughput.py needs accelerate for transformers.Trainer: pip install -e ".[bench]"',
              file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, max length {MAX_LENGTH}")
    hf_seconds, hf_examples = bench_hf(args.data_dir, args.steps, args.group_by_length)
    mtl_seconds, mtl_examples = bench_mtl(args.data_dir, args.steps, args.group_by_length)
    hf_rate, mtl_rate = hf_examples / hf_seconds, mtl_examples / mtl_seconds
    print("| trainer | examples | seconds | examples/s |")
    print("|---|---:|---:|---:|")
    batching = "group_by_length" if args.group_by_length else "random batches"
    print(f"| transformers.Trainer (dynamic padding, {batching}) | {hf_examples} | {hf_seconds:.1f} | {hf_rate:.1f} |")
    print(f"| mtl run --weighting uniform ({batching}) | {mtl_examples} | {mtl_seconds:.1f} | {mtl_rate:.1f} |")
    print(f"ratio mtl / transformers.Trainer = {mtl_rate / hf_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
