"""Task ``squad``: SQuAD v1.1, the Stanford Question Answering Dataset (Rajpurkar et al., EMNLP 2016): 100,000+
questions on Wikipedia paragraphs, each answered by a span of its paragraph. Exact match and F1 (type
``extractive-qa``); from the Hub (``rajpurkar/squad``) or SQuAD's own JSON files (``--data squad.train=FILE``)."""

from __future__ import annotations

from mtl import Task, hookimpl


class Squad(Task):
    description = "SQuAD v1.1: the answer to a question as a span of a Wikipedia paragraph (F1, exact match)"
    type = "extractive-qa"
    text_columns = ("question", "context")
    label_column = "answers"
    labels = ()
    metrics = ("f1", "exact_match")
    hub = ("rajpurkar/squad", None)
    hub_splits = {"train": "train", "dev": "validation"}


@hookimpl
def register_tasks(register):
    register("squad", Squad, description=Squad.description)
