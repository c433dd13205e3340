"""The files of run and export folders, written atomically and read with one-line errors.

Files are written atomically (temp file in the same folder, fsync, rename) with the permissions any other
program's files get (``0666 & ~umask``, 0644 under the usual umask); a folder (an export, a run's ``model/``) is
written beside its place and renamed into it. JSON, safetensors tensors (no pickle) and the evaluation predictions
(``predictions.safetensors``) are read here; a file that is missing or does not parse is a one-line
:class:`mtl.errors.MtlError` naming it. Faults while writing are :mod:`mtl.runs.storage`'s one-line errors.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors import safe_open

from mtl.errors import MtlError
from mtl.runs import storage

LABELS_SUFFIX = ":labels"  # predictions.safetensors: "<task>.<split>" predictions, "<task>.<split>:labels" labels


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


def json_safe(obj: Any, replaced: list[str] | None = None, path: str = "") -> Any:
    """``obj`` as strict JSON holds it: every NaN or infinity (a float, a 0-d tensor, a numpy scalar) becomes None,
    tensors and numpy arrays lists; the path of each value it replaced (``key``, ``key.inner``, ``key[0]``) is
    appended to ``replaced``."""
    if isinstance(obj, (str, bool, int)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {k: json_safe(v, replaced, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, replaced, f"{path}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "tolist"):  # tensors, numpy arrays and scalars
        return json_safe(obj.tolist(), replaced, path)
    if not isinstance(obj, float) and hasattr(obj, "__float__"):
        obj = float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        if replaced is not None:
            replaced.append(path)
        return None
    return obj


def json_line(record: dict[str, Any], replaced: list[str] | None = None) -> str:
    """``record`` as one line of strict JSON (:func:`json_safe`; ``allow_nan=False`` lets no NaN through)."""
    return json.dumps(json_safe(record, replaced), allow_nan=False)


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
    old = _aside(out_dir)
    try:
        os.replace(new, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_folder(path: Path) -> None:
    """Remove folder ``path`` as one step for its readers: renamed aside (a hidden sibling), then deleted, so that
    nobody sees it half-deleted."""
    shutil.rmtree(_aside(path), ignore_errors=True)


def _aside(path: Path) -> Path:
    """Rename ``path`` to a new hidden sibling (``.NAME.XXXX.old``) and return that."""
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.replace(path, old)
    return old


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



def save_predictions(path: Path, predictions: dict[str, tuple[Any, Any]], *, epoch: int, step: int) -> None:
    """``predictions.safetensors``: per ``"<task>.<split>"`` the evaluation's predictions (class indices, or scores
    for regression) in the order of the split's file, and its labels under ``"<task>.<split>:labels"``; the epoch
    and step evaluated in the metadata (no pickle)."""
    tensors = {}
    for key, (values, labels) in predictions.items():
        tensors[key] = values
        tensors[key + LABELS_SUFFIX] = labels
    save_tensors(path, tensors, {"format": "pt", "kind": "mtl-predictions", "epoch": str(epoch), "step": str(step)})


def load_predictions(path: Path) -> dict[str, Any] | None:
    """The stored evaluation predictions: ``{"epoch", "step", "splits": {"<task>.<split>": {"predictions",
    "labels"}}}`` (numpy arrays, read with safetensors' numpy loader: torch is not imported); None without the
    file."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            arrays = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - a handle is not iterable
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
