"""The run folder of DESIGN.md ("Runs"): the one module that reads and writes it.

``RunFolder(path)`` names every file of a run (``config.json``, ``metrics.jsonl``, ``eval.json``,
``predictions.safetensors``, ``summary.json``, ``checkpoint/``, ``model/``) and reads and writes them; the trainer,
restore, export, the bench, the figures and the CLI all go through it. A finished run keeps one copy of its best
model (``model/`` and, in ``checkpoint/best.safetensors``, what ``model/`` lacks: :mod:`mtl.runs.best`); ``--keep``
drops more (:meth:`RunFolder.prune`). Files are written atomically (temp file in
the same folder, fsync, rename) with the permissions any other program's files get (``0666 & ~umask``, 0644 under
the usual umask). Crash-safe checkpoints are listed with their size and SHA-256 in ``checkpoint/checkpoints.json``;
the last :data:`KEEP` are kept, and loading falls back to the previous one when the newest does not verify. A file
that is missing or does not parse is a one-line :class:`mtl.errors.MtlError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from mtl.errors import MtlError, not_utf8, warn
from mtl.runs import checkpoint, storage
from mtl.runs.checkpoint import CheckpointError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EVAL = "eval.json"
PREDICTIONS = "predictions.safetensors"  # the best evaluation's predictions and labels, per task.split
LABELS_SUFFIX = ":labels"  # predictions.safetensors: "<task>.<split>" predictions, "<task>.<split>:labels" labels
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoint"
BEST = "best.safetensors"
WEIGHTING_STATE = "weighting.safetensors"
MANIFEST = "checkpoints.json"
MODEL = "model"
SOFT_TARGETS = "soft-targets.safetensors"  # --teacher: the teachers' soft targets (mtl.training.distill)
EXPORT_MANIFEST = "mtl_export.json"  # what `mtl export` writes (mtl.runs.exported.MANIFEST); an export has config.json too
KEEP = 2


# ---------------------------------------------------------------------------------------------- files
def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: a reader never sees a half-written file. A fault (no space, no
    permission, a path that is a file) is a one-line :class:`~mtl.errors.StorageError`; the temp file is removed and
    the file it would have replaced is untouched."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(data) > storage.MARGIN:  # a large write (checkpoint, model): refuse it before it half-fills the disk
            storage.check_free(path, len(data))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise storage.error(path, exc, len(data)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())  # mkstemp makes it private; a result is an ordinary file
            storage.write_bytes(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        storage.remove_quietly(tmp)
        raise storage.error(path, exc, len(data)) from None
    except BaseException:
        storage.remove_quietly(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def read_json(path: Path, what: str, *, missing_ok: bool = False) -> Any:
    """A JSON file; None when it is missing and ``missing_ok``, else a one-line MtlError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise MtlError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MtlError(f"{path}: cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MtlError(f"{path}:{exc.lineno}: invalid JSON in {what}: {exc.msg}") from None


def write_folder_atomically(out_dir: Path, write, needed: int | None = None) -> list[str]:
    """``write(folder)`` into a temporary sibling folder, then put it in place of ``out_dir``; the files written.
    ``needed``: about how many bytes it writes, checked against the free space first."""
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage.error(out_dir, exc, needed) from None
    try:
        if needed is not None:
            storage.check_free(out_dir, needed)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    except OSError as exc:
        raise storage.error(out_dir, exc, needed) from None
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; the folder is an ordinary one
        write(tmp)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        _replace_folder(tmp, out_dir)
    except OSError as exc:  # e.g. save_pretrained on a full disk: nothing half-written is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage.error(out_dir, exc, needed) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files


def _replace_folder(new: Path, out_dir: Path) -> None:
    """Put folder ``new`` in place of ``out_dir``: the old one is renamed aside first and removed last, so
    ``out_dir`` is never half-deleted (a run's ``model/`` holds part of its best model)."""
    if not out_dir.exists():
        os.replace(new, out_dir)
        return
    old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".old"))
    os.replace(out_dir, old)
    try:
        os.replace(new, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_empty(path: Path, overwrite: bool, flag: str = "--output", reads: Iterable[str | Path] = ()) -> None:
    """Refuse to write into a folder that already holds something (no data is ever lost); with ``overwrite``, refuse
    a folder whose deletion would take the current folder or what the command reads (``reads``: its run, its parent
    run, its teachers) with it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MtlError(f"{flag} {path} exists and is not a folder")
    if not (path.exists() and any(path.iterdir())):
        return
    if not overwrite:
        raise MtlError(f"{flag} {path} already exists and is not empty; choose another folder or pass --overwrite")
    held = [(Path.cwd(), "the current folder")] + [(Path(r), f"{r}, which this command reads") for r in reads]
    for inner, what in held:
        if inner.resolve().is_relative_to(path.resolve()):
            raise MtlError(f"{flag} {path}: --overwrite would delete {what}; choose another folder")


def unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def default_name(target: str | None, weighting: str, sampler: str, seed: int) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{target or 'multi'}-{weighting}-{sampler}-s{seed}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def save_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    write_atomic(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))


def load_tensors(path: Path, what: str = "checkpoint", missing: str = "") -> dict[str, Any]:
    """The tensors of a safetensors file; MtlError naming it when missing (``missing`` says why it may be),
    truncated or corrupted."""
    if not path.is_file():
        raise MtlError(f"{path}: missing ({missing or what})")
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError ...: a truncated or overwritten file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MtlError(f"{path}: not a readable safetensors {what} ({reason[:160]})") from None


def save_state(path: Path, state: dict[str, Any]) -> None:
    """A plugin's ``state_dict()`` as safetensors: tensors as tensors (at any depth: nested dicts and lists are
    kept), everything else as JSON metadata."""
    tensors, tree = checkpoint.pack(state)
    save_tensors(path, tensors, {"format": "pt", "tree": json.dumps(tree)})


def load_state(path: Path) -> dict[str, Any]:
    """The inverse of :func:`save_state` (no pickle); also reads the flat files older versions wrote (top-level
    tensors under their own names, the rest as JSON under "state")."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        metadata = f.metadata() or {}
    if "tree" in metadata:
        return checkpoint.unpack(tensors, json.loads(metadata["tree"]))
    return {**tensors, **json.loads(metadata.get("state", "{}"))}


