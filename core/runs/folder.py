"""The run folder of DESIGN.md ("Runs"): the one module that names its files and reads and writes them.

``RunFolder(path)`` names every file of a run (``config.json``, ``metrics.jsonl``, ``eval.json``,
``predictions.safetensors``, ``summary.json``, ``checkpoint/``, ``model/``) and reads and writes them; the trainer,
restore, export, the bench, the figures and the CLI all go through it. A finished run keeps one copy of its best
model (``model/`` and, in ``checkpoint/best.safetensors``, what ``model/`` lacks: :mod:`mtl.runs.best`); ``--keep``
drops more (:meth:`RunFolder.prune`). ``config.json`` is read by :mod:`mtl.runs.record`, the crash-safe
checkpoints by :mod:`mtl.runs.checkpoint`; files are written atomically (:mod:`mtl.runs.files`). A file that is
missing or does not parse is a one-line :class:`mtl.errors.MtlError` naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtl import locks
from mtl.errors import MtlError, not_utf8, warn
from mtl.runs import best, checkpoint, storage
from mtl.runs.checkpoint import MANIFEST, CheckpointError, load_state, save_state
from mtl.runs.config import RunConfig
from mtl.runs.files import (
    json_line,
    load_predictions,
    load_tensors,
    read_json,
    remove_folder,
    save_predictions,
    save_tensors,
    write_atomic,
    write_folder_atomically,
    write_json,
)
from mtl.runs.record import CONFIG, RunRecord, parse_record, read_config_object, read_record

# the file operations callers reach through this module (``from mtl.runs import folder as run_files``)
__all__ = ["CONFIG", "CHECKPOINTS", "EVAL", "EXPORT_MANIFEST", "MANIFEST", "METRICS", "MODEL", "PREDICTIONS",
           "SOFT_TARGETS", "SUMMARY", "CheckpointError", "RunFolder", "check_empty", "default_name", "load_state",
           "load_tensors", "read_json", "save_state", "save_tensors", "unique", "write_atomic",
           "write_folder_atomically", "write_json"]

METRICS = "metrics.jsonl"
EVAL = "eval.json"
PREDICTIONS = "predictions.safetensors"  # the best evaluation's predictions and labels, per task.split
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoint"
BEST = "best.safetensors"
WEIGHTING_STATE = "weighting.safetensors"
MODEL = "model"
SOFT_TARGETS = "soft-targets.safetensors"  # --teacher: the teachers' soft targets (mtl.training.distill)
EXPORT_MANIFEST = "mtl_export.json"  # `mtl export`'s manifest (mtl.runs.exported.MANIFEST); an export has a config.json


# ---------------------------------------------------------------------------------------------- folders
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
    for inner, holder in locks.live_inside(path)[:1]:
        raise locks.FolderInUse(f"{flag} {path}: --overwrite would delete {inner}, which is in use: "
                                f"{holder.describe()}; choose another folder")


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
                remove_folder(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage.error(self.path, exc) from None

    # -------------------------------------------------------------------------------- config.json
    def write_config(self, record: dict[str, Any]) -> None:
        write_json(self.config_path, record)

    def record(self, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """The whole ``config.json`` as its JSON object, unchecked; None when missing and ``missing_ok``."""
        return read_config_object(self.config_path, missing_ok=missing_ok)

    def run_record(self, *, missing_ok: bool = False) -> RunRecord | None:
        """``config.json`` read and checked (:func:`mtl.runs.record.read_record`); None when missing and
        ``missing_ok``."""
        return read_record(self.config_path, missing_ok=missing_ok)

    def config(self) -> tuple[RunConfig, dict[str, Any]]:
        """The run's :class:`mtl.runs.config.RunConfig` and its whole ``config.json`` object."""
        values = self.record()
        return parse_record(values, self.config_path).config, values

    def require_started(self, flag: str) -> None:
        """A one-line error naming ``flag`` unless :meth:`started_by_run`."""
        if not self.started_by_run():
            why = ("it holds an export" if self.holds_export()
                   else f"no {CONFIG} and {METRICS}, which `mtl run` writes first")
            raise MtlError(f"{flag} {self.path}: not a run folder ({why})")

    def require_run(self) -> None:
        """A one-line error unless this is a folder written by ``mtl run``."""
        if not self.path.is_dir():
            what = "is a file" if self.path.exists() else "does not exist"
            raise MtlError(f"not a run folder: {self.path} {what}")
        if not self.is_run():
            missing = CONFIG if not self.config_path.is_file() else f"{CHECKPOINTS}/ or {SUMMARY}"
            raise MtlError(f"not a run folder: {self.path} has no {missing} (a folder written by `mtl run`)")

    # -------------------------------------------------------------------------------- metrics.jsonl
    def start_metrics(self) -> None:
        try:
            self.metrics_path.touch()
        except OSError as exc:
            raise storage.error(self.metrics_path, exc) from None

    def append_metrics(self, record: dict[str, Any]) -> list[str]:
        """Append ``record`` as one line of strict JSON, a NaN or infinity as null; the keys of those values."""
        replaced: list[str] = []
        storage.append_line(self.metrics_path, json_line(record, replaced))
        return replaced

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
        """``predictions.safetensors`` (:func:`mtl.runs.files.save_predictions`)."""
        save_predictions(self.predictions_path, predictions, epoch=epoch, step=step)

    def predictions(self) -> dict[str, Any] | None:
        """The stored evaluation predictions (:func:`mtl.runs.files.load_predictions`); None for a run without the
        file."""
        return load_predictions(self.predictions_path)

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
        self.require_weights()
        return best.load(self.path, self.best_path,
                         missing="the run has no best checkpoint; did it finish an evaluation?")

    def kept(self) -> str:
        """The run's ``--keep`` (``all`` when config.json is missing)."""
        read = self.run_record(missing_ok=True)
        return read.config.keep if read is not None else "all"

    def require_weights(self) -> None:
        """A one-line error for a finished run that kept no weights (``--keep none``)."""
        if not self.best_path.is_file() and self.finished() and self.kept() == "none":
            raise MtlError(f"{self.path}: the run kept no weights (--keep none): it has its metrics and predictions, "
                           "not its model")

    def deduplicate_best(self) -> tuple[int, int]:
        """Once ``model/`` is written: ``best.safetensors`` keeps only what ``model/`` lacks (:mod:`mtl.runs.best`);
        (tensors referred to, tensors kept)."""
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
        return checkpoint.state_names(self.weighting_state_path)

    # -------------------------------------------------------------------------------- crash-safe checkpoints
    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path:
        """Write the checkpoint of ``step`` (steps done), list it, and delete all but the last ones."""
        return checkpoint.save(self.checkpoints, step, state)

    def clear_checkpoints(self) -> None:
        """Delete the resume checkpoints (and their list) of a finished run; ``best.safetensors`` stays."""
        checkpoint.clear(self.checkpoints)

    def latest_checkpoint(self) -> Path | None:
        """The newest listed checkpoint file (not verified), or None."""
        return checkpoint.latest(self.checkpoints)

    def load_checkpoint(self) -> tuple[dict[str, Any], Path]:
        """The newest checkpoint whose size and SHA-256 match the list; a bad one is skipped with a warning."""
        return checkpoint.load(self.checkpoints)
