"""Task ``wic``: Words in Context (Pilehvar and Camacho-Collados, NAACL 2019; in SuperGLUE, Wang et al., NeurIPS
2019): is the word used with the same sense in both sentences? Classification, accuracy.

The word is given to the model as the start of the first text, ``"<word>: <sentence1>"``, paired with
``sentence2`` (the word's character offsets, ``start1`` ... ``end2``, are not used). The Hub's ``aps/super_glue``
(configuration ``wic``) and SuperGLUE's ``WiC/{train,val}.jsonl`` read alike."""

from __future__ import annotations

import copy

from mtl import Examples, Task, hookimpl


class WiC(Task):
    description = "WiC: is the word used with the same sense in both sentences? (accuracy)"
    text_columns = ("sentence1", "sentence2")
    word_column = "word"
    labels = ("False", "True")  # aps/super_glue ClassLabel order
    label_aliases = {"false": "False", "true": "True"}
    metrics = ("accuracy",)
    hub = ("aps/super_glue", "wic")
    hub_splits = {"train": "train", "dev": "validation", "test": "test"}

    def load(self, split: str, **kwargs) -> Examples:
        """The split read with the word as a third column, then given as ``"<word>: <sentence1>"``."""
        reader = copy.copy(self)
        reader.text_columns = (self.word_column, *self.text_columns)
        examples = Task.load(reader, split, **kwargs)
        texts = [(f"{word}: {first}", second) for word, first, second in examples.texts]
        return Examples(texts, examples.labels, examples.source)


@hookimpl
def register_tasks(register):
    register("wic", WiC, description=WiC.description)