# ---------------------------------------------------------------------------------------------- the folder
class RunFolder:
    """One run folder: its files by name, read and written the same way wherever mtl needs them."""

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise MtlError(f"a run folder is a path (got {type(path).__name__})")
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -------------------------------------------------------------------------------- paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def best_path(self) -> Path:
        return self.checkpoints / BEST

    @property
    def weighting_state_path(self) -> Path:
        return self.checkpoints / WEIGHTING_STATE

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    def holds_export(self) -> bool:
        """An ``mtl export`` folder (its manifest)."""
        return (self.path / EXPORT_MANIFEST).exists()

    def started_by_run(self) -> bool:
        """A folder a run started (config.json and metrics.jsonl, written first), finished or not; not an export
        (whose Hugging Face config.json is no run's)."""
        return (self.config_path.is_file() and self.metrics_path.is_file()
                and not self.holds_export())

    def is_run(self) -> bool:
        """A folder written by ``mtl run``: it has config.json and checkpoint/ (a finished run with ``--keep none``:
        summary.json instead)."""
        return self.config_path.is_file() and (self.checkpoints.is_dir() or self.summary_path.is_file())

    def evaluated(self) -> bool:
        """The run ended and wrote its best evaluation (``eval.json``)."""
        return self.eval_path.exists()

    def finished(self) -> bool:
        """The run wrote ``summary.json``, its last file: it cannot be resumed."""
        return self.summary_path.exists()

    # -------------------------------------------------------------------------------- creating
    def check_writable(self, overwrite: bool, reads: Iterable[str | Path] = ()) -> None:
        """A one-line error unless the folder is new or empty, or ``overwrite`` and it is a run's (config.json):
        --overwrite never deletes a folder of other files, nor the current folder, nor what the run reads
        (``reads``: a parent run, teachers, data) or a folder above them (:func:`check_empty`)."""
        check_empty(self.path, overwrite, reads=reads)
        if not (overwrite and self.path.is_dir() and any(self.path.iterdir())):
            return
        if not self.started_by_run():
            what = "an export" if self.holds_export() else "files that are not a run's"
            raise MtlError(f"--output {self.path} holds {what}; --overwrite replaces only a folder `mtl run` wrote "
                           f"({CONFIG} and {METRICS}): choose another folder")

    def create(self, overwrite: bool, reads: Iterable[str | Path] = ()) -> None:
        self.check_writable(overwrite, reads)
        try:
            if self.path.exists() and overwrite:
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage.error(self.path, exc) from None

    # -------------------------------------------------------------------------------- config.json
    def write_config(self, record: dict[str, Any]) -> None:
        write_json(self.config_path, record)

    def record(self, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """The whole ``config.json`` (options, plugins, sizes, versions ...); None when missing and ``missing_ok``."""
        record = read_json(self.config_path, "the run's configuration", missing_ok=missing_ok)
        if record is not None and not isinstance(record, dict):
            raise MtlError(f"{self.config_path}: not a run configuration (expected a JSON object)")
        return record

    def config(self):
        """The run's :class:`mtl.runs.config.RunConfig` and its whole ``config.json`` record."""
        from mtl.runs.config import RunConfig

        record = self.record()
        try:
            config = RunConfig.from_record(record).check_values()
        except TypeError as exc:
            raise MtlError(f"{self.config_path}: not a run configuration: {exc}") from None
        except MtlError as exc:
            raise MtlError(f"{self.config_path}: {exc}") from None
        return config, record

    def require_started(self, flag: str) -> None:
        """A one-line error naming ``flag`` unless :meth:`started_by_run`."""
        if not self.started_by_run():
            why = ("it holds an export" if self.holds_export()
                   else f"no {CONFIG} and {METRICS}, which `mtl run` writes first")
            raise MtlError(f"{flag} {self.path}: not a run folder ({why})")

    def require_run(self) -> None:
        """A one-line error unless this is a folder written by ``mtl run``."""
        if not self.path.is_dir():
            raise MtlError(f"not a run folder: {self.path} " + ("is a file" if self.path.exists() else "does not exist"))
        if not self.is_run():
            missing = CONFIG if not self.config_path.is_file() else f"{CHECKPOINTS}/ or {SUMMARY}"
            raise MtlError(f"not a run folder: {self.path} has no {missing} (a folder written by `mtl run`)")

    # -------------------------------------------------------------------------------- metrics.jsonl
    def start_metrics(self) -> None:
        try:
            self.metrics_path.touch()
        except OSError as exc:
            raise storage.error(self.metrics_path, exc) from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        storage.append_line(self.metrics_path, json.dumps(record, default=float))

    def metrics_size(self) -> int:
        return self.metrics_path.stat().st_size

    def truncate_metrics(self, size: int) -> None:
        """Drop the records written after a checkpoint (they are written again when the run continues). A file
        shorter than at the checkpoint (cut or removed by hand) is cut back to its last whole record instead, with a
        warning: the records it lost are not written again (os.truncate would pad it with NUL bytes)."""
        path = self.metrics_path
        try:
            current = path.stat().st_size if path.exists() else None
            if current is not None and current >= size:
                os.truncate(path, size)
                return
            data = path.read_bytes() if current is not None else b""
            whole = data[: data.rfind(b"\n") + 1]
            write_atomic(path, whole)
        except OSError as exc:
            raise storage.error(path, exc) from None
        what = "is missing" if current is None else f"is shorter ({current} bytes) than at the checkpoint ({size})"
        warn(f"{path} {what}: the records it lost are not written again; it goes on from its last whole record")

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl``; a missing or malformed file is a one-line error."""
        if not self.path.is_dir():
            raise MtlError(f"{self.path}: no such run folder")
        path = self.metrics_path
        if not path.is_file():
            raise MtlError(f"{self.path}: not a run folder (no {METRICS}; `mtl run` writes one)")
        records = []
        try:
            lines = path.read_bytes().decode("utf-8").split("\n")
        except OSError as exc:
            raise MtlError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise MtlError(not_utf8(path, exc)) from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MtlError(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(record, dict) or "step" not in record:
                raise MtlError(f"{path}:{number}: not a metrics record (no 'step')")
            records.append(record)
        if not records:
            raise MtlError(f"{path}: no records yet (the run logs every --log-every steps)")
        return records

    # -------------------------------------------------------------------------------- results
    def write_eval(self, results: dict[str, Any]) -> None:
        write_json(self.eval_path, results)

    def eval(self, *, missing_ok: bool = True) -> dict[str, Any] | None:
        return read_json(self.eval_path, "the run's evaluation", missing_ok=missing_ok)

    def write_predictions(self, predictions: dict[str, tuple[Any, Any]], *, epoch: int, step: int) -> None:
        """``predictions.safetensors``: per ``"<task>.<split>"`` the evaluation's predictions (class indices, or
        scores for regression) in the order of the split's file, and its labels under ``"<task>.<split>:labels"``;
        the epoch and step evaluated in the metadata (no pickle)."""
        tensors = {}
        for key, (values, labels) in predictions.items():
            tensors[key] = values
            tensors[key + LABELS_SUFFIX] = labels
        save_tensors(self.predictions_path, tensors, {"format": "pt", "kind": "mtl-predictions",
                                                      "epoch": str(epoch), "step": str(step)})

    def predictions(self) -> dict[str, Any] | None:
        """The stored evaluation predictions: ``{"epoch", "step", "splits": {"<task>.<split>": {"predictions",
        "labels"}}}`` (numpy arrays, read with safetensors' numpy loader: torch is not imported); None for a run
        without the file (runs of older versions of mtl)."""
        path = self.predictions_path
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as f:
                meta = dict(f.metadata() or {})
                arrays = {key: f.get_tensor(key) for key in f.keys()}
        except Exception as exc:  # a truncated or overwritten file
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MtlError(f"{path}: not a readable safetensors predictions file ({reason[:160]})") from None
        splits: dict[str, Any] = {}
        for key, values in arrays.items():
            if key.endswith(LABELS_SUFFIX):
                continue
            labels = arrays.get(key + LABELS_SUFFIX)
            if labels is None or labels.shape != values.shape:
                raise MtlError(f"{path}: {key!r} has no labels of its length")
            splits[key] = {"predictions": values, "labels": labels}

        def number(name: str) -> int | None:
            try:
                return int(meta[name])
            except (KeyError, ValueError):
                return None

        return {"epoch": number("epoch"), "step": number("step"), "splits": splits}

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def summary(self, *, missing_ok: bool = True) -> dict[str, Any] | None:
        return read_json(self.summary_path, "the run's summary", missing_ok=missing_ok)

    # -------------------------------------------------------------------------------- best model
    def save_best(self, model_state: dict[str, Any], weighting_state: dict[str, Any]) -> None:
        """The whole best model so far (``--resume`` and the end of the run read it) and the weighting's state."""
        save_tensors(self.best_path, model_state, {"format": "pt", "kind": "mtl-best"})
        if weighting_state:  # e.g. MAMT's memory: training-only, kept beside the model, never inside it
            save_state(self.weighting_state_path, weighting_state)

    def best(self) -> dict[str, Any]:
        """The tensors of the best model: ``checkpoint/best.safetensors``, with the tensors it refers to in ``model/``
        once the run has finished (:mod:`mtl.runs.best`)."""
        from mtl.runs import best

        self.require_weights()
        return best.load(self.path, self.best_path,
                         missing="the run has no best checkpoint; did it finish an evaluation?")

    def kept(self) -> str:
        """The run's ``--keep`` (``all`` for runs of older versions)."""
        return str((self.record(missing_ok=True) or {}).get("keep") or "all")

    def require_weights(self) -> None:
        """A one-line error for a finished run that kept no weights (``--keep none``)."""
        if not self.best_path.is_file() and self.finished() and self.kept() == "none":
            raise MtlError(f"{self.path}: the run kept no weights (--keep none): it has its metrics and predictions, "
                           "not its model")

    def deduplicate_best(self) -> tuple[int, int]:
        """Once ``model/`` is written: ``best.safetensors`` keeps only what ``model/`` lacks (:mod:`mtl.runs.best`);
        (tensors referred to, tensors kept)."""
        from mtl.runs import best

        return best.deduplicate(self.path, self.best_path, self.model_dir)

    def prune(self, keep: str) -> list[str]:
        """What ``--keep`` drops from a finished run; the paths removed (relative to the run folder).

        ``all``: nothing. ``model``: the training-only state (``checkpoint/weighting.safetensors``,
        ``soft-targets.safetensors``); the best model (``model/``, ``checkpoint/best.safetensors``) stays. ``none``:
        every weight too (``checkpoint/``, ``model/``): config.json, metrics.jsonl, eval.json,
        predictions.safetensors and summary.json stay (and a tracker's own folder)."""
        if keep == "all":
            return []
        paths = [self.weighting_state_path, self.path / SOFT_TARGETS]
        if keep == "none":
            paths += [self.checkpoints, self.model_dir]
        removed = []
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(path.relative_to(self.path).as_posix())
        return removed

    def weighting_state_names(self) -> list[str]:
        """Names of the weighting state kept beside the model (``checkpoint/weighting.safetensors``), e.g. ``bank``."""
        path = self.weighting_state_path
        if not path.is_file():
            return []
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                if "tree" in metadata:  # save_state's format: the state's top-level names
                    return [str(key) for key, _ in json.loads(metadata["tree"])["__dict__"]]
                names = list(f.keys())
                names += list(json.loads(metadata.get("state", "{}")))
        except Exception:
            return ["(unreadable weighting state)"]
        return names

    # -------------------------------------------------------------------------------- crash-safe checkpoints
    def _listed(self) -> list[dict[str, Any]]:
        path = self.checkpoints / MANIFEST
        if not path.exists():
            return []
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["checkpoints"]
            return [e for e in entries if {"step", "file", "sha256", "bytes"} <= set(e)]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint list ({exc})") from None

    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint of ``step`` (steps done), list it, and delete all but the last :data:`KEEP`."""
        folder = self.checkpoints
        data = checkpoint.serialise(state)
        name = f"step-{step:08d}.safetensors"
        write_atomic(folder / name, data)
        entries = [e for e in self._listed() if e["file"] != name]
        entries.append({"step": step, "file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        entries = entries[-KEEP:]
        write_json(folder / MANIFEST, {"checkpoints": entries})
        kept = {e["file"] for e in entries}
        for old in folder.glob("step-*.safetensors"):  # older ones, and any written but never listed (a kill)
            if old.name not in kept:
                try:
                    old.unlink(missing_ok=True)
                except OSError as exc:  # the new checkpoint is written and listed: only space is not freed
                    warn(f"{old} could not be deleted ({exc.strerror or exc}); it is no longer needed")
        return folder / name

    def clear_checkpoints(self) -> None:
        """Delete the resume checkpoints (and their list) of a finished run; ``best.safetensors`` stays. A file that
        cannot be deleted (a read-only disk) is a warning: the run's results are written, only space is not freed."""
        try:
            for path in self.checkpoints.glob("step-*.safetensors"):
                path.unlink(missing_ok=True)
            (self.checkpoints / MANIFEST).unlink(missing_ok=True)
        except OSError as exc:
            warn(f"the resume checkpoints in {self.checkpoints} could not be deleted ({exc.strerror or exc}); the "
                 f"run is complete: delete step-*.safetensors and {MANIFEST} there to free the space")

    def latest_checkpoint(self) -> Path | None:
        """The newest listed checkpoint file (not verified), or None."""
        entries = self._listed()
        return self.checkpoints / entries[-1]["file"] if entries else None

    def load_checkpoint(self) -> tuple[dict[str, Any], Path]:
        """The newest checkpoint whose size and SHA-256 match the list; a bad one is skipped with a warning."""
        folder = self.checkpoints
        entries = self._listed()
        if not entries:
            raise CheckpointError(f"{folder}: no checkpoint to resume from")
        problems = []
        for entry in reversed(entries):
            path = folder / entry["file"]
            try:
                data = path.read_bytes()
            except OSError as exc:
                problem = f"{path}: cannot be read ({exc.strerror})"
            else:
                if len(data) != entry["bytes"]:
                    problem = f"{path}: truncated ({len(data)} of {entry['bytes']} bytes)"
                elif hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    problem = f"{path}: corrupted (SHA-256 does not match)"
                else:
                    try:
                        return checkpoint.deserialise(data), path
                    except Exception as exc:  # a listed file that still does not parse
                        problem = f"{path}: unreadable ({type(exc).__name__}: {exc})"
            problems.append(problem)
            warn(problem + ("; using the previous checkpoint" if entry is not entries[0] else ""))
        raise CheckpointError(f"{folder}: no usable checkpoint ({'; '.join(problems)})")
