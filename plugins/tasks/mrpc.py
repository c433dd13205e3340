"""Task ``mrpc``: the Microsoft Research Paraphrase Corpus (Dolan & Brockett 2005), F1 on the positive
class and accuracy as in GLUE (Wang et al., ICLR 2019).

GLUE's ``MRPC/train.tsv`` and ``dev.tsv`` start with a UTF-8 BOM, removed when reading.
"""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class MRPC(Task):
    description = "MRPC: is the second sentence a paraphrase of the first? (F1, accuracy)"
    text_columns = ("#1 String", "#2 String")
    label_column = "Quality"
    labels = ("not_equivalent", "equivalent")  # nyu-mll/glue ClassLabel order: 0, 1
    label_aliases = {"0": "not_equivalent", "1": "equivalent"}
    metrics = ("f1", "accuracy")
    glue = GlueLayout(folder="MRPC", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "mrpc")
    hub_columns = {"#1 String": "sentence1", "#2 String": "sentence2", "Quality": "label"}


@hookimpl
def register_tasks(register):
    register("mrpc", MRPC, description=MRPC.description)
