"""The run folder module (mtl.runs.folder): file permissions, one-line errors, and the weights a step records."""

from __future__ import annotations

import json
import os
import stat
import types

import pytest
import torch

import mtl
from mtl import Weighting, hookimpl
from mtl.contract.weighting import Step
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder, read_json, write_json
from mtl.training.trainer import Trainer


def tiny(output, **kw) -> RunConfig:
    values = dict(target="demo-paraphrase", aux=["demo-similarity"], backbone="tiny", max_steps=6, batch_size=8,
                  max_length=32, eval_limit=24, limit=48, log_every=1, seed=0, output=str(output))
    return RunConfig(**{**values, **kw})


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o027, 0o640)])
def test_run_files_follow_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        Trainer(tiny(tmp_path / "run", checkpoint_every=2, max_steps=5)).train()
    finally:
        os.umask(old)
    folder = RunFolder(tmp_path / "run")
    written = [folder.config_path, folder.eval_path, folder.summary_path, folder.best_path, folder.metrics_path,
               folder.model_dir / "mtl_export.json"]
    for path in written:
        assert mode(path) == expected, (path, oct(mode(path)))
    assert mode(folder.model_dir) == 0o777 & ~umask  # the exported folder is an ordinary folder too


def test_checkpoints_follow_the_umask_and_are_listed(tmp_path):
    folder = RunFolder(tmp_path / "run")
    old = os.umask(0o022)
    try:
        path = folder.save_checkpoint(3, {"w": torch.arange(4.0), "loop": {"step": 3}})
    finally:
        os.umask(old)
    assert mode(path) == 0o644 and mode(folder.checkpoints / "checkpoints.json") == 0o644
    assert folder.latest_checkpoint() == path
    state, loaded_from = folder.load_checkpoint()
    assert loaded_from == path and state["loop"] == {"step": 3} and torch.equal(state["w"], torch.arange(4.0))
    assert not list(folder.checkpoints.glob(".*.tmp"))  # no temp file left behind


def test_json_files_name_the_file_and_line_when_broken(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"target": "rte",\n  "aux": [}\n')
    with pytest.raises(MtlError, match=r"config.json:2: invalid JSON in the run's configuration"):
        RunFolder(tmp_path).record()
    with pytest.raises(MtlError, match=r"missing \(the bench file\)"):
        read_json(tmp_path / "bench.json", "the bench file")
    assert read_json(tmp_path / "bench.json", "the bench file", missing_ok=True) is None
    write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2]}


@pytest.mark.slow
def test_the_config_json_a_run_writes_reads_into_a_typed_record(tmp_path):
    """Every key the trainer writes is an option of RunConfig or a typed field of RunRecord (nothing left over)."""
    Trainer(tiny(tmp_path / "run", max_steps=2, eval_limit=8, limit=16)).train()
    record = RunFolder(tmp_path / "run").run_record()
    assert record.extra == {}
    assert record.config.max_length == 32 and record.config.target == "demo-paraphrase"
    assert record.sizes == {"demo-paraphrase": 16, "demo-similarity": 16} and record.total_steps == 2
    assert record.resume_command == "mtl run --resume" and record.versions["mtl"] == mtl.__version__
    assert set(record.plugins) >= {"weighting.uniform", "backbone.tiny", "task.demo-paraphrase"}


def test_config_json_is_read_into_options_recorded_keys_and_the_rest(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"target": "demo-paraphrase", "max_length": 64, "sizes": {"demo-paraphrase": 10},
                                "total_steps": 7, "affinity": {"every": 2}}))
    record = RunFolder(tmp_path).run_record()
    assert record.config.max_length == 64 and record.config.eval_batch_size == RunConfig().eval_batch_size
    assert record.sizes == {"demo-paraphrase": 10} and record.total_steps == 7 and record.device is None
    assert record.extra == {"affinity": {"every": 2}} and record.resume_command is None
    assert RunFolder(tmp_path / "none").run_record(missing_ok=True) is None
    for values, fragment in [({"total_steps": "7"}, "'total_steps' must be int (got '7')"),
                             ({"sizes": [1]}, "'sizes' must be an object (got [1])"),
                             ({"max_length": "long"}, "--max-length: expected an integer, got 'long'"),
                             ([1, 2], "not a run configuration (expected a JSON object)")]:
        path.write_text(json.dumps(values))
        with pytest.raises(MtlError) as info:
            RunFolder(tmp_path).run_record()
        assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value), str(info.value)


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(MtlError, match="does not exist"):
        RunFolder(tmp_path / "nowhere").require_run()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(MtlError, match=r"has no checkpoint/"):
        RunFolder(tmp_path / "half").require_run()


