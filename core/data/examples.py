"""What a task's data is made of: the examples of one split, where a task's files sit in a GLUE folder, and what
the readers of :mod:`mtl.data` need to know of a task (:class:`TaskData`, which :class:`mtl.Task` is)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Examples:
    """The examples of one split: one or two texts each, and a label (class index or float) when labelled."""

    texts: list[tuple[str, ...]]
    labels: list[Any]
    source: str  # the file or hub dataset they came from, for messages
    rows: dict[str, list] | None = None  # a type whose rows are not texts (tags, choices, answers): its columns

    def __len__(self) -> int:
        if self.rows is not None:
            return len(next(iter(self.rows.values()), []))
        return len(self.texts)

    def head(self, n: int | None) -> Examples:
        if n is None or n >= len(self):
            return self
        rows = None if self.rows is None else {k: v[:n] for k, v in self.rows.items()}
        return Examples(self.texts[:n], self.labels[:n], self.source, rows)

    def columns(self, task) -> dict[str, list]:
        """The examples as columns: each of ``task``'s text columns, ``label`` when labelled, ``__index__`` (the
        row)."""
        if self.rows is not None:
            return {**self.rows, "__index__": list(range(len(self)))}
        texts = list(zip(*self.texts, strict=True)) if self.texts else [() for _ in task.text_columns]
        out: dict[str, list] = {name: list(col) for name, col in zip(task.text_columns, texts, strict=False)}
        if self.labels:
            out["label"] = list(self.labels)
        out["__index__"] = list(range(len(self.texts)))
        return out


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
