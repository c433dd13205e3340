"""One writer per folder, with real `mtl` processes: while a run or a bench writes its folder, a second writer
(--overwrite, --resume, export, a run inside it, a second bench) is refused in one line before it changes anything,
and the first finishes with a consistent folder; a writer killed with -9 leaves a lock that is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import default_sigint, live_processes, run_mtl

from mtl import locks

ENV = {"OMP_NUM_THREADS": "1"}
TINY = ["--backbone", "tiny", "--batch-size", "8", "--max-length", "32", "--limit", "32", "--eval-limit", "8",
        "--checkpoint-every", "2", "--quiet"]

pytestmark = pytest.mark.slow


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mtl.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **ENV}, preexec_fn=default_sigint)


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ended before {what}: {process.communicate()[1]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def checkpointed(run: Path) -> bool:
    try:
        return bool(json.loads((run / "checkpoint" / "checkpoints.json").read_text())["checkpoints"])
    except (OSError, ValueError, KeyError):
        return False


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime in ns), to show that nothing changed."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(result: subprocess.CompletedProcess, folder: Path, holder: subprocess.Popen, command: str) -> str:
    """The one error line of a refused writer, which names the folder, the holder's pid and host, and since when."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(folder.resolve()) in lines[0] and "in use" in lines[0]
    assert f"{command} (process {holder.pid} on {socket.gethostname()}) has been writing it since" in lines[0]
    return lines[0]


def test_a_live_run_cannot_be_replaced_resumed_exported_or_written_into(tmp_path):
    run = tmp_path / "R"
    first = start("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "60", "-o", str(run))
    wait_for(lambda: checkpointed(run), "the first checkpoint", first)
    first.send_signal(signal.SIGSTOP)  # held mid-training while the others try
    try:
        before = snapshot(run)
        second = run_mtl("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "4", "-o", str(run),
                         "--overwrite", env=ENV)
        refused(second, run, first, "mtl run")
        refused(run_mtl("run", "--resume", str(run), "-q", env=ENV), run, first, "mtl run")
        line = refused(run_mtl("export", str(run), env=ENV), run, first, "mtl run")  # into RUN/model
        assert "is inside" in line
        inner = run_mtl("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "4", "-o", str(run / "x"),
                        env=ENV)
        refused(inner, run, first, "mtl run")
        (tmp_path / "notes.txt").write_text("mine")
        above = run_mtl("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "4", "-o", str(tmp_path),
                        "--overwrite", env=ENV)
        assert above.returncode == 1 and f"--overwrite would delete {run}" in above.stderr, above.stderr
        assert snapshot(run) == before  # nothing written, nothing deleted
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr

    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "lr" in r]  # the training records
    assert config["max_steps"] == 60 and summary["steps"] == 60 and max(steps) == 59
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one run's records, not two interleaved
    assert not locks.lock_path(run).exists()
    # once it has ended, the folder is free again: --overwrite replaces it
    again = run_mtl("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "4", "-o", str(run), "--overwrite",
                    env=ENV)
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == 4


def test_a_run_killed_with_minus_9_is_resumed_after_a_notice(tmp_path):
    run = tmp_path / "R"
    first = start("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "40", "-o", str(run))
    wait_for(lambda: checkpointed(run), "the first checkpoint", first)
    first.kill()
    first.wait()
    assert locks.lock_path(run).exists()  # left behind by the killed process
    resumed = run_mtl("run", "--resume", str(run), "-q", env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"taking over the lock left by mtl run (process {first.pid} on {socket.gethostname()}"
            in resumed.stderr) and "its process is no longer running" in resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40 and summary.get("resumed_from")
    assert not locks.lock_path(run).exists()


BENCH = ["bench", "--target", "demo-paraphrase", "--strategy", "uniform", "--seeds", "0,1", *TINY,
         "--max-steps", "12"]


def test_a_second_bench_on_a_folder_in_use_is_refused_up_front(tmp_path):
    out = tmp_path / "B"
    first = start(*BENCH, "-o", str(out))
    seed0 = out / "uniform" / "seed-0"
    wait_for(lambda: checkpointed(seed0), "the first run's checkpoint", first)
    first.send_signal(signal.SIGSTOP)  # the bench waits; its child run goes on
    try:
        before = snapshot(out)
        second = run_mtl(*BENCH, "-o", str(out), env=ENV)
        refused(second, out, first, "mtl bench")
        # a run of the bench that has not started yet is the bench's too
        inner = run_mtl("run", "--target", "demo-paraphrase", *TINY, "--max-steps", "4", "-o",
                        str(out / "uniform" / "seed-1"), env=ENV)
        assert "is inside" in refused(inner, out, first, "mtl bench")
        def outside_the_child(files):  # the child run (its folder and lock) goes on while the bench is stopped
            return {k: v for k, v in files.items() if "seed-0" not in k}

        assert outside_the_child(snapshot(out)) == outside_the_child(before)
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    bench = json.loads((out / "bench.json").read_text())
    assert sorted(r["seed"] for r in bench["runs"] if r["status"] == "finished") == [0, 1]
    for seed in (0, 1):
        assert json.loads((out / "uniform" / f"seed-{seed}" / "summary.json").read_text())["steps"] == 12
    assert not [p for p in out.rglob(f"*{locks.SUFFIX}")] and not locks.lock_path(out).exists()


def test_a_bench_killed_with_minus_9_continues_after_taking_its_locks_over(tmp_path):
    out = tmp_path / "B"
    first = start(*BENCH, "-o", str(out))
    seed0 = out / "uniform" / "seed-0"
    wait_for(lambda: checkpointed(seed0), "the first run's checkpoint", first)
    children = list(live_processes(str(seed0)))
    first.kill()
    for pid in children:  # the child run too, as a machine that went down would
        os.kill(pid, signal.SIGKILL)
    first.wait()
    again = run_mtl(*BENCH, "-o", str(out), env=ENV)
    assert again.returncode == 0, again.stderr
    assert f"taking over the lock left by mtl bench (process {first.pid}" in again.stderr
    log = (out / "uniform" / "seed-0.log").read_text()
    assert "taking over the lock left by mtl run" in log  # the run, resumed by the bench, took its own over
    for seed in (0, 1):
        assert (out / "uniform" / f"seed-{seed}" / "eval.json").exists()
