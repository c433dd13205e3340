"""Task ``qqp``: Quora Question Pairs (Iyer et al. 2017), F1 and accuracy as in GLUE (Wang et al., ICLR 2019)."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class QQP(Task):
    description = "QQP: do the two Quora questions ask the same thing? (F1, accuracy)"
    text_columns = ("question1", "question2")
    label_column = "is_duplicate"
    labels = ("not_duplicate", "duplicate")  # nyu-mll/glue ClassLabel order: 0, 1
    label_aliases = {"0": "not_duplicate", "1": "duplicate"}
    metrics = ("f1", "accuracy")
    glue = GlueLayout(folder="QQP", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "qqp")
    hub_columns = {"is_duplicate": "label"}


@hookimpl
def register_tasks(register):
    register("qqp", QQP, description=QQP.description)
