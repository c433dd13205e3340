"""Gradient accumulation (``grad_accum``): K micro-batches of B instances make the update of one batch of K·B, and
the learning-rate schedules (``lr_schedule``) follow their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from mtl.runs.config import RunConfig
from mtl.training import optimizer as optim
from mtl.training.trainer import Trainer

TASKS = ["demo-paraphrase", "demo-similarity"]


def one_step(tmp_path, name: str, batch_size: int, grad_accum: int, **overrides):
    """Parameters after one optimisation step, and the training rows each task's stream handed out."""
    values = dict(target=TASKS[0], aux=TASKS[1:], backbone="tiny", max_length=32, limit=64, eval_limit=8, seed=5,
                  dropout=0.0, lr=1e-3, max_steps=1, batch_size=batch_size, grad_accum=grad_accum,
                  output=str(tmp_path / name))
    values.update(overrides)
    trainer = Trainer(RunConfig(**values)).prepare()
    trainer.model.eval()  # no dropout anywhere
    rows: dict[str, list[int]] = {}

    def recorded(task, draw):
        def next_indices():
            indices = draw()
            rows.setdefault(task, []).extend(indices)
            return indices
        return next_indices

    for task, stream in trainer.streams.items():
        stream.next_indices = recorded(task, stream.next_indices)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    optimizer, scheduler = trainer._optimizer()
    names, means, _, examples = trainer.train_step(0, optimizer, scheduler)
    after = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    return before, after, rows, means, examples


@pytest.mark.slow
@pytest.mark.parametrize("weighting, sampler, options", [
    ("uniform", "all", {}),
    # one auxiliary task per step (weighted by its similarity to the memory); memory 8 batches holds every one of
    # the 64 target examples for both batch sizes, so both runs start from the same memory
    ("mamt", "aux-only", {"mamt": {"memory": 8}}),
])
def test_four_micro_batches_of_8_update_as_one_batch_of_32(tmp_path, register_plugin, weighting, sampler, options):
    if sampler == "aux-only":
        import types

        from mtl import Sampler, hookimpl

        class AuxOnly(Sampler):
            def tasks(self, step, progress):
                return [TASKS[1]]

        register_plugin(types.SimpleNamespace(register_samplers=hookimpl(
            lambda register: register("aux-only", AuxOnly, description="test"))), name="aux-only-plugin")
    start, accumulated, rows_a, means_a, examples_a = one_step(tmp_path, "accumulated", 8, 4, weighting=weighting,
                                                               sampler=sampler, options=options)
    start_w, whole, rows_w, means_w, examples_w = one_step(tmp_path, "whole", 32, 1, weighting=weighting,
                                                           sampler=sampler, options=options)
    assert rows_a == rows_w and all(len(r) == 32 for r in rows_w.values())  # the same instances
    assert examples_a == examples_w == 32 * len(rows_w)
    for task in means_w:
        assert means_a[task] == pytest.approx(means_w[task], rel=1e-5)
    assert all(torch.equal(start[n], start_w[n]) for n in start)  # the same model before the step
    moved = max(float((whole[n] - p).abs().max()) for n, p in accumulated.items())
    changed = max(float((whole[n] - start_w[n]).abs().max()) for n in whole)
    assert changed > 1e-4  # the step moved the parameters ...
    assert moved < 1e-5, f"{weighting}: parameters differ by {moved}"  # ... and both ways alike


def test_steps_and_epochs_count_optimisation_steps(tmp_path):
    config = RunConfig(target=TASKS[0], aux=TASKS[1:], backbone="tiny", max_length=32, limit=40, eval_limit=8,
                       batch_size=4, grad_accum=3, epochs=2, output=str(tmp_path / "run"))
    trainer = Trainer(config).prepare()
    assert trainer.steps_per_epoch == 2 * math.ceil(40 / 12) and trainer.total_steps == 2 * trainer.steps_per_epoch


# ------------------------------------------------------------------------------------------------ schedules
def expected(schedule: str, step: int, total: int, warmup: int) -> float:
    """The factor of the learning rate at ``step``, written out."""
    if schedule == "linear":  # (s+1)/(w+1) while warming up, then linear to 0 at the end
        return (step + 1) / (warmup + 1) if step < warmup else (total - step) / (total - warmup)
    if step < warmup:  # transformers' warm-up: s/w
        return step / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / (total - warmup)  # cosine: half a period down to 0
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_each_schedule_follows_its_formula(schedule):
    model = torch.nn.Linear(3, 2)
    total, lr = 20, 0.5
    optimizer, scheduler = optim.build(model, [], lr=lr, weight_decay=0.0, warmup=0.25, total_steps=total,
                                       schedule=schedule)
    for step in range(total):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(lr * expected(schedule, step, total, 5), abs=1e-12), step
        optimizer.step()
        scheduler.step()


def test_the_run_uses_the_schedule_it_names(tmp_path):
    config = RunConfig(target=TASKS[0], backbone="tiny", max_length=32, limit=16, eval_limit=8, batch_size=8,
                       max_steps=10, warmup=0.2, lr=1e-3, lr_schedule="cosine", output=str(tmp_path / "run"))
    trainer = Trainer(config).prepare()
    optimizer, scheduler = trainer._optimizer()
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1e-3 * expected("cosine", s, 10, 2) for s in range(10)])
