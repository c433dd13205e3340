"""Shared by the tests that crash a run and resume it (tests/runs, tests/plugins) and that train the demo suite."""

from __future__ import annotations

import json

import pytest
import torch

from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])


def config(path, **overrides) -> RunConfig:
    values = dict(DEMO, backbone="tiny", epochs=2, batch_size=16, max_length=32, lr=1e-3, log_every=1,
                  limit=64, eval_limit=48, checkpoint_every=4, output=str(path), seed=3)
    values.update(overrides)
    return RunConfig(**values)


class Crash(Exception):
    """Stands in for a crash in the middle of training (the process goes on only to run the test)."""


def crash_at(monkeypatch, at: int) -> None:
    original = Trainer.train_step

    def train_step(self, step, *args, **kwargs):
        if step == at:
            raise Crash(f"crash at step {step}")
        return original(self, step, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", train_step)


def run_files(path) -> tuple[dict, str]:
    return json.loads((path / "eval.json").read_text()), (path / "metrics.jsonl").read_text()


def whole_and_crashed(tmp_path, monkeypatch, **options) -> None:
    """The run of ``config(**options)`` to the end in ``tmp_path/whole``, and again in ``tmp_path/crashed`` crashed
    at step 10 (12 steps per epoch: checkpoints at 4 and 8, the crash in between)."""
    Trainer(config(tmp_path / "whole", **options)).train()
    crash_at(monkeypatch, 10)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "crashed", **options)).train()
    monkeypatch.undo()


def assert_same_tensors(a, b) -> None:
    """Two safetensors files hold the same tensors and metadata (their bytes may differ: the metadata's order)."""
    from safetensors import safe_open

    with safe_open(str(a), framework="pt") as fa, safe_open(str(b), framework="pt") as fb:
        assert fa.metadata() == fb.metadata() and set(fa.keys()) == set(fb.keys())
        for key in fa.keys():
            assert torch.equal(fa.get_tensor(key), fb.get_tensor(key))
