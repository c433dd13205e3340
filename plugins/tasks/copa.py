"""Task ``copa``: Choice of Plausible Alternatives (Roemmele et al. 2011; in SuperGLUE, Wang et al., NeurIPS 2019):
which of two alternatives is the cause (or the effect) of the premise? Multiple choice, accuracy.

Each choice is (premise, question + alternative), the question written out ("What was the cause?", "What happened
as a result?"), as SuperGLUE's BERT baseline and transformers' examples read it. The Hub's ``aps/super_glue``
(configuration ``copa``) and SuperGLUE's own ``COPA/{train,val}.jsonl`` (``--data copa.train=COPA/train.jsonl``)
have the same fields."""

from __future__ import annotations

from mtl import Task, hookimpl


class COPA(Task):
    description = "COPA: which alternative is the cause (effect) of the premise? (multiple choice; accuracy)"
    type = "multiple-choice"
    text_columns = ("premise",)
    choice_prefix_column = "question"
    choice_prefixes = {"cause": "What was the cause?", "effect": "What happened as a result?"}
    choice_columns = ("choice1", "choice2")
    num_choices = 2
    labels = None
    metrics = ("accuracy",)
    hub = ("aps/super_glue", "copa")
    hub_splits = {"train": "train", "dev": "validation"}


@hookimpl
def register_tasks(register):
    register("copa", COPA, description=COPA.description)