# ------------------------------------------------------------------------------------------ weights of a step
def test_step_weighted_is_the_weighted_mean_and_records_mean_weights():
    step = Step(losses={"a": torch.tensor([1.0, 3.0]), "b": torch.tensor([2.0, 4.0, 6.0])}, features={},
                target="a", index=0, epoch=0, progress=0.0)
    loss = step.weighted({"a": 2.0, "b": torch.tensor([0.0, 0.5, 1.0])})
    # (2·1 + 2·3 + 0·2 + 0.5·4 + 1·6) / 5 instances = 16 / 5
    assert loss.item() == pytest.approx(3.2)
    assert step.weights == {"a": 2.0, "b": pytest.approx(0.5)}
    with pytest.raises(ValueError, match="no weight for task"):
        step.weighted({"a": 1.0})


class _Weights(Weighting):
    """Target instances count 3, auxiliary instances 0.5, through Step.weighted."""

    def loss(self, step):
        return step.weighted({t: 3.0 if t == step.target else 0.5 for t in step.losses})


class _RecordedWeights(Weighting):
    """The same weights, recorded with Step.record_weights and applied by hand."""

    def loss(self, step):
        weights = {t: 3.0 if t == step.target else 0.5 for t in step.losses}
        step.record_weights(weights)
        return torch.cat([weights[t] * loss for t, loss in step.losses.items()]).mean()


@pytest.mark.parametrize("cls", [_Weights, _RecordedWeights])
def test_the_weights_a_weighting_applied_reach_metrics(tmp_path, register_plugin, cls):
    plugin = types.SimpleNamespace(register_weightings=hookimpl(
        lambda register: register("weights-test", cls, description="test")))
    register_plugin(plugin, name="weights-test-plugin")
    Trainer(tiny(tmp_path / "run", weighting="weights-test", sampler="round-robin")).train()
    records = [r for r in RunFolder(tmp_path / "run").metrics() if "tasks" in r]
    assert records, "no training records"
    for record in records:
        (task,) = record["tasks"]
        assert record[f"weight.{task}"] == (3.0 if task == "demo-paraphrase" else 0.5)


def test_a_weighting_state_with_nested_tensors_is_saved_beside_the_best_model(tmp_path):
    """save_state keeps nested dicts and lists of tensors (a gradient method's per-task state); a file without its
    tree is a one-line error."""
    import json

    import torch
    from safetensors.torch import save_file

    from mtl.runs.folder import RunFolder, load_state, save_state

    state = {"bank": torch.arange(6.0).view(2, 3), "step": 4, "tracked": {"a": torch.ones(2), "b": [torch.zeros(1), 2]},
             "name": "x"}
    save_state(tmp_path / "w.safetensors", state)
    back = load_state(tmp_path / "w.safetensors")
    assert back["step"] == 4 and back["name"] == "x" and back["tracked"]["b"][1] == 2
    assert torch.equal(back["bank"], state["bank"]) and torch.equal(back["tracked"]["a"], torch.ones(2))
    assert torch.equal(back["tracked"]["b"][0], torch.zeros(1))

    run = RunFolder(tmp_path / "run")
    run.save_best({"w": torch.ones(1)}, state)
    assert run.weighting_state_names() == ["bank", "step", "tracked", "name"]

    other = tmp_path / "other.safetensors"  # tensors without save_state's tree: not a plugin's state
    save_file({"bank": torch.ones(2)}, str(other), metadata={"format": "pt", "state": json.dumps({"step": 3})})
    with pytest.raises(MtlError, match="other.safetensors: not a plugin state file"):
        load_state(other)


def test_overwrite_takes_the_old_folder_away_in_one_rename_before_deleting_it(tmp_path, monkeypatch):
    """A reader of the folder sees the old run whole or none at all: it is renamed aside first, then deleted."""
    import shutil

    from mtl.runs import files

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl", "eval.json"):
        (run / name).write_text("{}")
    seen = []
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        seen.append((path, run.exists(), sorted(p.name for p in path.iterdir())))
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(files.shutil, "rmtree", rmtree)
    RunFolder(run).create(overwrite=True)
    [(deleted, old_still_there, contents)] = seen
    assert not old_still_there and deleted.parent == tmp_path and deleted.name.startswith(".run.")
    assert contents == ["checkpoint", "config.json", "eval.json", "metrics.jsonl"]  # whole when it was moved
    assert run.is_dir() and list(run.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
