"""`mtl run`: train a target task with auxiliary tasks on one shared backbone."""

from __future__ import annotations

import os
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
    KeepOpt,
    LimitOpt,
    TaskLimitOpt,
    LogEveryOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    OptimizerOpt,
    PrecisionOpt,
    RegularizerOpt,
    ReportToOpt,
    SamplerOpt,
    SetOpt,
    SkipNonfiniteOpt,
    GroupByLengthOpt,
    TargetOpt,
    WarmupOpt,
    WeightDecayOpt,
    WeightingOpt,
)

# --teacher (MT-DNN-KD, mtl.training.distill); shared with `mtl bench`
TeacherOpt = Annotated[Optional[list[str]], typer.Option(
    "--teacher", help="TASK=RUN[,RUN...]: distil TASK from the ensemble of these finished runs or `mtl export` "
                      "folders of TASK (loss ½·(hard + soft)); repeatable.")]
TeacherTemperatureOpt = Annotated[Optional[float], typer.Option(
    help="Temperature T of the soft-target loss: −Σ q·log softmax(z/T) on the student's logits (default: 1).")]


def run(
    target: TargetOpt = None,
    aux: AuxOpt = None,
    weighting: WeightingOpt = None,
    sampler: SamplerOpt = None,
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
    resume: Annotated[Optional[Path], typer.Option(help="Continue the stopped run in this folder from its last good checkpoint (with its own options).")] = None,
    nproc: Annotated[Optional[int], typer.Option(help="Train with N processes on this machine (launches torchrun; DDP).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train --target with --aux tasks; with no task options, the built-in demo suite (offline)."""
    with user_errors():
        if nproc is not None and nproc < 1:
            raise MtlError(f"--nproc must be >= 1 (got {nproc})")
        if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
            raise typer.Exit(launch(nproc))
        if resume is not None:
            extra = [k for k, v in locals_given(locals()).items() if v is not None and v is not False]
            if extra:
                raise MtlError(f"--resume continues {resume} with the options in its config.json; "
                               f"drop --{extra[0].replace('_', '-')}")
            from mtl.training.trainer import Trainer

            result = Trainer.resuming(resume, progress=not quiet).prepare().train()
            print_results(result, result_target(resume))
            return
        given = scalar_options(locals())
        values = run_values(config, given, aux=aux, set_=set_, data=data, teacher=teacher, limit=limit,
                            task_limit=task_limit)
        from mtl.data.suite import use_demo

        demo = use_demo(values)  # no task options: the demo suite, with its quick-start defaults
        cfg = make_config(values)

        from mtl.training.trainer import Trainer

        trainer = Trainer(cfg, progress=not quiet, overwrite=overwrite).prepare()
        if demo:
            err(f"No --target given: training the built-in demo suite ({cfg.target} with {', '.join(cfg.aux)}).")
        result = trainer.train()
        print_results(result, cfg.target)
        if demo:
            err(f"The target without the auxiliary tasks, next to this run: mtl bench --strategy "
                f"single,{cfg.weighting}+{cfg.sampler} --seeds 0,1,2 (plus any options you gave here)")


RESUME_KEEPS = {"resume", "quiet", "nproc"}
LIST_FIELDS = {"aux", "options", "data", "limit", "task_limits"}  # RunConfig fields from repeatable options, not given as one value


def scalar_options(values: dict, exclude: tuple[str, ...] = ()) -> dict:
    """The one-value RunConfig options among a command's parameters (its ``locals()``), by field name.

    Shared by `mtl run` and `mtl bench`, so an option added to RunConfig and to both signatures needs nothing else.
    """
    from mtl.runs.config import FIELD_NAMES

    return {k: v for k, v in values.items() if k in FIELD_NAMES and k not in LIST_FIELDS and k not in exclude}


def locals_given(values: dict) -> dict:
    """The options of :func:`run` a user gave besides --resume, --quiet and --nproc (they conflict with --resume)."""
    return {k: v for k, v in values.items() if k not in RESUME_KEEPS and not k.startswith("_")}


def result_target(run_dir: Path) -> str | None:
    from mtl.runs.folder import RunFolder

    return RunFolder(run_dir).record().get("target")


def launch(nproc: int) -> int:
    """Run this same `mtl run` command under torchrun with ``nproc`` processes; its exit status."""
    import subprocess
    import sys

    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "mtl.cli", *args]
    err(f"launching {nproc} processes: torchrun --standalone --nproc-per-node={nproc} -m mtl.cli {' '.join(args)}")
    return subprocess.call(command)


def run_values(config: Optional[Path], given: dict, *, aux: Optional[list[str]] = None,
               set_: Optional[list[str]] = None, data: Optional[list[str]] = None,
               teacher: Optional[list[str]] = None, limit: Optional[list[str]] = None,
               task_limit: Optional[list[str]] = None) -> dict:
    """The options of `mtl run` as RunConfig keyword arguments: the config file, overridden by the command line.

    ``given`` holds the scalar options by RunConfig field name (None = not given); shared with `mtl bench`.
    ``limit`` is --limit's values (N and TASK=N), ``task_limit`` --task-limit's (TASK=N, the older spelling).
    """
    from mtl.runs.config import (
        merge_options,
        parse_assignments,
        parse_data,
        parse_limits,
        read_config_file,
    )

    values = read_config_file(config) if config else {}
    values.update({k: v for k, v in given.items() if v is not None})
    if aux:
        values["aux"] = split_list(aux)
    if isinstance(values.get("aux"), str):
        values["aux"] = split_list([values["aux"]])
    values["options"] = merge_options(values.get("options") or {}, parse_assignments(set_ or []))
    values["data"] = {**(values.get("data") or {}), **parse_data(data or [])}
    every, per_task = parse_limits(limit or [])
    if every is not None:
        values["limit"] = every
    if task_limit:
        from mtl.runs.config import parse_task_limits

        per_task.update(parse_task_limits(task_limit))
    if per_task:
        values["task_limits"] = {**(values.get("task_limits") or {}), **per_task}
    if teacher:  # only when given: a bench's run options (bench.json) stay as they were without teachers
        from mtl.training.distill import normalise, parse_teachers

        values["teachers"] = {**normalise(values.get("teachers")), **parse_teachers(teacher)}
    return values


def make_config(values: dict):
    """A RunConfig from :func:`run_values`' dict (an unknown or mistyped key is a one-line error)."""
    from mtl.errors import MtlError
    from mtl.runs.config import RunConfig

    try:
        return RunConfig(**values)
    except TypeError as exc:
        raise MtlError(f"invalid run options: {exc}") from None


def print_results(result: dict, target: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"Results (best epoch {result['summary']['best_epoch']}, selected on {result['summary']['selection']})")
    for column in ("task", "split", "metric", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for task, splits in (result["eval"] or {}).items():
        for split, metrics in splits.items():
            for metric, value in metrics.items():
                label = f"{task} (target)" if task == target else task
                table.add_row(label, split, metric, f"{value:.4f}")
    out = console()
    out.print(table)
    s = result["summary"]
    out.print(f"{s['train_examples']} training examples in {s['train_seconds']:.1f} s "
              f"({s['examples_per_second']:.1f} examples/s); run folder: {result['output']}")
