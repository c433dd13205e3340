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

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> Examples:
        if n is None or n >= len(self.texts):
            return self
        return Examples(self.texts[:n], self.labels[:n], self.source)


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
