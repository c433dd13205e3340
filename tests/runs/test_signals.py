"""SIGTERM and SIGINT to a real `mtl run` and a real `mtl bench`: nothing half-written, the child run of a bench
stopped too, exit 143/130 with one line saying how to continue, and the run or bench then finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_sigint, live_processes, run_mtl

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = ["--backbone", "tiny", "--batch-size", "8", "--max-length", "32", "--limit", "32", "--eval-limit", "8",
        "--checkpoint-every", "2"]
RUN = [*TINY, "--max-steps", "60", "--quiet"]




def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mtl.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, preexec_fn=default_sigint)


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def checkpointed(run: Path) -> bool:
    listing = run / "checkpoint" / "checkpoints.json"
    try:
        return bool(json.loads(listing.read_text())["checkpoints"])
    except (OSError, ValueError, KeyError):
        return False


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.slow
def test_a_signal_stops_a_run_cleanly_and_it_resumes(tmp_path, signum, code):
    run = tmp_path / "run"
    process = start("run", *RUN, "-o", str(run))
    wait_for(lambda: checkpointed(run) or process.poll() is not None, "the first checkpoint")
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.startswith(("Stopped", "Error"))]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"Stopped: stopped by {name}; the last checkpoint ")
    assert f"`mtl run --resume {run}`" in lines[0] and stderr.rstrip().endswith(lines[0])
    assert no_temp_files(run) and not (run / "summary.json").exists()

    resumed = run_mtl("run", "--resume", str(run), "--quiet", env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 60 and (run / "eval.json").exists()
    assert no_temp_files(run)


def _running(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (our own processes only)."""
    return list(live_processes(marker).values())


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc to find the child run")
@pytest.mark.slow
def test_sigterm_to_a_bench_stops_its_child_run_and_the_bench_then_continues(tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "--strategy", "single,uniform", "--seeds", "0", *TINY, "--max-steps", "40", "-o", str(out)]
    bench = start(*args)
    first = out / "single" / "seed-0"
    wait_for(lambda: checkpointed(first) or bench.poll() is not None, "the first run's first checkpoint")
    assert bench.poll() is None, bench.communicate()[1]
    assert any("mtl.cli run" in c for c in _running(str(first)))  # the child run is training
    bench.send_signal(signal.SIGTERM)
    _, stderr = bench.communicate(timeout=180)
    assert bench.returncode == 143, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("Stopped: bench stopped by SIGTERM during run single seed 0") and "again" in last, stderr
    assert "Traceback" not in stderr
    assert _running(str(out)) == []  # no run left training behind the bench
    assert no_temp_files(out) and not (first / "eval.json").exists()

    again = run_mtl(*args, env={"OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr
    for strategy in ("single", "uniform"):
        assert (out / strategy / "seed-0" / "eval.json").exists()
    assert "single seed 0: resuming (stopped before): mtl run --resume" in again.stdout + again.stderr
    summary = json.loads((first / "summary.json").read_text())
    assert summary["steps"] == 40 and summary.get("resumed_from")  # continued from its checkpoint, not redone


@pytest.fixture
def installed_handler(monkeypatch):
    """mtl's SIGTERM handler in this (main) thread for one test, then the previous handler again."""
    from mtl.runs import signals

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(signals, "_pending", None)
    monkeypatch.setattr(signals, "_installed", False)
    signals.install()
    yield signals
    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_sigterm_swallowed_by_a_finaliser_is_raised_again_by_check(installed_handler, monkeypatch):
    from mtl.errors import Stopped

    signals = installed_handler
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: ignored.append(unraisable.exc_type))

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100_000):  # the handler runs here, inside __del__, whose exceptions Python ignores
                pass

    Finalised()  # collected at once: the Stopped raised in __del__ goes to sys.unraisablehook, not to us
    assert ignored == [Stopped]
    with pytest.raises(Stopped) as raised:
        signals.check()
    assert signals.stopping(raised.value) == signal.SIGTERM
    signals.check()  # taken by stopping(): nothing left to raise


def test_the_training_loop_stops_on_a_recorded_sigterm(tmp_path, monkeypatch):
    from mtl.errors import Interrupted
    from mtl.runs import signals
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    config = RunConfig(target="demo-paraphrase", aux=["demo-sentiment"], backbone="tiny", epochs=1, batch_size=8,
                       max_length=32, limit=32, max_steps=6, output=str(tmp_path / "run"), seed=0)
    trainer = Trainer(config).prepare()
    monkeypatch.setattr(signals, "_pending", signal.SIGTERM)  # as if a finaliser had swallowed the Stopped
    with pytest.raises(Interrupted) as stopped:
        trainer.train()
    assert stopped.value.exit_code == 143 and signals._pending is None
    assert not (tmp_path / "run" / "eval.json").exists()
