"""The packaged offline demo tasks of the pooled task types, made by ``tools/make_demo_choice.py`` (see
``mtl/data/demo/pooled_types.md``): every type trains from a fresh install without a network.

``demo-choice`` is multiple choice (four endings, like SWAG, Zellers et al. 2018), ``demo-ranking`` is MT-DNN's
pairwise ranking (a question's two to five candidate sentences, like QNLI as MT-DNN trains it, Liu et al. 2019) and
``demo-topics`` is multi-label classification (the topics a sentence mentions).
"""

from __future__ import annotations

from mtl import Task, hookimpl


class DemoChoice(Task):
    description = "demo: which of four endings fits how the person felt? (synthetic; multiple choice, accuracy)"
    type = "multiple-choice"
    text_columns = ("context",)
    choice_prefix_column = "prefix"
    choice_columns = ("ending0", "ending1", "ending2", "ending3")
    labels = None
    metrics = ("accuracy",)
    packaged = {"train": "choice_train.jsonl", "dev": "choice_dev.jsonl"}


class DemoRanking(Task):
    description = "demo: rank the sentences that could answer a question (synthetic; ranking, accuracy, P@1)"
    type = "ranking"
    text_columns = ("query", "candidate")
    labels = ("0", "1")
    positive_label = "1"
    metrics = ("accuracy", "p_at_1")
    packaged = {"train": "ranking_train.tsv", "dev": "ranking_dev.tsv"}


class DemoTopics(Task):
    description = "demo: which of five topics does the sentence mention? (synthetic; multi-label, F1)"
    type = "classification"
    multi_label = True
    text_columns = ("text",)
    label_column = "labels"
    labels = ("food", "sports", "music", "travel", "weather")
    metrics = ("f1_micro", "f1_macro", "accuracy")
    packaged = {"train": "topics_train.jsonl", "dev": "topics_dev.jsonl"}


@hookimpl
def register_tasks(register):
    for name, task in (("demo-choice", DemoChoice), ("demo-ranking", DemoRanking), ("demo-topics", DemoTopics)):
        register(name, task, description=task.description)
