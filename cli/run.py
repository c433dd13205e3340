"""`mtl run`: train a target task with auxiliary tasks on one shared backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, err, split_list, user_errors

from .options import (TargetOpt, AuxOpt, WeightingOpt, SamplerOpt, BackboneOpt, SetOpt, ConfigOpt, DataDirOpt, DataOpt, EpochsOpt, MaxStepsOpt, BatchSizeOpt, EvalBatchSizeOpt, MaxLengthOpt, LrOpt, WeightDecayOpt, WarmupOpt, ClipOpt, DropoutOpt, LimitOpt, EvalLimitOpt, LogEveryOpt)



def run(
    target: TargetOpt = None,
    aux: AuxOpt = None,
    weighting: WeightingOpt = None,
    sampler: SamplerOpt = None,
    backbone: BackboneOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    eval_batch_size: EvalBatchSizeOpt = None,
    max_length: MaxLengthOpt = None,
    lr: LrOpt = None,
    weight_decay: WeightDecayOpt = None,
    warmup: WarmupOpt = None,
    clip: ClipOpt = None,
    dropout: DropoutOpt = None,
    limit: LimitOpt = None,
    eval_limit: EvalLimitOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; the same seed gives the same run (default: 0).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Run folder (default: runs/<time>-<target>-<weighting>-<sampler>-s<seed>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.")] = False,
    log_every: LogEveryOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train --target with --aux tasks; with no task options, the built-in demo suite (offline)."""
    with user_errors():
        given = {
            "target": target, "weighting": weighting, "sampler": sampler, "backbone": backbone,
            "data_dir": data_dir, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
            "eval_batch_size": eval_batch_size, "max_length": max_length, "lr": lr,
            "weight_decay": weight_decay, "warmup": warmup, "clip": clip, "dropout": dropout, "limit": limit,
            "eval_limit": eval_limit, "seed": seed, "output": output, "log_every": log_every,
        }
        cfg = make_config(run_values(config, given, aux=aux, set_=set_, data=data))
        demo = not cfg.target and not cfg.aux
        if demo:
            from mtl.data import DEMO_SUITE

            cfg.target, cfg.aux = DEMO_SUITE["target"], list(DEMO_SUITE["aux"])

        from mtl.trainer import Trainer

        trainer = Trainer(cfg, progress=not quiet, overwrite=overwrite).prepare()
        if demo:
            err(f"No --target given: training the built-in demo suite ({cfg.target} with {', '.join(cfg.aux)}).")
        result = trainer.train()
        print_results(result, cfg.target)


def run_values(config: Optional[Path], given: dict, *, aux: Optional[list[str]] = None,
               set_: Optional[list[str]] = None, data: Optional[list[str]] = None) -> dict:
    """The options of `mtl run` as RunConfig keyword arguments: the config file, overridden by the command line.

    ``given`` holds the scalar options by RunConfig field name (None = not given); shared with `mtl bench`.
    """
    from mtl.config import merge_options, parse_assignments, parse_data, read_config_file

    values = read_config_file(config) if config else {}
    values.update({k: v for k, v in given.items() if v is not None})
    if aux:
        values["aux"] = split_list(aux)
    if isinstance(values.get("aux"), str):
        values["aux"] = split_list([values["aux"]])
    values["options"] = merge_options(values.get("options") or {}, parse_assignments(set_ or []))
    values["data"] = {**(values.get("data") or {}), **parse_data(data or [])}
    return values


def make_config(values: dict):
    """A RunConfig from :func:`run_values`' dict (an unknown or mistyped key is a one-line error)."""
    from mtl.config import RunConfig
    from mtl.errors import MtlError

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
