"""Which tasks to train together (`mtl group`): budgeted network selection.

Standley et al., "Which Tasks Should Be Learned Together in Multi-task Learning?", ICML 2020 (arXiv 1905.07553).
A *candidate network* is a set of tasks trained together, with a cost (default 1: one network to train and
serve) and a score for each of its tasks (higher is better). A *solution* is a set of candidate networks of
total cost ≤ the budget in which every task is in some network; each task is *served* by its best network in
the set, and the objective is the sum of the served scores. :func:`select` finds an optimal solution exactly,
by branch and bound.

Candidates come from one of four sources (:func:`load`):

- ``bench``: a folder written by ``mtl bench`` (``--pairs`` or not). Every finished run is a measured network:
  its tasks are its target and auxiliary tasks (config.json), a task's score is its primary metric (the first
  metric of its first evaluation split in eval.json: every run evaluates each of its tasks) and a network's
  scores are the means over its runs (seeds). Networks are told apart by their tasks and their strategy (the
  run's folder ``<strategy>/seed-<s>``); fine-tuning stages (``SPEC>finetune``) are left out.
- the *higher-order approximation* (:func:`higher_order`, ``--higher-order N``): from the pairs of a bench or
  networks file, every group of 3..N tasks whose pairs were all measured (with one strategy) and that was not
  measured itself, with score_t(G) = mean over u in G \\ {t} of score_t({t, u}).
- ``affinity``: ``affinity.json`` of ``mtl affinity`` (TAG, Fifty et al., NeurIPS 2021), ``"matrix": {i: {j:
  Z_i→j}}``; every group G of up to N tasks is a candidate with score_j(G) = Σ_{i ∈ G, i ≠ j} Z_i→j (a task
  alone scores 0).
- ``networks``: a JSON file ``{"networks": [{"tasks": [...], "scores": {task: score}, "cost": 1}, ...]}``.

Every source must give every task a single-task network (the solution that trains each task alone must exist).
Nothing here imports torch; numpy is imported when a search runs.
"""

from __future__ import annotations

import itertools
import math
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.contract.registry import is_name
from mtl.errors import DataError, MtlError, OptionError, unknown
from mtl.runs import folder as run_files
from mtl.runs.folder import RunFolder

KINDS = ("bench", "affinity", "networks")
AFFINITY_FILE = "affinity.json"
BENCH_FILE = "bench.json"
RUN_OPTIONS = "run-options.json"
MAX_CANDIDATES = 200_000  # more candidate networks than this is an error asking for a smaller --higher-order
NETWORK_KEYS = ("tasks", "scores", "cost", "label")
MEASURED, APPROXIMATED, AFFINITY, GIVEN = "measured", "approximated", "affinity", "given"


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


# ---------------------------------------------------------------------------------------------- sources
def detect(path: Path) -> str:
    """The kind of a source: a folder with affinity.json, a bench folder, or a JSON networks/affinity file."""
    path = Path(path)
    if not path.exists():
        raise MtlError(f"unknown source {path}: no such file or folder")
    if path.is_dir():
        if (path / AFFINITY_FILE).is_file():
            return "affinity"
        if (path / BENCH_FILE).is_file() or next(_run_folders(path), None) is not None:
            return "bench"
        raise MtlError(f"unknown source {path}: a folder with neither {AFFINITY_FILE} (written by mtl affinity) nor "
                       "finished runs (written by mtl bench)")
    data = run_files.read_json(path, "the grouping source")
    if isinstance(data, dict) and "networks" in data:
        return "networks"
    if isinstance(data, dict) and "matrix" in data:
        return "affinity"
    raise MtlError(f"unknown source {path}: a JSON file with neither 'networks' (a networks file) nor 'matrix' "
                   "(an affinity file)")


def load(source: Path, kind: str | None = None, higher_order: int | None = None) -> Candidates:
    """The candidate networks of ``source`` (``kind``: one of :data:`KINDS`, else detected), every task's
    single-task network checked; ``higher_order`` adds the approximated groups of up to that many tasks
    (bench, networks) or limits the affinity groups to that size (default: every size)."""
    source = Path(source)
    if kind is not None and kind not in KINDS:
        raise OptionError(unknown("source kind", kind, KINDS))
    if higher_order is not None and higher_order < 2:
        raise OptionError(f"--higher-order must be >= 2 (got {higher_order}): the largest group to consider")
    if kind is not None and not source.exists():
        raise MtlError(f"unknown source {source}: no such file or folder")
    kind = kind or detect(source)
    if kind == "affinity":
        candidates = read_affinity(source, higher_order)
    else:
        candidates = read_bench(source) if kind == "bench" else read_networks_file(source)
        if higher_order is not None:
            candidates.networks += higher_order_networks(candidates, higher_order)
    check_singles(candidates)
    return candidates


