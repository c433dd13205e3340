"""Task ``rte``: Recognizing Textual Entailment (RTE1-3 and 5, Dagan et al. 2006 and later), accuracy as
in GLUE (Wang et al., ICLR 2019)."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class RTE(Task):
    description = "RTE: does the first text entail the second? (accuracy)"
    text_columns = ("sentence1", "sentence2")
    label_column = "label"
    labels = ("entailment", "not_entailment")  # nyu-mll/glue ClassLabel order
    metrics = ("accuracy",)
    glue = GlueLayout(folder="RTE", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "rte")


@hookimpl
def register_tasks(register):
    register("rte", RTE, description=RTE.description)
