"""Task ``conll2003``: named entities of the CoNLL-2003 shared task (English; Tjong Kim Sang & De Meulder 2003):
people, places, organisations and miscellaneous names in BIO tags; entity-level F1 (seqeval, as the shared task's
conlleval scores it), precision, recall and word accuracy.

From the Hub (``eriktks/conll2003``: ``tokens`` and ``ner_tags``, class indices into the nine tags below), or from
files in the CoNLL format (``--data conll2003.train=FILE``: one ``word ... tag`` a line, the tag last, a blank line
between sentences) or JSONL/JSON/Parquet with ``tokens`` and ``ner_tags``."""

from __future__ import annotations

from mtl import Task, hookimpl


class CoNLL2003(Task):
    description = "CoNLL-2003 NER: tag people, places, organisations and other names (entity F1)"
    type = "token-classification"
    words_column = "tokens"
    tags_column = "ner_tags"
    labels = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")  # the Hub's order
    metrics = ("f1", "precision", "recall", "accuracy")
    hub = ("eriktks/conll2003", None)


@hookimpl
def register_tasks(register):
    register("conll2003", CoNLL2003, description=CoNLL2003.description)
