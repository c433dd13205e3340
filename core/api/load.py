"""``mtl.load(path)``: a finished run folder or an `mtl export` folder, to predict with and to inspect.

The model is rebuilt by :func:`mtl.runs.predict.load_predictor` (a run through :func:`mtl.runs.restore.load_run`, an
export through its manifest, :mod:`mtl.runs.exported`); this module adds what a notebook reads beside it: the run's
options, its metrics and summary, or the export's manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.runs.exported import MANIFEST
from mtl.runs.folder import RunFolder, read_json
from mtl.runs.predict import Predictor, load_predictor
from mtl.runs.restore import read_config


@dataclass
class TrainedModel:
    """A trained model of one task: :meth:`predict` and :meth:`evaluate`, and what its folder records.

    ``kind`` is ``"run"`` (a run folder; ``config`` and ``summary`` are the run's) or ``"export"`` (an `mtl export`
    folder; ``manifest`` is its ``mtl_export.json``). ``metrics`` maps task -> split -> metric -> value: every task
    of a run (``eval.json``), the exported task of an export (as its manifest records them).
    """

    path: Path
    kind: str
    task: str
    predictor: Predictor = field(repr=False)
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    config: RunConfig | None = field(default=None, repr=False)
    summary: dict[str, Any] | None = field(default=None, repr=False)
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The task's label names (None for a regression task)."""
        labels = self.predictor.task.labels
        return tuple(labels) if labels is not None else None

    @property
    def text_columns(self) -> tuple[str, ...]:
        """What one example is: one text (``sentence``) or a pair (``sentence1``, ``sentence2``)."""
        return tuple(self.predictor.task.text_columns)

    def predict(self, texts: Any) -> list[dict[str, Any]]:
        """One ``{"label", "score", "logits"}`` (classification) or ``{"score"}`` (regression) per example.

        ``texts``: one example or a list of them; an example is a string (a one-text task), a tuple of the task's
        texts (a pair task: ``("A man eats.", "Someone is eating.")``) or a mapping of its text columns.
        """
        return self.predictor.predict(examples(texts, self.text_columns, self.task))

    def evaluate(self, split: str | None = None, **sources: Any) -> dict[str, Any]:
        """The task's metrics on ``split`` (default: its first evaluation split), computed as the trainer does at
        each evaluation; ``data_dir=``, ``data=`` and ``limit=`` as `mtl eval` takes them."""
        return self.predictor.evaluate(split or self.predictor.task.eval_splits[0], **sources)


def load(path: str | os.PathLike, task: str | None = None) -> TrainedModel:
    """The model of ``task`` (default: the target) in a finished run folder or an `mtl export` folder.

    Every problem (no such folder, a run without weights, a damaged file) is a one-line :class:`mtl.MtlError`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise MtlError(f"mtl.load(path): give a run folder or an exported model folder (got {type(path).__name__})")
    predictor = load_predictor(path, task)
    path = Path(path)
    name = predictor.task.name
    if predictor.kind == "export":
        manifest = read_json(path / MANIFEST, "the export manifest")
        return TrainedModel(path, "export", name, predictor, metrics={name: manifest.get("metrics") or {}},
                     manifest=manifest)
    run = RunFolder(path)
    config, _ = read_config(path)
    return TrainedModel(path, "run", name, predictor, metrics=run.eval() or {}, config=config, summary=run.summary())


def examples(texts: Any, columns: Sequence[str], task: str) -> list[tuple[str, ...]]:
    """``texts`` as a list of examples, each a tuple of ``columns``' texts; a one-line error for one that is not."""
    if isinstance(texts, (str, tuple, Mapping)):
        texts = [texts]
    if not isinstance(texts, Sequence):
        raise MtlError(f"predict(texts): give an example or a list of examples (got {type(texts).__name__})")
    out = []
    for number, item in enumerate(texts, start=1):
        if isinstance(item, str):
            item = (item,)
        elif isinstance(item, Mapping):
            missing = [c for c in columns if c not in item]
            if missing:
                raise MtlError(f"predict: example {number} lacks {', '.join(map(repr, missing))}; task {task!r} "
                               f"reads {', '.join(columns)}")
            item = tuple(item[c] for c in columns)
        elif isinstance(item, (list, tuple)):
            item = tuple(item)
        if not isinstance(item, tuple) or len(item) != len(columns) or not all(isinstance(t, str) for t in item):
            need = "one text" if len(columns) == 1 else f"a tuple of {len(columns)} texts"
            raise MtlError(f"predict: example {number} must be {need} ({', '.join(columns)}) for task {task!r} "
                           f"(got {item!r})"[:240])
        out.append(item)
    return out
