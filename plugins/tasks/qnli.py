"""Task ``qnli``: Question NLI, built from SQuAD (Rajpurkar et al. 2016) by GLUE (Wang et al., ICLR 2019):
does the sentence answer the question? Accuracy."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class QNLI(Task):
    description = "QNLI: does the sentence contain the answer to the question? (accuracy)"
    text_columns = ("question", "sentence")
    label_column = "label"
    labels = ("entailment", "not_entailment")  # nyu-mll/glue ClassLabel order
    metrics = ("accuracy",)
    glue = GlueLayout(folder="QNLI", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "qnli")


@hookimpl
def register_tasks(register):
    register("qnli", QNLI, description=QNLI.description)
