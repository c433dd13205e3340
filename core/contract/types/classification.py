"""Type ``classification``: one or two texts, one class out of ``labels`` (softmax, cross-entropy; GLUE's
classification tasks, Wang et al., ICLR 2019). The default type of a task with labels."""

from __future__ import annotations

from mtl.contract.types.base import TaskType


class Classification(TaskType):
    name = "classification"

    def check(self, task) -> None:
        if not task.labels:
            raise ValueError(f"task {task.name!r} (classification): declare its labels")
        if len(task.text_columns) not in (1, 2):
            raise ValueError(f"task {task.name!r} (classification): one or two text columns "
                             f"(got {len(task.text_columns)})")
        super().check(task)
