"""Task ``qnli-ranking``: QNLI (GLUE, Wang et al., ICLR 2019) as MT-DNN trains it (Liu et al., ACL 2019, §3.2):
the sentences paired with one question are ranked together, −log softmax of the one that contains the answer
(``entailment``). Accuracy as MT-DNN reports QNLI (a pair is predicted ``entailment`` iff it is its question's top
sentence) and P@1. Reads the same files as ``qnli``: the GLUE folder ``QNLI`` or the Hub's ``nyu-mll/glue``."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class QNLIRanking(Task):
    description = "QNLI as pairwise ranking (MT-DNN): which sentence answers the question? (accuracy, P@1)"
    type = "ranking"
    text_columns = ("question", "sentence")
    label_column = "label"
    labels = ("entailment", "not_entailment")  # nyu-mll/glue ClassLabel order
    positive_label = "entailment"
    metrics = ("accuracy", "p_at_1")
    glue = GlueLayout(folder="QNLI", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "qnli")


@hookimpl
def register_tasks(register):
    register("qnli-ranking", QNLIRanking, description=QNLIRanking.description)
