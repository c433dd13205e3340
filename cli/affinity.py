"""`mtl affinity`: one multi-task run that measures which tasks help which (TAG's lookahead affinity)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mtl.errors import MtlError

from .common import console, err, split_list, user_errors
from .run import print_results, refuse_with_resume
from .run_options import given, make_config, run_options, run_values

TasksOpt = Annotated[list[str] | None, typer.Option(
    "--tasks", help="Tasks measured together without a target (instead of --target/--aux); repeat or comma-separate.",
    rich_help_panel="Tasks and data")]
EveryOpt = Annotated[int | None, typer.Option(
    help="Measure the affinities every N steps, from step 0.", show_default="10")]
AffinitySamplerOpt = Annotated[str | None, typer.Option(
    "--sampler", "-s", help="Task sampler; here all (every task each step, so the measured batches are the ones the "
                            "run trains on).", show_default="all", rich_help_panel="Plugins")]


@run_options()
def affinity(
    tasks: TasksOpt = None,
    every: EveryOpt = None,
    sampler: AffinitySamplerOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.",
                                            rich_help_panel="Output")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue the stopped `mtl affinity` run in this folder "
                                                        "(measurements included).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel="Output")] = False,
    **options: Any,
) -> None:
    """Train the tasks together and measure the affinity of each task onto each other (TAG, Fifty et al. 2021).

    Every --every steps, for each task i, a lookahead step of the optimizer on task i's gradient (on a copy; the
    run trains as `mtl run` would), then for each task j: Z(i→j) = 1 − L_j(after) / L_j(before). Writes
    affinity.json and affinity.png into the run folder and ranks the auxiliary tasks by their affinity onto the
    target. With no task options, the built-in demo suite.
    """
    with user_errors():
        from mtl.study.affinity import DEFAULT_EVERY, AffinityTrainer

        if resume is not None:
            refuse_with_resume(resume, given(options) | given(
                {"tasks": tasks, "every": every, "sampler": sampler, "overwrite": overwrite}))
            result = AffinityTrainer.resuming(resume, progress=not quiet).prepare().train()
            print_results(result, result["affinity"]["target"])
            print_affinity(result)
            return
        if every is not None and every < 1:
            raise MtlError(f"--every must be a whole number of steps >= 1 (got {every})")
        names = split_list(tasks)
        if tasks and not names:
            raise MtlError(f"--tasks {','.join(tasks)!r} names no task")
        if names and (options.get("target") or options.get("aux")):
            raise MtlError("give either --target/--aux or --tasks, not both")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise MtlError(f"--tasks {','.join(names)}: task {twice[0]!r} is given twice")
        values = run_values(options | {"sampler": sampler})
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
