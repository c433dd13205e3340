"""The task base class of the plugin contract (see DESIGN.md, "Backbone and task").

A task names its type (:mod:`mtl.contract.types`: classification, regression, ...; by default classification when
it has labels, regression when ``labels`` is None), its columns, its label set, its metrics (the first is the
primary one, used to keep the best checkpoint) and where its data lives: a GLUE-format folder, the Hugging Face hub,
or a CSV/TSV/JSONL file the user names. Loading is in :mod:`mtl.data.files`, metrics in :mod:`mtl.data.metrics`;
what depends on the type (instances, head, loss, evaluation) is the type's (:attr:`Task.kind`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtl.contract import types
from mtl.data import files
from mtl.data.examples import Examples, GlueLayout

if TYPE_CHECKING:
    import torch


class Task:
    """Base class of a task. Subclasses set the class attributes; most need no methods of their own."""

    name: str = ""  # set to the registered name when the task is created
    description: str = ""
    type: str | None = None  # a name of mtl.contract.types.TYPES; None: classification, or regression without labels
    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # None: regression
    label_aliases: dict[str, str] = {}  # other spellings of a label in files, e.g. {"-1": ...}
    words_column: str = "tokens"  # token-classification: the column of a sentence's words (a list)
    tags_column: str = "ner_tags"  # token-classification: their tags (names of `labels` or indices into them)
    metrics: tuple[str, ...] = ("accuracy",)  # the first one is the primary metric
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("dev",)
    glue: GlueLayout | None = None
    hub: tuple[str, str | None] | None = None  # (datasets path, config name)
    hub_splits: dict[str, str] = {"train": "train", "dev": "validation", "test": "test"}
    hub_columns: dict[str, str] = {}  # our column -> hub column, where they differ
    packaged: dict[str, str] = {}  # split -> file shipped inside the package (the demo suite)
    multi_label: bool = False  # classification: a set of labels per example (one sigmoid per label)
    label_separator: str = ","  # multi-label: how a CSV/TSV cell joins an example's labels
    choice_columns: tuple[str, ...] = ()  # multiple choice: one column per candidate ending (SWAG's ending0..3)
    choices_column: str | None = None  # multiple choice: or one column holding the list of endings
    choice_prefix_column: str | None = None  # multiple choice: a text put before every ending (SWAG's sent2)
    choice_prefixes: dict[str, str] = {}  # multiple choice: prefix values rewritten (COPA's cause -> a question)
    num_choices: int | None = None  # multiple choice: endings per example (None: as many as the first row's)
    positive_label: str = "1"  # ranking: the label of a relevant candidate
    question_column: str = "question"  # extractive-qa: the question
    context_column: str = "context"  # extractive-qa: the passage the answer is a span of
    answers_column: str = "answers"  # extractive-qa: SQuAD's {"text": [...], "answer_start": [...]}
    stride: int = 128  # extractive-qa: tokens shared by consecutive windows over a long context
    max_answer_length: int = 30  # extractive-qa: the longest answer span predicted, in tokens

    @property
    def kind(self) -> types.TaskType:
        """The task's type (:class:`mtl.contract.types.TaskType`)."""
        name = self.type or ("regression" if self.labels is None else "classification")
        if self.multi_label and name == "classification":
            name = "multi-label-classification"
        return types.get(name)

    @property
    def is_regression(self) -> bool:
        return self.kind.name == "regression"

    @property
    def num_outputs(self) -> int:
        return self.kind.outputs(self)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def load(self, split: str, *, data_dir: str | None = None, file: str | None = None,
             limit: int | None = None) -> Examples:
        """Read a split from ``file`` if given, else from ``data_dir`` (GLUE layout), else the package
        (demo tasks), else the Hugging Face hub. Raises :class:`mtl.errors.DataError` naming the file."""
        return self.kind.select(self, split, files.load_split(self, split, data_dir=data_dir, file=file, limit=limit))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-instance loss (unreduced): cross-entropy, or squared error for regression (the type's)."""
        return self.kind.loss(self, logits, targets)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.kind.predict(self, logits)

    def compute_metrics(self, predictions, references) -> dict[str, float]:
        return self.kind.compute_metrics(self, predictions, references)
