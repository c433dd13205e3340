"""I/O faults: no space left (simulated at each kind of write), a path that is a file, too little free space before
a large write. Each is a one-line error naming the path; the previous checkpoint stays valid; a resume after the
fault is removed ends exactly like an uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from conftest import assert_one_line_error, invoke_cli

from mtl.errors import StorageError
from mtl.runs import folder as run_files
from mtl.runs import storage
from mtl.runs.folder import RunFolder

RUN = ["--target", "demo-paraphrase", "--aux", "demo-similarity", "--backbone", "tiny", "--max-steps", "8",
       "--batch-size", "8", "--max-length", "32", "--limit", "16",
       "--eval-limit", "8", "--checkpoint-every", "2", "--log-every", "1", "--epochs", "1", "-q"]


def fail_writes(monkeypatch, pattern: str, after: int = 0) -> dict:
    """Writes to files whose name matches ``pattern`` fail with ENOSPC after ``after`` of them succeeded."""
    real = storage.write_bytes
    seen = {"n": 0, "failed": 0}

    def write(file, data):
        name = os.readlink(f"/proc/self/fd/{file.fileno()}")
        if re.search(pattern, Path(name).name):
            seen["n"] += 1
            if seen["n"] > after:
                seen["failed"] += 1
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, data)

    monkeypatch.setattr(storage, "write_bytes", write)
    return seen


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted run every resumed run must equal."""
    out = tmp_path_factory.mktemp("whole") / "run"
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert result.exit_code == 0, result.output
    return out


def same_run(a: Path, b: Path) -> None:
    best_a, best_b = RunFolder(a).best(), RunFolder(b).best()
    assert set(best_a) == set(best_b) and all((best_a[k] == best_b[k]).all() for k in best_a)
    assert json.loads((a / "eval.json").read_text()) == json.loads((b / "eval.json").read_text())
    losses = lambda run: [{k: v for k, v in r.items() if k.startswith(("loss.", "weight.", "step"))}  # noqa: E731
                          for r in RunFolder(run).metrics()]
    assert losses(a) == losses(b)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names the file being written through /proc")
@pytest.mark.parametrize("pattern, after, what", [
    (r"^\.metrics\.jsonl|^metrics\.jsonl$", 4, "metrics.jsonl"),  # the fifth metrics record (after two checkpoints)
    (r"^\.step-00000006\.safetensors\.", 0, "step-00000006.safetensors"),  # the third checkpoint
    (r"^\.best\.safetensors\.", 0, "best.safetensors"),  # the best model at the end of the epoch
])
@pytest.mark.slow
def test_no_space_mid_run_keeps_the_last_checkpoint_and_resume_ends_like_an_uninterrupted_run(
        tmp_path, monkeypatch, whole, pattern, after, what):
    out = tmp_path / "run"
    seen = fail_writes(monkeypatch, pattern, after)
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert seen["failed"] == 1
    line = assert_one_line_error(result, f"cannot write {out}", what, "no space left on the device",
                                 "the write needs", "free", "is intact", f"`mtl run --resume {out}`")
    assert result.exit_code == StorageError.exit_code
    assert no_temp_files(out)
    state, path = RunFolder(out).load_checkpoint()  # the last checkpoint verifies (size and SHA-256)
    assert path.name in line and state["loop"]["step"] >= 2
    assert not (out / "summary.json").exists()

    monkeypatch.undo()  # space again
    resumed = invoke_cli("run", "--resume", str(out), "-q")
    assert resumed.exit_code == 0, resumed.output
    same_run(out, whole)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names the file being written through /proc")
