"""Task ``snli``: the Stanford NLI corpus (Bowman et al. 2015), accuracy; in GLUE's download but not its
score (Wang et al., ICLR 2019). Pairs without a gold label (``-`` in files, -1 on the hub) are dropped."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class SNLI(Task):
    description = "SNLI: does the premise entail, contradict or say nothing of the hypothesis? (accuracy)"
    text_columns = ("sentence1", "sentence2")
    label_column = "gold_label"
    labels = ("entailment", "neutral", "contradiction")  # stanfordnlp/snli ClassLabel order
    metrics = ("accuracy",)
    glue = GlueLayout(
        folder="SNLI",
        files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        skip_labels=("-",),
    )
    hub = ("stanfordnlp/snli", None)
    hub_columns = {"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"}


@hookimpl
def register_tasks(register):
    register("snli", SNLI, description=SNLI.description)
