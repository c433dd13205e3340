"""The format of crash-safe training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one safetensors file ``checkpoint/step-NNNNNNNN.safetensors``: every tensor of the training
state (model, optimizer, scheduler, sampler and weighting state, random-generator states, the data streams'
epoch orders) under a flat key, everything else as JSON in the file's metadata. No pickle: it loads with
``safetensors`` only. Writing, listing and verifying the files is :class:`mtl.runs.folder.RunFolder`'s job.
"""

from __future__ import annotations

import json
from typing import Any

from mtl.errors import MtlError


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