def read_networks_file(path: Path) -> Candidates:
    """A networks file: ``{"networks": [{"tasks": [...], "scores": {...}, "cost": 1, "label": ""}, ...]}``."""
    path = Path(path)
    if path.is_dir():
        raise MtlError(f"{path}: a folder, not a networks file (JSON)")
    data = run_files.read_json(path, "the networks file")
    if not isinstance(data, dict) or not isinstance(data.get("networks"), list) or not data["networks"]:
        raise DataError(f"{path}: expected {{\"networks\": [{{\"tasks\": [...], \"scores\": {{...}}}}, ...]}} "
                        "with at least one network")
    networks, tasks = [], []
    for i, entry in enumerate(data["networks"]):
        where = f"{path}: networks[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object with tasks, scores and cost")
        extra = [k for k in entry if k not in NETWORK_KEYS]
        if extra:
            raise DataError(f"{where}: " + unknown("key", str(extra[0]), NETWORK_KEYS))
        names = entry.get("tasks")
        if not isinstance(names, list) or not names or not all(is_name(t) for t in names):
            raise DataError(f"{where}: 'tasks' must be a non-empty list of task names (letters, digits, _ . -)")
        if len(set(names)) != len(names):
            raise DataError(f"{where}: task {next(t for t in names if names.count(t) > 1)!r} is listed twice")
        scores = entry.get("scores")
        if not isinstance(scores, dict):
            raise DataError(f"{where}: 'scores' must map each of its tasks to a number")
        for name in scores:
            if name not in names:
                raise DataError(f"{where}: a score for {name!r}, which is not one of its tasks {names}")
        for name in names:
            if name not in scores:
                raise DataError(f"{where}: no score for {name!r}")
            if _number(scores[name]) is None:
                raise DataError(f"{where}: the score of {name!r} must be a number within ±1e12 (got {scores[name]!r})")
        cost = entry.get("cost", 1)
        if _number(cost) is None or cost <= 0:
            raise DataError(f"{where}: 'cost' must be a positive number up to 1e12 (got {cost!r})")
        label = entry.get("label", "")
        if not isinstance(label, str):
            raise DataError(f"{where}: 'label' must be a string")
        networks.append(Network(tuple(names), {t: float(scores[t]) for t in names}, float(cost), label, GIVEN))
        tasks += [t for t in names if t not in tasks]
    return Candidates(path, "networks", tasks, networks)


def read_affinity(path: Path, max_size: int | None = None) -> Candidates:
    """TAG's candidates from ``affinity.json`` (or a folder holding it): every group G of up to ``max_size``
    tasks (default: all), score_j(G) = Σ_{i ∈ G, i ≠ j} Z_i→j, with ``"matrix": {i: {j: Z_i→j}}``."""
    path = Path(path)
    file = path / AFFINITY_FILE if path.is_dir() else path
    data = run_files.read_json(file, "the affinity file")
    matrix = data.get("matrix") if isinstance(data, dict) else None
    if not isinstance(matrix, dict) or not matrix or not all(isinstance(v, dict) for v in matrix.values()):
        raise DataError(f"{file}: expected \"matrix\": {{task i: {{task j: affinity of i onto j}}}}")
    tasks: list[str] = []
    for i, row in matrix.items():
        for t in (i, *row):
            if not is_name(t):
                raise DataError(f"{file}: {t!r} is not a task name (letters, digits, _ . -)")
            if t not in tasks:
                tasks.append(t)
    affinity: dict[tuple[str, str], float] = {}
    for i in tasks:
        for j in tasks:
            if i == j:
                continue
            value = (matrix.get(i) or {}).get(j, _MISSING)
            if value is _MISSING:
                raise DataError(f"{file}: the matrix has no affinity of {i!r} onto {j!r} (matrix[{i!r}][{j!r}])")
            if value is None:
                raise DataError(f"{file}: the affinity of {i!r} onto {j!r} is undefined (null): no measurement "
                                "gave a finite value")
            if _number(value) is None:
                raise DataError(f"{file}: the affinity of {i!r} onto {j!r} must be a number within ±1e12 (got {value!r})")
            affinity[i, j] = float(value)
    size = len(tasks) if max_size is None else min(max_size, len(tasks))
    _check_count(sum(math.comb(len(tasks), k) for k in range(1, size + 1)), size, file)
    networks = []
    for k in range(1, size + 1):
        for group in itertools.combinations(tasks, k):
            scores = {j: math.fsum(affinity[i, j] for i in group if i != j) for j in group}
            networks.append(Network(group, scores, 1.0, "affinity", AFFINITY))
    return Candidates(path, "affinity", tasks, networks)


