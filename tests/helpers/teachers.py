"""Teacher runs for the distillation tests (MT-DNN-KD, mtl.training.distill): tiny single-task runs of a demo task."""

from __future__ import annotations

from pathlib import Path

from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer


def make_teacher(path: Path, target: str, *, seed: int, limit: int | None = 64, max_steps: int = 6,
                 max_length: int = 32, **overrides) -> Path:
    """A finished single-task run of ``target`` with the tiny backbone (its ``model/`` export included)."""
    values = dict(target=target, aux=[], backbone="tiny", max_steps=max_steps, batch_size=16, max_length=max_length,
                  lr=1e-3, limit=limit, eval_limit=32, log_every=50, seed=seed, output=str(path))
    values.update(overrides)
    Trainer(RunConfig(**values)).train()
    return path
