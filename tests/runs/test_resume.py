"""Crash-safe checkpoints and --resume: a stopped run continues to exactly the metrics of an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli
from helpers.runs import Crash, assert_same_tensors, config, crash_at, run_files, whole_and_crashed
from helpers.teachers import make_teacher

from mtl.errors import MtlError, TrainingError
from mtl.runs import checkpoint
from mtl.runs.checkpoint import CheckpointError
from mtl.runs.folder import RunFolder
from mtl.training import distill
from mtl.training.trainer import Trainer

STRATEGIES = [("uniform", "proportional"), ("mamt", "adaptive"), ("siwlm", "sequential"), ("mmoe", "temperature")]


@pytest.mark.parametrize("weighting,sampler", STRATEGIES)
@pytest.mark.slow
def test_resume_after_a_crash_gives_the_uninterrupted_run(tmp_path, monkeypatch, weighting, sampler):
    options = dict(weighting=weighting, sampler=sampler)
    whole_and_crashed(tmp_path, monkeypatch, **options)
    assert RunFolder(tmp_path / "crashed").latest_checkpoint().name == "step-00000008.safetensors"
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000008.safetensors")
    # the same metrics, and the same metrics.jsonl byte for byte (records after the checkpoint written once)
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    # a finished run keeps its best model but not the resume checkpoints
    assert not list((tmp_path / "crashed" / "checkpoint").glob("step-*"))
    assert (tmp_path / "crashed" / "checkpoint" / "best.safetensors").exists()
    # the same best model bit for bit (model/ and what best.safetensors holds beside it)
    assert_same_state(RunFolder(tmp_path / "crashed").best(), RunFolder(tmp_path / "whole").best())


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, list[str]]:
    """Teachers (MT-DNN-KD) of two demo tasks, trained on the 64 examples `config` trains on."""
    root = tmp_path_factory.mktemp("teachers")
    return {"demo-paraphrase": [str(make_teacher(root / "paraphrase", "demo-paraphrase", seed=1))],
            "demo-similarity": [str(make_teacher(root / "similarity", "demo-similarity", seed=1))]}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def predicting_again(*args, **kwargs):
    raise AssertionError("the teachers predicted again on --resume instead of reusing the stored soft targets")


@pytest.mark.parametrize("weighting,sampler", STRATEGIES)
@pytest.mark.slow
def test_resume_with_teachers_reuses_the_soft_targets_and_gives_the_uninterrupted_run(tmp_path, monkeypatch, teachers,
                                                                                      weighting, sampler):
    options = dict(weighting=weighting, sampler=sampler, teachers=teachers)
    whole_and_crashed(tmp_path, monkeypatch, **options)
    soft = (tmp_path / "crashed" / distill.SOFT_TARGETS).read_bytes()
    monkeypatch.setattr(distill, "soft_targets", predicting_again)
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000008.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    assert (tmp_path / "crashed" / distill.SOFT_TARGETS).read_bytes() == soft
    assert_same_tensors(tmp_path / "whole" / distill.SOFT_TARGETS, tmp_path / "crashed" / distill.SOFT_TARGETS)


ISSUE_11_OPTIONS = {
    "adamax": dict(optimizer="adamax"),
    "smart": dict(regularizer="smart", options={"smart": {"steps": 2, "sigma": 1e-3, "epsilon": 1e-2}}),
    "task-projected": dict(options={"tiny": {"task_embedding": "projected"}}, sampler="all"),
    "task-activation": dict(options={"tiny": {"task_embedding": "activation"}}, sampler="all"),
}


@pytest.mark.parametrize("name", list(ISSUE_11_OPTIONS))
@pytest.mark.slow
def test_resume_with_the_optimizer_regularizer_and_task_embeddings_of_issue_11(tmp_path, monkeypatch, name):
    """Adamax's moments, SMART's momentum copy and noise draws, the new task-embedding parameters: all resume
    to exactly the uninterrupted run."""
    options = ISSUE_11_OPTIONS[name]
    whole_and_crashed(tmp_path, monkeypatch, **options)
    Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")


@pytest.mark.slow
def test_a_finetune_run_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    from mtl.training.finetune import finetune_config

    Trainer(config(tmp_path / "parent", epochs=1)).train()
    runs = {}
    for name in ("whole", "crashed"):
        runs[name] = finetune_config(tmp_path / "parent", {"regularizer": "smart", "checkpoint_every": 2, "epochs": 2})
        runs[name].output = str(tmp_path / name)
    Trainer(runs["whole"]).train()
    crash_at(monkeypatch, 5)  # 4 target steps per epoch: checkpoints at 2 and 4
    with pytest.raises(Crash):
        Trainer(runs["crashed"]).train()
    monkeypatch.undo()
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000004.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")


def test_only_the_last_two_checkpoints_are_kept(tmp_path, monkeypatch):
    crash_at(monkeypatch, 21)  # checkpoints at 4, 8, 12 (epoch end), 16, 20
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    folder = tmp_path / "run" / "checkpoint"
    assert sorted(p.name for p in folder.glob("step-*")) == ["step-00000016.safetensors", "step-00000020.safetensors"]
    listed = json.loads((folder / "checkpoints.json").read_text())["checkpoints"]
    assert [e["step"] for e in listed] == [16, 20]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.slow
def test_a_damaged_checkpoint_is_rejected_and_the_previous_one_used(tmp_path, monkeypatch, capfd, damage):
    Trainer(config(tmp_path / "whole")).train()
    crash_at(monkeypatch, 10)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "crashed")).train()
    monkeypatch.undo()
    newest = tmp_path / "crashed" / "checkpoint" / "step-00000008.safetensors"
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        newest.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 2] ^= 0xFF
        newest.write_bytes(bytes(data))
    capfd.readouterr()
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    warning = capfd.readouterr().err
    assert "step-00000008.safetensors" in warning and "using the previous checkpoint" in warning
    assert ("truncated" if damage == "truncate" else "SHA-256 does not match") in warning
    assert result["summary"]["resumed_from"].endswith("step-00000004.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")


def test_no_usable_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    crash_at(monkeypatch, 10)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    for path in (tmp_path / "run" / "checkpoint").glob("step-*"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no usable checkpoint .*step-00000004.safetensors: truncated"):
        Trainer.resuming(tmp_path / "run").prepare().train()


def test_pack_keeps_key_types_tensors_and_values():
    state = {"optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 3)}},
                           "param_groups": [{"betas": (0.9, 0.999), "params": [0, 1], "lr": 1e-3}]},
             "best": -float("inf"), "names": ["a", "b"], "empty": {}}
    back = checkpoint.deserialise(checkpoint.serialise(state))
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints (optimizer.load_state_dict needs them)
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], torch.ones(2, 3))
    assert back["optimizer"]["param_groups"][0]["betas"] == [0.9, 0.999]
    assert back["best"] == -float("inf") and back["names"] == ["a", "b"] and back["empty"] == {}


def whole_and_killed(args: list[str], tmp_path) -> tuple[object, object]:
    """``mtl ARGS`` run to the end in ``tmp_path/whole``, and again in ``tmp_path/killed`` killed with SIGKILL right
    after its first checkpoint; returns (the environment of both, the killed folder)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run([sys.executable, "-m", "mtl.cli", *args, "-o", str(tmp_path / "whole")], env=env,
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mtl.cli", *args, "-o", str(killed)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = killed / "checkpoint" / "checkpoints.json"
    deadline = time.monotonic() + 120
    while not manifest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and not (killed / "eval.json").exists()
    return env, killed


def resume(killed, env) -> None:
    resumed = subprocess.run([sys.executable, "-m", "mtl.cli", "run", "--resume", str(killed), "--quiet"], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_eval(tmp_path):
    """A real `mtl run` subprocess killed with SIGKILL right after a checkpoint, then `mtl run --resume`."""
    args = ["run", "--backbone", "tiny", "--max-steps", "80", "--limit", "64", "--eval-limit", "48",
            "--batch-size", "16", "--max-length", "32", "--checkpoint-every", "4", "--seed", "5", "--quiet"]
    env, killed = whole_and_killed(args, tmp_path)
    resume(killed, env)
    assert run_files(killed) == run_files(tmp_path / "whole")
    assert_same_state(RunFolder(killed).best(), RunFolder(tmp_path / "whole").best())


@pytest.mark.slow
def test_sigkill_then_resume_with_teachers_reuses_the_stored_soft_targets(tmp_path, teachers):
    """`mtl run --teacher ...` on the demo suite, killed with SIGKILL after a checkpoint; its teachers are then
    deleted, and `mtl run --resume` still continues it to the uninterrupted run's eval from the stored soft targets."""
    own = {task: shutil.copytree(runs[0], tmp_path / "teachers" / task) for task, runs in teachers.items()}
    args = ["run", "--backbone", "tiny", "--max-steps", "40", "--limit", "64", "--eval-limit", "48",
            "--batch-size", "16", "--max-length", "32", "--checkpoint-every", "4", "--seed", "5", "--quiet",
            *[a for task, path in own.items() for a in ("--teacher", f"{task}={path}")]]
    env, killed = whole_and_killed(args, tmp_path)
    soft = (killed / distill.SOFT_TARGETS).read_bytes()
    shutil.rmtree(tmp_path / "teachers")  # predicting again would now fail
    resume(killed, env)
    assert run_files(killed) == run_files(tmp_path / "whole")
    assert (killed / distill.SOFT_TARGETS).read_bytes() == soft  # not written again
    assert_same_tensors(tmp_path / "whole" / distill.SOFT_TARGETS, killed / distill.SOFT_TARGETS)
    assert json.loads((killed / "config.json").read_text())["teachers"] == {t: [str(p)] for t, p in own.items()}


def nan_at(monkeypatch, trainer, at: int) -> None:
    """Every task's loss is NaN at step ``at`` (and only there)."""
    current = {"step": -1}
    original_step = Trainer.train_step

    def train_step(self, step, *args, **kwargs):
        current["step"] = step
        return original_step(self, step, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    for task_type in {type(task) for task in trainer.tasks.values()}:
        original = task_type.loss

        def loss(self, logits, labels, _original=original):
            value = _original(self, logits, labels)
            return value * float("nan") if current["step"] == at else value

        monkeypatch.setattr(task_type, "loss", loss)


def test_non_finite_loss_names_step_task_and_last_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(config(tmp_path / "run")).prepare()
    nan_at(monkeypatch, trainer, 6)
    with pytest.raises(TrainingError, match=r"non-finite loss at step 6 on task 'demo-[a-z]+' "
                                            r"\(weighting '[a-z]+'\); last checkpoint "
                                            r".*step-00000004.safetensors \(continue with `mtl run --resume"):
        trainer.train()
    assert (tmp_path / "run" / "checkpoint" / "step-00000004.safetensors").exists()


def test_skip_nonfinite_skips_and_counts_the_step(tmp_path, monkeypatch):
    trainer = Trainer(config(tmp_path / "run", skip_nonfinite=True, max_steps=10)).prepare()
    nan_at(monkeypatch, trainer, 3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    steps_seen = []
    original_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        steps_seen.append(1)
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    result = trainer.train()
    assert result["summary"]["skipped_steps"] == 1
    assert len(steps_seen) == 9  # the optimizer did not step on the skipped step
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"]: r for r in records if "tasks" in r}
    assert "nonfinite.skipped" not in steps[2] and steps[3]["nonfinite.skipped"] == 1
    assert not any(k.startswith("loss.") for k in steps[3])  # the NaN loss is not logged
    assert all(value == value for r in records for k, value in r.items() if k.startswith("loss."))
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


@pytest.mark.slow
def test_bf16_trains_on_cpu_under_autocast(tmp_path, monkeypatch):
    trainer = Trainer(config(tmp_path / "run", precision="bf16", epochs=3, lr=2e-3)).prepare()
    dtypes = set()
    trainer.model.backbone.register_forward_hook(
        lambda module, inputs, output: dtypes.add(output[0].dtype) if module.training else None)
    result = trainer.train()
    assert dtypes == {torch.bfloat16}  # the backbone really ran in bf16 during training
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss.demo-similarity"] for r in records if "loss.demo-similarity" in r]
    assert all(v == v and v < float("inf") for v in losses)
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4  # it learns (the similarity scale, as in fp32)
    assert set(result["eval"]) == {"demo-paraphrase", "demo-similarity", "demo-sentiment"}


def test_fp16_without_cuda_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: fp16 is allowed")
    result = invoke_cli("run", "--backbone", "tiny", "--precision", "fp16", "-o", str(tmp_path / "run"), "-q")
    assert_one_line_error(result, "--precision fp16 needs a CUDA device")
    assert not (tmp_path / "run").exists()


def test_unknown_precision_in_a_config_file_is_a_one_line_error(tmp_path):
    (tmp_path / "run.yaml").write_text("precision: fp8\n")
    result = invoke_cli("run", "--backbone", "tiny", "--config", str(tmp_path / "run.yaml"),
                        "-o", str(tmp_path / "run"))
    assert_one_line_error(result, f"{tmp_path / 'run.yaml'}: precision: expected one of fp32, bf16, fp16, got 'fp8'")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_refuses_other_options_finished_runs_and_missing_folders(tmp_path, monkeypatch):
    crash_at(monkeypatch, 6)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    monkeypatch.undo()
    assert_one_line_error(invoke_cli("run", "--resume", str(tmp_path / "run"), "--lr", "0.1"), "drop --lr")
    assert_one_line_error(invoke_cli("run", "--resume", str(tmp_path / "nothing")), "not a run folder")
    assert invoke_cli("run", "--resume", str(tmp_path / "run"), "-q").exit_code == 0
    assert_one_line_error(invoke_cli("run", "--resume", str(tmp_path / "run")), "the run is finished")


def test_resume_without_the_checkpoint_list_keeps_its_files_and_does_not_advise_overwrite(tmp_path, monkeypatch):
    crash_at(monkeypatch, 6)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    monkeypatch.undo()
    (tmp_path / "run" / "checkpoint" / "checkpoints.json").unlink()
    files = sorted((tmp_path / "run" / "checkpoint").glob("step-*.safetensors"))
    assert files
    missing = "checkpoints.json, the list that verifies the checkpoint files, is missing"
    with pytest.raises(MtlError, match=missing) as info:
        Trainer.resuming(tmp_path / "run")
    assert "start it again (same options, --overwrite)" not in str(info.value)
    assert sorted((tmp_path / "run" / "checkpoint").glob("step-*.safetensors")) == files


def test_resume_with_a_config_json_of_the_wrong_types(tmp_path, monkeypatch):
    crash_at(monkeypatch, 6)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    monkeypatch.undo()
    path = tmp_path / "run" / "config.json"
    record = json.loads(path.read_text())
    record["lr"] = None
    path.write_text(json.dumps(record))
    assert_one_line_error(invoke_cli("run", "--resume", str(tmp_path / "run")),
                          f"{path}: --lr: expected float, got None")


def test_resume_with_no_checkpoint_written_is_a_clear_error(tmp_path, monkeypatch):
    crash_at(monkeypatch, 2)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "run")).train()
    monkeypatch.undo()
    with pytest.raises(MtlError, match="no checkpoint was written before the run stopped"):
        Trainer.resuming(tmp_path / "run")
