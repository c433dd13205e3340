"""The task base class of the plugin contract (see DESIGN.md, "Backbone and task").

A task names its text columns, its label set (``None`` = regression), its metrics (the first is the
primary one, used to keep the best checkpoint) and where its data lives: a GLUE-format folder, the
Hugging Face hub, or a CSV/TSV/JSONL file the user names. Loading is in :mod:`mtl.data.files`, metrics in
:mod:`mtl.data.metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtl.data import files, metrics
from mtl.data.examples import Examples, GlueLayout

if TYPE_CHECKING:
    import torch


class Task:
    """Base class of a task. Subclasses set the class attributes; most need no methods of their own."""

    name: str = ""  # set to the registered name when the task is created
    description: str = ""
    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # None: regression
    label_aliases: dict[str, str] = {}  # other spellings of a label in files, e.g. {"-1": ...}
    metrics: tuple[str, ...] = ("accuracy",)  # the first one is the primary metric
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("dev",)
    glue: GlueLayout | None = None
    hub: tuple[str, str | None] | None = None  # (datasets path, config name)
    hub_splits: dict[str, str] = {"train": "train", "dev": "validation", "test": "test"}
    hub_columns: dict[str, str] = {}  # our column -> hub column, where they differ
    packaged: dict[str, str] = {}  # split -> file shipped inside the package (the demo suite)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_outputs(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def load(self, split: str, *, data_dir: str | None = None, file: str | None = None,
             limit: int | None = None) -> Examples:
        """Read a split from ``file`` if given, else from ``data_dir`` (GLUE layout), else the package
        (demo tasks), else the Hugging Face hub. Raises :class:`mtl.errors.DataError` naming the file."""
        return files.load_split(self, split, data_dir=data_dir, file=file, limit=limit)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-instance loss (unreduced): cross-entropy, or squared error for regression."""
        import torch.nn.functional as F

        if self.is_regression:
            return F.mse_loss(logits.view(-1).float(), targets.float(), reduction="none")
        return F.cross_entropy(logits.float(), targets, reduction="none")

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.view(-1) if self.is_regression else logits.argmax(dim=-1)

    def compute_metrics(self, predictions, references) -> dict[str, float]:
        return metrics.compute(self.metrics, predictions, references)
