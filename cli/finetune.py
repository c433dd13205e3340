"""`mtl finetune`: continue a finished multi-task run on its target alone (multi-task then fine-tune)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import user_errors
from .options import (
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
    TaskLimitOpt,
    WarmupOpt,
    WeightDecayOpt,
)
from .run import print_results, run_values, scalar_options


def finetune(
    run: Annotated[Path, typer.Argument(help="A finished `mtl run` folder (its target is fine-tuned).")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Run folder (default: RUN-finetune).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.")] = False,
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
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: RUN's).")] = None,
    log_every: LogEveryOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    precision: PrecisionOpt = None,
    skip_nonfinite: SkipNonfiniteOpt = None,
    group_by_length: GroupByLengthOpt = None,
    report_to: ReportToOpt = None,
    keep: KeepOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Fine-tune RUN's target alone, starting from RUN's shared backbone and target head (MT-DNN, SIWLM).

    The new run has RUN's options (backbone, data, schedule) without the auxiliary tasks, with the uniform
    weighting; options given here override RUN's (e.g. --regularizer smart, --epochs 2, --lr 2e-5). It is an
    ordinary run folder (config.json names RUN as its parent): `mtl run --resume`, `mtl export` work on it.
    """
    with user_errors():
        from mtl.runs import folder as run_files
        from mtl.training.finetune import finetune_config
        from mtl.training.trainer import Trainer

        given = scalar_options(locals(), exclude=("output",))
        cfg = finetune_config(run, run_values(config, given, set_=set_, data=data, limit=limit,
                                              task_limit=task_limit))
        cfg.output = output or str(run_files.unique(Path(f"{str(run).rstrip('/')}-finetune")))
        result = Trainer(cfg, progress=not quiet, overwrite=overwrite).prepare().train()
        print_results(result, cfg.target)
