"""Reading the splits of a task whose rows are not one or two texts and a label (tags, choices, QA answers): every
row is a record (a JSON object, a Parquet or Hub row) that the task's type checks and converts
(:meth:`mtl.contract.types.TaskType.convert_row`), one-line :class:`DataError` naming the file and line (or the
dataset and row) when it does not fit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from mtl.data import squad_format
from mtl.data.examples import Examples
from mtl.data.labels import is_unlabeled_split
from mtl.errors import DataError

FORMATS = (".jsonl", ".json", ".parquet", ".csv", ".tsv")


def from_records(task, split: str, records: Iterable[tuple[str, dict]], source: str,
                 limit: int | None) -> Examples:
    """Examples of ``task`` from ``(where, record)`` pairs, each converted by the task's type."""
    kind = task.kind
    unlabeled = is_unlabeled_split(split)
    columns: dict[str, list] = {}
    n = 0
    for where, record in records:
        if limit is not None and n >= limit:
            break
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object per row, found {type(record).__name__}")
        row = kind.convert_row(task, record, where, labelled=not unlabeled or task.label_column in record)
        if row is None:
            continue
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
        n += 1
    if n == 0 and limit != 0:
        raise DataError(f"task {task.name!r} has no examples in {source}")
    return Examples([], list(columns.get("label", [])), source, rows=columns)


def read_file(task, split: str, path: Path, *, limit: int | None = None) -> Examples:
    """A user's (or the package's) ``.jsonl``, ``.json`` (a list of objects, or ``{"data": [...]}``),
    ``.parquet``, ``.csv`` or ``.tsv`` (a header row names the columns; every value a string) file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"data file not found: {path}" if not path.is_dir() else f"not a file: {path}")
    if suffix in (".jsonl", ".ndjson", ".jsonlines"):
        records: Iterable[tuple[str, dict]] = _jsonl(path)
    elif suffix == ".json":
        records = _json(path, task)
    elif suffix == ".parquet":
        records = _parquet(path)
    elif (reader := _type_reader(task, suffix)) is not None:  # a format of the type's own (CoNLL text for tags)
        records = reader(path)
    elif suffix in (".csv", ".tsv"):
        records = _delimited(path, "," if suffix == ".csv" else "\t")
    else:
        formats = FORMATS + tuple(getattr(task.kind, "file_suffixes", ()))
        raise DataError(f"{path}: task {task.name!r} ({task.kind.name}) reads {', '.join(formats)} files, not "
                        f"{suffix or '(no extension)'!r}")
    return from_records(task, split, records, str(path), limit)


def _type_reader(task, suffix: str):
    """The task type's reader of ``(where, record)`` from a file of ``suffix``, or None."""
    file_reader = getattr(task.kind, "file_reader", None)
    return file_reader(task, suffix) if file_reader is not None else None


def read_packaged(task, split: str, *, limit: int | None = None) -> Examples:
    resource = resources.files("mtl.data").joinpath("demo", task.packaged[split])
    with resources.as_file(resource) as path:
        return read_file(task, split, Path(path), limit=limit)


def from_dataset(task, split: str, dataset: Any, source: str, limit: int | None) -> Examples:
    """A ``datasets.Dataset`` (the Hub's or the user's), columns renamed by ``task.hub_columns``."""
    renamed = {hub: ours for ours, hub in task.hub_columns.items()}

    def rows() -> Iterator[tuple[str, dict]]:
        for i, row in enumerate(dataset):
            yield f"{source} row {i}", {renamed.get(k, k): v for k, v in row.items()}

    return from_records(task, split, rows(), source, limit)


def _jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """``(path:line, object)`` of each non-blank line of a JSON Lines file (every task type's JSONL reader)."""
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{where}: expected a JSON object per line, found {type(record).__name__}")
                yield where, record
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except OSError as exc:  # a read that fails part-way (an I/O error, a file that went away)
            raise DataError(f"{path}: read error ({exc.strerror or exc})") from None


def _json(path: Path, task=None) -> Iterator[tuple[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if task is not None and squad_format.is_nested(data):  # SQuAD's articles > paragraphs > questions
        names = {k: getattr(task, f"{k}_column", k) for k in ("question", "context", "answers")}
        yield from squad_format.records(path, data, names)
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects (or {{\"data\": [...]}})")
    for i, record in enumerate(data):
        yield f"{path} item {i}", record


def _parquet(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    for i, record in enumerate(table.to_pylist()):
        yield f"{path} row {i}", record


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    """Rows of a CSV (quoted as Excel writes it) or TSV (tab, no quoting, as GLUE) file with a header row."""
    import csv

    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{reader.line_num}: {len(row)} fields, but the header names "
                                    f"{len(header)}")
                yield f"{path}:{reader.line_num}", dict(zip(header, row, strict=True))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from None
