"""`mtl affinity`: one multi-task run that measures which tasks help which (TAG's lookahead affinity)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mtl.errors import MtlError

from .common import console, err, split_list, user_errors
from .options import (
    AuxOpt,
    BackboneOpt,
    BatchSizeOpt,
    CheckpointEveryOpt,
    ClipOpt,
    ConfigOpt,
    DataDirOpt,
    DataOpt,
    DropoutOpt,
    EpochsOpt,
    EvalBatchSizeOpt,
    EvalLimitOpt,
    GroupByLengthOpt,
    KeepOpt,
    LimitOpt,
    LogEveryOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    OptimizerOpt,
    PrecisionOpt,
    RegularizerOpt,
    ReportToOpt,
    SetOpt,
    SkipNonfiniteOpt,
    TargetOpt,
    TaskLimitOpt,
    WarmupOpt,
    WeightDecayOpt,
    WeightingOpt,
)
from .run import (
    TeacherOpt,
    TeacherTemperatureOpt,
    locals_given,
    make_config,
    print_results,
    run_values,
    scalar_options,
)

TasksOpt = Annotated[Optional[list[str]], typer.Option(
    "--tasks", help="Tasks measured together without a target (instead of --target/--aux); repeat or comma-separate.")]
EveryOpt = Annotated[Optional[int], typer.Option(
    help="Measure the affinities every N steps, from step 0 (default: 10).")]
AffinitySamplerOpt = Annotated[Optional[str], typer.Option(
    "--sampler", "-s", help="Task sampler (default here: all, every task each step, so the measured batches are "
                            "the ones the run trains on).")]


def affinity(
    target: TargetOpt = None,
    aux: AuxOpt = None,
    tasks: TasksOpt = None,
    every: EveryOpt = None,
    weighting: WeightingOpt = None,
    sampler: AffinitySamplerOpt = None,
    backbone: BackboneOpt = None,
    regularizer: RegularizerOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    eval_batch_size: EvalBatchSizeOpt = None,
    max_length: MaxLengthOpt = None,
    optimizer: OptimizerOpt = None,
    lr: LrOpt = None,
    weight_decay: WeightDecayOpt = None,
    warmup: WarmupOpt = None,
    clip: ClipOpt = None,
    dropout: DropoutOpt = None,
    limit: LimitOpt = None,
    task_limit: TaskLimitOpt = None,
    eval_limit: EvalLimitOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; the same seed gives the same run (default: 0).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Run folder (default: runs/<time>-<target>-<weighting>-<sampler>-s<seed>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.")] = False,
    log_every: LogEveryOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    precision: PrecisionOpt = None,
    skip_nonfinite: SkipNonfiniteOpt = None,
    group_by_length: GroupByLengthOpt = None,
    report_to: ReportToOpt = None,
    keep: KeepOpt = None,
    teacher: TeacherOpt = None,
    teacher_temperature: TeacherTemperatureOpt = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the stopped `mtl affinity` run in this folder (measurements included).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train the tasks together and measure the affinity of each task onto each other (TAG, Fifty et al. 2021).

    Every --every steps, for each task i, a lookahead step of the optimizer on task i's gradient (on a copy; the
    run trains as `mtl run` would), then for each task j: Z(i→j) = 1 − L_j(after) / L_j(before). Writes
    affinity.json and affinity.png into the run folder and ranks the auxiliary tasks by their affinity onto the
    target. With no task options, the built-in demo suite.
    """
    options = dict(locals())  # the parameters only
    with user_errors():
        from mtl.study.affinity import DEFAULT_EVERY, AffinityTrainer

        if resume is not None:
            extra = [k for k, v in locals_given(options).items() if v is not None and v is not False]
            if extra:
                raise MtlError(f"--resume continues {resume} with the options in its config.json; "
                               f"drop --{extra[0].replace('_', '-')}")
            result = AffinityTrainer.resuming(resume, progress=not quiet).prepare().train()
            print_results(result, result["affinity"]["target"])
            print_affinity(result)
            return
        if every is not None and every < 1:
            raise MtlError(f"--every must be a whole number of steps >= 1 (got {every})")
        names = split_list(tasks)
        if tasks and not names:
            raise MtlError(f"--tasks {','.join(tasks)!r} names no task")
        if names and (target or aux):
            raise MtlError("give either --target/--aux or --tasks, not both")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise MtlError(f"--tasks {','.join(names)}: task {twice[0]!r} is given twice")
        given = scalar_options(options)
        values = run_values(config, given, aux=aux, set_=set_, data=data, teacher=teacher, limit=limit,
                            task_limit=task_limit)
        if names:
            values["target"], values["aux"] = None, names
        values.setdefault("sampler", "all")
        from mtl.data.suite import use_demo

        demo = use_demo(values)  # no task options: the demo suite, with its quick-start defaults
        cfg = make_config(values)
        trainer = AffinityTrainer(cfg, every=every or DEFAULT_EVERY, progress=not quiet, overwrite=overwrite)
        trainer.prepare()
        if demo:
            err(f"No --target given: measuring the built-in demo suite ({cfg.target} with {', '.join(cfg.aux)}).")
        result = trainer.train()
        print_results(result, cfg.target)
        print_affinity(result)


def print_affinity(result: dict) -> None:
    """The auxiliary tasks ranked by their affinity onto the target (or the whole matrix without a target)."""
    from rich.table import Table

    from mtl.study.affinity import AFFINITY, FIGURE, ranking

    record = result["affinity"]
    target, tasks, matrix = record["target"], record["tasks"], record["matrix"]
    count = record["overhead"]["measurements"]
    cell = lambda v: "n/a" if v is None else f"{v:+.4f}"  # noqa: E731
    out = console()
    if target:
        table = Table(title=f"Affinity onto {target}: Z(aux→{target}), mean of {count} measurements",
                      caption=f"Z(i→j) = 1 − L_j(after a lookahead step on i) / L_j(before); "
                              f"{target} onto itself: {cell(matrix[target][target])}")
        for column in ("rank", "auxiliary task", f"Z(aux→{target})", f"Z({target}→aux)"):
            table.add_column(column, justify="left" if column == "auxiliary task" else "right")
        for rank, (task, onto, back) in enumerate(ranking(record, target), 1):
            table.add_row(str(rank), task, cell(onto), cell(back))
    else:
        table = Table(title=f"Affinity Z(i→j), rows: source i, columns: target j; mean of {count} measurements")
        table.add_column("i \\ j")
        for task in tasks:
            table.add_column(task, justify="right")
        for source in tasks:
            table.add_row(source, *(cell(matrix[source][j]) for j in tasks))
    out.print(table)
    cost = record["overhead"]
    if cost["seconds_per_measurement"] is not None and cost["seconds_per_step"]:
        out.print(f"{cost['seconds_per_measurement']:.3f} s per measurement vs {cost['seconds_per_step']:.3f} s per "
                  f"training step ({cost['measurement_vs_step']:.1f}×); the measurements added "
                  f"{100 * cost['run_slowdown']:.0f}% to the training time")
    folder = Path(result["output"])
    out.print(f"Wrote {folder / AFFINITY} and {folder / FIGURE}")
