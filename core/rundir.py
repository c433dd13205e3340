"""The run folder of DESIGN.md ("Runs"): created only once a run is known to be valid, files written atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import MtlError


def default_name(target: str | None, weighting: str, sampler: str, seed: int) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{target or 'multi'}-{weighting}-{sampler}-s{seed}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse to write into a folder that already holds something (no data is ever lost)."""
    if path.exists() and not path.is_dir():
        raise MtlError(f"--output {path} exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise MtlError(f"--output {path} already exists and is not empty; choose another folder or pass --overwrite")


def create(path: Path, overwrite: bool) -> Path:
    check_output(path, overwrite)
    if path.exists() and overwrite:
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, default=float) + "\n")


def save_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    write_atomic(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))


def save_state(path: Path, state: dict[str, Any]) -> None:
    """A plugin's ``state_dict()`` as safetensors: tensors as tensors, everything else as JSON metadata."""
    import torch

    tensors = {k: v.detach().cpu() for k, v in state.items() if isinstance(v, torch.Tensor)}
    others = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    save_tensors(path, tensors, {"format": "pt", "state": json.dumps(others)})


def load_state(path: Path) -> dict[str, Any]:
    """The inverse of :func:`save_state` (no pickle)."""
    from safetensors import safe_open

    state: dict[str, Any] = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            state[key] = f.get_tensor(key)
        state.update(json.loads((f.metadata() or {}).get("state", "{}")))
    return state
