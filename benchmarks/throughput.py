"""Training throughput: `mtl run --weighting uniform` vs `transformers.Trainer`, same model, data and batch.

RTE train from a GLUE folder, backbone all-MiniLM-L6-v2 (`minilm`), batch 32, max length 128, one epoch,
both measured in this one process (machines are shared and noisy: compare the ratio, not absolute numbers).
transformers.Trainer gets its best padding settings: dynamic padding (DataCollatorWithPadding) and
train_sampling_strategy="group_by_length" (group_by_length). Training time excludes evaluation for both.

    python benchmarks/throughput.py [--data-dir ../shared/data/glue] [--steps N]
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

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
BATCH, MAX_LENGTH, LR = 32, 128, 5e-5


def bench_mtl(data_dir: str, steps: int | None) -> tuple[float, int]:
    from mtl.runs.config import RunConfig
    from mtl.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig(target="rte", weighting="uniform", backbone="minilm", data_dir=data_dir,
                           batch_size=BATCH, max_length=MAX_LENGTH, lr=LR, epochs=1, max_steps=steps,
                           eval_limit=32, seed=0, output=str(Path(tmp) / "run"), log_every=1000)
        result = Trainer(config).train()
    s = result["summary"]
    return s["total_seconds"] - s["eval_seconds"], s["train_examples"]


def bench_hf(data_dir: str, steps: int | None) -> tuple[float, int]:
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    import mtl
    from mtl.plugins.backbones.minilm import model_path

    hf_logging.set_verbosity_error()
    task = mtl.create("task", "rte")
    train = task.load("train", data_dir=data_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    first, second = zip(*train.texts)
    enc = tokenizer(list(first), list(second), truncation=True, max_length=MAX_LENGTH)
    dataset = datasets.Dataset.from_dict({**enc, "labels": train.labels})
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=2)
    n_steps = steps or math.ceil(len(dataset) / BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=BATCH, learning_rate=LR,
                                 max_steps=n_steps, warmup_steps=0.1, weight_decay=0.01,
                                 train_sampling_strategy="group_by_length",
                                 logging_strategy="no", save_strategy="no", eval_strategy="no",
                                 report_to=[], disable_tqdm=True, seed=0, use_cpu=not torch.cuda.is_available(),
                                 dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return seconds, n_steps * BATCH if steps else len(dataset)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MTL_GLUE_DIR", str(DEFAULT_GLUE)))
    parser.add_argument("--steps", type=int, default=None, help="steps per framework (default: one epoch of RTE)")
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
    hf_seconds, hf_examples = bench_hf(args.data_dir, args.steps)
    mtl_seconds, mtl_examples = bench_mtl(args.data_dir, args.steps)
    hf_rate, mtl_rate = hf_examples / hf_seconds, mtl_examples / mtl_seconds
    print("| trainer | examples | seconds | examples/s |")
    print("|---|---:|---:|---:|")
    print(f"| transformers.Trainer (dynamic padding, group_by_length) | {hf_examples} | {hf_seconds:.1f} | {hf_rate:.1f} |")
    print(f"| mtl run --weighting uniform | {mtl_examples} | {mtl_seconds:.1f} | {mtl_rate:.1f} |")
    print(f"ratio mtl / transformers.Trainer = {mtl_rate / hf_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
