"""mtl.locks with real processes: a live holder refuses others (naming its pid, host and since when), a holder killed
with -9, a reused process id, a restarted machine or a silent host on a shared file system are taken over with a
notice, only one of several processes takes a stale lock over, children of a holder write inside its folder, and a
shared folder is built once by racing processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mtl import locks
from mtl.errors import MtlError
from mtl.runs.folder import check_empty

HOLD = textwrap.dedent("""
    import sys
    from mtl.locks import FolderLock
    lock = FolderLock(sys.argv[1], "holder").acquire()
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin
    lock.release()
""")


def hold(folder: Path, env: dict | None = None) -> subprocess.Popen:
    """A process that holds ``folder``'s lock until its stdin is closed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    assert process.stdout.readline().strip() == "held", process.stderr.read()
    return process


def end(process: subprocess.Popen) -> None:
    process.stdin.close()
    assert process.wait(timeout=30) == 0, process.stderr.read()


def write_lock(folder: Path, *, age: float = 0.0, **fields) -> Path:
    """A lock file as another process would have left it, last touched ``age`` seconds ago."""
    record = {"host": "node-17", "pid": 4242, "token": "f00d", "command": "mtl bench",
              "since": "2026-01-01 00:00:00 UTC", **fields}
    path = locks.lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_a_held_lock_names_its_holder_and_is_removed_on_release(tmp_path):
    folder = tmp_path / "run"
    with locks.FolderLock(folder, "mtl run") as lock:
        record = json.loads(locks.lock_path(folder).read_text())
        assert locks.lock_path(folder) == tmp_path / ".run.mtl-lock"  # beside the folder, not inside
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["command"] == "mtl run" and record["token"] == lock.token
        assert lock.token in os.environ[locks.ENV].split(",")  # what children inherit
    assert not locks.lock_path(folder).exists()
    assert lock.token not in os.environ.get(locks.ENV, "").split(",")


def test_a_second_process_is_refused_in_one_line_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    holder = hold(folder)
    try:
        with pytest.raises(locks.FolderInUse) as refused:
            locks.FolderLock(folder, "mtl run").acquire()
        message = str(refused.value)
        assert "\n" not in message and str(folder) in message
        assert f"process {holder.pid} on {socket.gethostname()}" in message and "since 20" in message
        with pytest.raises(locks.FolderInUse, match="is inside"):  # a folder inside it is refused too
            locks.FolderLock(folder / "model", "mtl export").acquire()
        with pytest.raises(locks.FolderInUse):
            locks.check_free(folder)
    finally:
        end(holder)
    with locks.FolderLock(folder, "mtl run"):  # free once the holder ended
        pass


def test_a_holder_killed_with_minus_9_is_taken_over_with_a_notice(tmp_path, capfd):
    folder = tmp_path / "run"
    holder = hold(folder)
    holder.kill()
    holder.wait()
    assert locks.lock_path(folder).exists()  # left behind
    with locks.FolderLock(folder, "mtl run --resume") as lock:
        assert json.loads(locks.lock_path(folder).read_text())["token"] == lock.token
    err = capfd.readouterr().err
    assert f"taking over the lock left by holder (process {holder.pid}" in err
    assert "its process is no longer running" in err and err.count("\n") == 1


def test_a_reused_process_id_or_a_restarted_machine_does_not_hold_the_lock(tmp_path, capfd):
    here = socket.gethostname()
    alive = dict(host=here, pid=os.getpid(), start=locks._start_time(os.getpid()), boot=locks._boot_id())
    write_lock(tmp_path / "a", **alive)
    with pytest.raises(locks.FolderInUse):  # this very process, started when the file says: alive
        locks.FolderLock(tmp_path / "a", "mtl run").acquire()

    write_lock(tmp_path / "b", **{**alive, "start": alive["start"] + 1})  # same id, another process
    with locks.FolderLock(tmp_path / "b", "mtl run"):
        pass
    assert "the id is now another process's" in capfd.readouterr().err

    if alive["boot"] is None:
        pytest.skip("no boot id on this system")
    write_lock(tmp_path / "c", **{**alive, "boot": "another-boot"})
    with locks.FolderLock(tmp_path / "c", "mtl run"):
        pass
    assert "the machine has restarted since" in capfd.readouterr().err


def test_another_hosts_lock_is_stale_only_when_its_heartbeat_stopped(tmp_path, monkeypatch, capfd):
    """The shared-file-system path: no process can be asked on another host, the file's age decides."""
    write_lock(tmp_path / "fresh", age=30)
    with pytest.raises(locks.FolderInUse, match="mtl bench \\(process 4242 on node-17\\)"):
        locks.FolderLock(tmp_path / "fresh", "mtl bench").acquire()

    write_lock(tmp_path / "old", age=locks.STALE_SECONDS + 60)
    monkeypatch.setenv(locks.STALE_ENV, str(locks.STALE_SECONDS + 120))
    with pytest.raises(locks.FolderInUse):  # a longer limit keeps it
        locks.FolderLock(tmp_path / "old", "mtl bench").acquire()
    monkeypatch.delenv(locks.STALE_ENV)
    with locks.FolderLock(tmp_path / "old", "mtl bench"):
        pass
    err = capfd.readouterr().err
    assert "taking over the lock left by mtl bench (process 4242 on node-17" in err and "heartbeat stopped" in err


