"""The best model of a finished run, stored once (``checkpoint/best.safetensors`` and ``model/``).

While a run trains, ``checkpoint/best.safetensors`` holds the whole best model (backbone, every head, a weighting's
module): ``--resume`` and the end of the run read it. When the run has written ``model/`` (the export of that same
model), :func:`deduplicate` rewrites ``best.safetensors`` with only what ``model/`` lacks — the auxiliary heads, the
other tasks' task vectors, a tensor the export changed (a task vector folded into the word embeddings), the parts of
a feature map the target does not use — and, in its metadata, a reference for every other tensor: the file of
``model/`` that holds it bit for bit, its name there and the SHA-256 of its dtype, shape and bytes. The match is by
content, so it needs no knowledge of the export's key names and can never pair a tensor with a different one.

:func:`load` gives the whole state again: the tensors of ``best.safetensors`` and the referenced ones, each checked
against its SHA-256. A ``best.safetensors`` without references (older runs, a run without a target or whose
``model/`` could not be written) is the whole model, as before. No pickle: safetensors and JSON only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from safetensors import safe_open

from mtl.errors import MtlError
from mtl.runs.files import load_tensors, save_tensors

KIND = "mtl-best"  # the whole best model
KIND_REST = "mtl-best-rest"  # what model/ lacks, with references to the rest
REFERENCES = "model"  # metadata key: {state key: [file relative to the run folder, key in it, sha256]}


def digest(tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    import torch

    flat = tensor.detach().cpu().contiguous().reshape(-1)
    h = hashlib.sha256(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    if flat.numel():
        h.update(flat.view(torch.uint8).numpy())  # the buffer itself, not a copy
    return h.hexdigest()


def _model_tensors(run_dir: Path, model_dir: Path) -> dict[str, tuple[str, str]]:
    """Every tensor of the safetensors files under ``model_dir``: ``{digest: (file relative to run_dir, key)}``."""
    index: dict[str, tuple[str, str]] = {}
    for path in sorted(model_dir.rglob("*.safetensors")):
        if any(part.startswith(".") for part in path.relative_to(model_dir).parts):
            continue  # a temporary file
        relative = path.relative_to(run_dir).as_posix()
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - a safetensors handle is not iterable
                index.setdefault(digest(f.get_tensor(key)), (relative, key))
    return index


def deduplicate(run_dir: Path, best_path: Path, model_dir: Path) -> tuple[int, int]:
    """Rewrite ``best_path`` (the whole best model) without the tensors ``model_dir`` holds bit for bit, referring
    to them instead; returns (tensors referred to, tensors kept). Already deduplicated: nothing is done. The write
    is atomic: a failure leaves the whole model in place."""
    if is_partial(best_path):
        return 0, 0
    state = load_tensors(best_path)
    index = _model_tensors(run_dir, model_dir)
    references, rest = {}, {}
    for key, tensor in state.items():
        hit = index.get(sha := digest(tensor))
        if hit is None:
            rest[key] = tensor
        else:
            references[key] = [*hit, sha]
    if references:
        save_tensors(best_path, rest, {"format": "pt", "kind": KIND_REST, REFERENCES: json.dumps(references)})
    return len(references), len(rest)


def is_partial(best_path: Path) -> bool:
    """``best_path`` holds only what ``model/`` lacks (it refers to the rest)."""
    return _metadata(best_path).get("kind") == KIND_REST


def _metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - missing or unreadable: load() says which
        return {}


def load(run_dir: Path, best_path: Path, missing: str) -> dict[str, Any]:
    """The whole best model: ``best_path``'s tensors and those it refers to in ``model/``, each checked."""
    state = load_tensors(best_path, missing=missing)
    metadata = _metadata(best_path)
    if metadata.get("kind") != KIND_REST:
        return state
    try:
        references = json.loads(metadata[REFERENCES])
    except (KeyError, ValueError):
        raise MtlError(f"{best_path}: unreadable references to model/ in its metadata") from None
    by_file: dict[str, list[tuple[str, str, str]]] = {}
    for key, (file, name, sha) in references.items():
        by_file.setdefault(file, []).append((key, name, sha))
    for file, entries in by_file.items():
        state.update(_referenced(run_dir, best_path, file, entries))
    return dict(sorted(state.items()))  # in the order of a whole file's keys (safetensors sorts them)


def _referenced(run_dir: Path, best_path: Path, file: str, entries: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The tensors ``entries`` (state key, key in ``file``, sha256) of one file of model/, checked."""
    if PurePosixPath(file).is_absolute() or ".." in PurePosixPath(file).parts:
        raise MtlError(f"{best_path}: refers to {file!r}, outside the run folder")
    path = run_dir / file
    why = (f"{best_path.name} holds only what {PurePosixPath(file).parts[0]}/ lacks; the rest of the best model is "
           f"in {PurePosixPath(file).parts[0]}/")
    if not path.is_file():
        raise MtlError(f"{path}: missing ({why})")
    out = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            for key, name, sha in entries:
                if name not in keys:
                    raise MtlError(f"{path}: has no tensor {name!r} ({why}): it was changed after the run finished")
                tensor = f.get_tensor(name)
                if digest(tensor) != sha:
                    raise MtlError(f"{path}: {name!r} is not the tensor the run's best model refers to (SHA-256 "
                                   f"differs; {why}): it was changed after the run finished")
                out[key] = tensor
    except MtlError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or overwritten file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MtlError(f"{path}: not a readable safetensors file ({reason[:160]}; {why})") from None
    return out
