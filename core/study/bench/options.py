"""The run options of a bench's runs: the options the bench was given, narrowed to each strategy.

A bench stores only the options it was given (``run_options`` in bench.json, each strategy's
``run-options.json``), so its runs take every other option's default as `mtl run` does; :func:`run_config` and
:func:`stage_config` give the typed :class:`~mtl.runs.config.RunConfig` that validation checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mtl.contract import loader
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.study.bench.strategy import Strategy

BENCH_KEYS = ("weighting", "sampler", "seed", "output")  # run options the bench sets itself, per strategy and seed
NEUTRAL_OPTIONS = ("keep",)  # options that change what a finished run keeps, not what it computes


def given(values: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options a bench was given (not None), without those it sets itself per run."""
    return {k: v for k, v in values.items() if k not in BENCH_KEYS + drop and v is not None}


def run_config(values: dict[str, Any]) -> RunConfig:
    """The typed options of ``values`` (given options, as in a run-options.json); a one-line error for a key that is
    no run option."""
    try:
        return RunConfig(**values)
    except TypeError as exc:
        raise MtlError(f"invalid run options: {exc}") from None


def strategy_config(base: RunConfig, strategy: Strategy) -> RunConfig:
    """The options of one strategy's runs: ``base`` (the bench's) with the strategy's weighting and sampler (``single``:
    no auxiliary tasks), and only the plugin options, --data, --limit TASK=N and teachers its runs use.

    Plugin options (``--set mamt.psi=0.5``) meant for a weighting, sampler or task that this strategy does
    not use are left out, so one bench can hold options for several strategies.
    """
    aux = [] if strategy.single else list(base.aux)
    tasks = [base.target, *aux]
    unused = (set(loader.available("weighting")) | set(loader.available("sampler")) | set(base.aux)
              | set(loader.available("regularizer"))) - {strategy.weighting, strategy.sampler, base.regularizer, *tasks}
    return dataclasses.replace(
        base, weighting=strategy.weighting, sampler=strategy.sampler, aux=aux,
        options={k: v for k, v in base.options.items() if k in ("weighting", "sampler", "backbone") or k not in unused},
        data={k: v for k, v in base.data.items() if k.partition(".")[0] in tasks},  # TASK=FOLDER or TASK.SPLIT=FILE
        task_limits={k: v for k, v in base.task_limits.items() if k in tasks},
        teachers={k: v for k, v in base.teachers.items() if k in tasks or k not in base.aux})  # single drops aux


def strategy_values(base: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
    """The `mtl run` options of one strategy's runs (without seed and output) as its run-options.json holds them: the
    options the bench was given and those the strategy sets (:func:`strategy_config`)."""
    values = {k: v for k, v in base.items() if k not in BENCH_KEYS}
    config = strategy_config(run_config(values), strategy)
    keys = [*values, *(k for k in ("weighting", "sampler", "options") + (("aux",) if strategy.single else ())
                       if k not in values)]
    return {k: getattr(config, k) for k in keys}


def stage_values(base: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
    """The `mtl finetune` options of a staged strategy: its regularizer and that regularizer's options (and the
    bench's --keep, which its multi-task run may not have: :func:`parent_values`)."""
    regularizer = strategy.stage_regularizer
    given = base.get("options") or {}
    options = {k: v for k, v in given.items() if regularizer and k in (regularizer, "regularizer")}
    return {"regularizer": regularizer, "options": options} | ({"keep": base["keep"]} if "keep" in base else {})


def parent_values(values: dict[str, Any]) -> dict[str, Any]:
    """The run options of a multi-task run a ``>finetune`` stage starts from: with ``--keep none`` it keeps its best
    model (``--keep model``) for the stage; the stage itself keeps what the bench's --keep says."""
    return values | {"keep": "model"} if values.get("keep") == "none" else values


def strategy_file(base: dict[str, Any], strategy: Strategy, *, parent: bool = False) -> dict[str, Any]:
    """What a strategy's run-options.json holds: its runs' options (a stage: its `mtl finetune` options); ``parent``:
    the strategy is the multi-task run of a stage."""
    options = stage_values(base, strategy) if strategy.stage else strategy_values(base, strategy)
    return parent_values(options) if parent else options


def stage_config(base: dict[str, Any], strategy: Strategy) -> RunConfig:
    """The options a staged strategy's `mtl finetune` runs with: its multi-task strategy's for the target alone
    (:func:`mtl.training.finetune.target_alone`), with the stage's regularizer, its options and --keep."""
    from mtl.training import finetune  # imports torch: only when a bench has a stage

    config = run_config(finetune.target_alone(strategy_values(base, strategy)))
    stage = stage_values(base, strategy)
    return dataclasses.replace(config, regularizer=stage["regularizer"], keep=stage.get("keep", config.keep),
                               options={**config.options, **stage["options"]})


def differing(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The options whose values differ between two benches' given options and change their results."""
    keys = sorted((set(before) | set(now)) - set(NEUTRAL_OPTIONS))
    return [k for k in keys if before.get(k) != now.get(k)]
