"""Crash-safe training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one safetensors file ``checkpoint/step-NNNNNNNN.safetensors``: every tensor of the training
state (model, optimizer, scheduler, sampler and weighting state, random-generator states, the data streams'
epoch orders) under a flat key, everything else as JSON in the file's metadata. No pickle: it loads with
``safetensors`` only. The checkpoints are listed with their size and SHA-256 in ``checkpoint/checkpoints.json``;
the last :data:`KEEP` are kept, and loading falls back to the previous one when the newest does not verify. A
plugin's state kept beside the best model (``checkpoint/weighting.safetensors``) has the same encoding
(:func:`save_state`). :class:`mtl.runs.folder.RunFolder` names the files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors import safe_open

from mtl.errors import MtlError, warn
from mtl.runs.files import save_tensors, write_atomic, write_json

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


# ---------------------------------------------------------------------------------------------- a plugin's state
def save_state(path: Path, state: dict[str, Any]) -> None:
    """A plugin's ``state_dict()`` as safetensors: tensors as tensors (at any depth: nested dicts and lists are
    kept), everything else as JSON metadata."""
    tensors, tree = pack(state)
    save_tensors(path, tensors, {"format": "pt", "tree": json.dumps(tree)})


def load_state(path: Path) -> dict[str, Any]:
    """The inverse of :func:`save_state` (no pickle)."""
    with safe_open(str(path), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - a handle is not iterable
        metadata = f.metadata() or {}
    if "tree" not in metadata:
        raise MtlError(f"{path}: not a plugin state file (its metadata has no 'tree')")
    return unpack(tensors, json.loads(metadata["tree"]))


def state_names(path: Path) -> list[str]:
    """The top-level names of a state :func:`save_state` wrote (e.g. ``bank``); none when the file is missing."""
    if not path.is_file():
        return []
    try:
        with safe_open(str(path), framework="pt") as f:
            return [str(key) for key, _ in json.loads((f.metadata() or {})["tree"])["__dict__"]]
    except Exception:  # noqa: BLE001 - any damage: the export's manifest just says so
        return ["(unreadable weighting state)"]


# ---------------------------------------------------------------------------------------------- the list
def listed(folder: Path) -> list[dict[str, Any]]:
    """The entries of ``folder``'s checkpoint list (``step``, ``file``, ``sha256``, ``bytes``), oldest first."""
    path = folder / MANIFEST
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["checkpoints"]
        return [e for e in entries if {"step", "file", "sha256", "bytes"} <= set(e)]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint list ({exc})") from None


def save(folder: Path, step: int, state: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step`` (steps done) in ``folder``, list it, and delete all but the last
    :data:`KEEP`."""
    data = serialise(state)
    name = f"step-{step:08d}.safetensors"
    write_atomic(folder / name, data)
    entries = [e for e in listed(folder) if e["file"] != name]
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


def clear(folder: Path) -> None:
    """Delete the checkpoints of ``folder`` and their list. A file that cannot be deleted (a read-only disk) is a
    warning: the run's results are written, only space is not freed."""
    try:
        for path in folder.glob("step-*.safetensors"):
            path.unlink(missing_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
    except OSError as exc:
        warn(f"the resume checkpoints in {folder} could not be deleted ({exc.strerror or exc}); the "
             f"run is complete: delete step-*.safetensors and {MANIFEST} there to free the space")


def latest(folder: Path) -> Path | None:
    """The newest listed checkpoint file (not verified), or None."""
    entries = listed(folder)
    return folder / entries[-1]["file"] if entries else None


def load(folder: Path) -> tuple[dict[str, Any], Path]:
    """The newest checkpoint whose size and SHA-256 match the list; a bad one is skipped with a warning."""
    entries = listed(folder)
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
