"""Comparing strategies (`mtl bench`, `mtl report`): a grid of runs over seeds and the table of their results.

A *strategy* is a weighting, a weighting with a sampler, or ``single`` (the target alone: the single-task
baseline). Every run of the grid is a separate ``mtl run`` process writing ``DIR/<strategy>/seed-<s>/``, so
runs are isolated and each reports its own peak memory; a run whose folder holds ``eval.json`` is finished
and never run again, so a stopped bench continues where it stopped.

The table gives, per strategy, the mean ± sample standard deviation (ddof = 1) over seeds of every metric
of the target's first evaluation split, and the paired difference Δ to the *first* strategy (the reference) over
the seeds both ran, with its paired bootstrap 95 % interval over the evaluation examples
(:func:`mtl.study.statistics.paired_bootstrap`: 2,000 resamples of the dev examples, the same resample for the
strategy and the reference in every seed, the difference averaged over seeds) from each run's
``predictions.safetensors``; an interval that excludes 0 is marked ``*``. A run without that file (written by an
older mtl) leaves the interval "n/a". bench.json also keeps the paired t-test across seeds
(``scipy.stats.ttest_rel``; fewer than two pairs: no p value). bench.png draws each strategy's Δ with its interval
and each seed's difference.

With ``--pairs`` (:func:`make_pairs_plan`) a bench trains every task alone (``single``) and every pair of its
tasks with each multi-task strategy, one ordinary bench per network in ``DIR/<task>/`` and ``DIR/<a>+<b>/`` (the
pair's target is the task listed first); ``DIR/bench.json`` lists them with the table of each task's primary
metric alone and with each partner, the scores ``mtl group`` chooses networks from.

Nothing here imports torch; scipy and matplotlib are imported when the table and the figure are made.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from mtl.contract.launcher import Launcher
from mtl.errors import MtlError, OptionError, UnknownNameError, unknown
from mtl.runs import folder as run_files
from mtl.runs.folder import RunFolder
from mtl.study import statistics as stats

FORMAT = "mtl-bench/1"
BENCH_FILE = "bench.json"
SINGLE = "single"
RUN_OPTIONS = "run-options.json"  # per strategy: the options file its runs are started with
# run options the bench sets itself, per strategy and seed
BENCH_KEYS = ("weighting", "sampler", "seed", "output")


FINETUNE = "finetune"


@dataclass(frozen=True)
class Strategy:
    label: str  # as written: "single", "mamt", "mamt+adaptive", "uniform>finetune:smart"; also the folder name
    weighting: str
    sampler: str
    single: bool = False
    stage: str = ""  # "finetune": each seed's run of the base strategy fine-tuned on the target (mtl finetune)
    stage_regularizer: str | None = None  # the fine-tuning stage's --regularizer

    @property
    def base_label(self) -> str:
        """The multi-task strategy a staged strategy fine-tunes (itself for one without a stage)."""
        return self.label.partition(">")[0]

    def base(self) -> "Strategy":
        return Strategy(self.base_label, self.weighting, self.sampler, self.single)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- the grid
def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (distinct, in the given order)."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            seed = int(part)
        except ValueError:
            raise OptionError(f"--seeds {text!r}: expected integers separated by commas, e.g. --seeds 0,1,2") from None
        if seed < 0:
            raise OptionError(f"--seeds {text!r}: seeds must be >= 0 (got {seed})")
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise OptionError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    return seeds


def _check(kind: str, name: str) -> None:
    from mtl.contract import loader

    registry = loader.registry()
    registry.check()
    registry.get(kind, name)  # UnknownNameError with the valid names and the closest ones


def parse_strategies(specs: list[str], weightings: list[str], samplers: list[str], *,
                     base_weighting: str = "uniform", base_sampler: str = "proportional") -> list[Strategy]:
    """The strategies of a bench, in order: each ``--strategy`` SPEC, then the grid ``--weighting × --sampler``.

    SPEC is ``single``, ``WEIGHTING`` (with the run's sampler) or ``WEIGHTING+SAMPLER``. With only
    ``--sampler``, the grid crosses the run's weighting with each sampler. Every name is checked here,
    before anything runs.
    """
    from mtl.contract import loader

    weighting_names = loader.available("weighting")
    out: list[Strategy] = []

    def add(strategy: Strategy) -> None:
        if all(s.label != strategy.label for s in out):
            out.append(strategy)

    for spec in specs:
        spec = spec.strip()
        if ">" in spec:
            add(_staged(spec, base_sampler))
            continue
        if spec == SINGLE:
            add(Strategy(SINGLE, "uniform", "proportional", single=True))
            continue
        parts = spec.split("+")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise UnknownNameError(f"unknown strategy {spec!r}: expected single, WEIGHTING or WEIGHTING+SAMPLER "
                                   f"(e.g. mamt+adaptive)")
        weighting = parts[0].strip()
        if len(parts) == 1 and weighting not in weighting_names:
            try:
                _check("weighting", weighting)
            except UnknownNameError:
                raise UnknownNameError(unknown("strategy", weighting, [SINGLE, *weighting_names])
                                       + "; or WEIGHTING+SAMPLER") from None
        _check("weighting", weighting)
        if len(parts) == 2:
            sampler = parts[1].strip()
            _check("sampler", sampler)
            add(Strategy(f"{weighting}+{sampler}", weighting, sampler))
        else:
            add(Strategy(weighting, weighting, base_sampler))
    for name in weightings:
        _check("weighting", name)
    for name in samplers:
        _check("sampler", name)
    if weightings and samplers:
        for w in weightings:
            for s in samplers:
                add(Strategy(f"{w}+{s}", w, s))
    elif weightings:
        for w in weightings:
            add(Strategy(w, w, base_sampler))
    elif samplers:
        for s in samplers:
            add(Strategy(f"{base_weighting}+{s}", base_weighting, s))
    if not out:
        raise OptionError("nothing to compare: give --strategy SPEC, --weighting a,b and/or --sampler x,y")
    return out


def _staged(spec: str, base_sampler: str) -> Strategy:
    """``SPEC>finetune`` or ``SPEC>finetune:REGULARIZER``: SPEC's run of each seed, then `mtl finetune` of it."""
    base_spec, _, stage = (part.strip() for part in spec.partition(">"))
    name, _, regularizer = (part.strip() for part in stage.partition(":"))
    if name != FINETUNE or ">" in stage or (":" in stage and not regularizer):
        raise UnknownNameError(f"unknown strategy {spec!r}: a stage is written SPEC>finetune or "
                               f"SPEC>finetune:REGULARIZER (e.g. siwlm>finetune, uniform>finetune:smart)")
    if base_spec == SINGLE or not base_spec:
        raise OptionError(f"strategy {spec!r}: fine-tuning needs a multi-task strategy before '>' (not single)")
    base = parse_strategies([base_spec], [], [], base_sampler=base_sampler)[0]
    if regularizer:
        _check("regularizer", regularizer)
    return Strategy(spec.replace(" ", ""), base.weighting, base.sampler, stage=FINETUNE,
                    stage_regularizer=regularizer or None)


def folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


def strategy_values(base: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
    """The `mtl run` options of one strategy's runs (without seed and output).

    Plugin options (``--set mamt.psi=0.5``) meant for a weighting, sampler or task that this strategy does
    not use are left out, so one bench can hold options for several strategies.
    """
    from mtl.contract import loader

    values = {k: v for k, v in base.items() if k not in BENCH_KEYS}
    values["weighting"], values["sampler"] = strategy.weighting, strategy.sampler
    if strategy.single:
        values["aux"] = []
    tasks = [values.get("target")] + [t for t in values.get("aux") or []]
    unused = (set(loader.available("weighting")) | set(loader.available("sampler")) | set(base.get("aux") or [])
              | set(loader.available("regularizer"))) - {strategy.weighting, strategy.sampler, values.get("regularizer"),
                                                          *tasks}
    values["options"] = {k: v for k, v in (base.get("options") or {}).items()
                         if k in ("weighting", "sampler", "backbone") or k not in unused}
    if values.get("data"):  # --data of the tasks this strategy trains (TASK=FOLDER or TASK.SPLIT=FILE)
        values["data"] = {k: v for k, v in values["data"].items() if k.partition(".")[0] in tasks}
    if values.get("task_limits"):  # --task-limit of the tasks this strategy trains
        values["task_limits"] = {k: v for k, v in values["task_limits"].items() if k in tasks}
    if values.get("teachers"):  # --teacher goes to every run that has the task (single drops the aux tasks)
        values["teachers"] = {k: v for k, v in values["teachers"].items()
                              if k in tasks or k not in (base.get("aux") or [])}
    return values


def stage_values(base: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
    """The `mtl finetune` options of a staged strategy: its regularizer and that regularizer's options (and the
    bench's --keep, which its multi-task run may not have: :func:`parent_values`)."""
    regularizer = strategy.stage_regularizer
    options = {k: v for k, v in (base.get("options") or {}).items() if regularizer and k in (regularizer, "regularizer")}
    return {"regularizer": regularizer, "options": options} | ({"keep": base["keep"]} if "keep" in base else {})


def parent_values(values: dict[str, Any]) -> dict[str, Any]:
    """The run options of a multi-task run a ``>finetune`` stage starts from: with ``--keep none`` it keeps its best
    model (``--keep model``) for the stage; the stage itself keeps what the bench's --keep says."""
    return values | {"keep": "model"} if values.get("keep") == "none" else values


def validate(values: dict[str, Any]) -> None:
    """Everything `mtl run` would reject about names and options, without loading data or a model."""
    from mtl.contract import loader
    from mtl.runs.config import RunConfig
    from mtl.training import tracking

    try:
        config = RunConfig(**values)
    except TypeError as exc:
        raise MtlError(f"invalid run options: {exc}") from None
    config.validate()
    for name in config.tasks:
        _check("task", name)
    routed = config.plugin_options()
    loader.check("backbone", config.backbone, **routed.get(("backbone", config.backbone), {}))
    loader.create("weighting", config.weighting, **routed.get(("weighting", config.weighting), {}))
    loader.create("sampler", config.sampler, **routed.get(("sampler", config.sampler), {}))
    if config.regularizer:
        loader.create("regularizer", config.regularizer, **routed.get(("regularizer", config.regularizer), {}))
    tasks = {name: loader.create("task", name, **routed.get(("task", name), {})) for name in config.tasks}
    trackers = tracking.resolve(config.report_to)  # built, not started: a missing package is an error here
    tracking.create(trackers, {name: routed.get(("tracker", name), {}) for name in trackers}, enabled=False)
    if config.teachers:  # each teacher folder, its task and labels (not its data size: the run checks that)
        from mtl.training import distill

        distill.check_teachers(config, tasks)
    if config.data_dir and not Path(config.data_dir).is_dir():
        raise MtlError(f"--data-dir {config.data_dir}: no such folder")
    for key, path in config.data.items():
        if not Path(path).exists():
            raise MtlError(f"--data {key}={path}: no such file or folder")


# ---------------------------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    output: Path
    base: dict[str, Any]  # the run options shared by every run (no weighting, sampler, seed, output)
    strategies: list[Strategy]
    seeds: list[int]

    @property
    def target(self) -> str:
        return self.base["target"]

    def folder(self, strategy: Strategy, seed: int) -> Path:
        return self.output / folder_name(strategy.label) / f"seed-{seed}"

    def options_file(self, strategy: Strategy) -> Path:
        return self.output / folder_name(strategy.label) / RUN_OPTIONS

    def command(self, strategy: Strategy, seed: int, *, overwrite: bool = False) -> list[str]:
        """``python -m mtl.cli run --config DIR/<strategy>/run-options.json --seed S -o DIR/<strategy>/seed-S -q``;
        a staged strategy: ``python -m mtl.cli finetune DIR/<base>/seed-S --config ... -o DIR/<strategy>/seed-S -q``."""
        if strategy.stage:
            cmd = [sys.executable, "-m", "mtl.cli", "finetune", str(self.folder(strategy.base(), seed)), "--config",
                   str(self.options_file(strategy)), "-o", str(self.folder(strategy, seed)), "-q"]
        else:
            cmd = [sys.executable, "-m", "mtl.cli", "run", "--config", str(self.options_file(strategy)),
                   "--seed", str(seed), "-o", str(self.folder(strategy, seed)), "-q"]
        return cmd + (["--overwrite"] if overwrite else [])

    def bases(self) -> list[Strategy]:
        """The multi-task strategies staged strategies fine-tune that are not in the bench themselves."""
        labels = {s.label for s in self.strategies}
        return list({s.base_label: s.base() for s in self.strategies if s.stage and s.base_label not in labels}.values())


def make_plan(base: dict[str, Any], strategies: list[Strategy], seeds: list[int], output: Path) -> Plan:
    """Check everything (names, options, an existing bench folder) before anything is written."""
    base = {k: v for k, v in base.items() if k not in BENCH_KEYS and v is not None}
    if not base.get("target"):
        if base.get("aux"):
            raise OptionError("--aux needs a --target (the task the auxiliary tasks help)")
        from mtl.data.suite import use_demo

        use_demo(base)  # the demo suite, with its quick-start defaults where the bench gives none
    base.setdefault("aux", [])
    _check_task_limits(base)
    base = json.loads(json.dumps(base))  # as stored in bench.json, so a resumed bench compares equal
    from mtl.training import finetune

    for strategy in strategies:
        validate(strategy_values(base, strategy))
        if strategy.stage:  # the fine-tuning stage's options
            values = finetune.target_alone(strategy_values(base, strategy))
            stage = stage_values(base, strategy)
            validate(values | stage | {"options": {**values["options"], **stage["options"]}})
    plan = Plan(output, base, strategies, seeds)
    _check_existing(plan)
    return plan


def _check_task_limits(base: dict[str, Any]) -> None:
    """A --limit TASK=N of a task the bench does not train is a mistake (each run gets only its own tasks' limits,
    so no run would report it)."""
    tasks = [base["target"], *(base.get("aux") or [])]
    for task, value in (base.get("task_limits") or {}).items():
        if task not in tasks:
            raise OptionError(f"--limit {task}={value}: task {task!r} is not in this run ({', '.join(tasks)})")


# run options that change what a finished run keeps on disk, not what it computes: a bench continues with other ones
NEUTRAL_OPTIONS = ("keep",)


def _refuse_other_options(out: Path, before: dict[str, Any], now: dict[str, Any]) -> None:
    """A one-line error when the bench in ``out`` was started with run options that change the results."""
    keys = sorted((set(before) | set(now)) - set(NEUTRAL_OPTIONS))
    differ = [k for k in keys if before.get(k) != now.get(k)]
    if differ:
        raise MtlError(f"{out} holds a bench with other run options (differing: {', '.join(differ)}); "
                       "its finished runs would not be comparable: choose another --output")


def _check_existing(plan: Plan) -> None:
    out = plan.output
    if out.exists() and not out.is_dir():
        raise MtlError(f"--output {out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    path = out / BENCH_FILE
    if not path.exists():
        raise MtlError(f"--output {out} exists and is not a bench folder (no {BENCH_FILE}); choose another folder")
    old = read_bench_file(out)
    if old.get("pairs"):
        raise MtlError(f"{out} holds a --pairs bench: give --pairs to continue it, or choose another --output")
    _refuse_other_options(out, old.get("run_options", {}), plan.base)
    known = {s["label"]: s for s in old.get("strategies", [])}
    for strategy in plan.strategies:
        before = known.get(strategy.label)
        if before and (before["weighting"], before["sampler"]) != (strategy.weighting, strategy.sampler):
            raise MtlError(f"{out}: strategy {strategy.label!r} was {before['weighting']}+{before['sampler']} "
                           f"there, now {strategy.weighting}+{strategy.sampler}: choose another --output")


def default_output() -> Path:
    return run_files.unique(Path("bench") / time.strftime("%Y%m%d-%H%M%S"))


# ---------------------------------------------------------------------------------------------- running
def execute(plan: Plan, echo: Callable[[str], None] = lambda _: None, *, jobs: int = 1,
            launcher: Launcher | None = None) -> list[tuple[str, int]]:
    """Run every unfinished run of the plan, ``jobs`` at once through ``launcher`` (default: local processes, one at
    a time); returns the (strategy, seed) pairs it ran.

    A failed run stops the bench with a one-line error naming the run, its error and its log file (the other running
    runs are stopped first).
    """
    return [(label, seed) for _, label, seed in _execute([("", plan)], echo, jobs, launcher)]


def _execute(plans: list[tuple[str, Plan]], echo: Callable[[str], None], jobs: int,
             launcher: Launcher | None) -> list[tuple[str, str, int]]:
    """The runs of several benches (a --pairs bench's networks, each named for its echo lines) in one schedule."""
    from mtl.study import schedule

    if launcher is None:
        launcher = make_launcher("local")
    prepared: set[Path] = set()
    executed: list[tuple[str, str, int]] = []

    def say(prefix: str) -> Callable[[str], None]:
        return (lambda message: echo(f"{prefix}: {message}")) if prefix else echo

    def start(work: schedule.Work, slot: int):
        prefix, plan, strategy, seed, head, counted = work.data
        if plan.output not in prepared:
            prepared.add(plan.output)
            _prepare(plan)
        folder = plan.folder(strategy, seed)
        if counted and RunFolder(folder).evaluated():
            say(prefix)(f"{head}: finished before, kept ({folder})")
            return None
        if not counted and RunFolder(folder).finished():  # a stage's multi-task run, done since the plan was made
            return None
        return _start_one(plan, strategy, seed, head, say(prefix), launcher, launcher.environment(slot, jobs))

    def ended(work: schedule.Work, code: int, seconds: float) -> None:
        prefix, plan, strategy, seed, head, counted = work.data
        folder = plan.folder(strategy, seed)
        log = _log_file(folder)
        if code != 0 or not RunFolder(folder).evaluated():
            raise MtlError(f"run {strategy.label} seed {seed} failed (exit {code}): {_last_error(log)} (log: {log})")
        say(prefix)(f"{head}: done in {seconds:.1f} s: {_brief(_read_run(folder), plan.target)}")
        if counted:
            executed.append((prefix, strategy.label, seed))
        write_bench_file(plan, collect(plan))

    works = [work for prefix, plan in plans for work in _works(prefix, plan)]
    if jobs > len(works) >= 1:  # more slots than runs: the machine's threads go to the runs there are
        jobs = len(works)
    schedule.run(works, launcher, start, ended, jobs=jobs)
    return executed


def _prepare(plan: Plan) -> None:
    """The bench folder, each strategy's options file and bench.json, before its first run."""
    plan.output.mkdir(parents=True, exist_ok=True)
    parents = {s.base_label for s in plan.strategies if s.stage}
    for strategy in plan.strategies + plan.bases():
        options = stage_values(plan.base, strategy) if strategy.stage else strategy_values(plan.base, strategy)
        if strategy.label in parents:
            options = parent_values(options)
        run_files.write_json(plan.options_file(strategy), options)
    write_bench_file(plan, collect(plan))


def _works(prefix: str, plan: Plan):
    """The plan's runs in order; before a stage whose multi-task run is neither finished nor an earlier run of the
    bench, that run (it does not count as one of the bench's runs)."""
    from mtl.study.schedule import Work

    total = len(plan.strategies) * len(plan.seeds)
    keys: set[str] = set()
    n = 0
    for strategy in plan.strategies:
        for seed in plan.seeds:
            n += 1
            head = f"[{n}/{total}] {strategy.label} seed {seed}"
            key = str(plan.folder(strategy, seed))
            needs: tuple[str, ...] = ()
            if strategy.stage:
                base = str(plan.folder(strategy.base(), seed))
                needs = (base,)
                if (base not in keys and not RunFolder(plan.folder(strategy, seed)).evaluated()
                        and not RunFolder(base).finished()):
                    keys.add(base)
                    yield Work(base, f"{strategy.base_label} seed {seed}",
                               data=(prefix, plan, strategy.base(), seed,
                                     f"{head}: its multi-task run {strategy.base_label}", False))
            keys.add(key)
            yield Work(key, f"{strategy.label} seed {seed}", needs, data=(prefix, plan, strategy, seed, head, True))


def make_launcher(name: str, options: dict[str, Any] | None = None) -> Launcher:
    """The launcher ``name`` (``--launcher``) built with its options; an unknown name is a one-line error."""
    from mtl.contract import loader

    return loader.create("launcher", name, **(options or {}))


def launcher_options(options: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` options split into the launcher's (keyed by its name or ``launcher``) and the runs' (the rest).
    Options for another launcher are a one-line error: they would be ignored."""
    from mtl.contract import loader

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


def _log_file(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.log")


def _start_one(plan: Plan, strategy: Strategy, seed: int, head: str, echo: Callable[[str], None],
               launcher: Launcher, env: dict[str, str]):
    """Start one run of the plan (resumed from its checkpoint when it was stopped after one): its Running and log."""
    from mtl.contract.launcher import Job

    folder = plan.folder(strategy, seed)
    interrupted = folder.exists()  # no eval.json: started before and stopped
    if interrupted and _resumable(folder):  # from its last checkpoint, like `mtl run --resume`
        cmd = [sys.executable, "-m", "mtl.cli", "run", "--resume", str(folder), "-q"]
        state = "resuming (stopped before)"
    else:  # stopped before its first checkpoint: from the start
        cmd = plan.command(strategy, seed, overwrite=interrupted)
        state = "running again (stopped before)" if interrupted else "running"
    echo(f"{head}: {state}: mtl {shlex.join(cmd[3:])}")
    log = _log_file(folder)
    job = Job(name=f"{strategy.label} seed {seed}", command=cmd, log=log, folder=folder, bench=plan.output, env=env)
    return launcher.start(job), str(log)


def _resumable(folder: Path) -> bool:
    """A stopped run with its configuration and a listed checkpoint that verifies."""
    run = RunFolder(folder)
    if not run.config_path.is_file() or run.latest_checkpoint() is None:
        return False
    try:
        run.load_checkpoint()
    except MtlError:
        return False
    return True


def _last_error(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:  # a job that never started (a launcher's failure)
        return "no output"
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("Error:")]
    return (errors or lines or ["no output"])[-1]


def _brief(run: dict[str, Any], target: str) -> str:
    splits = (run.get("eval") or {}).get(target) or {}
    if not splits:
        return "no target metrics"
    split, metrics = next(iter(splits.items()))
    return f"{target} {split} " + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())


# ---------------------------------------------------------------------------------------------- results
def _read_run(folder: Path) -> dict[str, Any]:
    run = RunFolder(folder)
    return {"eval": run.eval(), "summary": run.summary(), "config": run.record(missing_ok=True)}


def collect(plan: Plan) -> list[dict[str, Any]]:
    """Every run of the plan as stored in its folder; ``status`` is ``finished`` when it has eval.json."""
    runs = []
    for strategy in plan.strategies:
        for seed in plan.seeds:
            folder = plan.folder(strategy, seed)
            run = _read_run(folder) if RunFolder(folder).evaluated() else {"eval": None, "summary": None,
                                                                              "config": None}
            runs.append({"strategy": strategy.label, "seed": seed, "folder": str(folder),
                         "status": "finished" if run["eval"] is not None else "missing",
                         "command": "mtl " + shlex.join(plan.command(strategy, seed)[3:]), **run})
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
    predictions = _Predictions(target, split)
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
                entry["deltas"] = [x - y for x, y in zip(a, b)]
                entry["delta"] = stats.mean(entry["deltas"])
                entry["p"] = stats.paired_p(a, b)
                entry["interval"], note = predictions.interval(metric, strategy.label, reference, paired, finished)
                if entry["interval"] is None:
                    entry["interval_note"] = note
            row["metrics"][metric] = entry
        summaries = [r["summary"] or {} for r in own]
        row["train_seconds"] = stats.mean([s["train_seconds"] for s in summaries if "train_seconds" in s])
        row["examples_per_second"] = stats.mean([s["examples_per_second"] for s in summaries if "examples_per_second" in s])
        peaks = [s["peak_memory_mb"] for s in summaries if "peak_memory_mb" in s]
        row["peak_memory_mb"] = max(peaks) if peaks else None
        rows.append(row)
    return {"target": target, "split": split, "metrics": metrics, "primary": primary, "reference": reference,
            "rows": rows}


class _Predictions:
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
        """The metric's name where it is vectorised, else the target task's own metric code per resample."""
        if metric in stats.VECTORISED:
            return metric
        if metric not in self.functions:
            from mtl.contract import loader

            task = loader.create("task", self.target)
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


# ---------------------------------------------------------------------------------------------- the table
def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names and cells, shared by the terminal table and bench.md."""
    ref = table["reference"]
    header = ["strategy", "seeds"]
    for metric in table["metrics"]:
        header += [metric, f"Δ {metric} [95% CI]"]
    header += ["train s", "examples/s", "peak MB"]
    rows = []
    for row in table["rows"]:
        cells = [row["strategy"], str(row["n"])]
        for metric in table["metrics"]:
            m = row["metrics"][metric]
            if m["mean"] is None:
                cells.append("-")
            else:
                std = "-" if len(m["values"]) < 2 else _num(m["std"])
                cells.append(f"{_num(m['mean'])} ± {std}")
            if row["strategy"] == ref:
                cells.append("(reference)")
            elif m.get("delta") is None:
                cells.append("-")
            else:
                cells.append(f"{m['delta']:+.4f} {interval_text(m.get('interval'))}")
        cells += [_num(row["train_seconds"], 1), _num(row["examples_per_second"], 1),
                  _num(row["peak_memory_mb"], 0)]
        rows.append(cells)
    return header, rows


def interval_text(interval: dict[str, Any] | None) -> str:
    """``[-0.0123, +0.0456]``, with `` *`` when it excludes 0; ``[n/a]`` without one."""
    if not interval:
        return "[n/a]"
    return f"[{interval['low']:+.4f}, {interval['high']:+.4f}]" + (" *" if interval["excludes_zero"] else "")


def title(table: dict[str, Any]) -> str:
    return f"{table['target']} ({table['split']}): mean ± std over seeds"


def caption(table: dict[str, Any]) -> str:
    return (f"Δ: mean paired difference to {table['reference']} (the first strategy) over seeds; [95% CI]: paired "
            f"bootstrap over the dev examples ({stats.RESAMPLES} resamples); *: the interval excludes 0; "
            f"n/a: a run without {run_files.PREDICTIONS}")


def markdown(bench: dict[str, Any]) -> str:
    table = bench["table"]
    header, rows = table_rows(table)
    aux = ", ".join(f"`{a}`" for a in bench.get("aux") or []) or "none"
    options = bench.get("run_options", {})
    lines = [
        f"# mtl bench: {table['target']}",
        "",
        f"Target `{table['target']}` (metrics of its `{table['split']}` split), auxiliary tasks {aux}; "
        f"backbone `{options.get('backbone', 'minilm')}`; seeds {', '.join(map(str, bench.get('seeds', [])))}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(cells) + " |" for cells in rows),
        "",
        f"Mean ± sample standard deviation (ddof = 1) over seeds; Δ is the mean paired difference to "
        f"`{table['reference']}` (the first strategy) over the seeds both ran, with its paired bootstrap 95 % "
        f"interval: {stats.RESAMPLES} resamples of the `{table['split']}` examples (seed {stats.BOOTSTRAP_SEED}), "
        f"each scored for the strategy and the reference on the same examples in every seed, the difference "
        f"averaged over seeds, percentiles 2.5 and 97.5. `*`: the interval excludes 0. n/a: a run has no "
        f"`{run_files.PREDICTIONS}` (older runs). The interval covers the choice of evaluation examples, not "
        f"the spread over seeds (mean ± std); bench.json also holds the paired t-test over seeds (`p`). Train s "
        f"and examples/s are means over seeds (training only, no evaluation); peak MB is the largest peak "
        f"resident memory of a run.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- bench files
def read_bench_file(folder: Path) -> dict[str, Any]:
    """A bench folder's bench.json, its structure checked (what a bench reads back from it)."""
    data = run_files.read_json(folder / BENCH_FILE, "the bench file", missing_ok=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MtlError(f"{folder / BENCH_FILE}: not a bench file of this version of mtl")
    problem = _bench_file_problem(data)
    if problem:
        raise MtlError(f"{folder / BENCH_FILE}: a damaged bench file ({problem})")
    return data


def _bench_file_problem(data: dict[str, Any]) -> str | None:
    """What in a bench.json record does not have the shape :func:`bench_record` / :func:`pairs_record` write."""
    fields = {"label": str, "weighting": str, "sampler": str, "single": bool, "stage": str,
              "stage_regularizer": (str, type(None))}
    strategies = data.get("strategies")
    if not isinstance(strategies, list) or not strategies:
        return "'strategies' must be a non-empty list"
    for strategy in strategies:
        if not isinstance(strategy, dict) or not {"label", "weighting", "sampler"} <= set(strategy):
            return "each of 'strategies' must be an object with label, weighting and sampler"
        wrong = [k for k, v in strategy.items() if k not in fields or not isinstance(v, fields[k])]
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
    if data.get("pairs") and not (isinstance(data.get("tasks"), list) and all(isinstance(t, str) for t in data["tasks"])
                                  and len(set(data["tasks"])) == len(data["tasks"]) >= 2):
        return "'tasks' must be a list of two or more distinct task names"
    for key, kind in (("runs", list), ("table", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            return f"'{key}' must be {'a list' if kind is list else 'an object'}"
    return None


def bench_record(plan: Plan, runs: list[dict[str, Any]], table: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "target": plan.target,
            "aux": plan.base.get("aux", []), "seeds": plan.seeds,
            "strategies": [s.to_dict() for s in plan.strategies], "run_options": plan.base,
            "runs": runs, "table": table}


def write_bench_file(plan: Plan, runs: list[dict[str, Any]], table: dict[str, Any] | None = None) -> dict:
    record = bench_record(plan, runs, table)
    run_files.write_json(plan.output / BENCH_FILE, _json_safe(record))
    return record


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def finish(plan: Plan) -> dict[str, Any]:
    """bench.json (runs and table), bench.md and bench.png from the plan's run folders."""
    runs = collect(plan)
    table = summarize(plan.target, plan.strategies, runs)
    record = write_bench_file(plan, runs, table)
    run_files.write_atomic(plan.output / "bench.md", markdown(record).encode("utf-8"))
    from mtl.study.figures import bench_figure

    bench_figure(table, plan.output / "bench.png", seeds=len(plan.seeds))
    return record


def load_plan(folder: Path) -> Plan:
    """The plan of a bench folder: from its bench.json, else from its run folders (``<strategy>/seed-<s>``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MtlError(f"{folder}: no such folder")
    if (folder / BENCH_FILE).exists():
        data = read_bench_file(folder)
        if data.get("pairs"):
            raise MtlError(f"{folder} is a --pairs bench: its networks are benches of their own "
                           f"({folder}/<task>, {folder}/<a>+<b>); see load_pairs_plan")
        strategies = [Strategy(**s) for s in data["strategies"]]
        return Plan(folder, data["run_options"], strategies, list(data["seeds"]))
    found: dict[str, dict[str, Any]] = {}
    seeds: set[int] = set()
    for config_path in sorted(folder.glob(f"*/seed-*/{run_files.CONFIG}")):
        run = config_path.parent
        if not RunFolder(run).evaluated():
            continue
        config = RunFolder(run).record()
        seeds.add(int(config.get("seed", run.name.removeprefix("seed-"))))
        found.setdefault(run.parent.name, config)
    if not found:
        raise MtlError(f"{folder}: not a bench folder (no {BENCH_FILE} and no finished <strategy>/seed-<n> runs)")
    labels = sorted(found, key=lambda label: (label != SINGLE, label))
    strategies = [Strategy(label, found[label]["weighting"], found[label]["sampler"],
                           single=not found[label].get("aux") and not found[label].get("parent"),
                           stage=FINETUNE if found[label].get("parent") else "",
                           stage_regularizer=found[label].get("regularizer") if found[label].get("parent") else None)
                  for label in labels]
    first = found[labels[0]]
    base = {k: v for k, v in first.items() if k in _run_fields() and k not in BENCH_KEYS}
    multi = next((c for c in found.values() if c.get("aux")), None)
    base["aux"] = list(multi["aux"]) if multi else []
    return Plan(folder, base, strategies, sorted(seeds))


def _run_fields() -> set[str]:
    from mtl.runs.config import FIELD_NAMES

    return FIELD_NAMES


# ---------------------------------------------------------------------------------------------- --pairs
@dataclass
class PairsPlan:
    """A --pairs bench: every task alone and every pair of tasks, each network an ordinary bench of its own."""

    output: Path
    base: dict[str, Any]  # the run options shared by every run (no target, aux, weighting, sampler, seed, output)
    tasks: list[str]
    strategies: list[Strategy]  # the pairs' multi-task strategies (the single-task runs are ``single``)
    seeds: list[int]
    plans: list[tuple[tuple[str, ...], Plan]]  # each network's tasks (target first) and its bench

    @property
    def runs(self) -> int:
        return sum(len(plan.strategies) * len(plan.seeds) for _, plan in self.plans)


def network_folder(tasks: tuple[str, ...]) -> str:
    """``rte`` for a task alone, ``rte+mrpc`` for a pair."""
    return folder_name("+".join(tasks))


def make_pairs_plan(base: dict[str, Any], strategies: list[Strategy], seeds: list[int], output: Path) -> PairsPlan:
    """Every task of ``--target``/``--aux`` alone and every pair of them (target: the task given first) with each
    multi-task strategy; everything checked before anything is written."""
    base = {k: v for k, v in base.items() if k not in BENCH_KEYS and v is not None}
    if not base.get("target"):
        if base.get("aux"):
            raise OptionError("--aux needs a --target (the task the auxiliary tasks help)")
        from mtl.data.suite import use_demo

        use_demo(base)  # the demo suite, with its quick-start defaults where the bench gives none
    aux = base.get("aux") or []
    twice = [a for i, a in enumerate(aux) if a in aux[:i]]
    if twice:
        raise OptionError(f"--aux {','.join(aux)}: task {twice[0]!r} is given twice")
    tasks = [base["target"], *[a for a in aux if a != base["target"]]]
    if len(tasks) < 2:
        raise OptionError("--pairs needs at least two tasks: --target A --aux B[,C...]")
    _check_task_limits(base)
    if any(s.stage for s in strategies):
        raise OptionError("--pairs trains networks of one or two tasks: a fine-tuning stage (SPEC>finetune) "
                          "has no place there")
    multi = [s for s in strategies if not s.single]
    if not multi:
        raise OptionError("--pairs: give the pairs' multi-task strategy (e.g. --strategy uniform); every task is "
                          "trained alone (single) anyway")
    shared = json.loads(json.dumps({k: v for k, v in base.items() if k not in ("target", "aux")}))
    _check_pairs_existing(output, shared, tasks)
    single = Strategy(SINGLE, "uniform", "proportional", single=True)
    plans = []
    for network in [(t,) for t in tasks] + list(itertools.combinations(tasks, 2)):
        values = _network_values(shared, tasks, network)
        plans.append((network, make_plan(values, [single] if len(network) == 1 else multi, seeds,
                                         output / network_folder(network))))
    return PairsPlan(output, shared, tasks, multi, seeds, plans)


def _network_values(shared: dict[str, Any], tasks: list[str], network: tuple[str, ...]) -> dict[str, Any]:
    """One network's run options: the shared ones, its target and aux, and only its own tasks' --set options,
    teachers and --task-limit."""
    values = dict(shared, target=network[0], aux=list(network[1:]))
    others = set(tasks) - set(network)
    for key in ("options", "teachers", "task_limits"):  # keyed by plugin or task name
        if values.get(key):
            values[key] = {k: v for k, v in values[key].items() if k not in others}
    return values


def _check_pairs_existing(out: Path, shared: dict[str, Any], tasks: list[str]) -> None:
    if out.exists() and not out.is_dir():
        raise MtlError(f"--output {out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / BENCH_FILE).exists():
        raise MtlError(f"--output {out} exists and is not a bench folder (no {BENCH_FILE}); choose another folder")
    old = read_bench_file(out)
    if not old.get("pairs"):
        raise MtlError(f"{out} holds a bench without --pairs; choose another --output")
    if old["tasks"] != tasks:  # another order makes other pairs (their first task is their target)
        raise MtlError(f"{out} holds the --pairs bench of {', '.join(old['tasks'])} (in that order, the first as "
                       f"--target); give the same tasks to continue it, or choose another --output")
    _refuse_other_options(out, old.get("run_options", {}), shared)


def execute_pairs(plan: PairsPlan, echo: Callable[[str], None] = lambda _: None, *, jobs: int = 1,
                  launcher: Launcher | None = None) -> list[tuple[str, str, int]]:
    """Every unfinished run of every network, ``jobs`` at once (the networks' runs in one schedule); returns the
    (network, strategy, seed) it ran."""
    plan.output.mkdir(parents=True, exist_ok=True)
    write_pairs_file(plan)
    return _execute([("+".join(network), sub) for network, sub in plan.plans], echo, jobs, launcher)


def finish_pairs(plan: PairsPlan) -> dict[str, Any]:
    """Each network's bench.json, bench.md and bench.png (those with a finished run), then DIR/bench.json and
    DIR/bench.md with the table of every task alone and with each partner."""
    for _, sub in plan.plans:
        if any(r["status"] == "finished" for r in collect(sub)):
            finish(sub)
    table = pairs_table(plan)
    record = write_pairs_file(plan, table)
    run_files.write_atomic(plan.output / "bench.md", pairs_markdown(record).encode("utf-8"))
    return record


def pairs_record(plan: PairsPlan, table: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "pairs": True, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": plan.tasks,
            "seeds": plan.seeds, "strategies": [s.to_dict() for s in plan.strategies], "run_options": plan.base,
            "networks": [{"tasks": list(network), "folder": str(sub.output),
                          "strategies": [s.label for s in sub.strategies]} for network, sub in plan.plans],
            "table": table}


def write_pairs_file(plan: PairsPlan, table: dict[str, Any] | None = None) -> dict[str, Any]:
    record = pairs_record(plan, table)
    run_files.write_json(plan.output / BENCH_FILE, _json_safe(record))
    return record


def load_pairs_plan(folder: Path) -> PairsPlan:
    """The plan of a --pairs bench folder, from its bench.json (nothing is checked or run)."""
    folder = Path(folder)
    data = read_bench_file(folder)
    if not data.get("pairs"):
        raise MtlError(f"{folder}: not a --pairs bench")
    strategies = [Strategy(**s) for s in data["strategies"]]
    single = Strategy(SINGLE, "uniform", "proportional", single=True)
    tasks, seeds, shared = list(data["tasks"]), list(data["seeds"]), data["run_options"]
    plans = [(network, Plan(folder / network_folder(network), _network_values(shared, tasks, network),
                            [single] if len(network) == 1 else strategies, seeds))
             for network in [(t,) for t in tasks] + list(itertools.combinations(tasks, 2))]
    return PairsPlan(folder, shared, tasks, strategies, seeds, plans)


def is_pairs(folder: Path) -> bool:
    path = Path(folder) / BENCH_FILE
    if not path.is_file():
        return False
    data = run_files.read_json(path, "the bench file")
    return isinstance(data, dict) and bool(data.get("pairs"))


def pairs_table(plan: PairsPlan) -> dict[str, Any]:
    """Per strategy and task: its primary metric (the first metric of its first evaluation split) alone and in
    the pair with each other task, the mean over the finished seeds."""
    from mtl.study.grouping import primary

    metrics: dict[str, str] = {}
    scores: dict[str, dict[tuple[str, ...], dict[str, list[float]]]] = {}
    for network, sub in plan.plans:
        for run in collect(sub):
            if run["status"] != "finished":
                continue
            for task in network:
                split, metric, value = primary(run["eval"], task, Path(run["folder"]) / run_files.EVAL)
                metrics.setdefault(task, f"{split} {metric}")
                scores.setdefault(run["strategy"], {}).setdefault(network, {}).setdefault(task, []).append(value)

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


def pairs_rows(table: dict[str, Any], strategy: str) -> tuple[list[str], list[list[str]]]:
    """Column names and cells of one strategy's table: each row task alone and with each column task (Δ to alone)."""
    tasks = table["tasks"]
    header = ["task", "metric", "alone", *[f"with {t}" for t in tasks]]
    rows = []
    for task in tasks:
        entry = table["scores"][strategy][task]
        alone = entry["alone"]
        cells = [task, table["metrics"].get(task, "-"), _num(alone)]
        for other in tasks:
            value = entry["with"].get(other)
            if other == task:
                cells.append("")
            elif value is None:
                cells.append("-")
            else:
                cells.append(_num(value) + ("" if alone is None else f" ({value - alone:+.4f})"))
        rows.append(cells)
    return header, rows


def pairs_title(table: dict[str, Any], strategy: str) -> str:
    return f"Pairs, {strategy}: each task alone and trained with another (mean over seeds; Δ to alone)"


def pairs_markdown(record: dict[str, Any]) -> str:
    table = record["table"]
    options = record.get("run_options", {})
    about = (f"Every task alone (`single`) and every pair of tasks; backbone `{options.get('backbone', 'minilm')}`; "
             f"seeds {', '.join(map(str, record.get('seeds', [])))}. A task's score is its primary metric (the first "
             "metric of its first evaluation split), the mean over seeds; a pair's target is the task listed "
             "first in the bench, and both tasks are evaluated. `mtl group` chooses networks from these scores.")
    lines = [f"# mtl bench --pairs: {', '.join(record['tasks'])}", "", about, ""]
    for strategy in table["strategies"]:
        header, rows = pairs_rows(table, strategy)
        lines += [f"## {pairs_title(table, strategy)}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
                  *("| " + " | ".join(cells) + " |" for cells in rows), ""]
    return "\n".join(lines)
