"""``mtl.task(name, type=..., data=..., **columns)``: a task declared in Python, no package (tasknet's
``tn.Classification(dataset, s1=, s2=, y=)``; README "Your own task in a few lines").

The declaration is the one a tasks file holds (:mod:`mtl.contract.declare`); the task is registered for this process
(:mod:`mtl.contract.declared`), so ``mtl.train(target=name, ...)`` and ``mtl.bench(...)`` use it by name. Data given
in memory (a ``datasets.Dataset``) is written to Parquet; a run copies it into its folder (``RUN/data/<task>/``) and
records that path, so resuming, evaluating and predicting work in a new process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mtl.contract import declare, declared, loader
from mtl.contract.task import Task
from mtl.errors import MtlError

HUB_SPLITS = {"validation": "dev"}  # a DatasetDict's split names -> ours


def task(name: str, type: str = "classification", data: Any = None, *, hub: str | Mapping | None = None,
         split: str | None = None, labels: list[str] | None = None, metrics: list[str] | None = None,
         description: str | None = None, eval_splits: list[str] | None = None, **columns: Any) -> Task:
    """Declare task ``name`` and return it (registered for this process).

    ``data``: a ``datasets.Dataset`` (the split ``split``, default ``"train"``), a ``datasets.DatasetDict`` (its
    splits; ``validation`` is our ``dev``), or a mapping of split -> file path or Dataset; or ``hub=`` (a Hub dataset
    path, or ``{"path", "name", "splits", "columns"}``). ``columns``: the type's columns and any other
    :class:`mtl.Task` attribute (``text_columns=["text"], label_column="label"``). ``labels`` (default: inferred from
    the training split, sorted; a ``ClassLabel``'s own names), ``metrics`` (default: the type's). A mistake is a
    one-line :class:`mtl.MtlError` naming the task.
    """
    where = "mtl.task"
    raw: dict[str, Any] = {"name": name, "type": type, **columns}
    for key, value in (("labels", labels), ("metrics", metrics), ("description", description),
                       ("eval_splits", eval_splits)):
        if value is not None:
            raw[key] = value
    if (data is None) == (hub is None):
        raise MtlError(f"{where}({name!r}): give data= (a datasets.Dataset, DatasetDict or split -> file) or hub=, "
                       f"one of them")
    if hub is not None:
        raw["hub"] = hub
    else:
        splits = _splits(name, data, split)
        label_column = columns.get("label_column", Task.label_column)
        raw["files"] = {s: _file(name, s, d, label_column, raw) for s, d in splits.items()}
    decl = declare.resolve(declare.normalise(raw, where), where)
    declared.register([decl], where)
    return loader.create("task", name)


def _splits(name: str, data: Any, split: str | None) -> dict[str, Any]:
    if _is_dataset(data):
        return {split or "train": data}
    if hasattr(data, "keys") and all(_is_dataset(v) for v in data.values()) and type(data).__name__ == "DatasetDict":
        return {HUB_SPLITS.get(s, s): d for s, d in data.items()}
    if isinstance(data, Mapping) and data:
        return {str(s): d for s, d in data.items()}
    raise MtlError(f"mtl.task({name!r}): data must be a datasets.Dataset, a DatasetDict or a mapping of split -> "
                   f"file (got {type(data).__name__})")


def _is_dataset(value: Any) -> bool:
    return type(value).__name__ == "Dataset" and hasattr(value, "column_names")


def _file(name: str, split: str, data: Any, label_column: str, raw: dict[str, Any]) -> str:
    """A split's file: a path as given, or a Dataset written to Parquet (a ClassLabel label column as its names,
    which become the labels when none are declared)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if not _is_dataset(data):
        raise MtlError(f"mtl.task({name!r}): split {split!r} must be a datasets.Dataset or a file path (got "
                       f"{type(data).__name__})")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mtl.data.peek import class_names

    table = data.with_format("arrow")[:]
    names = class_names(data, label_column)
    if names:
        values = table.column(label_column).to_pylist()
        text = pa.array([names[v] if v is not None and v >= 0 else None for v in values], pa.string())
        table = table.set_column(table.schema.get_field_index(label_column), label_column, text)
        if "labels" not in raw and raw.get("type") != "regression":
            raw["labels"] = names
    folder = declared.memory_folder() / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}-{getattr(data, '_fingerprint', 'data')}.parquet"
    pq.write_table(table, path)
    return str(path)
