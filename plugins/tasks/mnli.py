"""Task ``mnli``: Multi-Genre NLI (Williams et al. 2018), accuracy on the matched and mismatched dev sets,
reported separately as in GLUE (Wang et al., ICLR 2019)."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class MNLI(Task):
    description = "MNLI: does the premise entail, contradict or say nothing of the hypothesis? (accuracy)"
    text_columns = ("sentence1", "sentence2")
    label_column = "gold_label"
    labels = ("entailment", "neutral", "contradiction")  # nyu-mll/glue ClassLabel order
    metrics = ("accuracy",)
    eval_splits = ("dev_matched", "dev_mismatched")
    glue = GlueLayout(
        folder="MNLI",
        files={
            "train": "train.tsv",
            "dev_matched": "dev_matched.tsv",
            "dev_mismatched": "dev_mismatched.tsv",
            "test_matched": "test_matched.tsv",
            "test_mismatched": "test_mismatched.tsv",
        },
        skip_labels=("-",),
    )
    hub = ("nyu-mll/glue", "mnli")
    hub_splits = {
        "train": "train",
        "dev_matched": "validation_matched",
        "dev_mismatched": "validation_mismatched",
        "test_matched": "test_matched",
        "test_mismatched": "test_mismatched",
    }
    hub_columns = {"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"}


@hookimpl
def register_tasks(register):
    register("mnli", MNLI, description=MNLI.description)
