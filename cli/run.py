"""`mtl run`: train a target task with auxiliary tasks on one shared backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, err, split_list, user_errors

TargetOpt = Annotated[Optional[str], typer.Option("--target", "-t", help="The task to improve (its dev metric picks the best checkpoint).")]
AuxOpt = Annotated[Optional[list[str]], typer.Option("--aux", "-a", help="Auxiliary task(s); repeat or comma-separate.")]
WeightingOpt = Annotated[Optional[str], typer.Option("--weighting", "-w", help="Weighting strategy (default: uniform); see `mtl plugins`.")]
SamplerOpt = Annotated[Optional[str], typer.Option("--sampler", "-s", help="Task sampler (default: proportional).")]
BackboneOpt = Annotated[Optional[str], typer.Option("--backbone", "-b", help="minilm (default, offline), tiny, or hf:<name-or-path>.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Plugin option NAME.KEY=VALUE (NAME: plugin, task, or weighting/sampler/backbone); repeatable.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML or JSON file of run options; command-line options override it.")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="A GLUE-format folder (glue_data/ layout: RTE/train.tsv, ...).")]
DataOpt = Annotated[Optional[list[str]], typer.Option("--data", help="A user file for a split, TASK.SPLIT=FILE (CSV/TSV/JSONL, named columns), or TASK=FOLDER.")]


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
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (one epoch = every task's data once) (default: 3).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps (overrides --epochs).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Training batch size (default: 32).")] = None,
    eval_batch_size: Annotated[Optional[int], typer.Option(help="Evaluation batch size (default: 128).")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Maximum tokens per example (default: 128).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate of AdamW (default: 5e-5).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="AdamW weight decay (default: 0.01).")] = None,
    warmup: Annotated[Optional[float], typer.Option(help="Fraction of steps of linear warm-up (default: 0.1).")] = None,
    clip: Annotated[Optional[float], typer.Option(help="Gradient-norm clipping, 0 = off (default: 1.0).")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout before each task head (default: 0.1).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N training examples per task.")] = None,
    eval_limit: Annotated[Optional[int], typer.Option(help="Use at most N evaluation examples per task and split.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; the same seed gives the same run (default: 0).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Run folder (default: runs/<time>-<target>-<weighting>-<sampler>-s<seed>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.")] = False,
    log_every: Annotated[Optional[int], typer.Option(help="Write metrics.jsonl every N steps (default: 10).")] = None,
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
