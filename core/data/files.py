"""Reading a task's split: a user file, a GLUE-format folder, the package (demo suite) or the Hugging Face hub.

Files are read with the plain :mod:`csv` module (no pandas): GLUE's TSVs are tab-separated with quoting
turned off, UTF-8 with an optional BOM (MRPC), and CoLA's train/dev files have no header row (GLUE,
Wang et al., ICLR 2019). Every problem with a file is a :class:`mtl.errors.DataError` whose one-line
message names the file and, where it applies, the 1-based physical line (the header is line 1).
"""

from __future__ import annotations

import csv
import itertools
import os
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from mtl.data import records, tables
from mtl.data.examples import Examples, TaskData
from mtl.data.hub import read_hub
from mtl.data.labels import Labels, is_unlabeled_split
from mtl.errors import DataError, OptionError

_FIELD_LIMIT_SET = False


def load_split(task: TaskData, split: str, *, data_dir: str | os.PathLike | None = None,
               file: str | os.PathLike | None = None, limit: int | None = None) -> Examples:
    """The examples of ``split`` of ``task``, from ``file``, else ``data_dir``, else the package, else the hub.

    Labels are class indices (classification), floats (regression), or an empty list for an unlabeled
    split (a test split whose file has no label column). ``limit`` keeps the first ``limit`` examples.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise OptionError(f"task {task.name!r}: limit must be an integer >= 0 (got {limit!r})")
    for name, value in (("data_dir", data_dir), ("file", file)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise OptionError(f"task {task.name!r}: {name} must be a path (got {type(value).__name__})")
    examples = _load(task, split, data_dir, file, limit)
    if examples.fingerprint is None and os.path.isfile(examples.source):
        examples.fingerprint = tables.fingerprint(examples.source)
    if examples.fingerprint is not None:  # whether the examples are only the first rows of the data
        head = limit if limit is not None and len(examples) >= limit else None
        examples.fingerprint = {**examples.fingerprint, "head": head}
    return examples


def _load(task: TaskData, split: str, data_dir: Any, file: Any, limit: int | None) -> Examples:
    if getattr(task.kind, "structured", False):  # rows of tags, choices or answers: records
        if file is not None:
            return records.read_file(task, split, Path(file), limit=limit)
        if split in task.packaged:
            return records.read_packaged(task, split, limit=limit)
        if task.hub is not None and split in task.hub_splits:
            return read_hub(task, split, limit=limit)
        return _no_source(task, split, data_dir)
    if file is not None:
        return read_file(task, split, Path(file), limit=limit)
    if data_dir is not None and task.glue is not None:
        return read_glue(task, split, Path(data_dir), limit=limit)
    if split in task.packaged:
        return read_packaged(task, split, limit=limit)
    if task.hub is not None and split in task.hub_splits:
        return read_hub(task, split, limit=limit)
    return _no_source(task, split, data_dir)


def splits(task: TaskData) -> list[str]:
    """Every split name the task knows about (GLUE files, packaged files, hub splits)."""
    names: dict[str, None] = {}
    if task.glue is not None:
        names.update(dict.fromkeys(task.glue.files))
    names.update(dict.fromkeys(task.packaged))
    if task.hub is not None:
        names.update(dict.fromkeys(task.hub_splits))
    return list(names)


def _no_source(task: TaskData, split: str, data_dir: Any) -> Examples:
    known = splits(task)
    if split not in known:
        raise DataError(f"task {task.name!r} has no split {split!r}; its splits are: {', '.join(known) or '(none)'}")
    if data_dir is not None:  # a task with no GLUE layout (a demo task) and no packaged file for this split
        raise DataError(f"task {task.name!r} has no GLUE-format files; pass --data {task.name}.{split}=FILE")
    raise DataError(f"no data for task {task.name!r} split {split!r}: pass --data {task.name}.{split}=FILE")




def read_file(task: TaskData, split: str, path: Path, *, limit: int | None = None) -> Examples:
    """A user file: ``.tsv`` (GLUE style: tab, no quoting), ``.csv``, ``.jsonl``, ``.json`` (a list of objects) or
    ``.parquet``; columns read by name."""
    suffix = "".join(path.suffixes[-1:]).lower()
    if not path.is_file():
        raise DataError(f"data file not found: {path}" if not path.is_dir() else f"not a file: {path}")
    if suffix in (".tsv", ".txt"):
        return _read_delimited(task, split, path, delimiter="\t", quoting=csv.QUOTE_NONE, limit=limit)
    if suffix == ".csv":
        return _read_delimited(task, split, path, delimiter=",", quoting=csv.QUOTE_MINIMAL, limit=limit)
    if suffix in (".jsonl", ".json-lines", ".jsonlines", ".ndjson"):
        return _read_jsonl(task, split, path, limit=limit)
    if suffix == ".json":  # a list of objects, or {"data": [...]}
        return _read_records(task, split, records._json(path), path, limit=limit)
    if suffix == ".parquet":
        return _read_records(task, split, records._parquet(path), path, limit=limit)
    raise DataError(f"{path}: unknown file format {suffix or '(no extension)'!r}; use .csv, .tsv, .jsonl, .json or "
                    f".parquet")


def read_glue(task: TaskData, split: str, data_dir: Path, *, limit: int | None = None) -> Examples:
    """A split from a classic ``glue_data/`` folder: ``data_dir/<folder>/<file>``.

    ``data_dir`` may also be the task's folder itself (``glue_data/RTE``).
    """
    layout = task.glue
    assert layout is not None
    if split not in layout.files:
        raise DataError(
            f"task {task.name!r} has no split {split!r} in the GLUE layout; its splits are: {', '.join(layout.files)}"
        )
    if not data_dir.is_dir():
        raise DataError(f"GLUE data folder not found: {data_dir}")
    folder = data_dir / layout.folder
    if not folder.is_dir():
        if data_dir.name.lower() == layout.folder.lower():
            folder = data_dir
        else:
            raise DataError(f"{task.name} folder not found: {folder} (expected in the GLUE data folder {data_dir})")
    path = folder / layout.files[split]
    if not path.is_file():
        raise DataError(f"{task.name} {split} file not found: {path}")
    columns = None if layout.header else layout.columns
    return _read_delimited(task, split, path, delimiter="\t", quoting=csv.QUOTE_NONE, limit=limit, columns=columns)


def read_packaged(task: TaskData, split: str, *, limit: int | None = None) -> Examples:
    """A TSV file shipped in the package (``mtl/data/demo/``), read like a GLUE file with a header."""
    resource = resources.files("mtl.data").joinpath("demo", task.packaged[split])
    with resources.as_file(resource) as path:
        if not Path(path).is_file():
            raise DataError(f"packaged file of task {task.name!r} not found: {path} (reinstall mtl)")
        return _read_delimited(task, split, Path(path), delimiter="\t", quoting=csv.QUOTE_NONE, limit=limit)


def _raise_field_limit() -> None:
    global _FIELD_LIMIT_SET
    if not _FIELD_LIMIT_SET:  # GLUE has long passages (QNLI, RTE); the default 128 KiB limit is enough, but be safe
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        _FIELD_LIMIT_SET = True


def _read_delimited(task: TaskData, split: str, path: Path, *, delimiter: str, quoting: int,
                    limit: int | None, columns: dict[str, int] | None = None) -> Examples:
    """Read a CSV/TSV file whose columns are named by its header, or by ``columns`` (name -> index) if headerless.

    A headerless layout whose file nevertheless starts with a row naming the text columns (CoLA's
    ``test.tsv``) is read by that header.
    """
    if columns is None:  # a file with a header: read at once into Arrow when it reads as below
        fast = tables.read_delimited(task, split, path, delimiter=delimiter, quoted=quoting != csv.QUOTE_NONE,
                                     limit=limit)
        if fast is not None:
            return fast
    _raise_field_limit()
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        try:
            first = next(reader, None)
            while first is not None and not first:  # blank lines before the header
                first = next(reader, None)
            if first is None:
                raise DataError(f"task {task.name!r} has no examples in {path} (the file is empty)")
            pending: list[list[str]] = []
            if columns is not None and not all(c in first for c in task.text_columns):
                header, index = None, dict(columns)
                pending.append(first)
            else:
                header = [name.strip() for name in first]
                index = {name: i for i, name in enumerate(header)}
            text_idx, label_idx = _column_indices(task, split, index, path, header)
            need = max([*text_idx, -1 if label_idx is None else label_idx]) + 1
            return _collect(task, path, reader, pending, text_idx, label_idx, need, limit)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from None
        except OSError as exc:  # a read that fails part-way (an I/O error, a file that went away)
            raise DataError(f"{path}:{reader.line_num}: read error ({exc.strerror or exc})") from None


def _column_indices(task: TaskData, split: str, index: dict[str, int], path: Path,
                    header: list[str] | None) -> tuple[list[int], int | None]:
    present = ", ".join(repr(h) for h in header) if header is not None else ", ".join(index)
    text_idx = []
    for name in task.text_columns:
        if name not in index:
            raise DataError(f"{path}: missing column {name!r} of task {task.name!r}; the columns are: {present}")
        text_idx.append(index[name])
    label_idx = index.get(task.label_column)
    if label_idx is None and not is_unlabeled_split(split):
        raise DataError(
            f"{path}: missing label column {task.label_column!r} of task {task.name!r}; the columns are: {present}"
        )
    return text_idx, label_idx


def _collect(task: TaskData, path: Path, reader: Any, pending: list[list[str]],
             text_idx: list[int], label_idx: int | None, need: int, limit: int | None) -> Examples:
    labels_of = Labels(task)
    texts: list[tuple[str, ...]] = []
    labels: list[Any] = []
    convert = labels_of.convert
    rows: Iterable[list[str]] = itertools.chain(pending, reader)
    first_line = reader.line_num  # the physical line of a pending (headerless) first row
    for row in rows:
        if limit is not None and len(texts) >= limit:
            break
        if not row:
            continue
        line = first_line if pending and row is pending[0] else reader.line_num
        if len(row) < need:
            raise DataError(
                f"{path}:{line}: expected at least {need} fields, found {len(row)}"
            )
        if label_idx is not None:
            label = convert(row[label_idx], f"{path}:{line}")
            if label is None:
                continue
            labels.append(label)
        texts.append(tuple(row[i] for i in text_idx))
    if not texts and limit != 0:
        raise DataError(f"task {task.name!r} has no examples in {path}")
    return Examples(texts, labels, str(path))


def _read_jsonl(task: TaskData, split: str, path: Path, *, limit: int | None) -> Examples:
    return _read_records(task, split, records._jsonl(path), path, limit=limit)


def _read_records(task: TaskData, split: str, rows: Iterable[tuple[str, Any]], path: Path, *,
                  limit: int | None) -> Examples:
    """Texts and labels from ``(where, record)`` pairs (JSON Lines, a JSON list, Parquet rows), columns by name."""
    labels_of = Labels(task)
    texts: list[tuple[str, ...]] = []
    labels: list[Any] = []
    unlabeled = is_unlabeled_split(split)
    labelled: bool | None = None  # whether the file has labels: decided by its first record
    for where, record in rows:
        if limit is not None and len(texts) >= limit:
            break
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object per row, found {type(record).__name__}")
        for name in task.text_columns:
            if name not in record:
                raise DataError(
                    f"{where}: missing column {name!r} of task {task.name!r}; the columns are: "
                    f"{', '.join(repr(k) for k in record)}"
                )
        if labelled is None:
            labelled = task.label_column in record or not unlabeled
        if labelled:
            if task.label_column not in record:
                raise DataError(
                    f"{where}: missing label column {task.label_column!r} of task {task.name!r}; "
                    f"the columns are: {', '.join(repr(k) for k in record)}"
                )
            label = labels_of.convert(record[task.label_column], where)
            if label is None:
                continue
            labels.append(label)
        texts.append(tuple(_text(record[name], where, name) for name in task.text_columns))
    if not texts and limit != 0:
        raise DataError(f"task {task.name!r} has no examples in {path}")
    return Examples(texts, labels, str(path))


def _text(value: Any, where: str, column: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (dict, list)):
        raise DataError(f"{where}: column {column!r} must be a string, found {type(value).__name__}")
    return str(value)
