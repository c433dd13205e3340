"""The training loop's state: where a run is, what it has measured and its best epoch so far.

Saved in every crash-safe checkpoint (as a plain dict under ``loop``) and restored by ``mtl run --resume``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

RUN = "the run"  # who logged a value no plugin logged (a loss, an evaluation metric)


@dataclass
class LoopState:
    step: int = 0  # steps done
    best_value: float = -math.inf  # the selection value of the best epoch (the target's primary dev metric)
    best_eval: dict[str, Any] | None = None  # that epoch's evaluation (task -> split -> metric -> value)
    best_epoch: int = -1
    best_step: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)  # {epoch, step, value} per evaluation
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    examples: int = 0  # training examples seen (over all ranks)
    skipped: int = 0  # steps skipped for a non-finite loss or gradient (--skip-nonfinite)
    pending: dict[str, list[float]] = field(default_factory=dict)  # task losses since the last metrics record
    metrics_bytes: int = 0  # size of metrics.jsonl when the last checkpoint was written
    # values written as null in metrics.jsonl (NaN or infinity): who logged them -> key -> how many times
    non_finite: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LoopState:
        return cls(**state)

    def add_losses(self, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            self.pending.setdefault(name, []).append(value)

    def take_losses(self) -> dict[str, float]:
        """The mean of each task's losses since the last call (for one metrics record)."""
        means = {name: sum(values) / len(values) for name, values in self.pending.items()}
        self.pending = {}
        return means

    def count_non_finite(self, keys: list[str], sources: dict[str, str]) -> None:
        """Count the ``keys`` of a record written as null, each under who logged it (``sources``, else the run)."""
        for key in keys:
            counts = self.non_finite.setdefault(sources.get(key, RUN), {})
            counts[key] = counts.get(key, 0) + 1

    def non_finite_logged(self) -> dict[str, Any]:
        """summary.json's ``non_finite_logged``: how many values were written as null and the first keys."""
        keys = list(dict.fromkeys(key for counts in self.non_finite.values() for key in counts))
        return {"count": sum(sum(counts.values()) for counts in self.non_finite.values()), "keys": keys[:5]}

    def is_best(self, value: float) -> bool:
        return value > self.best_value or self.best_eval is None

    def keep_best(self, value: float, results: dict[str, Any], epoch: int, step: int) -> None:
        self.best_value, self.best_eval, self.best_epoch, self.best_step = value, results, epoch, step
