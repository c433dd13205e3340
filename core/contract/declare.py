"""A task declared as data: one mapping names its type, columns, labels, metrics and data, and becomes a
:class:`mtl.Task` subclass with no package (MT-DNN's task_def entries, jiant's task configs, tasknet's one-liners).

A declaration::

    {"name": "tickets", "type": "classification", "text_columns": ["text"], "label_column": "label",
     "labels": ["billing", "bug"],            # optional: inferred from the training split, sorted
     "metrics": ["accuracy", "f1"],           # optional: the type's default_metrics
     "description": "...", "eval_splits": ["dev"],
     "files": {"train": "train.tsv", "dev": "dev.parquet"}}       # or:
     "hub": {"path": "org/data", "name": "config", "splits": {"train": "train", "dev": "validation"},
             "columns": {"text": "sentence"}}                   # our column -> the Hub's

Any other key must be an attribute of :class:`mtl.Task` (``label_aliases``, ``choice_columns``, ``words_column``,
...): it is passed through, so every type's columns can be declared. :func:`normalise` checks a declaration's keys and
values without reading data; :func:`resolve` also checks its columns against the training split and infers its
labels (the only place data is read); :func:`task_class` builds the Task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mtl.contract import types
from mtl.contract.registry import is_name
from mtl.contract.task import Task
from mtl.data import peek
from mtl.data.labels import Labels, is_unlabeled_split
from mtl.errors import DataError, MtlError, unknown

OWN_KEYS = ("name", "type", "labels", "metrics", "description", "eval_splits", "files", "hub", "source")
HUB_KEYS = ("path", "name", "splits", "columns")
# Task attributes a declaration sets through its own keys (hub: its splits and columns) or may not set
NOT_PASSED = {"name", "type", "labels", "metrics", "description", "eval_splits", "glue", "hub", "hub_splits",
              "hub_columns", "packaged"}
LABEL_SOURCE = {"classification": "label_column", "token-classification": "tags_column"}  # labels inferred from


def task_attributes() -> list[str]:
    """The :class:`mtl.Task` attributes a declaration may set beside its own keys (``text_columns``, ``label_column``,
    ``label_aliases``, and those the task types add)."""
    names: set[str] = set()
    for klass in Task.__mro__:
        for key, value in vars(klass).items():
            if not key.startswith("_") and not callable(value) and not isinstance(value, (property, classmethod,
                                                                                        staticmethod)):
                names.add(key)
    return sorted(names - NOT_PASSED)


def column_keys(decl: dict[str, Any]) -> list[str]:
    """The keys of ``decl`` (and those its type needs) that name columns of the data: ``*_column``, ``*_columns``."""
    keys = [k for k in decl if k.endswith(("_column", "_columns"))]
    if decl["type"] in ("classification", "regression"):
        keys += [k for k in ("text_columns", "label_column") if k not in keys]
    return keys


def normalise(raw: Any, where: str, base: Path | None = None) -> dict[str, Any]:
    """``raw`` checked and in its recorded form (lists, absolute file paths); ``where`` names the tasks file (or the
    call) in every one-line error; relative paths are relative to ``base``. Reads no data."""
    if not isinstance(raw, dict):
        raise MtlError(f"{where}: a task declaration must be a mapping (got {type(raw).__name__})")
    name = raw.get("name")
    if not is_name(name):
        raise MtlError(f"{where}: a declared task needs a 'name' (letters, digits, _ . -; got {name!r})")
    at = f"{where}: task {name!r}"
    allowed = [*OWN_KEYS, *task_attributes()]
    for key in raw:
        if key not in allowed:
            raise MtlError(f"{at}: " + unknown("declaration key", str(key), allowed))
    kind = raw.get("type", "classification")
    if kind not in types.TYPES:
        raise MtlError(f"{at}: " + unknown("task type", str(kind), list(types.TYPES)))
    decl: dict[str, Any] = {"name": name, "type": kind}
    for key, value in raw.items():
        if key in ("name", "type", "files", "hub"):
            continue
        decl[key] = _value(key, value, at)
    if kind in ("classification", "regression") and "text_columns" not in decl:
        raise MtlError(f"{at}: declare its text_columns (one or two columns of text)")
    if kind == "regression" and decl.get("labels") is not None:
        raise MtlError(f"{at}: a regression task has no labels")
    files, hub = raw.get("files"), raw.get("hub")
    if (files is None) == (hub is None):
        raise MtlError(f"{at}: give its data as 'files' (split: path) or 'hub' (path, name, splits, columns)"
                       if files is None else f"{at}: give 'files' or 'hub', not both")
    if files is not None:
        decl["files"] = _files(files, at, base)
    else:
        decl["hub"] = _hub(hub, at)
    splits = list(decl["files"] if "files" in decl else decl["hub"]["splits"])
    train = decl.get("train_split", "train")
    if train not in splits:
        raise MtlError(f"{at}: no {train!r} split (its splits: {', '.join(splits)})")
    if "eval_splits" not in decl:
        decl["eval_splits"] = [s for s in splits if s != train and not is_unlabeled_split(s)]
    for split in decl["eval_splits"]:
        if split not in splits:
            raise MtlError(f"{at}: eval split {split!r} has no data (its splits: {', '.join(splits)})")
    return decl


def _value(key: str, value: Any, at: str) -> Any:
    """A declaration's value in its recorded form: a column list for ``*_columns``, a list of text for labels and
    metrics, a mapping for ``*_aliases``/dicts."""
    if key.endswith("_columns") or key in ("labels", "metrics", "eval_splits"):
        if key == "labels" and value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(v, (str, int)) for v in items):
            raise MtlError(f"{at}: {key} must be a name or a list of names (got {value!r})")
        return [str(v) for v in items]
    if key.endswith("_column") or key in ("description", "train_split"):
        if not isinstance(value, str) or (key != "description" and not value):
            raise MtlError(f"{at}: {key} must be text (got {value!r})")
        return value
    if isinstance(getattr(Task, key, None), dict) and not isinstance(value, dict):
        raise MtlError(f"{at}: {key} must be a mapping (got {value!r})")
    return value


def _files(files: Any, at: str, base: Path | None) -> dict[str, str]:
    if not isinstance(files, dict) or not files:
        raise MtlError(f"{at}: files must map split names to paths, e.g. {{train: train.tsv, dev: dev.tsv}}")
    out = {}
    for split, path in files.items():
        if not isinstance(path, (str, os.PathLike)):
            raise MtlError(f"{at}: files.{split} must be a path (got {path!r})")
        path = Path(os.path.expanduser(os.fspath(path)))
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        out[str(split)] = str(path.resolve())
    return out


def _hub(hub: Any, at: str) -> dict[str, Any]:
    if isinstance(hub, str):
        hub = {"path": hub}
    if not isinstance(hub, dict) or not isinstance(hub.get("path"), str):
        raise MtlError(f"{at}: hub must be a mapping with a 'path' (a Hub dataset), and name, splits, columns")
    for key in hub:
        if key not in HUB_KEYS:
            raise MtlError(f"{at}: " + unknown("hub key", str(key), HUB_KEYS))
    splits = hub.get("splits") or {"train": "train", "dev": "validation"}
    columns = hub.get("columns") or {}
    if not isinstance(splits, dict) or not isinstance(columns, dict):
        raise MtlError(f"{at}: hub.splits and hub.columns must be mappings (ours: the Hub's)")
    return {"path": hub["path"], "name": hub.get("name"), "splits": {str(k): str(v) for k, v in splits.items()},
            "columns": {str(k): str(v) for k, v in columns.items()}}


def task_class(decl: dict[str, Any]) -> type[Task]:
    """The :class:`mtl.Task` subclass of a normalised declaration (labels as given; None until resolved)."""
    attrs: dict[str, Any] = {"type": decl["type"], "description": decl.get("description") or
                             f"declared {decl['type']} task", "declaration": decl}
    for key, value in decl.items():
        if key in OWN_KEYS:
            continue
        attrs[key] = tuple(value) if isinstance(value, list) else value
    kind = types.TYPES[decl["type"]]
    attrs["labels"] = tuple(decl["labels"]) if decl.get("labels") is not None else None
    attrs["metrics"] = tuple(decl.get("metrics") or kind.default_metrics)
    attrs["eval_splits"] = tuple(decl["eval_splits"])
    if "hub" in decl:
        hub = decl["hub"]
        attrs.update(hub=(hub["path"], hub["name"]), hub_splits=dict(hub["splits"]), hub_columns=dict(hub["columns"]))
    else:
        attrs["files"] = dict(decl["files"])
    return type(f"Declared_{decl['name']}", (DeclaredTask,), attrs)


class DeclaredTask(Task):
    """A task from a declaration: its splits read from the declared files (``--data`` still overrides them)."""

    declaration: dict[str, Any] = {}
    files: dict[str, str] = {}

    def load(self, split: str, *, data_dir=None, file=None, limit=None):
        if file is None and data_dir is None and split in self.files:
            file = self.files[split]
        return super().load(split, data_dir=data_dir, file=file, limit=limit)


def resolve(decl: dict[str, Any], where: str) -> dict[str, Any]:
    """A normalised declaration checked against its training split (every column it names is there) with its labels
    inferred when it gives none (sorted; a Hub ClassLabel's own order), its metrics filled in and checked by its
    type. One-line errors name ``where`` (the tasks file), the task and the data file."""
    decl = dict(decl)
    at = f"{where}: task {decl['name']!r}"
    present, source, dataset = _first_split(decl)
    renamed = (decl.get("hub") or {}).get("columns", {})
    for key in column_keys(decl):
        value = decl.get(key, getattr(Task, key, None))
        for column in [value] if isinstance(value, str) else list(value or ()):
            theirs = renamed.get(column, column)
            if theirs not in present:
                raise DataError(f"{source}: no column {theirs!r} ({key} of task {decl['name']!r} in {where}); its "
                                f"columns are: {', '.join(present)}")
    source_key = LABEL_SOURCE.get(decl["type"])
    if source_key is not None and decl.get("labels") is None and decl["type"] != "regression":
        column = decl.get(source_key, getattr(Task, source_key, None))
        decl["labels"] = _infer(decl, column, renamed.get(column, column), source, dataset, at)
    decl.setdefault("labels", None)  # a regression (or a type without labels)
    decl.setdefault("metrics", list(types.TYPES[decl["type"]].default_metrics))
    for key in column_keys(decl):  # recorded in full: the columns the type reads by default too
        if key not in decl:
            decl[key] = _value(key, getattr(Task, key), at)
    decl = {k: decl[k] for k in sorted(decl, key=_order)}
    task = task_class(decl)()
    task.name = decl["name"]
    try:
        task.kind.check(task)
    except ValueError as exc:
        raise MtlError(f"{where}: {exc}") from None
    if decl["type"] == "classification" and dataset is None:
        labels = Labels(task)  # a label outside the declared set: FILE:LINE
        for line, value in peek.values(Path(decl["files"][task.train_split]), task.label_column):
            try:
                labels.convert(value, line)
            except DataError as exc:
                raise DataError(f"{exc} (task declared in {where})") from None
    return decl


def _order(key: str) -> int:
    """Keys in a readable order: name, type, description, the columns and other attributes, labels, metrics,
    splits, data, source."""
    fixed = ("name", "type", "description", "labels", "metrics", "eval_splits", "files", "hub", "source")
    return fixed.index(key) + (0 if key in fixed[:3] else 50) if key in fixed else 10


def _first_split(decl: dict[str, Any]) -> tuple[list[str], str, Any]:
    """The training split's columns, what names it in errors, and the Hub's dataset (None for a file)."""
    if "files" in decl:
        path = Path(decl["files"][decl.get("train_split", "train")])
        return peek.columns(path), str(path), None
    hub = decl["hub"]
    split = hub["splits"][decl.get("train_split", "train")]
    dataset = peek.hub_dataset(hub["path"], hub["name"], split)
    source = f"hub:{hub['path']}" + (f"/{hub['name']}" if hub["name"] else "") + f"[{split}]"
    return list(dataset.column_names), source, dataset


def _infer(decl: dict[str, Any], column: str, theirs: str, source: str, dataset: Any, at: str) -> list[str]:
    if dataset is not None:
        names = peek.class_names(dataset, theirs)
        if names:
            return names
        found = dataset[theirs]
    else:
        found = [value for _, value in peek.values(Path(decl["files"][decl.get("train_split", "train")]), theirs)]
    seen: set[str] = set()
    for value in found:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and str(item).strip() != "":
                seen.add(str(item).strip())
    if len(seen) < 2:
        raise DataError(f"{source}: the training split has {len(seen)} label{'' if len(seen) == 1 else 's'} in "
                        f"column {theirs!r} ({', '.join(sorted(seen)) or 'none'}); {at} needs two or more, or "
                        f"declare its labels")
    return sorted(seen)
