"""`mtl run`: train a target task with auxiliary tasks on one shared backbone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mtl.errors import MtlError

from .common import console, err, user_errors
from .run_options import given, make_config, run_options, run_values


@run_options()
def run(
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.",
                                            rich_help_panel="Output")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue the stopped run in this folder from its last good "
                                                        "checkpoint (with its own options).")] = None,
    nproc: Annotated[int | None, typer.Option(help="Train with N processes on this machine (launches torchrun; "
                                                      "DDP).", show_default="1")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel="Output")] = False,
    **options: Any,
) -> None:
    """Train --target with --aux tasks; with no task options, the built-in demo suite (offline)."""
    with user_errors():
        if nproc is not None and nproc < 1:
            raise MtlError(f"--nproc must be >= 1 (got {nproc})")
        if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
            raise typer.Exit(launch(nproc))
        if resume is not None:
            refuse_with_resume(resume, given(options) | given({"overwrite": overwrite}))
            from mtl.training.trainer import Trainer

            result = Trainer.resuming(resume, progress=not quiet).prepare().train()
            print_results(result, result_target(resume))
            return
        values = run_values(options)
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


def refuse_with_resume(resume: Path, extra: dict[str, Any]) -> None:
    """--resume continues a run with its own options: any other option given is a one-line error naming it."""
    if extra:
        from mtl.schema import FLAGS

        name = next(iter(extra))
        raise MtlError(f"--resume continues {resume} with the options in its config.json; "
                       f"drop {FLAGS.get(name, '--' + name.replace('_', '-'))}")


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


def print_results(result: dict, target: str | None) -> None:
    from rich.table import Table

    summary = result["summary"]
    table = Table(title=f"Results (best epoch {summary['best_epoch']}, selected on {summary['selection']})")
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