def test_no_space_for_the_one_copy_rewrite_keeps_the_whole_best_model(tmp_path, monkeypatch, whole, capfd):
    """The finished run rewrites best.safetensors without what model/ holds; when that write fails, the run still
    ends (a warning) with the whole best model beside model/, which loads as before."""
    out = tmp_path / "run"
    real = storage.write_bytes

    def write(file, data):  # only the rewrite at the end: summary.json is written before it
        name = Path(os.readlink(f"/proc/self/fd/{file.fileno()}")).name
        if name.startswith(".best.safetensors.") and (out / "summary.json").exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, data)

    monkeypatch.setattr(storage, "write_bytes", write)
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "kept whole" in capfd.readouterr().err + result.stderr
    monkeypatch.undo()
    from mtl.runs import best

    assert not best.is_partial(out / "checkpoint" / "best.safetensors") and (out / "model").is_dir()
    assert no_temp_files(out)
    same_run(out, whole)


def test_no_space_for_config_json_removes_the_new_run_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    fail_writes(monkeypatch, r"^\.config\.json\.")
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert_one_line_error(result, f"cannot write {out / 'config.json'}: no space left on the device",
                          "nothing was trained yet", "was removed")
    assert not out.exists()


def test_too_little_free_space_refuses_a_large_write_before_writing(tmp_path, monkeypatch):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    monkeypatch.setattr(storage, "free_space", lambda path: 3 << 20)  # 3 MB free
    with pytest.raises(StorageError) as caught:
        run_files.write_atomic(target, b"x" * (4 << 20))  # 4 MB + the margin
    message = str(caught.value)
    assert message == f"cannot write {target}: not enough space on the device (the write needs 4.0 MB, 3.0 MB free)"
    assert target.read_bytes() == b"old" and no_temp_files(tmp_path)
    run_files.write_atomic(target, b"y" * 1000)  # a small write is not refused (nothing to check)
    assert target.read_bytes() == b"y" * 1000


def test_a_path_that_is_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(StorageError, match=rf"cannot write {re.escape(str(blocker))}.*a file stands where a folder"):
        run_files.write_json(blocker / "config.json", {"a": 1})
    result = invoke_cli("run", *RUN, "-o", str(blocker / "run"))
    assert result.exit_code != 0
    assert blocker.read_text() == "a file, not a folder"


def test_a_failed_metrics_append_leaves_no_half_line(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n')
    real = storage.write_bytes

    def half(file, data):  # the disk fills up in the middle of the line
        real(file, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "write_bytes", half)
    with pytest.raises(StorageError, match="no space left on the device"):
        storage.append_line(path, json.dumps({"step": 2, "loss": 0.5}))
    assert path.read_text() == '{"step": 1}\n'


def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, whole):
    out = tmp_path / "export"
    monkeypatch.setattr(storage, "free_space", lambda path: 2 << 20)  # 2 MB: less than the tiny model needs
    result = invoke_cli("export", str(whole), "--output", str(out))
    assert_one_line_error(result, f"cannot write {out}: not enough space on the device", "the write needs")
    assert not out.exists() and no_temp_files(tmp_path)
    monkeypatch.undo()

    import transformers.modeling_utils as modeling_utils

    def full(*args, **kwargs):  # the disk fills up while transformers writes the weights
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(modeling_utils, "safe_save_file", full)
    result = invoke_cli("export", str(whole), "--output", str(out))
    assert_one_line_error(result, f"cannot write {out}: no space left on the device")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".export.")]
    monkeypatch.undo()
    assert invoke_cli("export", str(whole), "--output", str(out)).exit_code == 0 and (out / "config.json").exists()


class ShortWrites:
    """A raw file as the system gives one on a filling disk: each write takes at most ``chunk`` bytes and returns
    the count without an error; after ``room`` bytes it takes none (the next write would raise ENOSPC)."""

    def __init__(self, chunk: int, room: int) -> None:
        self.chunk, self.room, self.data = chunk, room, b""

    def write(self, data) -> int:
        taken = bytes(data[: min(self.chunk, self.room - len(self.data))])
        self.data += taken
        return len(taken)


def test_write_bytes_writes_again_after_a_short_write_and_raises_when_nothing_fits():
    """Found by filling a real tmpfs: an unbuffered append took part of a line and returned, leaving half a record."""
    room = ShortWrites(chunk=5, room=100)
    storage.write_bytes(room, b"0123456789abcdef")
    assert room.data == b"0123456789abcdef"
    full = ShortWrites(chunk=5, room=12)
    with pytest.raises(OSError) as info:
        storage.write_bytes(full, b"0123456789abcdef")
    assert info.value.errno == errno.ENOSPC and full.data == b"0123456789ab"


