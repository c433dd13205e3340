"""The settings "the same fine-tune" means in benchmarks/throughput.py and benchmarks/parity.py, and how each
framework is given them: mtl's RunConfig and transformers' TrainingArguments built from one dict.

all-MiniLM-L6-v2 (`minilm`), batch 32, max length 128 (truncation; dynamic padding per batch), AdamW with lr 5e-5
and weight decay 0.01 (biases and LayerNorm weights exempt in both), linear warm-up over the first 10 % of steps
then linear decay to 0, gradient clipping at norm 1.0, dropout 0.1, fp32. ``group_by_length`` is the one batching
choice: random batches (both frameworks' default) or batches of similar lengths.
"""

from __future__ import annotations

import os
from pathlib import Path

SETTINGS = {
    "backbone": "minilm",
    "batch_size": 32,
    "eval_batch_size": 128,
    "max_length": 128,
    "lr": 5e-5,
    "weight_decay": 0.01,
    "warmup": 0.1,
    "clip": 1.0,
    "epochs": 3,
}

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"


def glue_dir(given: str | None = None) -> str:
    return given or os.environ.get("MTL_GLUE_DIR", str(DEFAULT_GLUE))


def run_config(task: str, seed: int, output: str, data_dir: str, *, group_by_length: bool, epochs: int | None = None,
               max_steps: int | None = None, eval_limit: int | None = None):
    """mtl's target-only run of ``task`` with :data:`SETTINGS`."""
    from mtl.runs.config import RunConfig

    s = SETTINGS
    return RunConfig(target=task, weighting="uniform", sampler="proportional", backbone=s["backbone"],
                     data_dir=data_dir, batch_size=s["batch_size"], eval_batch_size=s["eval_batch_size"],
                     max_length=s["max_length"], lr=s["lr"], weight_decay=s["weight_decay"], warmup=s["warmup"],
                     clip=s["clip"], epochs=epochs or s["epochs"], max_steps=max_steps, eval_limit=eval_limit,
                     seed=seed, output=output, log_every=1000, group_by_length=group_by_length)


def training_arguments(output_dir: str, seed: int, *, group_by_length: bool, epochs: int | None = None,
                       max_steps: int | None = None, **extra):
    """transformers' TrainingArguments with :data:`SETTINGS` (``extra`` adds evaluation and saving choices)."""
    import torch
    from transformers import TrainingArguments

    s = SETTINGS
    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=s["batch_size"],
        per_device_eval_batch_size=s["eval_batch_size"], learning_rate=s["lr"], weight_decay=s["weight_decay"],
        warmup_steps=s["warmup"], lr_scheduler_type="linear", max_grad_norm=s["clip"],
        num_train_epochs=epochs or s["epochs"], max_steps=max_steps if max_steps else -1,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        report_to=[], disable_tqdm=True, seed=seed, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, **extra)


def encode_for_transformers(task, split: str, data_dir: str, tokenizer):
    """``(datasets.Dataset, labels)`` of a split of an mtl task, tokenised as mtl does (truncated, unpadded)."""
    import datasets

    examples = task.load(split, data_dir=data_dir)
    columns = list(zip(*examples.texts, strict=True))
    enc = tokenizer(*[list(c) for c in columns], truncation=True, max_length=SETTINGS["max_length"])
    return datasets.Dataset.from_dict({**enc, "labels": examples.labels}), examples.labels
