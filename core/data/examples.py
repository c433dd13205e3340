"""What a task's data is made of: the examples of one split, and where a task's files sit in a GLUE folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Examples:
    """The examples of one split: one or two texts each, and a label (class index or float) when labelled."""

    texts: list[tuple[str, ...]]
    labels: list[Any]
    source: str  # the file or hub dataset they came from, for messages

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> "Examples":
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
