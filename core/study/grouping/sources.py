"""The sources of `mtl group`'s candidate networks: told apart (:func:`detect`), read and checked (:func:`load`): a
networks file, an affinity file (TAG), or a bench folder (:mod:`.measured`)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from mtl.contract.registry import is_name
from mtl.errors import DataError, MtlError, OptionError, unknown
from mtl.runs import folder as run_files
from mtl.study.bench.folder import BenchFolder
from mtl.study.grouping.measured import higher_order_networks, read_bench
from mtl.study.grouping.networks import (
    AFFINITY,
    GIVEN,
    Candidates,
    Network,
    check_count,
)
from mtl.study.statistics import bounded

KINDS = ("bench", "affinity", "networks")
AFFINITY_FILE = "affinity.json"
NETWORK_KEYS = ("tasks", "scores", "cost", "label")


def detect(path: Path) -> str:
    """The kind of a source: a folder with affinity.json, a bench folder, or a JSON networks/affinity file."""
    path = Path(path)
    if not path.exists():
        raise MtlError(f"unknown source {path}: no such file or folder")
    if path.is_dir():
        if (path / AFFINITY_FILE).is_file():
            return "affinity"
        if BenchFolder(path).has_record():
            return "bench"
        raise MtlError(f"unknown source {path}: a folder with neither {AFFINITY_FILE} (written by mtl affinity) nor "
                       f"{BenchFolder.FILE} (written by mtl bench)")
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
            if bounded(scores[name]) is None:
                raise DataError(f"{where}: the score of {name!r} must be a number within ±1e12 (got {scores[name]!r})")
        cost = entry.get("cost", 1)
        if bounded(cost) is None or cost <= 0:
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
            if bounded(value) is None:
                raise DataError(f"{file}: the affinity of {i!r} onto {j!r} must be a number within ±1e12 "
                                f"(got {value!r})")
            affinity[i, j] = float(value)
    size = len(tasks) if max_size is None else min(max_size, len(tasks))
    check_count(sum(math.comb(len(tasks), k) for k in range(1, size + 1)), size, file)
    networks = []
    for k in range(1, size + 1):
        for group in itertools.combinations(tasks, k):
            scores = {j: math.fsum(affinity[i, j] for i in group if i != j) for j in group}
            networks.append(Network(group, scores, 1.0, "affinity", AFFINITY))
    return Candidates(path, "affinity", tasks, networks)


def check_singles(candidates: Candidates) -> None:
    """Every task needs a network of its own (so that a solution always exists); a one-line error names it."""
    alone = {net.tasks[0] for net in candidates.networks if len(net.tasks) == 1}
    for task in candidates.tasks:
        if task not in alone:
            hint = {"bench": ": train it alone too (`mtl bench --pairs` trains every task alone and in pairs)",
                    "networks": f": add {{\"tasks\": [\"{task}\"], \"scores\": {{\"{task}\": ...}}}}"}
            raise DataError(f"{candidates.source}: no single-task network of {task!r}"
                            f"{hint.get(candidates.kind, '')}")


_MISSING = object()
