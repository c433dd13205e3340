"""Launchers (`mtl bench --jobs N --launcher NAME`, plugin kind `launcher`): runs at once give the results of runs one
after another, the machine's threads (and GPUs) are shared between them, the slurm launcher runs the bench through
submitit's local executor, SIGTERM stops every running run and the same command then finishes the bench, a
third-party launcher plugs in through the hook, and mistakes are one line with nothing written."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import assert_one_line_error, default_sigint, invoke_cli, live_processes, run_mtl

import mtl
from mtl import Launcher, hookimpl
from mtl.contract import launcher as launcher_module

ENV = {"OMP_NUM_THREADS": "1"}
TASKS = ["--target", "demo-similarity", "--aux", "demo-sentiment", "--strategy", "single,uniform", "--seeds", "0"]
SMALL = ["--backbone", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--limit", "32",
         "--eval-limit", "32"]
# long enough that both runs train at once for a while, with a checkpoint every 10 steps
LONG = ["--backbone", "tiny", "--max-steps", "400", "--batch-size", "16", "--max-length", "64", "--limit", "400",
        "--eval-limit", "8", "--checkpoint-every", "10"]
SLURM = ["--launcher", "slurm", "--set", "slurm.cluster=local"]
RUNS = ("single", "uniform")


def bench(out: Path, *args: str) -> subprocess.CompletedProcess:
    return run_mtl("bench", *TASKS, *SMALL, "-o", str(out), *args, env=ENV)


def results(out: Path) -> dict:
    """Each run's eval.json metrics and its metrics.jsonl losses, read from the run folders."""
    found = {}
    for strategy in RUNS:
        run = out / strategy / "seed-0"
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses = [{k: v for k, v in r.items() if k.startswith("loss.")} | {"step": r["step"]} for r in records
                  if any(k.startswith("loss.") for k in r)]
        found[strategy] = {"eval": json.loads((run / "eval.json").read_text()), "losses": losses}
    return found


