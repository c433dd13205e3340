"""The bench folder format, owned here as :class:`mtl.runs.folder.RunFolder` owns a run's.

A bench folder holds ``bench.json`` (the plan, each run's record and the table), ``bench.md`` and ``bench.png``,
and per strategy ``<strategy>/run-options.json`` (the options its runs start from) and ``<strategy>/seed-<s>/``
(a run folder) beside its log ``<strategy>/seed-<s>.log``. A ``--pairs`` bench holds ``bench.json`` and
``bench.md`` and one ordinary bench per network in ``<task>/`` or ``<a>+<b>/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mtl.errors import MtlError
from mtl.runs import folder as run_files
from mtl.runs.files import json_safe
from mtl.runs.folder import RunFolder

FORMAT = "mtl-bench/1"
STRATEGY_KEYS = {"label": str, "weighting": str, "sampler": str, "single": bool, "stage": str,
                 "stage_regularizer": (str, type(None))}


def folder_name(label: str) -> str:
    """A strategy's (or network's) folder name: its label with anything but ``A-Za-z0-9_.+-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


class BenchFolder:
    """The files of one bench folder: their names, bench.json read back with its checks, finished runs."""

    FILE = "bench.json"
    MARKDOWN = "bench.md"
    FIGURE = "bench.png"
    RUN_OPTIONS = "run-options.json"  # per strategy: the options file its runs are started with

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"BenchFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BenchFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ------------------------------------------------------------------------------------------ file names
    @property
    def json_path(self) -> Path:
        return self.path / self.FILE

    @property
    def markdown_path(self) -> Path:
        return self.path / self.MARKDOWN

    @property
    def figure_path(self) -> Path:
        return self.path / self.FIGURE

    def strategy_folder(self, label: str) -> Path:
        return self.path / folder_name(label)

    def run_folder(self, label: str, seed: int) -> Path:
        """``<strategy>/seed-<s>``: one run of the bench."""
        return self.strategy_folder(label) / f"seed-{seed}"

    def options_file(self, label: str) -> Path:
        return self.strategy_folder(label) / self.RUN_OPTIONS

    def log_file(self, label: str, seed: int) -> Path:
        """``<strategy>/seed-<s>.log``: what the run printed (beside its folder)."""
        return self.strategy_folder(label) / f"seed-{seed}.log"

    def network(self, tasks: Sequence[str]) -> BenchFolder:
        """A --pairs bench's network: ``<task>`` alone or ``<a>+<b>``, an ordinary bench folder."""
        return BenchFolder(self.path / folder_name("+".join(tasks)))

    # ------------------------------------------------------------------------------------------ bench.json
    def has_record(self) -> bool:
        return self.json_path.is_file()

    def read(self) -> dict[str, Any]:
        """bench.json, its structure checked: a one-line error naming the file when it is not what :meth:`write`
        writes."""
        data = run_files.read_json(self.json_path, "the bench file", missing_ok=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MtlError(f"{self.json_path}: not a bench file of this version of mtl")
        problem = record_problem(data)
        if problem:
            raise MtlError(f"{self.json_path}: a damaged bench file ({problem})")
        return data

    def write(self, record: dict[str, Any]) -> None:
        """bench.json (atomically; a NaN or infinity is written as null)."""
        run_files.write_json(self.json_path, json_safe(record))

    def write_markdown(self, text: str) -> None:
        run_files.write_atomic(self.markdown_path, text.encode("utf-8"))

    def is_pairs(self) -> bool:
        """Whether bench.json is that of a --pairs bench (unchecked: :meth:`read` checks it)."""
        if not self.has_record():
            return False
        data = run_files.read_json(self.json_path, "the bench file")
        return isinstance(data, dict) and bool(data.get("pairs"))

    def existing(self, flag: str = "--output") -> dict[str, Any] | None:
        """The bench.json of a bench to continue here; None when the folder is new or empty; a one-line error when
        it is something else than a bench folder."""
        if self.path.exists() and not self.path.is_dir():
            raise MtlError(f"{flag} {self.path} exists and is not a folder")
        if not self.path.exists() or not any(self.path.iterdir()):
            return None
        if not self.has_record():
            raise MtlError(f"{flag} {self.path} exists and is not a bench folder (no {self.FILE}); choose another "
                           "folder")
        return self.read()

    def record(self) -> dict[str, Any]:
        """bench.json of a bench to report on: one-line errors for no folder, or a folder that is no bench."""
        if not self.path.is_dir():
            raise MtlError(f"{self.path}: no such folder")
        if not self.has_record():
            raise MtlError(f"{self.path}: not a bench folder (no {self.FILE})")
        return self.read()

    def tasks(self) -> list[str]:
        """The bench's tasks in its own order: a --pairs bench's list, else the target then the auxiliary tasks."""
        data = self.record()
        if data.get("pairs"):
            return list(data["tasks"])
        options = data["run_options"]
        return list(dict.fromkeys([options["target"], *options.get("aux", [])]))

    # ------------------------------------------------------------------------------------------ runs
    def finished(self, label: str, seed: int) -> bool:
        """A run is finished when its folder holds eval.json: a bench never runs it again."""
        return RunFolder(self.run_folder(label, seed)).evaluated()

    def unfinished(self, labels: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
        """The (strategy, seed) runs of the grid that are not finished, in the bench's order."""
        return [(label, seed) for label in labels for seed in seeds if not self.finished(label, seed)]

    def finished_runs(self) -> Iterator[RunFolder]:
        """Every finished run below this folder (its networks' too): a folder with eval.json and config.json."""
        for path in sorted(self.path.rglob(run_files.EVAL)):
            run = RunFolder(path.parent)
            if run.config_path.is_file():
                yield run


def record_problem(data: dict[str, Any]) -> str | None:
    """What in a bench.json record does not have the shape a bench writes, or None."""
    strategies = data.get("strategies")
    if not isinstance(strategies, list) or not strategies:
        return "'strategies' must be a non-empty list"
    for strategy in strategies:
        if not isinstance(strategy, dict) or set(strategy) != set(STRATEGY_KEYS):
            return f"each of 'strategies' must be an object with {', '.join(STRATEGY_KEYS)}"
        wrong = [k for k, v in strategy.items() if not isinstance(v, STRATEGY_KEYS[k])]
        if wrong:
            return f"strategy {strategy.get('label')!r}: bad key {wrong[0]!r}"
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        return "'seeds' must be a list of integers"
    options = data.get("run_options")
    if not isinstance(options, dict):
        return "'run_options' must be an object"
    if not data.get("pairs") and not isinstance(options.get("target"), str):
        return "'run_options' must name the bench's target"
    aux = options.get("aux", [])
    if not isinstance(aux, list) or not all(isinstance(a, str) for a in aux):
        return "'run_options' 'aux' must be a list of task names"
    tasks = data.get("tasks")
    if data.get("pairs") and not (isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)
                                  and len(set(tasks)) == len(tasks) >= 2):
        return "'tasks' must be a list of two or more distinct task names"
    for key, kind in (("runs", list), ("table", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            return f"'{key}' must be {'a list' if kind is list else 'an object'}"
    return None
