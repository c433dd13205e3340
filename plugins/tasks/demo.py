"""The built-in demo suite: three small related tasks made by the project (``tools/make_demo.py``) and
shipped in the package (``mtl/demo/``), so the quick start trains offline in a minute on CPU.

``demo-paraphrase`` is the target (F1 and accuracy, like MRPC in GLUE, Wang et al., ICLR 2019);
``demo-similarity`` (a 0-5 score, like STS-B) and ``demo-sentiment`` (like SST-2) are its auxiliaries.
The suite's names and its quick-start run options are in :mod:`mtl.data.suite`.

``demo-qa`` (type ``extractive-qa``, ``tools/make_demo_qa.py``) is the offline demo of span QA: questions on short
synthetic profiles, some long enough for two windows at ``--max-length 64``.
"""

from __future__ import annotations

from mtl import Task, hookimpl


class DemoParaphrase(Task):
    description = "demo: is sentence 2 a paraphrase of sentence 1? (synthetic; F1, accuracy)"
    text_columns = ("sentence1", "sentence2")
    label_column = "label"
    labels = ("not_paraphrase", "paraphrase")
    label_aliases = {"0": "not_paraphrase", "1": "paraphrase"}
    metrics = ("f1", "accuracy")
    packaged = {"train": "paraphrase_train.tsv", "dev": "paraphrase_dev.tsv"}


class DemoSimilarity(Task):
    description = "demo: how many of 5 event slots do the sentences share, 0-5? (synthetic; regression)"
    text_columns = ("sentence1", "sentence2")
    label_column = "score"
    labels = None
    metrics = ("pearson", "spearman")
    packaged = {"train": "similarity_train.tsv", "dev": "similarity_dev.tsv"}


class DemoSentiment(Task):
    description = "demo: is the one-sentence review positive or negative? (synthetic; accuracy)"
    text_columns = ("sentence",)
    label_column = "label"
    labels = ("negative", "positive")
    label_aliases = {"0": "negative", "1": "positive"}
    metrics = ("accuracy",)
    packaged = {"train": "sentiment_train.tsv", "dev": "sentiment_dev.tsv"}


class DemoQA(Task):
    description = "demo: the answer to a question about a short profile, a span of it (synthetic; F1, exact match)"
    type = "extractive-qa"
    text_columns = ("question", "context")
    label_column = "answers"
    labels = ()
    metrics = ("f1", "exact_match")
    packaged = {"train": "qa_train.jsonl", "dev": "qa_dev.jsonl"}


@hookimpl
def register_tasks(register):
    register("demo-paraphrase", DemoParaphrase, description=DemoParaphrase.description)
    register("demo-similarity", DemoSimilarity, description=DemoSimilarity.description)
    register("demo-sentiment", DemoSentiment, description=DemoSentiment.description)
    register("demo-qa", DemoQA, description=DemoQA.description)
