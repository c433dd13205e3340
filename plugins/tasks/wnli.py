"""Task ``wnli``: Winograd NLI, from the Winograd Schema Challenge (Levesque et al. 2012) by GLUE
(Wang et al., ICLR 2019). Accuracy; GLUE notes its dev set is adversarial with respect to train."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class WNLI(Task):
    description = "WNLI: with the pronoun resolved, does the sentence entail the hypothesis? (accuracy)"
    text_columns = ("sentence1", "sentence2")
    label_column = "label"
    labels = ("not_entailment", "entailment")  # nyu-mll/glue ClassLabel order: 0, 1
    label_aliases = {"0": "not_entailment", "1": "entailment"}
    metrics = ("accuracy",)
    glue = GlueLayout(folder="WNLI", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "wnli")


@hookimpl
def register_tasks(register):
    register("wnli", WNLI, description=WNLI.description)