def _run_folders(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob(run_files.EVAL)):
        if (path.parent / run_files.CONFIG).is_file():
            yield path.parent


def read_bench(folder: Path) -> Candidates:
    """The measured networks of a bench folder: one per strategy and task set, scores averaged over seeds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MtlError(f"{folder}: not a bench folder")
    groups: dict[tuple[str, frozenset], dict[str, Any]] = {}
    metrics: dict[str, str] = {}
    tasks: list[str] = []
    for path in _run_folders(folder):
        run = RunFolder(path)
        config, _ = run.config()  # each option of the type it must have (a one-line error naming config.json)
        if config.parent:  # a fine-tuning stage: the target alone, trained from a multi-task run
            continue
        target = config.target
        if not target:
            raise DataError(f"{run.config_path}: no target task")
        names = (target, *[a for a in config.aux if a != target])
        evaluation = run.eval() or {}
        scores = {}
        for name in names:
            split, metric, scores[name] = primary(evaluation, name, run.eval_path)
            metrics.setdefault(name, f"{split} {metric}")
        # a bench run: its strategy's folder; another run: its weighting and sampler
        label = path.parent.name if path.name.startswith("seed-") else f"{config.weighting}+{config.sampler}"
        key = (label, names)  # the same tasks with another target are another network
        entry = groups.setdefault(key, {"tasks": names, "scores": {n: [] for n in names}, "options": None})
        for name in names:
            entry["scores"][name].append(scores[name])
        options = path.parent / RUN_OPTIONS
        if entry["options"] is None and options.is_file():
            entry["options"] = str(options)
        tasks += [n for n in names if n not in tasks]
    if not groups:
        raise MtlError(f"{folder}: no finished runs (run folders with {run_files.EVAL} and {run_files.CONFIG})")
    networks = [Network(entry["tasks"], {n: math.fsum(v) / len(v) for n, v in entry["scores"].items()}, 1.0,
                        label, MEASURED, len(next(iter(entry["scores"].values()))), entry["options"])
                for (label, _), entry in groups.items()]
    order = _bench_tasks(folder, tasks)
    return Candidates(folder, "bench", order, networks, metrics)


def _bench_tasks(folder: Path, found: list[str]) -> list[str]:
    """The tasks in the bench's own order (a --pairs bench lists them; else target first), then any others."""
    data = run_files.read_json(folder / BENCH_FILE, "the bench file", missing_ok=True)
    listed: Any = []
    if isinstance(data, dict):
        listed = data.get("tasks")
        if listed is None:
            aux = data.get("aux") or []
            listed = ([data["target"], *aux] if isinstance(aux, list) else None) if data.get("target") else []
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        raise DataError(f"{folder / BENCH_FILE}: its tasks (or target and aux) must be task names")
    listed = list(dict.fromkeys(listed))
    return [t for t in listed if t in found] + [t for t in found if t not in listed]


def primary(evaluation: dict[str, Any], task: str, where: Any) -> tuple[str, str, float]:
    """(split, metric, value) of a task's primary metric in a run's eval.json: the first metric (a task's
    metrics come in its own order, the primary one first) of its first evaluation split."""
    splits = evaluation.get(task) if isinstance(evaluation, dict) else None
    if not isinstance(splits, dict) or not splits or not isinstance(next(iter(splits.values())), dict):
        raise DataError(f"{where}: no metrics for task {task!r}, one of the run's tasks")
    split, values = next(iter(splits.items()))
    if not values:
        raise DataError(f"{where}: no metrics for task {task!r} on {split}")
    metric, value = next(iter(values.items()))
    if _number(value) is None:
        raise DataError(f"{where}: {task} {split} {metric} is not a finite number ({value!r})")
    return split, metric, float(value)


