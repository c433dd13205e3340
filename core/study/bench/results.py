"""A bench's results: each run's record as stored in its folder, and the tables of a bench and of a --pairs bench
(the statistics themselves are :mod:`mtl.study.statistics`)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtl.contract import loader
from mtl.errors import DataError, MtlError
from mtl.runs import folder as run_files
from mtl.runs.folder import RunFolder
from mtl.study import statistics as stats
from mtl.study.bench.plan import BenchPlan
from mtl.study.bench.strategy import SINGLE, Strategy
from mtl.study.statistics import bounded

if TYPE_CHECKING:
    from mtl.study.bench.pairs import PairsPlan


def read_run(folder: Path) -> dict[str, Any]:
    """A run's eval.json, summary.json and config.json records."""
    run = RunFolder(folder)
    return {"eval": run.eval(), "summary": run.summary(), "config": run.record(missing_ok=True)}


def brief(run: dict[str, Any], target: str) -> str:
    """``target split metric value, ...``: the echo line of a finished run."""
    splits = (run.get("eval") or {}).get(target) or {}
    if not splits:
        return "no target metrics"
    split, metrics = next(iter(splits.items()))
    return f"{target} {split} " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())


def collect(plan: BenchPlan) -> list[dict[str, Any]]:
    """Every run of the plan as stored in its folder; ``status`` is ``finished`` when it has eval.json."""
    runs = []
    for run in plan.runs():
        record = read_run(run.folder) if RunFolder(run.folder).evaluated() else {"eval": None, "summary": None,
                                                                                 "config": None}
        runs.append({"strategy": run.strategy.label, "seed": run.seed, "folder": str(run.folder),
                     "status": "finished" if record["eval"] is not None else "missing",
                     "command": "mtl " + shlex.join(run.command()[3:]), **record})
    return runs


