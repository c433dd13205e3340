"""What ``mtl.train`` and ``mtl.bench`` return: small dataclasses over what the run and bench folders hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.api.load import TrainedModel, load
from mtl.errors import MtlError
from mtl.runs.config import RunConfig


@dataclass
class TrainResult:
    """A finished run: ``metrics`` (task -> split -> metric -> value, the best evaluation's, as ``eval.json``),
    ``summary`` (``summary.json``), the ``target`` task, the run folder ``output`` (absolute: it stays right after a
    change of directory) and the run's ``config``."""

    output: Path
    target: str
    metrics: dict[str, dict[str, dict[str, float]]]
    summary: dict[str, Any] = field(repr=False)
    config: RunConfig = field(repr=False)
    _models: dict[str | None, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def selection(self) -> str:
        """``task.split.metric`` of the target's primary metric, the one the best evaluation was chosen on."""
        return self.summary["selection"]

    @property
    def primary(self) -> float:
        """The target's primary metric on its first evaluation split (the value :attr:`selection` names)."""
        split, metric = self.selection.removeprefix(f"{self.target}.").split(".", 1)
        return self.metrics[self.target][split][metric]

    def predictor(self, task: str | None = None) -> TrainedModel:
        """The trained model of ``task`` (default: the target), as ``mtl.load(output, task)`` gives it (loaded once)."""
        if task not in self._models:
            self._models[task] = load(self.output, task)
        return self._models[task]

    def predict(self, texts: Any, task: str | None = None) -> list[dict[str, Any]]:
        """``predictor(task).predict(texts)``: one prediction per example (see :meth:`TrainedModel.predict`)."""
        return self.predictor(task).predict(texts)


@dataclass(frozen=True)
class BenchRow:
    """One strategy of a bench, on the target's primary ``metric`` (the CLI table's columns): ``mean`` ± ``std`` over
    its ``n`` seeds, and (not for the first strategy, the reference) the mean paired difference ``delta`` to the
    reference with its paired bootstrap 95% interval [``low``, ``high``] and paired t-test ``p``. ``metrics`` holds
    every metric's entry of bench.json's table."""

    strategy: str
    weighting: str
    sampler: str
    n: int
    metric: str
    mean: float | None
    std: float | None
    delta: float | None
    low: float | None
    high: float | None
    excludes_zero: bool | None
    p: float | None
    train_seconds: float | None
    examples_per_second: float | None
    peak_memory_mb: float | None
    metrics: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, row: dict[str, Any], metric: str) -> BenchRow:
        entry = row["metrics"][metric]
        interval = entry.get("interval") or {}
        return cls(row["strategy"], row["weighting"], row["sampler"], row["n"], metric, entry.get("mean"),
                   entry.get("std"), entry.get("delta"), interval.get("low"), interval.get("high"),
                   interval.get("excludes_zero"), entry.get("p"), row.get("train_seconds"),
                   row.get("examples_per_second"), row.get("peak_memory_mb"), row["metrics"])


@dataclass
class BenchResult:
    """A finished bench: its ``rows`` (one per strategy, the first is the reference), the bench folder ``output``
    (absolute) and ``record``, bench.json's content (``record["table"]`` the whole table, ``record["runs"]`` every
    run)."""

    output: Path
    rows: list[BenchRow]
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, output: Path, record: dict[str, Any]) -> BenchResult:
        table = record["table"]
        return cls(Path(output).absolute(), [BenchRow.of(row, table["primary"]) for row in table["rows"]], record)

    @property
    def target(self) -> str:
        return self.record["table"]["target"]

    @property
    def split(self) -> str:
        """The target's evaluation split the rows compare on."""
        return self.record["table"]["split"]

    @property
    def metric(self) -> str:
        """The metric the rows compare: the target's primary metric."""
        return self.record["table"]["primary"]

    @property
    def reference(self) -> str:
        return self.record["table"]["reference"]

    def row(self, strategy: str) -> BenchRow:
        for row in self.rows:
            if row.strategy == strategy:
                return row
        raise MtlError(f"no strategy {strategy!r} in this bench ({', '.join(r.strategy for r in self.rows)})")

    def to_pandas(self):
        """The rows as a :class:`pandas.DataFrame` indexed by strategy (pandas is not a dependency of mtl)."""
        try:
            import pandas
        except ImportError:
            raise MtlError("BenchResult.to_pandas() needs pandas: pip install pandas") from None
        columns = [name for name in BenchRow.__dataclass_fields__ if name != "metrics"]
        frame = pandas.DataFrame([[getattr(row, c) for c in columns] for row in self.rows], columns=columns)
        return frame.set_index("strategy")