def higher_order_networks(candidates: Candidates, max_size: int) -> list[Network]:
    """Standley's higher-order approximation: for each strategy (label) with pairs, every group of 3..max_size
    tasks whose pairs were all measured and that was not measured itself, score_t(G) = mean over u in
    G \\ {t} of score_t({t, u}); cost 1."""
    pairs: dict[str, dict[frozenset, Network]] = {}
    for net in candidates.networks:
        if len(net.tasks) == 2:
            pairs.setdefault(net.label, {}).setdefault(frozenset(net.tasks), net)
    if not pairs:
        raise MtlError(f"{candidates.source}: --higher-order needs networks of two tasks (pairs), and it has none "
                       "(`mtl bench --pairs` trains them)")
    measured = {(net.label, frozenset(net.tasks)) for net in candidates.networks}
    size = min(max_size, len(candidates.tasks))
    _check_count(len(candidates.networks) + len(pairs) * sum(math.comb(len(candidates.tasks), k)
                                                             for k in range(3, size + 1)), size, candidates.source)
    out = []
    for label, by_pair in pairs.items():
        for k in range(3, size + 1):
            for group in itertools.combinations(candidates.tasks, k):
                if (label, frozenset(group)) in measured:
                    continue
                members = [by_pair.get(frozenset((t, u))) for t, u in itertools.combinations(group, 2)]
                if any(m is None for m in members):
                    continue
                scores = {t: math.fsum(by_pair[frozenset((t, u))].scores[t] for u in group if u != t) / (k - 1)
                          for t in group}
                out.append(Network(group, scores, 1.0, label, APPROXIMATED, 0, members[0].options))
    return out


def check_singles(candidates: Candidates) -> None:
    """Every task needs a network of its own (so that a solution always exists); a one-line error names it."""
    alone = {net.tasks[0] for net in candidates.networks if len(net.tasks) == 1}
    for task in candidates.tasks:
        if task not in alone:
            hint = {"bench": ": train it alone too (`mtl bench --pairs` trains every task alone and in pairs)",
                    "networks": f": add {{\"tasks\": [\"{task}\"], \"scores\": {{\"{task}\": ...}}}}"}
            raise DataError(f"{candidates.source}: no single-task network of {task!r}"
                            f"{hint.get(candidates.kind, '')}")


def _check_count(count: int, size: int, source: Path) -> None:
    if count > MAX_CANDIDATES:
        raise OptionError(f"{source}: {count} candidate networks of up to {size} tasks, more than an exact search "
                          f"handles ({MAX_CANDIDATES}); give a smaller --higher-order")


_MISSING = object()


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


LARGEST = 1e12  # scores, costs and budgets beyond it are mistakes, and their sums could overflow


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number within ±:data:`LARGEST`, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= LARGEST:
        return None
    return float(value)


