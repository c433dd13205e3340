"""What a task's data is made of: the examples of one split, where a task's files sit in a GLUE folder, and what
the readers of :mod:`mtl.data` need to know of a task (:class:`TaskData`, which :class:`mtl.Task` is)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Examples:
    """The examples of one split: one or two texts each, and a label (class index or float) when labelled.

    Read from a file they are an Arrow table (``table``: the task's text columns, and ``label`` when labelled),
    shared with :meth:`dataset`; ``texts`` and ``labels`` are made as Python lists only when asked for. ``rows``: a
    structured type's converted columns. ``fingerprint``: what identifies the data (a file's path, size and
    modification time; a dataset's fingerprint), the key of its tokenised cache (:mod:`mtl.data.cache`); None for
    data that is not cached (what ``mtl predict`` is given)."""

    def __init__(self, texts: list[tuple[str, ...]] | None = None, labels: list[Any] | None = None,
                 source: str = "", rows: dict[str, list] | None = None, *, table: Any = None,
                 text_columns: tuple[str, ...] = (), fingerprint: dict | None = None) -> None:
        self._texts, self._labels = texts, labels
        self.source, self.rows, self.table = source, rows, table
        self.text_columns = text_columns  # the table's text columns, in order
        self.fingerprint = fingerprint
        if table is None and texts is None:
            self._texts = []
        if table is None and labels is None:
            self._labels = []

    def __repr__(self) -> str:
        return f"<Examples {self.source}: {len(self)} rows>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Examples):
            return NotImplemented
        return (self.texts, self.labels, self.source, self.rows) == (other.texts, other.labels, other.source,
                                                                      other.rows)

    @property
    def texts(self) -> list[tuple[str, ...]]:
        if self._texts is None:
            columns = [self.table.column(c).to_pylist() for c in self.text_columns]
            self._texts = list(zip(*columns, strict=True))
        return self._texts

    @property
    def labels(self) -> list[Any]:
        if self._labels is None:
            names = self.table.column_names
            self._labels = self.table.column("label").to_pylist() if "label" in names else []
        return self._labels

    @property
    def labelled(self) -> bool:
        """Whether the examples have labels (without making the list of them)."""
        if self._labels is None:
            return "label" in self.table.column_names and self.table.num_rows > 0
        return bool(self._labels)

    def __len__(self) -> int:
        if self.rows is not None:
            return len(next(iter(self.rows.values()), []))
        if self.table is not None:
            return self.table.num_rows
        return len(self.texts)

    def head(self, n: int | None) -> Examples:
        if n is None or n >= len(self):
            return self
        fingerprint = None if self.fingerprint is None else {**self.fingerprint, "head": n}
        if self.table is not None:
            return Examples(source=self.source, table=self.table.slice(0, n), text_columns=self.text_columns,
                            fingerprint=fingerprint)
        rows = None if self.rows is None else {k: v[:n] for k, v in self.rows.items()}
        return Examples(self.texts[:n], self.labels[:n], self.source, rows, fingerprint=fingerprint)

    def columns(self, task, start: int = 0, stop: int | None = None) -> dict[str, list]:
        """The examples ``start:stop`` as columns: each of ``task``'s text columns, ``label`` when labelled,
        ``__index__`` (the row); a structured type's converted columns."""
        stop = len(self) if stop is None else min(stop, len(self))
        index = list(range(start, stop))
        if self.rows is not None:
            return {**{k: v[start:stop] for k, v in self.rows.items()}, "__index__": index}
        if self.table is not None:
            part = self.table.slice(start, stop - start)
            out = {name: part.column(c).to_pylist() for name, c in zip(task.text_columns, self.text_columns,
                                                                      strict=False)}
            if "label" in part.column_names:
                out["label"] = part.column("label").to_pylist()
            return {**out, "__index__": index}
        texts = list(zip(*self.texts[start:stop], strict=True)) if stop > start else [() for _ in task.text_columns]
        out = {name: list(col) for name, col in zip(task.text_columns, texts, strict=False)}
        if self.labels:
            out["label"] = list(self.labels[start:stop])
        out["__index__"] = index
        return out

    def dataset(self):
        """The examples as a ``datasets.Dataset``: over the same Arrow memory as :attr:`table` when read from a
        file, else made from the lists (text columns ``text0``, ``text1``; a structured type's columns)."""
        import datasets

        if self.table is not None:
            return datasets.Dataset(datasets.table.InMemoryTable(self.table))
        columns = dict(self.rows) if self.rows is not None else {
            f"text{i}": list(c) for i, c in enumerate(zip(*self.texts, strict=True))}
        return datasets.Dataset.from_dict(columns | ({"label": self.labels} if self.labels else {}))


@dataclass
class GlueLayout:
    """Where a task's files are in a classic ``glue_data/`` folder and how to read them."""

    folder: str  # e.g. "RTE"
    files: dict[str, str]  # split -> file name, e.g. {"train": "train.tsv", "dev": "dev.tsv"}
    header: bool = True  # CoLA has no header row
    columns: dict[str, int] = field(default_factory=dict)  # column name -> index, for headerless files
    skip_labels: tuple[str, ...] = ()  # rows whose label is one of these are dropped (SNLI's "-")


class TaskData(Protocol):
    """The attributes of a task (:class:`mtl.Task`) that reading its data needs: its columns, its labels and where its
    splits are (a GLUE folder, files shipped in the package, the hub)."""

    name: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...] | None
    label_aliases: dict[str, str]
    glue: GlueLayout | None
    hub: tuple[str, str | None] | None
    hub_splits: dict[str, str]
    hub_columns: dict[str, str]
    packaged: dict[str, str]

    @property
    def is_regression(self) -> bool: ...

    @property
    def num_outputs(self) -> int: ...