def test_a_short_append_is_cut_back_to_the_whole_records(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n')
    real_open = open

    class Filling:
        def __init__(self, file):
            self.file = file

        def write(self, data):  # the disk takes 7 bytes of the line, then nothing
            taken = 7 if path.stat().st_size == len('{"step": 1}\n') else 0
            return self.file.write(bytes(data[:taken]))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(storage, "open", lambda p, mode, **kw: Filling(real_open(p, mode, **kw)), raising=False)
    with pytest.raises(StorageError, match="no space left on the device"):
        storage.append_line(path, json.dumps({"step": 2, "loss": 0.5}))
    assert path.read_text() == '{"step": 1}\n'


def test_resume_with_metrics_cut_shorter_than_the_checkpoint_goes_on_from_the_last_whole_record(tmp_path):
    out = tmp_path / "run"
    from mtl.training.trainer import Trainer

    original = Trainer.train_step

    def crash(self, step, *args, **kwargs):
        if step == 5:
            raise KeyboardInterrupt
        return original(self, step, *args, **kwargs)

    Trainer.train_step = crash
    try:
        result = invoke_cli("run", *RUN, "-o", str(out))
    finally:
        Trainer.train_step = original
    assert result.exit_code == 130, result.output
    metrics = out / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes()[:100])  # cut by hand, mid-record, shorter than at the checkpoint
    resumed = invoke_cli("run", "--resume", str(out), "-q")
    assert resumed.exit_code == 0, resumed.output
    assert "is shorter (100 bytes) than at the checkpoint" in resumed.stderr
    data = metrics.read_bytes()
    assert b"\0" not in data  # os.truncate padded the file with NUL bytes up to the checkpoint's size
    records = RunFolder(out).metrics()  # every line parses
    assert records[-1]["step"] == 7


def test_a_stop_while_a_finished_run_writes_model_says_so_and_how_to_get_model(tmp_path, monkeypatch):
    from mtl.training import outcome

    def stopped(trainer):
        raise KeyboardInterrupt  # SIGINT after summary.json, while model/ would be written

    monkeypatch.setattr(outcome, "keep", stopped)
    out = tmp_path / "run"
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert result.exit_code == 130
    assert "the run had finished (eval.json and summary.json are written); model/ was not written: " \
           f"`mtl export {out}` writes it" in result.stderr
    assert "continue with" not in result.stderr  # before: advised a --resume that refuses a finished run
    monkeypatch.undo()
    assert invoke_cli("export", str(out)).exit_code == 0 and (out / "model" / "model.safetensors").exists()


def test_checkpoints_that_cannot_be_deleted_at_the_end_are_a_warning(tmp_path, monkeypatch):
    real_unlink = Path.unlink

    def read_only(self, missing_ok=False):  # the disk turns read-only once the run's results are written
        if self.name.startswith("step-") and (self.parent.parent / "summary.json").exists():
            raise OSError(errno.EROFS, "Read-only file system")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only)
    out = tmp_path / "run"
    result = invoke_cli("run", *RUN, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "could not be deleted (Read-only file system); the run is complete" in result.stderr
    assert (out / "summary.json").exists() and (out / "eval.json").exists()


@pytest.mark.slow
def test_a_png_it_replaces_stays_whole_when_the_disk_is_full(whole, tmp_path, monkeypatch):
    out = tmp_path / "plots"
    assert invoke_cli("plot", str(whole), "--output", str(out)).exit_code == 0
    before = (out / "loss.png").read_bytes()
    monkeypatch.setattr(storage, "write_bytes", lambda file, data: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    result = invoke_cli("plot", str(whole), "--output", str(out), "--overwrite")
    assert_one_line_error(result, "cannot write", "loss.png", "no space left on the device")
    assert (out / "loss.png").read_bytes() == before and no_temp_files(out)
