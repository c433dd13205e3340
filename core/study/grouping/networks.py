"""The candidates and solutions of `mtl group`: a network (tasks trained together, each task's score, a cost), the
candidates read from a source, and a chosen selection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.errors import OptionError

MEASURED, APPROXIMATED, AFFINITY, GIVEN = "measured", "approximated", "affinity", "given"
MAX_CANDIDATES = 200_000  # more candidate networks than this is an error asking for a smaller --higher-order


@dataclass
class Network:
    """A candidate network: tasks trained together, each task's score in it (higher is better), its cost."""

    tasks: tuple[str, ...]
    scores: dict[str, float]
    cost: float = 1.0
    label: str = ""  # bench: the strategy ("single", "uniform", "mamt+adaptive"); networks file: its "label"
    kind: str = GIVEN  # measured (a bench run), approximated (from pairs), affinity, given (a networks file)
    runs: int = 0  # bench: the runs (seeds) its scores are the mean of
    options: str | None = None  # bench: the run-options.json its runs (or, approximated, its pairs) started from

    @property
    def name(self) -> str:
        return "+".join(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        out = {"tasks": list(self.tasks), "scores": dict(self.scores), "cost": self.cost, "label": self.label,
               "kind": self.kind}
        if self.runs:
            out["runs"] = self.runs
        return out


@dataclass
class Candidates:
    """The candidate networks read from a source, and its tasks (in the order commands and tables use)."""

    source: Path
    kind: str
    tasks: list[str]
    networks: list[Network]
    metrics: dict[str, str] = field(default_factory=dict)  # bench: task -> "dev accuracy" (what a score is)


@dataclass
class Selection:
    """An optimal solution: the chosen networks, the network and score serving each task, the objective."""

    budget: float
    tasks: list[str]
    networks: list[Network]
    served: dict[str, tuple[int, float]]  # task -> (index into networks, score)
    objective: float
    cost: float
    min_cost: float  # the cheapest set of candidates that covers every task
    nodes: int  # search-tree nodes visited
    seconds: float


def check_count(count: int, size: int, source: Path) -> None:
    if count > MAX_CANDIDATES:
        raise OptionError(f"{source}: {count} candidate networks of up to {size} tasks, more than an exact search "
                          f"handles ({MAX_CANDIDATES}); give a smaller --higher-order")
