"""`mtl finetune`: multi-task then fine-tune starts from exactly the parent's backbone and target head."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli

from mtl.contract import loader
from mtl.model.multitask import MultiTaskModel
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.training.finetune import finetune_config
from mtl.training.trainer import Trainer

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])


def parent_run(path, **overrides):
    values = dict(DEMO, backbone="tiny", max_steps=6, batch_size=8, max_length=32, limit=24, eval_limit=16,
                  lr=1e-3, output=str(path))
    values.update(overrides)
    Trainer(RunConfig(**values)).train()
    return path


def parent_logits(path, batch):
    """The parent's target logits, from a model built here with the parent's tasks and its best checkpoint."""
    config, _ = RunFolder(path).config()
    routed = config.plugin_options()
    backbone = loader.create("backbone", config.backbone, **routed.get(("backbone", config.backbone), {}))
    tasks = {n: loader.create("task", n) for n in config.tasks}
    model = MultiTaskModel(backbone, {n: t.num_outputs for n, t in tasks.items()}, config.dropout)
    model.load_state_dict(RunFolder(path).best())
    model.eval()
    with torch.no_grad():
        return model(config.target, batch)[0]


@pytest.mark.parametrize("task_embedding", ["none", "attention"])
def test_finetune_starts_from_exactly_the_parents_weights(tmp_path, task_embedding):
    extra = {"options": {"tiny": {"task_embedding": task_embedding}}} if task_embedding != "none" else {}
    parent = parent_run(tmp_path / "parent", **extra)
    config = finetune_config(parent, {})
    config.output = str(tmp_path / "child")
    child = Trainer(config).prepare()
    assert list(child.tasks) == ["demo-paraphrase"] and config.weighting == "uniform" and config.aux == []
    child.model.eval()
    batch = child.eval_data[("demo-paraphrase", "dev")].collate(list(range(8)))
    batch = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        mine = child.model("demo-paraphrase", batch)[0]
    assert torch.allclose(mine, parent_logits(parent, batch), atol=1e-6)
    # bit for bit: the parent's best model (its model/ and what its best.safetensors holds beside it)
    theirs = RunFolder(parent).best()
    for name, tensor in child.model.state_dict().items():
        expected = theirs[name]
        if expected.shape != tensor.shape:  # a task vector: the target's, task 0 (the parent had three)
            axis = next(i for i, (a, b) in enumerate(zip(expected.shape, tensor.shape, strict=True)) if a != b)
            expected = expected.narrow(axis, 0, 1)
        assert torch.equal(tensor.cpu(), expected), name
    if task_embedding == "attention":  # the target's task vectors, the others left out
        vectors = RunFolder(parent).best()["backbone.task_embedding.vectors"]
        assert torch.equal(child.model.backbone.task_embedding.vectors, vectors[:, :, :1])
    # a fresh model of the same seed (without the parent) gives other logits: the test above could fail
    fresh = Trainer(RunConfig(target="demo-paraphrase", backbone="tiny", max_length=32, limit=24, eval_limit=16,
                              output=str(tmp_path / "fresh"), **extra)).prepare()
    fresh.model.eval()
    with torch.no_grad():
        assert not torch.allclose(fresh.model("demo-paraphrase", batch)[0], mine, atol=1e-3)


@pytest.mark.slow
def test_mtl_finetune_trains_the_target_alone_with_a_regularizer(tmp_path):
    parent = parent_run(tmp_path / "parent")
    out = tmp_path / "child"
    result = invoke_cli("finetune", str(parent), "-o", str(out), "--max-steps", "3", "--regularizer", "smart",
                        "--lr", "2e-4", "-q")
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["parent"] == str(parent.resolve()) and config["aux"] == [] and config["weighting"] == "uniform"
    assert config["regularizer"] == "smart" and config["lr"] == 2e-4 and config["max_length"] == 32
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"tasks"' in line]
    assert {t for r in records for t in r["tasks"]} == {"demo-paraphrase"} and "smart.adversarial" in records[0]
    assert list(json.loads((out / "eval.json").read_text())) == ["demo-paraphrase"]
    assert (out / "model" / "config.json").exists()  # an ordinary run: its target model is exported


@pytest.mark.slow
def test_finetune_errors_are_one_line_and_write_nothing(tmp_path):
    result = invoke_cli("finetune", str(tmp_path / "nothing"), "-o", str(tmp_path / "a"), "-q")
    assert_one_line_error(result, "not a run folder", "nothing")
    parent = parent_run(tmp_path / "parent")
    (parent / "summary.json").rename(parent / "summary.moved")
    result = invoke_cli("finetune", str(parent), "-o", str(tmp_path / "b"), "-q")
    assert_one_line_error(result, "not finished")
    (parent / "summary.moved").rename(parent / "summary.json")
    result = invoke_cli("finetune", str(parent), "-o", str(tmp_path / "c"), "--set", "mamt.psi=0.5", "-q")
    assert_one_line_error(result, "mamt", "not a plugin of this run")
    mmoe = parent_run(tmp_path / "mmoe", weighting="mmoe")
    result = invoke_cli("finetune", str(mmoe), "-o", str(tmp_path / "d"), "-q")
    assert_one_line_error(result, "module between backbone and heads")
    assert not any((tmp_path / n).exists() for n in "abcd")
    # `-o PARENT --overwrite` would replace the parent by its fine-tuned run (before: it did, and named itself parent)
    before = sorted(p.relative_to(parent) for p in parent.rglob("*"))
    result = invoke_cli("finetune", str(parent), "-o", str(parent), "--overwrite", "--max-steps", "1", "-q")
    assert_one_line_error(result, f"--output {parent}: --overwrite would delete", "which this command reads")
    assert sorted(p.relative_to(parent) for p in parent.rglob("*")) == before
