"""Run folder size (issue 14): a finished run keeps one copy of its best model (``model/`` and, in
``checkpoint/best.safetensors``, only what ``model/`` lacks), older folders with two whole copies still load, and
``--keep model|none`` leaves exactly the documented files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli, run_mtl

from mtl.runs import best
from mtl.runs import folder as run_files
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.runs.restore import load_run
from mtl.training.trainer import Trainer

DEMO = {"target": "demo-paraphrase", "aux": ["demo-similarity", "demo-sentiment"]}
TINY = ["--backbone", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--limit", "16",
        "--eval-limit", "16", "--weighting", "mamt", "--sampler", "adaptive", "-q"]
RESULTS = {"config.json", "metrics.jsonl", "eval.json", "predictions.safetensors", "summary.json"}


def tiny(output: Path, **overrides) -> RunConfig:
    values = {**DEMO, "backbone": "tiny", "max_steps": 4, "batch_size": 8, "max_length": 32, "limit": 16,
              "eval_limit": 16, "lr": 1e-3, "seed": 2, "output": str(output)}
    return RunConfig(**{**values, **overrides})


def weight_bytes(run: Path) -> int:
    """Bytes of every weight file of a run folder (its evaluation predictions are not weights)."""
    return sum(p.stat().st_size for p in run.rglob("*.safetensors") if p.name != run_files.PREDICTIONS)


def files(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run and the trainer that wrote it (its model holds the best weights)."""
    run = tmp_path_factory.mktemp("one") / "run"
    trainer = Trainer(tiny(run))
    trainer.train()
    trainer.model.eval()
    return run, trainer


def logits(model, trainer, target="demo-paraphrase"):
    batch = trainer.eval_data[(target, "dev")].collate(list(range(8)))
    with torch.no_grad():
        return model(target, {k: v for k, v in batch.items() if k != "labels"})[0]


# ------------------------------------------------------------------------------------------------ one copy
def test_a_finished_run_holds_one_copy_of_its_best_model(finished):
    run, trainer = finished
    state = trainer.model.state_dict()
    model_bytes = sum(t.numel() * t.element_size() for t in state.values())  # independently of any file
    target_bytes = sum(t.numel() * t.element_size() for k, t in state.items()
                       if not k.startswith("heads.") or k.startswith("heads.demo-paraphrase."))
    total = weight_bytes(run)
    assert model_bytes < total < model_bytes * 1.02 + (64 << 10), (total, model_bytes)  # headers: a few KB
    # best.safetensors holds the auxiliary heads only; model/ the backbone and the target head
    rest = run_files.load_tensors(RunFolder(run).best_path)
    assert best.is_partial(RunFolder(run).best_path)
    assert {k.split(".")[1] for k in rest} == {"demo-similarity", "demo-sentiment"}
    assert (run / "model" / "model.safetensors").stat().st_size >= target_bytes
    # and the whole best model comes back bit for bit
    assert same_state(RunFolder(run).best(), {k: v.cpu() for k, v in state.items()})
    _, model, _ = load_run(run)
    assert torch.equal(logits(model, trainer), logits(trainer.model, trainer))


def test_a_run_folder_of_the_previous_layout_still_loads(finished, tmp_path):
    """Two whole copies (best.safetensors as the whole model, model/ beside it): read as before, same logits."""
    run, trainer = finished
    old = tmp_path / "old"
    shutil.copytree(run, old)
    whole = RunFolder(run).best()
    run_files.save_tensors(RunFolder(old).best_path, whole, {"format": "pt", "kind": "mtl-best"})
    assert not best.is_partial(RunFolder(old).best_path)
    assert same_state(RunFolder(old).best(), whole)
    _, model, _ = load_run(old)
    assert torch.equal(logits(model, trainer), logits(trainer.model, trainer))
    # exported again from the old layout: the same model.safetensors tensors as the new layout's model/
    out = tmp_path / "export"
    assert invoke_cli("export", str(old), "--output", str(out)).exit_code == 0
    assert same_state(run_files.load_tensors(out / "model.safetensors"),
                      run_files.load_tensors(run / "model" / "model.safetensors"))
    shutil.rmtree(old / "model")  # an old run without model/ (or one whose export failed) needs none
    assert same_state(RunFolder(old).best(), whole)