def test_a_damaged_lock_file_counts_as_held_until_its_heartbeat_is_old(tmp_path):
    path = locks.lock_path(tmp_path / "run")
    path.write_text('{"host": "vm", "pi')
    with pytest.raises(locks.FolderInUse, match="an unknown process"):
        locks.FolderLock(tmp_path / "run", "mtl run").acquire()
    stamp = time.time() - locks.STALE_SECONDS - 1
    os.utime(path, (stamp, stamp))
    with locks.FolderLock(tmp_path / "run", "mtl run"):
        pass


def test_the_heartbeat_touches_the_lock_file(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "HEARTBEAT", 0.05)
    with locks.FolderLock(tmp_path / "run", "mtl run"):
        path = locks.lock_path(tmp_path / "run")
        os.utime(path, (1.0, 1.0))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 5


def test_a_lock_replaced_by_another_process_is_not_removed_on_release(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(locks, "HEARTBEAT", 0.05)
    lock = locks.FolderLock(tmp_path / "run", "mtl run").acquire()
    path = locks.lock_path(tmp_path / "run")
    path.unlink()
    other = write_lock(tmp_path / "run")  # another process's, e.g. after taking this one over
    time.sleep(0.3)
    lock.release()
    assert other.exists() and json.loads(other.read_text())["token"] == "f00d"
    assert "was removed or replaced by another process" in capfd.readouterr().err


CHILD = textwrap.dedent("""
    import sys
    from mtl.locks import FolderLock, FolderInUse
    try:
        with FolderLock(sys.argv[1], "child"):
            print("wrote")
    except FolderInUse as exc:
        print("refused:", exc)
""")


def test_children_of_the_holder_write_inside_its_folder_and_others_do_not(tmp_path):
    """A bench's runs (and torchrun's ranks) inherit MTL_LOCKS; any other process is refused there."""
    with locks.FolderLock(tmp_path / "bench", "mtl bench"):
        child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "bench" / "s" / "seed-0")],
                               capture_output=True, text=True, env=dict(os.environ))
        assert child.stdout.strip() == "wrote", child.stderr
        stranger = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "bench" / "s" / "seed-0")],
                                  capture_output=True, text=True,
                                  env={k: v for k, v in os.environ.items() if k != locks.ENV})
        assert stranger.stdout.startswith("refused:") and "is inside" in stranger.stdout


def test_overwrite_never_deletes_a_folder_holding_a_live_lock(tmp_path):
    bench = tmp_path / "bench"
    (bench / "s").mkdir(parents=True)
    (bench / "s" / "seed-0.log").write_text("x")
    holder = hold(bench / "s" / "seed-0")
    try:
        with pytest.raises(MtlError, match="--overwrite would delete .*seed-0, which is in use"):
            check_empty(bench, overwrite=True)
    finally:
        end(holder)
    check_empty(bench, overwrite=True)  # the lock is gone: allowed


RACE = textwrap.dedent("""
    import sys, time
    from mtl.locks import FolderLock, FolderInUse
    while time.time() < float(sys.argv[2]):  # start together
        pass
    try:
        with FolderLock(sys.argv[1], "racer"):
            print("held", flush=True)
            time.sleep(2)
    except FolderInUse:
        print("refused", flush=True)
""")


@pytest.mark.slow
def test_only_one_of_several_processes_takes_a_stale_lock_over(tmp_path):
    folder = tmp_path / "run"
    write_lock(folder, age=locks.STALE_SECONDS + 60)
    start = time.time() + 1.5
    racers = [subprocess.Popen([sys.executable, "-c", RACE, str(folder), str(start)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert outcomes == ["held", "refused", "refused", "refused"], outcomes
    assert not locks.lock_path(folder).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no aside or temporary file left


BUILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from mtl.locks import build_once
    target, log, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    def build(tmp):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(1.0)
        (tmp / "tokens.txt").write_text(str(os.getpid()))
    while time.time() < start:
        pass
    built = build_once(target, build)
    print(("built" if built else "reused") + " " + (target / "tokens.txt").read_text(), flush=True)
""")


@pytest.mark.slow
def test_racing_processes_build_a_shared_folder_once(tmp_path):
    """As a bench's runs or torchrun's ranks preparing one cache: one builds, the others wait and reuse it."""
    target, log = tmp_path / "cache" / "key", tmp_path / "builders.log"
    start = time.time() + 1.5
    workers = [subprocess.Popen([sys.executable, "-c", BUILD, str(target), str(log), str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    lines = sorted(p.communicate(timeout=60)[0].strip() for p in workers)
    builders = log.read_text().split()
    assert len(builders) == 1, builders
    assert lines == [f"built {builders[0]}", f"reused {builders[0]}", f"reused {builders[0]}"], lines
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["key"]  # no temporary folder or lock left


def test_a_builder_that_fails_leaves_nothing_and_the_next_builds(tmp_path):
    target = tmp_path / "key"

    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        locks.build_once(target, broken)
    assert list(tmp_path.iterdir()) == []
    assert locks.build_once(target, lambda tmp: (tmp / "ok").write_text("y"))
    assert (target / "ok").read_text() == "y" and not locks.build_once(target, broken)


def test_a_stopped_holder_still_holds_its_lock(tmp_path):
    """SIGSTOP (a suspended job) is not death: its lock stays."""
    holder = hold(tmp_path / "run")
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        with pytest.raises(locks.FolderInUse):
            locks.FolderLock(tmp_path / "run", "mtl run").acquire()
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        end(holder)