# ---------------------------------------------------------------------------------------------- the search
def min_cover_cost(tasks: list[str], networks: list[Network]) -> tuple[float, list[int]]:
    """The cheapest set of networks whose union is every task: exact, by branch and bound on set cover (branch
    on the uncovered task with the fewest networks, networks that cover a subset of another's new tasks at no
    lower cost left out, cut by the larger of |uncovered| × the least cost per newly covered task and the
    fewest networks that can cover the uncovered tasks × the least cost)."""
    index = {t: i for i, t in enumerate(tasks)}
    masks = [sum(1 << index[t] for t in net.tasks) for net in networks]
    costs = [net.cost for net in networks]
    covering = [[k for k, m in enumerate(masks) if m >> i & 1] for i in range(len(tasks))]
    best: list[Any] = [math.inf, []]

    def cover(uncovered: int, spent: float, chosen: list[int]) -> None:
        if not uncovered:
            if spent < best[0]:
                best[0], best[1] = spent, list(chosen)
            return
        left = uncovered.bit_count()
        reach = [(costs[k], n) for k, m in enumerate(masks) if (n := (m & uncovered).bit_count())]
        ratio = min(c / n for c, n in reach)
        count = -(-left // max(n for _, n in reach))  # at least this many more networks
        if spent + max(ratio * left, count * min(c for c, _ in reach)) >= best[0] - 1e-9:
            return
        task = min((i for i in range(len(tasks)) if uncovered >> i & 1), key=lambda i: len(covering[i]))
        options = sorted(covering[task], key=lambda k: (costs[k] / (masks[k] & uncovered).bit_count(),
                                                        -(masks[k] & uncovered).bit_count()))
        kept: list[int] = []
        for k in options:
            new = masks[k] & uncovered
            if any(new & ~(masks[j] & uncovered) == 0 and costs[j] <= costs[k] for j in kept):
                continue  # another option covers these tasks and more, for no more
            kept.append(k)
            if spent + costs[k] >= best[0] - 1e-9:
                continue
            chosen.append(k)
            cover(uncovered & ~masks[k], spent + costs[k], chosen)
            chosen.pop()

    with _deep_recursion(len(tasks) + 100):
        cover((1 << len(tasks)) - 1, 0.0, [])
    return best[0], best[1]


def select(tasks: list[str], networks: list[Network], budget: float) -> Selection:
    """The set of networks of total cost ≤ ``budget`` covering every task with the largest sum of served scores.

    Exact, by branch and bound over the tasks (see :class:`_Search`). An infeasible budget (below the cheapest
    cover of every task, :func:`min_cover_cost`) is a one-line error that gives that cost.
    """
    if _number(budget) is None or budget <= 0:
        raise OptionError(f"--budget must be a positive number up to 1e12 (got {budget})")
    started = time.perf_counter()
    min_cost, _ = min_cover_cost(tasks, networks)
    if budget < min_cost - 1e-9:
        raise MtlError(f"--budget {budget:g} cannot cover every task: the cheapest set of candidate networks that "
                       f"covers all {len(tasks)} tasks costs {min_cost:g}; give --budget {min_cost:g} or more")
    search = _Search(tasks, networks, float(budget))
    chosen = search.run()
    if chosen is None:  # cannot happen once the budget covers every task; kept as a guard
        raise MtlError(f"--budget {budget:g}: no set of candidate networks covers every task")
    return _solution(tasks, networks, chosen, budget, min_cost, search.nodes, time.perf_counter() - started)


class _Search:
    """Branch and bound for :func:`select`.

    A solution is written as a partition of the tasks into *blocks*, each block P served by its own network
    k ⊇ P (value Σ_{t ∈ P} s_k(t), cost c_k): every set of networks is worth the best such partition of its
    tasks, so the best partition within the budget is the optimum. A node holds the blocks chosen so far; it
    branches on its first unserved task t, one child per network k ∋ t that fits the remaining budget r and
    per block P ∋ t of k's unserved tasks.

    Upper bound on what the unserved tasks U can still add (a Lagrangian relaxation of the budget): for any
    λ ≥ 0 and any y with Σ_{t ∈ k ∩ U} (s_k(t) − y_t)⁺ ≤ λ·c_k for every network k that fits the remaining
    budget r, every completion is worth at most λ·r + Σ_{t ∈ U} y_t (a block of network k is worth at most its
    tasks' y plus λ·c_k, and the costs sum to ≤ r). y starts at y_t = max_k (s_k(t) − λ·c_k / |k ∩ U|), which
    satisfies that, and each y_t is then lowered as far as the constraints allow, one task after the other. At
    λ = 0 the bound is each unserved task's best score over the remaining networks; a larger λ charges each
    task its share of a network's cost, which is what a tight budget forces. The smallest bound over a few λ
    (a wide grid at the root, around the parent's best λ below it) is used. The same (λ, y) bound each child
    without visiting it: the child adding block P of network k is worth at most the node's bound plus its
    *reduced value* v(P) − λ·c_k − Σ_{t ∈ P} y_t ≤ 0, so children are tried in order of reduced value and the
    rest are cut at the first that cannot beat the best solution found. A node is also cut when its unserved
    tasks cannot be covered within r (the fractional cover Σ_t min_k c_k / |k ∩ U| exceeds r), and it is a
    leaf when serving each unserved task by its best network fits r (that reaches the λ = 0 bound).
    """

    def __init__(self, tasks: list[str], networks: list[Network], budget: float) -> None:
        import numpy as np

        self.np = np
        index = {t: i for i, t in enumerate(tasks)}
        self.n, self.K = len(tasks), len(networks)
        self.member = np.zeros((self.K, self.n), dtype=bool)
        self.scores = np.zeros((self.K, self.n))
        for k, net in enumerate(networks):
            for t in net.tasks:
                self.member[k, index[t]], self.scores[k, index[t]] = True, net.scores[t]
        self.costs = np.array([net.cost for net in networks], dtype=float)
        self.masks = [sum(1 << index[t] for t in net.tasks) for net in networks]
        self.by_task = [[k for k in range(self.K) if self.masks[k] >> i & 1] for i in range(self.n)]
        values = self.scores[self.member]
        scale = float(values.max() - values.min()) or 1.0
        self.scale = scale
        self.lambdas = np.concatenate(([0.0], scale * 2.0 ** (np.arange(-14, 10, dtype=float) / 2)))
        self.tol = 1e-9 * max(1.0, float(np.abs(values).max())) * self.n
        self.budget = budget
        self.best_value = -math.inf
        self.best: list[int] | None = None
        self.nodes = 0
        self.branch = 0  # the task the last bound chose to branch on

    def run(self) -> list[int] | None:
        with _deep_recursion(self.n + 100):
            self._visit((1 << self.n) - 1, self.budget, 0.0, [], None)
        return self.best

    def _bound(self, unserved: Any, room: float, parent: float | None,
               need: float) -> tuple[float, float, Any, list[int] | None] | None:
        """(bound, λ, y over all tasks, None) for the unserved tasks (a boolean mask) and remaining budget;
        (bound, 0, None, networks) when serving each task by its best network fits the budget (that reaches
        the bound); None when they cannot be covered within it. A bound ≤ ``need`` is returned as soon as it
        is found (the node is cut)."""
        np = self.np
        inside = self.member[:, unserved]
        size = inside.sum(axis=1)
        fits = (size > 0) & (self.costs <= room + 1e-12)
        inside = inside[fits]
        if not inside.any(axis=0).all():
            return None
        cost = self.costs[fits]
        share = cost / size[fits]
        if np.where(inside, share[:, None], np.inf).min(axis=0).sum() > room + 1e-9:
            return None
        scores = np.where(inside, self.scores[fits][:, unserved], -np.inf).T  # unserved tasks × networks
        best = np.unique(np.flatnonzero(fits)[scores.argmax(axis=1)])
        if self.costs[best].sum() <= room + 1e-12:  # each task's best network fits: the λ = 0 bound is reached
            return float(scores.max(axis=1).sum()), 0.0, None, [int(k) for k in best]
        lam = self._lambdas(parent)
        y = (scores[None] - lam[:, None, None] * share[None, None, :]).max(axis=2)  # λ × tasks
        values = lam * room + y.sum(axis=1)
        if values.min() <= need:  # cut before tightening
            return float(values.min()), 0.0, None, None
        # tighten: lower each y_t as far as every network's constraint Σ_t (s_k(t) − y_t)⁺ ≤ λ·c_k allows
        excess = np.maximum(scores[None] - y[:, :, None], 0.0)  # λ × tasks × networks
        total = excess.sum(axis=1)  # λ × networks
        for j in np.argsort(-y[0], kind="stable"):
            ks = np.flatnonzero(inside[:, j])
            row = scores[j, ks]
            own = excess[:, j, ks]
            slack = lam[:, None] * cost[ks][None] - (total[:, ks] - own)
            lowest = np.minimum((row[None] - slack).max(axis=1), y[:, j])
            new = np.maximum(row[None] - lowest[:, None], 0.0)
            total[:, ks] += new - own
            excess[:, j, ks] = new
            y[:, j] = lowest
        values = lam * room + y.sum(axis=1)
        i = int(np.argmin(values))
        bound = float(values[i])
        if bound <= need:
            return bound, 0.0, None, None
        # each task's children: the best block with it in network k has reduced value
        # (s_k(t) − y_t) + Σ_{other u in k ∩ U} max(0, s_k(u) − y_u) − λ·c_k; a task without a child that can
        # beat the best solution cuts the node, else the task with the fewest such networks is branched on
        gap = scores - y[i][:, None]  # tasks × networks, −inf outside
        gain = np.maximum(gap, 0.0)
        best_block = gap + (gain.sum(axis=0)[None] - gain) - lam[i] * cost[None]
        viable = (best_block > need - bound).sum(axis=1)
        if not viable.all():
            return bound, 0.0, None, None
        full = np.zeros(self.n)
        full[unserved] = y[i]
        self.branch = int(np.flatnonzero(unserved)[int(np.argmin(viable))])
        return bound, float(lam[i]), full, None

    def _lambdas(self, parent: float | None) -> Any:
        """The λ tried at a node: a wide grid at the root, a few around the parent's best λ below it."""
        if parent is None:
            return self.lambdas
        if parent == 0.0:
            return self.np.concatenate(([0.0], self.scale * 2.0 ** self.np.array([-6.0, -4.0, -2.0, 0.0, 2.0])))
        return self.np.concatenate(([0.0], parent * 2.0 ** self.np.array([-1.0, -0.5, 0.0, 0.5, 1.0])))

    def _visit(self, unserved: int, room: float, value: float, chosen: list[int], parent: float | None) -> None:
        self.nodes += 1
        if not unserved:
            if value > self.best_value + self.tol:
                self.best_value, self.best = value, list(chosen)
            return
        mask = self.np.array([bool(unserved >> i & 1) for i in range(self.n)])
        found = self._bound(mask, room, parent, self.best_value + self.tol - value)
        if found is None:
            return
        bound, lam, y, completion = found
        if value + bound <= self.best_value + self.tol:
            return
        if completion is not None:  # the best completion of this node, nothing left to branch on
            self.best_value, self.best = value + bound, chosen + completion
            return
        t = self.branch
        children = []
        for k in self.by_task[t]:
            cost = self.costs[k]
            if cost > room + 1e-12 or k in chosen:
                continue
            others = _bits(self.masks[k] & unserved & ~(1 << t))
            row = self.scores[k]
            for r in range(len(others) + 1):
                for extra in itertools.combinations(others, r):
                    block = (t, *extra)
                    worth = math.fsum(row[i] for i in block)
                    reduced = worth - lam * cost - math.fsum(y[i] for i in block)
                    children.append((reduced, k, block, worth))
        children.sort(key=lambda child: (-child[0], -len(child[2])))
        for reduced, k, block, worth in children:
            if value + bound + reduced <= self.best_value + self.tol:
                break  # this child and every later one cannot beat the best solution found
            chosen.append(k)
            self._visit(unserved & ~sum(1 << i for i in block), room - self.costs[k], value + worth, chosen, lam)
            chosen.pop()


def _solution(tasks: list[str], networks: list[Network], chosen: list[int], budget: float, min_cost: float,
              nodes: int, seconds: float) -> Selection:
    """Each task's best chosen network; networks that serve no task are dropped (same objective, less cost)."""
    chosen = sorted(chosen)
    served: dict[str, tuple[int, float]] = {}
    for task in tasks:
        options = [(networks[k].scores[task], -i) for i, k in enumerate(chosen) if task in networks[k].scores]
        score, i = max(options)
        served[task] = (-i, score)
    used = sorted({i for i, _ in served.values()})
    renumber = {old: new for new, old in enumerate(used)}
    kept = [networks[chosen[i]] for i in used]
    served = {t: (renumber[i], s) for t, (i, s) in served.items()}
    return Selection(budget, list(tasks), kept, served, math.fsum(s for _, s in served.values()),
                     math.fsum(n.cost for n in kept), min_cost, nodes, seconds)


class _deep_recursion:
    """Allow a search as deep as its candidates (Python's default limit is 1000 frames)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __enter__(self) -> None:
        self.before = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.before, self.depth + 200))

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self.before)


# ---------------------------------------------------------------------------------------------- the report
def alone(candidates: Candidates) -> dict[str, float]:
    """Each task's best single-task score (the baseline of training every task alone)."""
    out: dict[str, float] = {}
    for net in candidates.networks:
        if len(net.tasks) == 1:
            t = net.tasks[0]
            out[t] = max(out.get(t, -math.inf), net.scores[t])
    return out


def target(net: Network, serves: Sequence[str] = ()) -> str:
    """The task to train a network for: a measured bench network's own target (its first task, the target its scores
    were measured with); any other network's first served task (in the order of the tasks), the task it was chosen
    for — its first task when it serves none."""
    if net.kind == MEASURED or not serves:
        return net.tasks[0]
    return serves[0]


def command(net: Network, serves: Sequence[str] = ()) -> str:
    """The `mtl run` command that trains a network: :func:`target` the target, the others --aux (in the network's
    order); a bench's network starts from the run options its runs (or its pairs) were started with."""
    parts = ["mtl", "run"]
    if net.options:
        parts += ["--config", net.options]
    chosen = target(net, serves)
    parts += ["--target", chosen]
    aux = [t for t in net.tasks if t != chosen]
    if aux:
        parts += ["--aux", ",".join(aux)]
    return shlex.join(parts)


def options_note(candidates: Candidates) -> str:
    if candidates.kind == "bench":
        return ("Each command starts from the run options of the bench's runs (--config); add -o DIR, and "
                "--weighting/--sampler or --epochs to train differently from the bench.")
    return ("Add your data and training options to each command (--data-dir or --data, --backbone, --epochs, "
            "--weighting, ...) and -o DIR.")


def record(candidates: Candidates, selection: Selection) -> dict[str, Any]:
    """The machine-readable result (`mtl group --json`)."""
    baseline = alone(candidates)
    networks = []
    for i, net in enumerate(selection.networks):
        entry = net.to_dict()
        entry["serves"] = [t for t in selection.tasks if selection.served[t][0] == i]
        entry["command"] = command(net, entry["serves"])
        networks.append(entry)
    served = {t: {"network": "+".join(selection.networks[i].tasks), "score": score, "alone": baseline.get(t)}
              for t, (i, score) in selection.served.items()}
    kinds: dict[str, int] = {}
    for net in candidates.networks:
        kinds[net.kind] = kinds.get(net.kind, 0) + 1
    return {"source": str(candidates.source), "kind": candidates.kind, "budget": selection.budget,
            "tasks": selection.tasks, "metrics": candidates.metrics, "candidates": len(candidates.networks),
            "candidate_kinds": kinds, "min_cost": selection.min_cost, "cost": selection.cost,
            "objective": selection.objective, "alone": math.fsum(baseline.values()),
            "networks": networks, "served": served, "note": options_note(candidates),
            "search": {"nodes": selection.nodes, "seconds": selection.seconds}}


def text(candidates: Candidates, selection: Selection) -> str:
    """The result for a terminal: the chosen networks, each task's served score, the objective, the commands."""
    data = record(candidates, selection)
    kinds = ", ".join(f"{n} {k}" for k, n in data["candidate_kinds"].items())
    head = (f"{len(selection.tasks)} tasks, {data['candidates']} candidate networks ({kinds}) from "
            f"{candidates.source} ({candidates.kind}); budget {selection.budget:g}, cheapest cover "
            f"{selection.min_cost:g}")
    lines = [head, "", "Chosen networks:"]
    name_width = max(len("+".join(n["tasks"])) for n in data["networks"])
    for net in data["networks"]:
        where = net["label"]
        if net["kind"] == APPROXIMATED:
            where = f"{where} (approximated)" if where else "approximated"
        serves = ", ".join(f"{t} {net['scores'][t]:.4f}" for t in net["serves"])
        lines.append(f"  {'+'.join(net['tasks']):<{name_width}}  cost {net['cost']:g}  {where + ': ' if where else ''}"
                     f"serves {serves}")
    lines += ["", "Served scores:"]
    task_width = max(len(t) for t in selection.tasks)
    for task, entry in data["served"].items():
        metric = f" ({candidates.metrics[task]})" if task in candidates.metrics else ""
        alone_score = entry["alone"]
        delta = "" if alone_score is None else f", alone {alone_score:.4f} ({entry['score'] - alone_score:+.4f})"
        lines.append(f"  {task:<{task_width}}  {entry['score']:.4f} by {entry['network']}{delta}{metric}")
    objective = (f"Objective (sum of served scores): {selection.objective:.4f} at cost {selection.cost:g} "
                 f"(every task alone: {data['alone']:.4f})")
    lines += ["", objective, "",
              "Train the chosen networks (target: the first task a network serves; a measured network's own target):"]
    lines += [f"  {n['command']}" for n in data["networks"]]
    lines += [f"  {data['note']}"]
    return "\n".join(lines)
