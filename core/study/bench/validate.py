"""Everything `mtl run` would reject about a bench's names and options, checked before anything runs: each
strategy's plugins are built from their options (not trained), its tasks, trackers, teachers and data paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl.contract import loader
from mtl.errors import MtlError, OptionError
from mtl.runs.config import RunConfig
from mtl.study.bench.options import run_config, stage_config, strategy_config
from mtl.study.bench.strategy import Strategy, check_name
from mtl.training import distill
from mtl.training.plan import RunPlan


def validate(config: RunConfig) -> None:
    """Everything `mtl run` would reject about ``config``, without loading data or a model: the trainer's own check
    (:meth:`mtl.training.plan.RunPlan.build`: options, tasks, plugins, trackers, callbacks), then what a run meets
    only once it starts: the backbone's options, the teachers and the data paths."""
    for name in config.tasks:
        check_name("task", name)
    plan = RunPlan.build(config, main=False)  # trackers built, not started: a missing package is an error here
    loader.check("backbone", config.backbone, **plan.backbone_options)
    if config.teachers:  # each teacher folder, its task and labels (not its data size: the run checks that)
        distill.check_teachers(config, plan.tasks)
    if config.data_dir and not Path(config.data_dir).is_dir():
        raise MtlError(f"--data-dir {config.data_dir}: no such folder")
    for key, path in config.data.items():
        if not Path(path).exists():
            raise MtlError(f"--data {key}={path}: no such file or folder")


def validate_strategies(base: dict[str, Any], strategies: list[Strategy]) -> None:
    """Each strategy's runs (and a staged strategy's fine-tuning runs) checked with :func:`validate`."""
    check_task_limits(base)
    config = run_config(base)
    for strategy in strategies:
        validate(strategy_config(config, strategy))
        if strategy.stage:
            validate(stage_config(base, strategy))


def check_task_limits(base: dict[str, Any]) -> None:
    """A --limit TASK=N of a task the bench does not train is a mistake (each run gets only its own tasks' limits,
    so no run would report it)."""
    tasks = [base["target"], *(base.get("aux") or [])]
    for task, value in (base.get("task_limits") or {}).items():
        if task not in tasks:
            raise OptionError(f"--limit {task}={value}: task {task!r} is not in this run ({', '.join(tasks)})")
