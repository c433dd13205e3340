"""The size of a BERT-like encoder, estimated from its config before it is built, against the machine's memory.

A backbone built from sizes (``tiny``) calls :func:`check_model_size` before building its model, so that an option
that asks for a model larger than the machine (``--set tiny.layers=99999999999999999999``) is a one-line error
instead of a process that builds layers until it is killed. Nothing here imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

#: the config's sizes the estimate reads (a size the config lacks counts 0)
SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings",
         "type_vocab_size")
#: bytes per parameter to train in float32 with AdamW: weights, gradients and the optimizer's two moments
TRAINING_BYTES = 16
_UNITS = ("KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")  # powers of 1024, as mtl.runs.storage.size


def _sizes(config: Any) -> dict[str, int]:
    get = config.get if isinstance(config, Mapping) else lambda key, default: getattr(config, key, default)
    return {key: int(get(key, 0) or 0) for key in SIZES}


def bert_parameters(config: Any) -> int:
    """The parameters of ``transformers.BertModel(config)`` (with its pooler), from the sizes in ``config`` (a
    transformers config or a mapping): embeddings, then per layer Q, K, V and the attention output (4·h²), the
    feed-forward (2·h·i), their biases and two LayerNorms, then the pooler."""
    s = _sizes(config)
    h, i = s["hidden_size"], s["intermediate_size"]
    embeddings = h * (s["vocab_size"] + s["max_position_embeddings"] + s["type_vocab_size"]) + 2 * h
    layer = 4 * h * h + 2 * h * i + 9 * h + i  # biases: Q, K, V, output (4h), feed-forward (i + h); LayerNorms 4h
    return embeddings + s["num_hidden_layers"] * layer + h * h + h


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: ``MemAvailable`` of /proc/meminfo, else the machine's total
    (``os.sysconf``); None where neither can be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def amount(n: int) -> str:
    """A count in scientific notation (``1.2e+21``), for any size of integer."""
    if n < 1e300:
        return f"{float(n):.1e}"
    exponent = math.floor(math.log10(n))
    return f"{10 ** (math.log10(n) - exponent):.1f}e+{exponent}"


def size_text(n: int) -> str:
    """Bytes as a short human number (930 B, 21.3 GB, 17.0 ZB), in scientific notation beyond yottabytes."""
    if n < 1024:
        return f"{n} B"
    for power, unit in enumerate(_UNITS, 1):
        if n < 1024 ** (power + 1):
            return f"{n / 1024 ** power:.1f} {unit}"
    return f"{amount(n)} B"


def check_model_size(config: Any, what: str | None = None, memory: int | None = None) -> int:
    """The parameter count of a BERT-like encoder of ``config`` (:func:`bert_parameters`); a one-line ValueError
    when training it (:data:`TRAINING_BYTES` per parameter; activations come on top) needs more than ``memory``
    bytes (default: :func:`available_memory`; where that is unknown nothing is checked). ``what`` begins the
    message (default: the config's sizes)."""
    parameters = bert_parameters(config)
    memory = available_memory() if memory is None else memory
    needed = TRAINING_BYTES * parameters
    if memory is None or needed <= memory:
        return parameters
    if what is None:
        what = ", ".join(f"{key}={value}" for key, value in _sizes(config).items() if value)
    raise ValueError(f"{what}: about {amount(parameters)} parameters, {size_text(needed)} to train (weights, "
                     f"gradients, AdamW's moments), more than this machine's {size_text(memory)} of available "
                     f"memory (estimated before building it)")
