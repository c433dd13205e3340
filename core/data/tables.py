"""A CSV/TSV split read into an Arrow table at once (pyarrow's multi-threaded CSV reader), labels converted column by
column: no Python object per row, whatever the file's size.

This is the fast path of :mod:`mtl.data.files`: it reads only files it can read exactly as the row-by-row reader
does (a header naming the task's columns, every row with the header's fields, every label known) and returns None
otherwise, so that the row-by-row reader reports the first problem with its file and line (one-line
:class:`mtl.errors.DataError`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mtl.data.examples import Examples
from mtl.data.labels import Labels, is_unlabeled_split


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """What identifies a file's content for a cache: its absolute path, size and modification time (ns)."""
    stat = os.stat(path)
    return {"file": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_delimited(task, split: str, path: Path, *, delimiter: str, quoted: bool,
                   limit: int | None) -> Examples | None:
    """The split's examples as an Arrow table (text columns by name, ``label``), or None (see the module)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    wanted = [*task.text_columns, task.label_column]
    parse = pv.ParseOptions(delimiter=delimiter, quote_char='"' if quoted else False, double_quote=quoted,
                            newlines_in_values=quoted, ignore_empty_lines=True)
    convert = pv.ConvertOptions(column_types={c: pa.string() for c in wanted}, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)
    try:
        with pv.open_csv(path, parse_options=parse, convert_options=convert,
                         read_options=pv.ReadOptions(block_size=1 << 16)) as reader:
            names = reader.schema.names  # the header (and the first rows, checked again below)
        if len(set(names)) != len(names) or any(n != n.strip() for n in names):
            return None
        if not all(c in names for c in task.text_columns):
            return None
        labelled = task.label_column in names
        if not labelled and not is_unlabeled_split(split):
            return None
        keep = [*task.text_columns, *([task.label_column] if labelled else [])]
        convert.include_columns = keep
        table = pv.read_csv(path, parse_options=parse, convert_options=convert,
                            read_options=pv.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError):
        return None
    if labelled:
        table = _convert_labels(task, table)
        if table is None:
            return None
    if limit is not None:
        table = table.slice(0, limit)
    if table.num_rows == 0:
        return None
    return Examples(source=str(path), table=table.combine_chunks(), text_columns=tuple(task.text_columns))


def _convert_labels(task, table):
    """``table`` with its label column as class indices (int64) or scores (float64) and the rows whose label is to
    be skipped dropped; None when a label does not convert (the row-by-row reader names it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    labels_of = Labels(task)
    raw = pc.utf8_trim_whitespace(table.column(task.label_column))
    table = table.drop_columns([task.label_column])
    if labels_of.skip:
        keep = pc.invert(pc.is_in(raw, value_set=pa.array(sorted(labels_of.skip), pa.string())))
        table, raw = table.filter(keep), raw.filter(keep)
    if labels_of.regression:
        try:
            scores = pc.cast(raw, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if len(scores) and not pc.all(pc.is_finite(scores)).as_py():
            return None
        return table.append_column("label", scores)
    keys = list(labels_of.index)
    position = pc.index_in(raw, value_set=pa.array(keys, pa.string()))
    if position.null_count:
        return None
    classes = np.array([labels_of.index[k] for k in keys], dtype=np.int64)
    return table.append_column("label", pa.array(classes[position.to_numpy(zero_copy_only=False)]))
