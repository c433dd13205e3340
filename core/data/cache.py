"""Tokenised splits cached on disk, memory-mapped, shared by every run that needs them (issue 28, "data on Arrow").

A split is tokenised by ``datasets.Dataset.map(batched=True)`` with its type's
:meth:`~mtl.contract.types.TaskType.encode_batch` and written as one Arrow file in a folder named by the key

    sha256(data fingerprint, the task's declaration and type, the tokenizer (name and its full definition, or
    vocabulary), max_length, mtl's version)

under :func:`root`: ``$MTL_DATA_CACHE``, else ``$HF_DATASETS_CACHE/mtl``, else ``$HF_HOME/datasets/mtl``, else
``~/.cache/huggingface/datasets/mtl`` (the ``datasets`` library's own conventions). The folder is made once among
every process that asks at the same time (the runs of a bench, torchrun's ranks: :func:`mtl.locks.build_once`;
the others wait and read it). A run given only the first N rows of a split (``--limit``) reads them from the
whole split's cache when one exists, else caches those N rows. Delete the folder to free the space; ``--no-data-cache``
(:attr:`RunConfig.data_cache`) tokenises in memory and writes nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mtl.locks import build_once
from mtl.version import __version__

ENV = "MTL_DATA_CACHE"
DATA_FILE = "data.arrow"
META_FILE = "meta.json"
BATCH = 1000  # rows per encode_batch call and per Arrow record batch written


def root() -> Path:
    """The folder that holds the caches (see the module)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser() / "mtl"
    hf_home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(hf_home).expanduser() / "datasets" / "mtl"


def _plain(value: Any) -> Any:
    """``value`` as JSON the same in every process (sets sorted, objects by their repr)."""
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def declaration(task) -> dict[str, Any]:
    """What of a task decides its instances: its type and its declared attributes (columns, labels, aliases,
    layout, ...), not its methods, description or metrics."""
    attributes: dict[str, Any] = {}
    for cls in reversed(type(task).__mro__):
        for name, value in vars(cls).items():
            if not name.startswith("_") and not callable(value) and not isinstance(value, (property, staticmethod,
                                                                                            classmethod)):
                attributes[name] = value
    attributes.update({k: v for k, v in vars(task).items() if not k.startswith("_") and not callable(v)})
    for name in ("description", "metrics", "eval_splits", "train_split", "name"):
        attributes.pop(name, None)
    return {**_plain(attributes), "type": task.kind.name}


def tokenizer_id(tokenizer) -> dict[str, Any]:
    """The tokenizer's name and a hash of its whole definition (a fast tokenizer's JSON: vocabulary, normaliser,
    pre-tokeniser, post-processor), else of its vocabulary and options."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # less the truncation and padding the last call set
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        digest.update(json.dumps(definition, sort_keys=True).encode("utf-8"))
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode("utf-8"))
    digest.update(json.dumps(_plain(getattr(tokenizer, "init_kwargs", {})), sort_keys=True).encode("utf-8"))
    return {"class": type(tokenizer).__name__, "name": str(getattr(tokenizer, "name_or_path", "")),
            "hash": digest.hexdigest()}


def key(fingerprint: dict, task, tokenizer, max_length: int) -> str:
    parts = {"data": _plain(fingerprint), "task": declaration(task), "tokenizer": tokenizer_id(tokenizer),
             "max_length": max_length, "mtl": __version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:40]


def encoded_table(examples, task, tokenizer, max_length: int):
    """The instances of ``examples`` as a memory-mapped ``datasets.Dataset`` from the cache, made first if need be,
    and where they are (``(dataset, folder)``)."""
    import datasets

    head = examples.fingerprint.get("head")
    if head is not None:  # the first rows of a split whose whole is cached: its first instances
        whole = root() / key({**examples.fingerprint, "head": None}, task, tokenizer, max_length)
        if (whole / DATA_FILE).is_file():
            table = datasets.Dataset.from_file(str(whole / DATA_FILE))
            return table.select(range(_instances_of_first(table, head))), whole
    folder = root() / key(examples.fingerprint, task, tokenizer, max_length)

    def build(tmp: Path) -> None:
        _tokenise(examples, task, tokenizer, max_length, tmp / DATA_FILE)
        meta = {"examples": len(examples), "source": examples.source, "data": _plain(examples.fingerprint),
                "task": task.name, "tokenizer": tokenizer_id(tokenizer)["name"], "max_length": max_length,
                "mtl": __version__}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")

    folder.parent.mkdir(parents=True, exist_ok=True)
    build_once(folder, build, what="data cache")
    return datasets.Dataset.from_file(str(folder / DATA_FILE)), folder


def _instances_of_first(table, n: int) -> int:
    """How many instances the first ``n`` examples give (instances are in the order of their examples)."""
    import numpy as np

    example = table.data.column("example").to_numpy()
    return int(np.searchsorted(example, n, side="left"))


def _tokenise(examples, task, tokenizer, max_length: int, path: Path) -> None:
    """``examples`` through the type's ``encode_batch`` by ``Dataset.map(batched=True)``, written to ``path``."""
    import datasets

    labelled = examples.labelled
    kind = task.kind

    def encode_batch(batch: dict[str, list]) -> dict[str, list]:
        index = batch["__index__"]
        out = kind.encode_batch(task, examples.columns(task, index[0], index[-1] + 1), tokenizer, max_length)
        if not labelled:
            out.pop("labels", None)
        return out

    rows = datasets.Dataset.from_dict({"__index__": list(range(len(examples)))})
    bars = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        whole = getattr(kind, "groups_rows", False)  # e.g. ranking groups a query's rows: one batch of all
        rows.map(encode_batch, batched=True, batch_size=None if whole else BATCH, remove_columns=["__index__"],
                 cache_file_name=str(path), writer_batch_size=BATCH, load_from_cache_file=False,
                 new_fingerprint=path.parent.name)
    finally:
        if bars:
            datasets.enable_progress_bars()