def assert_same_results(got: dict, expected: dict) -> None:
    # one thread per run at --jobs 1 here, cores // 2 at --jobs 2: equal up to the order of float additions
    for strategy in RUNS:
        assert got[strategy]["losses"] and len(got[strategy]["losses"]) == len(expected[strategy]["losses"])
        for a, b in zip(got[strategy]["losses"], expected[strategy]["losses"], strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
        for task, splits in expected[strategy]["eval"].items():
            for split, metrics in splits.items():
                assert got[strategy]["eval"][task][split] == pytest.approx(metrics, rel=1e-4, abs=1e-6)


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs1") / "bench"
    result = bench(out)
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def two_at_once(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs2") / "bench"
    result = bench(out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_two_at_once_give_the_results_of_one_at_a_time(one_at_a_time, two_at_once):
    (out1, _), (out2, _) = one_at_a_time, two_at_once
    assert_same_results(results(out2), results(out1))
    data = json.loads((out2 / "bench.json").read_text())
    assert {r["status"] for r in data["runs"]} == {"finished"} and data["table"]["rows"]


@pytest.mark.slow
def test_two_at_once_really_overlap_and_each_line_names_its_run(two_at_once):
    _, result = two_at_once
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    started = [i for i, line in enumerate(lines) if ": running: mtl run" in line]
    ended = [i for i, line in enumerate(lines) if ": done in " in line]
    assert len(started) == 2 and len(ended) == 2, result.stderr
    assert max(started) < min(ended)  # the second run started before the first had ended: both ran at once
    for i in started + ended:
        assert lines[i].startswith(("[1/2] single seed 0: ", "[2/2] uniform seed 0: ")), lines[i]
    assert "(2 at once)" in result.stderr


@pytest.mark.slow
def test_one_at_a_time_runs_one_after_another(one_at_a_time):
    _, result = one_at_a_time
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] + ":" + line.split(":")[1].split(" in ")[0] for line in lines] == [
        "[1/2] single seed 0: running", "[1/2] single seed 0: done",
        "[2/2] uniform seed 0: running", "[2/2] uniform seed 0: done"]


@pytest.mark.slow
def test_the_slurm_launcher_through_submitits_local_executor(one_at_a_time, tmp_path):
    out = tmp_path / "bench"
    result = bench(out, *SLURM, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert_same_results(results(out), results(one_at_a_time[0]))
    assert len(list((out / "slurm").glob("*_submitted.pkl"))) == 2  # each run went through submitit as a job
    assert len(list((out / "slurm").glob("*_result.pkl"))) == 2
    assert "(2 at once, launcher slurm)" in result.stderr


@pytest.mark.slow
def test_a_pairs_bench_runs_its_networks_at_once(tmp_path):
    out = tmp_path / "pairs"
    result = run_mtl("bench", "--pairs", "--target", "demo-similarity", "--aux", "demo-sentiment", "--strategy",
                     "uniform", "--seeds", "0", *SMALL, "--jobs", "2", "-o", str(out), env=ENV)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if ": [1/1] " in line]
    started = [i for i, line in enumerate(lines) if ": running: mtl run" in line]
    ended = [i for i, line in enumerate(lines) if ": done in " in line]
    assert len(started) == 3 and len(ended) == 3 and started[1] < ended[0], result.stderr  # networks overlap
    assert {line.split(":")[0] for line in lines} == {"demo-similarity", "demo-sentiment",
                                                      "demo-similarity+demo-sentiment"}
    data = json.loads((out / "bench.json").read_text())
    assert data["pairs"] and data["table"]["scores"]["uniform"]["demo-similarity"]["with"]["demo-sentiment"] is not None


# ------------------------------------------------------------------------------------------ sharing the machine
def test_the_machine_is_shared_between_runs_at_once(monkeypatch):
    monkeypatch.setattr(launcher_module, "cores", lambda: 16)
    monkeypatch.setattr(launcher_module, "visible_gpus", list)
    assert Launcher.share(0, 1) == {}  # one run alone: nothing changes (today's behaviour)
    assert Launcher.share(0, 3) == {"OMP_NUM_THREADS": "5", "MKL_NUM_THREADS": "5"}
    assert Launcher.share(2, 32)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setattr(launcher_module, "visible_gpus", lambda: ["2", "3"])
    assert [Launcher.share(slot, 3)["CUDA_VISIBLE_DEVICES"] for slot in range(3)] == ["2", "3", "2"]
    assert mtl.create("launcher", "local").environment(1, 2) == {
        "OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "CUDA_VISIBLE_DEVICES": "3"}


def test_the_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert launcher_module.visible_gpus() == ["5", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert launcher_module.visible_gpus() == ["0", "1"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert launcher_module.visible_gpus() == []


# ------------------------------------------------------------------------------------------ stopping
def _environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").partition("=")[::2] for p in pairs if b"=" in p)


def _checkpointed(run: Path) -> bool:
    try:
        return bool(json.loads((run / "checkpoint" / "checkpoints.json").read_text())["checkpoints"])
    except (OSError, ValueError, KeyError):
        return False


def _wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc to find the child runs")
@pytest.mark.parametrize("launcher", [[], SLURM], ids=["local", "slurm-local-executor"])
@pytest.mark.slow
def test_sigterm_stops_every_running_run_and_the_bench_then_finishes(tmp_path, launcher):
    out = tmp_path / "bench"
    args = ["bench", *TASKS, *LONG, "--jobs", "2", *launcher, "-o", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "mtl.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
                               preexec_fn=default_sigint)  # noqa: PLW1509 -- no threads in the test process
    runs = [out / strategy / "seed-0" for strategy in RUNS]
    _wait_for(lambda: all(_checkpointed(r) for r in runs) or process.poll() is not None, "both runs' checkpoints")
    assert process.poll() is None, process.communicate()[1]
    assert not any((r / "summary.json").exists() for r in runs)  # both are training at once
    children = {pid: c for pid, c in live_processes(str(out)).items() if "mtl.cli run" in c}
    assert len(children) == 2, children
    expected = str(max(1, launcher_module.cores() // 2))
    for pid in children:  # each run got its share of the machine's threads
        assert _environment(pid)["OMP_NUM_THREADS"] == expected

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("Stopped: bench stopped by SIGTERM during runs single seed 0 and uniform seed 0, which "
                           "were stopped too"), stderr
    assert "again to continue" in last and "Traceback" not in stderr
    assert live_processes(str(out)) == {}  # nothing left running: no run, no submitit job
    assert not any((r / "eval.json").exists() for r in runs)

    again = run_mtl(*args, env=ENV)
    assert again.returncode == 0, again.stderr
    for strategy, run in zip(RUNS, runs, strict=True):
        assert f"{strategy} seed 0: resuming (stopped before): mtl run --resume" in again.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["steps"] == 400 and summary.get("resumed_from")  # continued from its checkpoint
    data = json.loads((out / "bench.json").read_text())
    assert {r["status"] for r in data["runs"]} == {"finished"}


# ------------------------------------------------------------------------------------------ a third-party launcher
class Recorder(Launcher):
    """A third-party launcher: local processes, every job recorded; the job named ``fail`` runs a failing command."""

    jobs: ClassVar[list] = []
    started: ClassVar[list] = []

    def __init__(self, fail: str = ""):
        self.fail = fail
        self.local = mtl.create("launcher", "local")

    def environment(self, slot, jobs):
        return {"MTL_TEST_SLOT": str(slot), **self.local.environment(slot, jobs)}

    def start(self, job):
        Recorder.jobs.append(job)
        if job.name == self.fail:
            job = dataclasses.replace(job, command=[sys.executable, "-c",
                                                    "print('Error: the cluster said no'); raise SystemExit(3)"])
        running = self.local.start(job)
        Recorder.started.append((job.name, running))
        return running


class ThirdParty:
    @hookimpl
    def register_launchers(self, register):
        register("recorder", Recorder, description="records every job (test)")


@pytest.mark.slow
def test_a_third_party_launcher_plugs_in_and_a_failed_run_stops_the_other(register_plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    Recorder.jobs.clear()
    Recorder.started.clear()
    register_plugin(ThirdParty())
    assert "recorder" in mtl.available("launcher")
    listed = invoke_cli("plugins", "--kind", "launcher", "--json")
    assert {p["name"] for p in json.loads(listed.stdout)["plugins"]} >= {"local", "slurm", "recorder"}

    out = tmp_path / "bench"
    # LONG: the other run must still be training when the failure is seen (a 4-step run can finish first)
    args = ["bench", *TASKS, *LONG, "--jobs", "2", "--launcher", "recorder", "-o", str(out)]
    failed = invoke_cli(*args, "--set", "recorder.fail=single seed 0", "--quiet")
    line = assert_one_line_error(failed, "run single seed 0 failed (exit 3): Error: the cluster said no",
                                 "stopped the other running run (uniform seed 0)", "again to continue")
    assert failed.exit_code == 1, line
    (_, first), (_, second) = Recorder.started
    assert first.poll() == 3 and second.poll() in (143, -signal.SIGTERM)  # stopped by the bench, not finished
    assert not (out / "uniform" / "seed-0" / "eval.json").exists()
    assert live_processes(str(out)) == {}

    Recorder.jobs.clear()
    again = invoke_cli(*args)  # the same bench, nothing failing now: it finishes
    assert again.exit_code == 0, again.output
    assert [job.name for job in Recorder.jobs] == ["single seed 0", "uniform seed 0"]
    for job in Recorder.jobs:
        assert job.command[:4] == [sys.executable, "-m", "mtl.cli", "run"] and job.bench == out
        assert job.log == job.folder.with_name("seed-0.log") and job.log.exists()
    assert sorted(job.env["MTL_TEST_SLOT"] for job in Recorder.jobs) == ["0", "1"]
    assert all(job.env["OMP_NUM_THREADS"] == str(max(1, launcher_module.cores() // 2)) for job in Recorder.jobs)
    for strategy in RUNS:
        assert (out / strategy / "seed-0" / "eval.json").exists()


# ------------------------------------------------------------------------------------------ mistakes
@pytest.mark.parametrize("args, fragments", [
    (["--launcher", "nope"], ["unknown launcher 'nope'", "local", "slurm"]),
    (["--jobs", "0"], ["--jobs 0"]),
    (["--set", "slurm.partition=gpu"], ["launcher 'slurm' is not used (--launcher local)", "--launcher slurm"]),
    (["--launcher", "local", "--set", "local.threads=2"], ["launcher 'local'", "unknown option 'threads'"]),
    ([*SLURM[:2], "--set", "slurm.cluster=moon"], ["launcher 'slurm'", "option 'cluster'", "moon"]),
    ([*SLURM, "--set", "slurm.timeout_min=0"], ["timeout_min must be > 0"]),
])
def test_launcher_mistakes_are_one_line_and_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "bench"
    result = invoke_cli("bench", *TASKS, *SMALL, *args, "-o", str(out))
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_slurm_without_submitit_or_sbatch_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    result = invoke_cli("bench", *TASKS, *SMALL, *SLURM, "-o", str(out))
    assert_one_line_error(result, "launcher 'slurm' needs the Python package submitit: pip install submitit")
    monkeypatch.delitem(sys.modules, "submitit")
    from mtl.plugins.launchers import slurm

    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)  # not on a SLURM login node
    result = invoke_cli("bench", *TASKS, *SMALL, "--launcher", "slurm", "-o", str(out))
    assert_one_line_error(result, "sbatch not found", "--set slurm.cluster=local")
    assert not out.exists()


def test_the_readme_launcher_example_registers(register_plugin):
    """README "A launcher": the example, as written, is a launcher plugin with its option and environment."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "class Remote(Launcher)" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 -- the README's own example

    class Plugin:
        register_launchers = staticmethod(namespace["register_launchers"])

    register_plugin(Plugin())
    remote = mtl.create("launcher", "remote", host="node7")
    assert isinstance(remote, Launcher) and remote.host == "node7"
    assert remote.environment(1, 2) == {"CUDA_VISIBLE_DEVICES": "1"}


# ------------------------------------------------------------------------------------------ the schedule
class _Fake(mtl.Running):
    def __init__(self, log: list, name: str, polls: int, code: int = 0):
        self.log, self.name, self.left, self.code = log, name, polls, code

    def poll(self):
        if self.left is None:
            return 143
        self.left -= 1
        if self.left > 0:
            return None
        self.log.append(("end", self.name))
        return self.code

    def stop(self, signum):
        self.log.append(("stop", self.name))
        self.left = None


class _FakeLauncher(Launcher):
    poll_seconds = 0.0


def test_the_schedule_keeps_needs_folders_and_slots():
    """A stage starts only after its multi-task run; a folder never runs twice at once; no more than --jobs at once."""
    from mtl.study.schedule import Work, run

    log: list = []
    works = [Work("a", "a", data=3), Work("b", "b", data=1), Work("a>ft", "a>ft", ("a",), data=1),
             Work("c", "c", data=1), Work("a", "a again", data=1)]
    ended = []

    def start(work, slot):
        log.append(("start", work.name, slot))
        if work.name == "a again":  # the same folder: it waited for "a" and is finished now
            return None
        return _Fake(log, work.name, work.data), f"{work.name}.log"

    run(works, _FakeLauncher(), start, lambda work, code, seconds: ended.append(work.name), jobs=2)
    def at(kind, name):
        return next(i for i, e in enumerate(log) if e[:2] == (kind, name))

    assert log[:2] == [("start", "a", 0), ("start", "b", 1)]  # two at once, each in its own slot
    assert at("start", "a>ft") > at("end", "a")  # after its multi-task run, not before
    assert at("start", "a again") > at("end", "a")  # the same folder waits
    assert at("end", "b") < at("start", "c") < at("start", "a>ft")  # "c" took b's slot while "a>ft" waited
    assert ("start", "a>ft", 0) in log  # the slot "a" freed
    assert sorted(ended) == ["a", "a>ft", "b", "c"]


def test_a_failed_run_stops_the_others_in_the_schedule():
    from mtl.errors import MtlError
    from mtl.study.schedule import Work, run

    log: list = []

    def start(work, slot):
        return _Fake(log, work.name, 1 if work.name == "bad" else 1000, code=2 if work.name == "bad" else 0), "x"

    def ended(work, code, seconds):
        if code:
            raise MtlError(f"run {work.name} failed (exit {code})")

    with pytest.raises(MtlError, match=r"run bad failed \(exit 2\); stopped the other running run \(long\)"):
        run([Work("long", "long"), Work("bad", "bad"), Work("next", "next")], _FakeLauncher(), start, ended, jobs=2)
    assert ("stop", "long") in log and not any(e[1] == "next" for e in log)
