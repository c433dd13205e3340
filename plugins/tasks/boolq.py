"""Task ``boolq``: Boolean Questions (Clark et al., NAACL 2019; in SuperGLUE, Wang et al., NeurIPS 2019): is the
answer to the question about the passage yes or no? Classification of (question, passage), accuracy. The Hub's
``aps/super_glue`` (configuration ``boolq``: labels 0 False, 1 True) and SuperGLUE's ``BoolQ/{train,val}.jsonl``
(labels true/false) read alike."""

from __future__ import annotations

from mtl import Task, hookimpl


class BoolQ(Task):
    description = "BoolQ: is the answer to the question about the passage yes? (accuracy)"
    text_columns = ("question", "passage")
    labels = ("False", "True")  # aps/super_glue ClassLabel order
    label_aliases = {"false": "False", "true": "True"}
    metrics = ("accuracy",)
    hub = ("aps/super_glue", "boolq")
    hub_splits = {"train": "train", "dev": "validation", "test": "test"}


@hookimpl
def register_tasks(register):
    register("boolq", BoolQ, description=BoolQ.description)
