"""The plan of a bench: its strategies × seeds as typed runs, each with its folder, options file and command."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.contract import declared
from mtl.errors import MtlError, OptionError
from mtl.runs import folder as run_files
from mtl.study.bench.folder import BenchFolder
from mtl.study.bench.options import differing, given
from mtl.study.bench.strategy import Strategy
from mtl.study.bench.validate import validate_strategies


@dataclass(frozen=True)
class RunPlan:
    """One run of a bench: a strategy and a seed, its folder, the options file it starts from, its log."""

    strategy: Strategy
    seed: int
    folder: Path
    options_file: Path
    log: Path
    parent: Path | None = None  # a stage's run: the folder of the multi-task run it fine-tunes

    @property
    def name(self) -> str:
        return f"{self.strategy.label} seed {self.seed}"

    def command(self, *, overwrite: bool = False) -> list[str]:
        """``python -m mtl.cli run --config DIR/<strategy>/run-options.json --seed S -o DIR/<strategy>/seed-S -q``;
        a staged strategy: ``python -m mtl.cli finetune DIR/<base>/seed-S --config ... -o DIR/<strategy>/seed-S -q``."""
        if self.parent is not None:
            cmd = [sys.executable, "-m", "mtl.cli", "finetune", str(self.parent), "--config", str(self.options_file),
                   "-o", str(self.folder), "-q"]
        else:
            cmd = [sys.executable, "-m", "mtl.cli", "run", "--config", str(self.options_file), "--seed",
                   str(self.seed), "-o", str(self.folder), "-q"]
        return cmd + (["--overwrite"] if overwrite else [])


@dataclass
class BenchPlan:
    """A bench: the run options every run shares, its strategies (the first is the reference) and seeds."""

    output: Path
    base: dict[str, Any]  # the run options given to the bench, shared by every run (no weighting/sampler/seed/output)
    strategies: list[Strategy]
    seeds: list[int]

    @property
    def bench(self) -> BenchFolder:
        return BenchFolder(self.output)

    @property
    def target(self) -> str:
        return self.base["target"]

    def run(self, strategy: Strategy, seed: int) -> RunPlan:
        bench = self.bench
        parent = bench.run_folder(strategy.base_label, seed) if strategy.stage else None
        return RunPlan(strategy, seed, bench.run_folder(strategy.label, seed), bench.options_file(strategy.label),
                       bench.log_file(strategy.label, seed), parent)

    def runs(self) -> list[RunPlan]:
        """Every run of the grid, strategy by strategy, seed by seed."""
        return [self.run(strategy, seed) for strategy in self.strategies for seed in self.seeds]

    def folder(self, strategy: Strategy, seed: int) -> Path:
        return self.run(strategy, seed).folder

    def bases(self) -> list[Strategy]:
        """The multi-task strategies staged strategies fine-tune that are not in the bench themselves."""
        labels = {s.label for s in self.strategies}
        bases = {s.base_label: s.base() for s in self.strategies if s.stage and s.base_label not in labels}
        return list(bases.values())

    def parents(self) -> set[str]:
        """The labels of the multi-task strategies a stage fine-tunes."""
        return {s.base_label for s in self.strategies if s.stage}


Plan = BenchPlan  # the name the Python API and earlier callers use


def bench_options(values: dict[str, Any]) -> dict[str, Any]:
    """The run options given to a bench, with the demo suite when it names no task, as bench.json stores them."""
    base = given(values)
    if not base.get("target"):
        if base.get("aux"):
            raise OptionError("--aux needs a --target (the task the auxiliary tasks help)")
        from mtl.data.suite import use_demo

        use_demo(base)  # the demo suite, with its quick-start defaults where the bench gives none
    return base


def make_plan(base: dict[str, Any], strategies: list[Strategy], seeds: list[int], output: Path) -> BenchPlan:
    """Check everything (names, options, an existing bench folder) before anything is written."""
    base = bench_options(base)
    base.setdefault("aux", [])
    base = declared.use_values(base)  # --tasks-file read into 'declared', declared tasks registered
    memory = base.get("declared") or []  # data given in memory is copied into the bench folder, named there
    if memory:
        base["declared"] = declared.record(memory, Path(output), copy=False)
    base = json.loads(json.dumps(base))  # as stored in bench.json, so a resumed bench compares equal
    validate_strategies(base, strategies)
    plan = BenchPlan(Path(output), base, strategies, seeds)
    _check_existing(plan)
    if memory:
        declared.record(memory, Path(output))
    return plan


def refuse_other_options(out: Path, before: dict[str, Any], now: dict[str, Any]) -> None:
    """A one-line error when the bench in ``out`` was started with run options that change the results."""
    differ = differing(before, now)
    if differ:
        raise MtlError(f"{out} holds a bench with other run options (differing: {', '.join(differ)}); "
                       "its finished runs would not be comparable: choose another --output")


def _check_existing(plan: BenchPlan) -> None:
    out = plan.output
    old = plan.bench.existing()
    if old is None:
        return
    if old.get("pairs"):
        raise MtlError(f"{out} holds a --pairs bench: give --pairs to continue it, or choose another --output")
    refuse_other_options(out, old["run_options"], plan.base)
    known = {s["label"]: s for s in old["strategies"]}
    for strategy in plan.strategies:
        before = known.get(strategy.label)
        if before and (before["weighting"], before["sampler"]) != (strategy.weighting, strategy.sampler):
            raise MtlError(f"{out}: strategy {strategy.label!r} was {before['weighting']}+{before['sampler']} "
                           f"there, now {strategy.weighting}+{strategy.sampler}: choose another --output")


def load_plan(folder: Path) -> BenchPlan:
    """The plan of a bench folder, from its bench.json (nothing is checked or run)."""
    bench = BenchFolder(folder)
    data = bench.record()
    if data.get("pairs"):
        raise MtlError(f"{bench.path} is a --pairs bench: its networks are benches of their own "
                       f"({bench.path}/<task>, {bench.path}/<a>+<b>); see load_pairs_plan")
    return BenchPlan(bench.path, data["run_options"], [Strategy.from_dict(s) for s in data["strategies"]],
                     list(data["seeds"]))


def default_output() -> Path:
    """``bench/<date>-<time>`` (with a suffix when it exists)."""
    return run_files.unique(Path("bench") / time.strftime("%Y%m%d-%H%M%S"))
