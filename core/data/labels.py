"""A task's labels as a file writes them (names, indices, aliases, scores), read into class indices or floats."""

from __future__ import annotations

import math
from typing import Any

from mtl.data.examples import TaskData
from mtl.errors import DataError


def is_unlabeled_split(split: str) -> bool:
    """Test splits (``test``, ``test_matched``, ...) may come without labels, as GLUE ships them."""
    return split.startswith("test")


class Labels:
    """Maps the label strings of a file (names, indices or aliases) to class indices, or scores to floats."""

    def __init__(self, task: TaskData):
        self.task = task
        self.regression = task.labels is None
        self.index: dict[str, int] = {}
        if not self.regression:
            self.index = {name: i for i, name in enumerate(task.labels)}
            for alias, name in task.label_aliases.items():
                if name in self.index:
                    self.index.setdefault(alias, self.index[name])
            for i in range(len(task.labels)):  # a label written as its index (hub exports: 0, 1, 2)
                self.index.setdefault(str(i), i)
        self.skip = frozenset(task.glue.skip_labels) if task.glue is not None else frozenset()

    def valid(self) -> str:
        names = list(self.index)
        return ", ".join(names)

    def convert(self, value: Any, where: str) -> int | float | None:
        """The label of one row; ``None`` when the row is to be dropped (e.g. SNLI's gold label ``-``)."""
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and not self.regression and value.is_integer():
            value = int(value)
        text = value.strip() if isinstance(value, str) else str(value)
        if text in self.skip:
            return None
        if self.regression:
            try:
                score = float(text)
            except ValueError:
                score = math.nan
            if not math.isfinite(score):
                raise DataError(f"{where}: score {text!r} of task {self.task.name!r} is not a finite number")
            return score
        try:
            return self.index[text]
        except KeyError:
            raise DataError(
                f"{where}: unknown label {text!r} for task {self.task.name!r}; valid labels: {self.valid()}"
            ) from None
