"""Task ``stsb``: the Semantic Textual Similarity Benchmark (Cer et al. 2017), a regression on a 0-5
similarity score, Pearson and Spearman correlation as in GLUE (Wang et al., ICLR 2019)."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class STSB(Task):
    description = "STS-B: how similar are the two sentences, 0-5? (regression; Pearson, Spearman)"
    text_columns = ("sentence1", "sentence2")
    label_column = "score"
    labels = None  # regression
    metrics = ("pearson", "spearman")
    glue = GlueLayout(folder="STS-B", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "stsb")
    hub_columns = {"score": "label"}


@hookimpl
def register_tasks(register):
    register("stsb", STSB, description=STSB.description, aliases=("sts-b",))
