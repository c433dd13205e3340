"""Running a bench's unfinished runs: each an `mtl run` (or `mtl finetune`) process started through a launcher
(local processes by default), ``jobs`` at once in one schedule (:mod:`mtl.study.schedule`); bench.json is written
before the first run and again as each run ends."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mtl import locks
from mtl.contract import loader
from mtl.contract.launcher import Job, Launcher
from mtl.errors import MtlError, OptionError
from mtl.runs import folder as run_files
from mtl.runs.folder import RunFolder
from mtl.study import schedule
from mtl.study.bench.options import strategy_file
from mtl.study.bench.plan import BenchPlan, RunPlan
from mtl.study.bench.record import write_bench_file
from mtl.study.bench.results import brief, collect, read_run

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Scheduled:
    """A run in the schedule: its bench (``prefix`` names a --pairs bench's network in echo lines), the run, its
    head line, and whether it is one of the bench's runs (a stage's multi-task run is not)."""

    prefix: str
    plan: BenchPlan
    run: RunPlan
    head: str
    counted: bool = True

    def say(self, echo: Echo) -> Echo:
        return (lambda message: echo(f"{self.prefix}: {message}")) if self.prefix else echo


def execute(plan: BenchPlan, echo: Echo = lambda _: None, *, jobs: int = 1,
            launcher: Launcher | None = None) -> list[tuple[str, int]]:
    """Run every unfinished run of the plan, ``jobs`` at once through ``launcher`` (default: local processes, one at
    a time); returns the (strategy, seed) pairs it ran.

    A failed run stops the bench with a one-line error naming the run, its error and its log file (the other running
    runs are stopped first).
    """
    return [(label, seed) for _, label, seed in execute_all([("", plan)], echo, jobs, launcher)]


def execute_all(plans: list[tuple[str, BenchPlan]], echo: Echo, jobs: int,
                launcher: Launcher | None) -> list[tuple[str, str, int]]:
    """The runs of several benches (a --pairs bench's networks, each named for its echo lines) in one schedule;
    returns the (network, strategy, seed) it ran."""
    if launcher is None:
        launcher = make_launcher("local")
    prepared: set[Any] = set()
    executed: list[tuple[str, str, int]] = []

    def start(work: schedule.Work, slot: int):
        item: Scheduled = work.data
        if item.plan.output not in prepared:
            prepared.add(item.plan.output)
            prepare(item.plan)
        run = RunFolder(item.run.folder)
        if item.counted and run.evaluated():
            item.say(echo)(f"{item.head}: finished before, kept ({item.run.folder})")
            return None
        if not item.counted and run.finished():  # a stage's multi-task run, done since the plan was made
            return None
        return _start_one(item, item.say(echo), launcher, launcher.environment(slot, jobs))

    def ended(work: schedule.Work, code: int, seconds: float) -> None:
        item: Scheduled = work.data
        run = item.run
        if code != 0 or not RunFolder(run.folder).evaluated():
            raise MtlError(f"run {run.name} failed (exit {code}): {_last_error(run)} (log: {run.log})")
        item.say(echo)(f"{item.head}: done in {seconds:.1f} s: {brief(read_run(run.folder), item.plan.target)}")
        if item.counted:
            executed.append((item.prefix, run.strategy.label, run.seed))
        write_bench_file(item.plan, collect(item.plan))

    works = [work for prefix, plan in plans for work in _works(prefix, plan)]
    if jobs > len(works) >= 1:  # more slots than runs: the machine's threads go to the runs there are
        jobs = len(works)
    schedule.run(works, launcher, start, ended, jobs=jobs)
    return executed


def prepare(plan: BenchPlan) -> None:
    """The bench folder, each strategy's options file and bench.json, before its first run."""
    plan.output.mkdir(parents=True, exist_ok=True)
    parents = plan.parents()
    for strategy in plan.strategies + plan.bases():
        options = strategy_file(plan.base, strategy, parent=strategy.label in parents)
        run_files.write_json(plan.bench.options_file(strategy.label), options)
    write_bench_file(plan, collect(plan))


def _works(prefix: str, plan: BenchPlan) -> Iterator[schedule.Work]:
    """The plan's runs in order; before a stage whose multi-task run is neither finished nor an earlier run of the
    bench, that run (it does not count as one of the bench's runs)."""
    runs = plan.runs()
    keys: set[str] = set()
    for n, run in enumerate(runs, 1):
        head = f"[{n}/{len(runs)}] {run.name}"
        needs: tuple[str, ...] = ()
        if run.parent is not None:
            base = str(run.parent)
            needs = (base,)
            if base not in keys and not RunFolder(run.folder).evaluated() and not RunFolder(run.parent).finished():
                keys.add(base)
                parent = plan.run(run.strategy.base(), run.seed)
                yield schedule.Work(base, parent.name, data=Scheduled(
                    prefix, plan, parent, f"{head}: its multi-task run {run.strategy.base_label}", counted=False))
        keys.add(str(run.folder))
        yield schedule.Work(str(run.folder), run.name, needs, data=Scheduled(prefix, plan, run, head))


def make_launcher(name: str, options: dict[str, Any] | None = None) -> Launcher:
    """The launcher ``name`` (``--launcher``) built with its options; an unknown name is a one-line error."""
    return loader.create("launcher", name, **(options or {}))


def launcher_options(options: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` options split into the launcher's (keyed by its name or ``launcher``) and the runs' (the rest).
    Options for another launcher are a one-line error: they would be ignored."""
    registry = loader.registry()
    others = set(registry.names("launcher")) - {name}
    for kind in ("weighting", "sampler", "backbone", "task", "regularizer", "tracker"):
        others -= set(registry.names(kind))
    mine: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    for key, values in (options or {}).items():
        if key in others:
            raise OptionError(f"--set {key}.KEY: launcher {key!r} is not used (--launcher {name}); "
                              f"give --launcher {key} or drop these options")
        if key in (name, "launcher"):
            mine.update(values)
        else:
            runs[key] = values
    return mine, runs


def _start_one(item: Scheduled, echo: Echo, launcher: Launcher, env: dict[str, str]):
    """Start one run of the plan (resumed from its checkpoint when it was stopped after one): its Running and log."""
    run = item.run
    interrupted = run.folder.exists()  # no eval.json: started before and stopped
    if interrupted and _resumable(run.folder):  # from its last checkpoint, like `mtl run --resume`
        cmd = [sys.executable, "-m", "mtl.cli", "run", "--resume", str(run.folder), "-q"]
        state = "resuming (stopped before)"
    else:  # stopped before its first checkpoint: from the start
        cmd = run.command(overwrite=interrupted)
        state = "running again (stopped before)" if interrupted else "running"
    echo(f"{item.head}: {state}: mtl {shlex.join(cmd[3:])}")
    # the bench's lock (MTL_LOCKS) lets its runs write inside its folder, on whatever host a launcher starts them
    env = {**env, locks.ENV: os.environ.get(locks.ENV, "")}
    job = Job(name=run.name, command=cmd, log=run.log, folder=run.folder, bench=item.plan.output, env=env)
    return launcher.start(job), str(run.log)


def _resumable(folder) -> bool:
    """A stopped run with its configuration and a listed checkpoint that verifies."""
    run = RunFolder(folder)
    if not run.config_path.is_file() or run.latest_checkpoint() is None:
        return False
    try:
        run.load_checkpoint()
    except MtlError:
        return False
    return True


def _last_error(run: RunPlan) -> str:
    """The last ``Error:`` line of a run's log, else its last line."""
    try:
        text = run.log.read_text(encoding="utf-8", errors="replace")
    except OSError:  # a job that never started (a launcher's failure)
        return "no output"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["no output"])[-1]
