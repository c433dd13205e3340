"""Task ``demo-entities``: the offline demo of the token-classification type (``tools/make_demo_entities.py``,
shipped in the package): people, places and organisations in simple sentences, in BIO tags as CoNLL-2003 tags
them (Tjong Kim Sang & De Meulder 2003); entity-level F1 (seqeval), precision, recall and word accuracy."""

from __future__ import annotations

from mtl import Task, hookimpl


class DemoEntities(Task):
    description = "demo: tag the people, places and organisations of a sentence (synthetic; entity F1)"
    type = "token-classification"
    words_column = "tokens"
    tags_column = "ner_tags"
    labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
    metrics = ("f1", "precision", "recall", "accuracy")
    packaged = {"train": "entities_train.jsonl", "dev": "entities_dev.jsonl"}


@hookimpl
def register_tasks(register):
    register("demo-entities", DemoEntities, description=DemoEntities.description)
