"""The MMoE weighting (Ma et al., KDD 2018): experts and per-task gates between backbone and heads."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli
from helpers.runs import DEMO

import mtl
from mtl import Step
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

TASKS = [DEMO["target"], *DEMO["aux"]]


def mmoe_config(tmp_path, **overrides) -> RunConfig:
    values = dict(DEMO, backbone="tiny", weighting="mmoe", batch_size=8, max_length=32, lr=1e-3, log_every=1,
                  output=str(tmp_path / "run"), seed=0, max_steps=6, options={"tiny": {"hidden_size": 32}})
    values.update(overrides)
    return RunConfig(**values)


def test_experts_and_gates_are_installed_between_backbone_and_heads(tmp_path):
    trainer = Trainer(mmoe_config(tmp_path, options={"tiny": {"hidden_size": 32}, "mmoe": {"experts": 3}})).prepare()
    module = trainer.model.feature_map
    assert module is trainer.weighting.module
    assert len(module.experts) == 3 and set(module.gates) == set(TASKS)
    first, last = module.experts[0][0], module.experts[0][-1]
    assert (first.in_features, first.out_features, last.out_features) == (32, 32, 32)  # hidden defaults to D
    assert all(module.gates[t].out_features == 3 for t in TASKS)
    # saved with the model: the state dict holds every expert and every task's gate
    keys = set(trainer.model.state_dict())
    assert {f"feature_map.experts.{e}.{i}.{p}" for e in range(3) for i in (0, 3) for p in ("weight", "bias")} <= keys
    assert {f"feature_map.gates.{t}.{p}" for t in TASKS for p in ("weight", "bias")} <= keys
    assert trainer.weighting.state_dict() == {}
    # and trained by the optimizer
    optimizer, _ = trainer._optimizer()
    optimized = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(id(p) in optimized for p in module.parameters())

    other = Trainer(mmoe_config(tmp_path, options={"tiny": {"hidden_size": 32}, "mmoe": {"hidden": 12}})).prepare()
    assert other.model.feature_map.experts[0][0].out_features == 12 and len(other.model.feature_map.experts) == 4


def test_gates_sum_to_one_and_the_feature_is_the_gated_sum_of_experts(tmp_path):
    trainer = Trainer(mmoe_config(tmp_path)).prepare()
    module = trainer.model.feature_map.eval()
    x = torch.randn(7, 32)
    with torch.no_grad():
        experts = torch.stack([expert(x) for expert in module.experts], dim=1)  # [B, E, D]
        gates = {task: module.gate(x, task) for task in TASKS}
        for task in TASKS:
            g = gates[task]
            assert g.shape == (7, 4) and (g > 0).all()
            assert torch.allclose(g.sum(dim=1), torch.ones(7), atol=1e-6)  # per instance, per task
            expected = (g[:, :, None] * experts).sum(dim=1)
            assert torch.allclose(module(x, task), expected, atol=1e-6)
        # the gates are per task: different tasks mix the same experts differently
        assert not torch.allclose(gates[TASKS[0]], gates[TASKS[1]])


def test_a_run_step_trains_experts_and_the_gate_of_its_task(tmp_path):
    trainer = Trainer(mmoe_config(tmp_path)).prepare()
    model, weighting = trainer.model, trainer.weighting
    task = "demo-similarity"
    batch = next(trainer.streams[task])
    logits, _, hidden = model(task, batch)
    losses = trainer.tasks[task].loss(logits, batch["labels"])
    step = Step(losses={task: losses}, features={}, target=DEMO["target"], index=0, epoch=0, progress=0.0)
    weighting.backward(step)
    module = model.feature_map
    for expert in module.experts:
        for p in expert.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
    for p in module.gates[task].parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for other in TASKS:
        if other != task:  # a gate is trained only by its own task
            assert all(p.grad is None for p in module.gates[other].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    log = weighting.log()
    assert step.weights == {task: 1.0}  # logged as weight.<task>
    gate_keys = {k for k in log if k.startswith("mmoe.gate.")}
    assert gate_keys == {f"mmoe.gate.{task}.{e}" for e in range(4)}
    assert sum(log[k] for k in gate_keys) == pytest.approx(1.0, abs=1e-5)
    # the loss is the plain mean of all instance losses (task weight 1)
    assert torch.allclose(weighting.loss(step), losses.mean())


def test_trainer_logs_the_mean_gates_and_saves_experts_in_the_checkpoint(tmp_path):
    result = Trainer(mmoe_config(tmp_path, sampler="all", max_steps=3)).train()
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "tasks" in r]
    assert [r["step"] for r in steps] == [0, 1, 2]
    for record in steps:
        assert sorted(record["tasks"]) == sorted(TASKS)
        for task in record["tasks"]:
            gates = [record[f"mmoe.gate.{task}.{e}"] for e in range(4)]
            assert all(0 < g < 1 for g in gates) and sum(gates) == pytest.approx(1.0, abs=1e-5)
            assert record[f"weight.{task}"] == 1.0
    from mtl.runs.folder import RunFolder

    saved = RunFolder(run).best()  # the whole best model: best.safetensors and what it refers to in model/
    assert "feature_map.experts.0.0.weight" in saved and f"feature_map.gates.{TASKS[0]}.weight" in saved
    assert result["eval"].keys() == set(TASKS)


def test_single_task_sampler_logs_only_the_gates_of_the_step(tmp_path):
    Trainer(mmoe_config(tmp_path, max_steps=4)).train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for record in (r for r in records if "tasks" in r):
        (task,) = record["tasks"]
        logged = {k.split(".")[2] for k in record if k.startswith("mmoe.gate.")}
        assert logged == {task}
        assert sum(record[f"mmoe.gate.{task}.{e}"] for e in range(4)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("key, value, message", [
    ("experts", "0", r"experts must be >= 1 \(got 0\)"),
    ("experts", "-2", r"experts must be >= 1 \(got -2\)"),
    ("hidden", "0", "hidden must be >= 1"),
    ("dropout", "1.5", r"dropout must be in \[0, 1\)"),
])
def test_bad_options_are_clear_errors(key, value, message):
    with pytest.raises(MtlError, match=message):
        mtl.create("weighting", "mmoe", **{key: value})


def test_zero_experts_is_a_one_line_cli_error_and_writes_nothing(tmp_path):
    out = tmp_path / "y"
    result = invoke_cli("run", *TINY_RUN, "-o", str(out), "--weighting", "mmoe", "--set", "mmoe.experts=0")
    assert assert_one_line_error(result) == "Error: weighting 'mmoe': experts must be >= 1 (got 0)"
    assert not out.exists()