def test_exporting_again_into_model_keeps_the_run_whole(finished, tmp_path):
    run, _ = finished
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    result = invoke_cli("export", str(copy), "--overwrite")  # default --output: RUN/model, which the run reads
    assert result.exit_code == 0, result.output
    assert same_state(RunFolder(copy).best(), RunFolder(run).best())
    assert not [p for p in copy.iterdir() if p.name.startswith(".model.")]  # nothing left aside


def test_a_changed_or_missing_model_folder_is_one_line(finished, tmp_path):
    run, _ = finished
    changed = tmp_path / "changed"
    shutil.copytree(run, changed)
    path = changed / "model" / "model.safetensors"
    tensors = run_files.load_tensors(path)
    tensors["classifier.bias"] = tensors["classifier.bias"] + 1
    run_files.save_tensors(path, tensors, {"format": "pt"})
    assert_one_line_error(invoke_cli("eval", str(changed)), str(path), "'classifier.bias'",
                          "changed after the run finished")
    shutil.rmtree(changed / "model")
    assert_one_line_error(invoke_cli("export", str(changed), "--output", str(tmp_path / "x")), str(path), "missing",
                          "best.safetensors holds only what model/ lacks")


# ------------------------------------------------------------------------------------------------ --keep
@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A run (mamt: a weighting state) with each --keep; the `all` run teaches demo-paraphrase to the other two, so
    they also had soft targets while training."""
    root = tmp_path_factory.mktemp("keep")
    runs = {}
    for keep in ("all", "model", "none"):
        teacher = ["--teacher", f"demo-paraphrase={runs['all']}"] if runs else []
        result = invoke_cli("run", *TINY, *teacher, "--keep", keep, "-o", str(root / keep))
        assert result.exit_code == 0, result.output
        runs[keep] = root / keep
    return runs


@pytest.mark.slow
def test_each_keep_leaves_exactly_the_documented_files(kept):
    model = {f for f in files(kept["all"]) if f.startswith("model/")}
    assert {"model/model.safetensors", "model/mtl_export.json", "model/config.json", "model/README.md"} <= model
    assert files(kept["all"]) == RESULTS | model | {"checkpoint/best.safetensors", "checkpoint/weighting.safetensors"}
    assert files(kept["model"]) == RESULTS | model | {"checkpoint/best.safetensors"}
    assert files(kept["none"]) == RESULTS
    for keep, run in kept.items():
        assert json.loads((run / "config.json").read_text())["keep"] == keep
    # the same training: the same results whatever is kept (the soft targets were there while it trained)
    assert (kept["model"] / "eval.json").read_text() == (kept["none"] / "eval.json").read_text()


@pytest.mark.slow
def test_a_run_kept_with_model_works_as_a_run_and_as_a_teacher(kept, tmp_path):
    run = kept["model"]
    assert invoke_cli("eval", str(run), "--task", "demo-sentiment").exit_code == 0  # an auxiliary head too
    result = invoke_cli("run", *TINY, "--teacher", f"demo-paraphrase={run}", "-o", str(tmp_path / "student"))
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_run_kept_with_none_says_so_in_one_line(kept, tmp_path):
    run = kept["none"]
    for command in (["eval", str(run)], ["predict", str(run)], ["export", str(run), "--output", str(tmp_path / "x")],
                    ["finetune", str(run), "-o", str(tmp_path / "child")]):
        assert_one_line_error(invoke_cli(*command), str(run), "kept no weights", "--keep none")
    result = invoke_cli("run", *TINY, "--teacher", f"demo-paraphrase={run}", "-o", str(tmp_path / "student"))
    assert_one_line_error(result, "--teacher", "kept no weights")
    assert not (tmp_path / "x").exists() and not (tmp_path / "child").exists() and not (tmp_path / "student").exists()


def test_an_unknown_keep_is_one_line_before_anything_is_written(tmp_path):
    result = run_mtl("run", *TINY, "--keep", "weights", "-o", str(tmp_path / "run"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and all(word in lines[0] for word in ("'--keep'", "'weights'", "'none'"))
    assert not (tmp_path / "run").exists()
