"""A look at a split before it is read for training: its column names (the first row's) and the values of one
column, from a local file (CSV, TSV, JSON, JSONL, Parquet) or a Hub dataset. A declared task
(:mod:`mtl.contract.declare`) checks its columns and infers its labels with these. Every problem is a one-line
:class:`mtl.errors.DataError` naming the file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtl.data import records
from mtl.errors import DataError

FORMATS = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".jsonlines", ".json", ".parquet")


def rows(path: Path) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` of every row of a local file; ``where`` is ``FILE:LINE`` (or ``FILE row N``)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"data file not found: {path}" if not path.is_dir() else f"not a file: {path}")
    if suffix in (".tsv", ".txt", ".csv"):
        return _delimited(path, "," if suffix == ".csv" else "\t")
    if suffix in (".jsonl", ".ndjson", ".jsonlines"):
        return records._jsonl(path)
    if suffix == ".json":
        return records._json(path)
    if suffix == ".parquet":
        return records._parquet(path)
    raise DataError(f"{path}: unknown file format {suffix or '(no extension)'!r}; use {', '.join(FORMATS[:-1])} "
                    f"or .parquet")


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: the file is empty")
            names = [h.strip() for h in header]
            for row in reader:
                if row:
                    yield f"{path}:{reader.line_num}", dict(zip(names, row, strict=False))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from None


def columns(path: Path) -> list[str]:
    """The column names of a local file: a CSV/TSV header, the keys of the first record."""
    suffix = path.suffix.lower()
    if suffix == ".parquet" and path.is_file():
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a damaged file
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if suffix in (".tsv", ".txt", ".csv") and path.is_file():
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                quoting = csv.QUOTE_NONE if suffix != ".csv" else csv.QUOTE_MINIMAL
                header = next(csv.reader(handle, delimiter="," if suffix == ".csv" else "\t", quoting=quoting), None)
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not header:
            raise DataError(f"{path}: the file is empty")
        return [h.strip() for h in header]
    for _, record in rows(path):
        if not isinstance(record, dict):
            raise DataError(f"{path}: expected an object per row, found {type(record).__name__}")
        return list(record)
    raise DataError(f"{path}: the file has no rows")


def values(path: Path, column: str) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` of ``column`` in every row of a local file (rows without it are skipped)."""
    for where, record in rows(path):
        if isinstance(record, dict) and column in record:
            yield where, record[column]


def hub_dataset(path: str, config: str | None, split: str):
    """A split of a Hub dataset (``datasets.load_dataset``); a one-line DataError when it cannot be loaded."""
    from mtl.data.hub import _short, unavailable

    source = f"hub:{path}" + (f"/{config}" if config else "") + f"[{split}]"
    reason = unavailable()
    if reason is not None:
        raise DataError(f"{source}: the Hugging Face hub could not be reached ({reason})")
    import datasets

    try:
        return datasets.load_dataset(path, config, split=split)
    except Exception as exc:  # noqa: BLE001 - the hub's errors (no such dataset, split, network)
        raise DataError(f"loading {source} failed: {_short(exc)}") from None


def class_names(dataset, column: str) -> list[str] | None:
    """The names of a ``datasets.ClassLabel`` column (its integers index them), else None."""
    feature = getattr(dataset, "features", {}).get(column)
    names = getattr(feature, "names", None)
    return list(names) if names else None