def summarize(target: str, strategies: list[Strategy], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The bench table: per strategy, mean ± sample std over seeds of every metric of the target's first
    evaluation split, the paired difference to the first strategy and its paired t-test p value."""
    finished = [r for r in runs if r["status"] == "finished" and (r["eval"] or {}).get(target)]
    if not finished:
        raise MtlError(f"no finished run has metrics for the target {target!r}")
    split, first = next(iter(finished[0]["eval"][target].items()))
    metrics = list(first)
    selection = (finished[0].get("summary") or {}).get("selection", "")
    primary = selection.removeprefix(f"{target}.{split}.")
    primary = primary if primary in metrics else metrics[0]

    def values(label: str, metric: str) -> dict[int, float]:
        return {r["seed"]: r["eval"][target][split][metric] for r in finished
                if r["strategy"] == label and metric in r["eval"][target].get(split, {})}

    reference = strategies[0].label
    predictions = Predictions(target, split)
    rows = []
    for strategy in strategies:
        own = [r for r in finished if r["strategy"] == strategy.label]
        row: dict[str, Any] = {"strategy": strategy.label, "weighting": strategy.weighting,
                               "sampler": strategy.sampler, "single": strategy.single,
                               "seeds": sorted(r["seed"] for r in own), "n": len(own), "metrics": {}}
        for metric in metrics:
            by_seed = values(strategy.label, metric)
            vals = [by_seed[s] for s in sorted(by_seed)]
            entry: dict[str, Any] = {"values": vals, "mean": stats.mean(vals), "std": stats.sample_std(vals)}
            if strategy.label != reference:
                ref = values(reference, metric)
                paired = sorted(set(by_seed) & set(ref))
                a, b = [by_seed[s] for s in paired], [ref[s] for s in paired]
                entry["paired_seeds"] = paired
                entry["deltas"] = [x - y for x, y in zip(a, b, strict=False)]
                entry["delta"] = stats.mean(entry["deltas"])
                entry["p"] = stats.paired_p(a, b)
                entry["interval"], note = predictions.interval(metric, strategy.label, reference, paired, finished)
                if entry["interval"] is None:
                    entry["interval_note"] = note
            row["metrics"][metric] = entry
        summaries = [r["summary"] or {} for r in own]
        row["train_seconds"] = stats.mean([s["train_seconds"] for s in summaries if "train_seconds" in s])
        row["examples_per_second"] = stats.mean([s["examples_per_second"] for s in summaries
                                                 if "examples_per_second" in s])
        peaks = [s["peak_memory_mb"] for s in summaries if "peak_memory_mb" in s]
        row["peak_memory_mb"] = max(peaks) if peaks else None
        rows.append(row)
    return {"target": target, "split": split, "metrics": metrics, "primary": primary, "reference": reference,
            "rows": rows}


class Predictions:
    """The target's stored predictions of a bench's runs (``predictions.safetensors``), read once each, and the
    paired bootstrap interval of a strategy's difference to the reference."""

    def __init__(self, target: str, split: str) -> None:
        self.key = f"{target}.{split}"
        self.target = target
        self.loaded: dict[str, tuple[Any, str]] = {}
        self.functions: dict[str, Any] = {}

    def of(self, run: dict[str, Any]) -> tuple[Any, str]:
        """(predictions and labels of the target's split, or None, and why not) of one finished run."""
        folder = run["folder"]
        if folder not in self.loaded:
            self.loaded[folder] = self._read(run)
        return self.loaded[folder]

    def _read(self, run: dict[str, Any]) -> tuple[Any, str]:
        name = f"{run['strategy']} seed {run['seed']}"
        try:
            stored = RunFolder(run["folder"]).predictions()
        except MtlError as exc:
            return None, str(exc)
        if stored is None:
            return None, f"{name} has no {run_files.PREDICTIONS} (a run of an older mtl)"
        if self.key not in stored["splits"]:
            return None, f"{name}: {run_files.PREDICTIONS} has no {self.key}"
        best = (run.get("summary") or {}).get("best_step")
        if best is not None and stored["step"] != best:
            return None, f"{name}: {run_files.PREDICTIONS} is of step {stored['step']}, not of the best one ({best})"
        return stored["splits"][self.key], ""

    def metric(self, metric: str):
        """The metric's name where it is vectorised, else the target task's own metric code per resample (always
        for a structured type: its ``f1`` is not the GLUE one, and its examples are rows)."""
        if metric not in self.functions:
            try:
                task = loader.create("task", self.target)
            except MtlError:
                if metric in stats.VECTORISED:  # the GLUE metric, as before the task types
                    return metric
                raise
            if metric in stats.VECTORISED and not task.kind.structured:
                self.functions[metric] = metric
            else:
                self.functions[metric] = lambda p, y: task.compute_metrics(p, y)[metric]
        return self.functions[metric]

    def interval(self, metric: str, label: str, reference: str, seeds: list[int],
                 finished: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
        """The paired bootstrap interval of ``label`` − ``reference`` over ``seeds``, or None and why not."""
        if not seeds:
            return None, "no seed that both ran"
        runs = {(r["strategy"], r["seed"]): r for r in finished}
        mine, theirs, labels = [], [], []
        for seed in seeds:
            a, why = self.of(runs[(label, seed)])
            b, why_ref = self.of(runs[(reference, seed)])
            if a is None or b is None:
                return None, why or why_ref
            if a["labels"].shape != b["labels"].shape or (a["labels"] != b["labels"]).any():
                return None, f"{label} and {reference} seed {seed} were evaluated on different examples"
            mine.append(a["predictions"])
            theirs.append(b["predictions"])
            labels.append(a["labels"])
        try:
            interval = stats.paired_bootstrap(self.metric(metric), mine, theirs, labels)
        except (ValueError, KeyError, MtlError) as exc:
            return None, f"no interval for {metric}: {exc}"
        return {**interval, "paired_seeds": list(seeds)}, ""


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
    if bounded(value) is None:
        raise DataError(f"{where}: {task} {split} {metric} is not a finite number ({value!r})")
    return split, metric, float(value)


def pairs_table(plan: PairsPlan) -> dict[str, Any]:
    """Per strategy and task: its primary metric (the first metric of its first evaluation split) alone and in
    the pair with each other task, the mean over the finished seeds."""
    metrics: dict[str, str] = {}
    scores: dict[str, dict[tuple[str, ...], dict[str, list[float]]]] = {}
    for network in plan.networks:
        for run in collect(network.plan):
            if run["status"] != "finished":
                continue
            for task in network.tasks:
                split, metric, value = primary(run["eval"], task, Path(run["folder"]) / run_files.EVAL)
                metrics.setdefault(task, f"{split} {metric}")
                scores.setdefault(run["strategy"], {}).setdefault(network.tasks, {}).setdefault(task, []).append(value)

    def mean(label: str, network: tuple[str, ...], task: str) -> float | None:
        return stats.mean(scores.get(label, {}).get(network, {}).get(task, []))

    rows = {}
    for strategy in plan.strategies:
        rows[strategy.label] = {
            task: {"alone": mean(SINGLE, (task,), task),
                   "with": {other: mean(strategy.label, _pair(plan.tasks, task, other), task)
                            for other in plan.tasks if other != task}}
            for task in plan.tasks}
    return {"tasks": plan.tasks, "metrics": metrics, "strategies": [s.label for s in plan.strategies],
            "scores": rows}


def _pair(tasks: list[str], a: str, b: str) -> tuple[str, str]:
    return (a, b) if tasks.index(a) < tasks.index(b) else (b, a)
