"""Crash-safe training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one safetensors file ``checkpoint/step-NNNNNNNN.safetensors``: every tensor of the training
state (model, optimizer, scheduler, sampler and weighting state, random-generator states, the data streams'
epoch orders) under a flat key, everything else as JSON in the file's metadata. No pickle: it loads with
``safetensors`` only. Files are written atomically (temp file, fsync, rename) and then listed with their size
and SHA-256 in ``checkpoint/checkpoints.json`` (also atomic); the last :data:`KEEP` are kept. Loading checks
size and checksum, newest first, and falls back to the previous checkpoint with a warning.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from . import rundir
from .errors import MtlError, warn

MANIFEST = "checkpoints.json"
KEEP = 2


class CheckpointError(MtlError):
    """No usable checkpoint: missing, truncated or corrupted (the message names the file)."""


# ---------------------------------------------------------------------------------------------- encoding
def pack(state: Any) -> tuple[dict[str, Any], Any]:
    """Split a nested state into (flat tensors, a JSON tree referring to them); dict key types are kept."""
    import torch

    tensors: dict[str, Any] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(value, dict):
            return {"__dict__": [[key, walk(item, f"{path}.{key}")] for key, item in value.items()]}
        if isinstance(value, (list, tuple)):
            return [walk(item, f"{path}.{i}") for i, item in enumerate(value)]
        if hasattr(value, "tolist"):  # numpy arrays and scalars
            return value.tolist()
        return value

    return tensors, walk(state, "s")


def unpack(tensors: dict[str, Any], tree: Any) -> Any:
    """The inverse of :func:`pack` (tuples come back as lists)."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        return {key: unpack(tensors, item) for key, item in tree["__dict__"]}
    if isinstance(tree, list):
        return [unpack(tensors, item) for item in tree]
    return tree


def serialise(state: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    tensors, tree = pack(state)
    return save(tensors, metadata={"format": "pt", "kind": "mtl-checkpoint", "state": json.dumps(tree)})


def deserialise(data: bytes) -> dict[str, Any]:
    from safetensors.torch import load

    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    tree = json.loads(header["__metadata__"]["state"])
    return unpack(load(data), tree)


# ---------------------------------------------------------------------------------------------- files
def _manifest(folder: Path) -> list[dict[str, Any]]:
    path = folder / MANIFEST
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["checkpoints"]
        return [e for e in entries if {"step", "file", "sha256", "bytes"} <= set(e)]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint list ({exc})") from None


def save(folder: Path, step: int, state: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step`` (steps done), list it, and delete all but the last :data:`KEEP`."""
    data = serialise(state)
    name = f"step-{step:08d}.safetensors"
    rundir.write_atomic(folder / name, data)
    entries = [e for e in _manifest(folder) if e["file"] != name]
    entries.append({"step": step, "file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    entries = entries[-KEEP:]
    rundir.write_json(folder / MANIFEST, {"checkpoints": entries})
    kept = {e["file"] for e in entries}
    for old in folder.glob("step-*.safetensors"):  # older ones, and any written but never listed (a kill)
        if old.name not in kept:
            old.unlink(missing_ok=True)
    return folder / name


def clear(folder: Path) -> None:
    """Delete the resume checkpoints (and their list) of a finished run; ``best.safetensors`` stays."""
    for path in folder.glob("step-*.safetensors"):
        path.unlink(missing_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)


def latest(folder: Path) -> Path | None:
    """The newest listed checkpoint file (not verified), or None."""
    entries = _manifest(folder)
    return folder / entries[-1]["file"] if entries else None


def load(folder: Path) -> tuple[dict[str, Any], Path]:
    """The newest checkpoint whose size and SHA-256 match the list; a bad one is skipped with a warning."""
    entries = _manifest(folder)
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
                    return deserialise(data), path
                except Exception as exc:  # a listed file that still does not parse
                    problem = f"{path}: unreadable ({type(exc).__name__}: {exc})"
        problems.append(problem)
        warn(problem + ("; using the previous checkpoint" if entry is not entries[0] else ""))
    raise CheckpointError(f"{folder}: no usable checkpoint ({'; '.join(problems)})")
