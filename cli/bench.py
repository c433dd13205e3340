"""`mtl bench`, `mtl report`, `mtl plot`: compare strategies over seeds, and draw a run's training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mtl.errors import OptionError

from .common import console, err, split_list, user_errors
from .run_options import make_config, run_options, run_values

ListWeightingOpt = Annotated[Optional[list[str]], typer.Option(
    "--weighting", "-w", help="Weighting strategies to compare (comma list or repeated); crossed with --sampler.",
    show_default="the run's", rich_help_panel="Plugins")]
ListSamplerOpt = Annotated[Optional[list[str]], typer.Option(
    "--sampler", "-s", help="Samplers to compare (comma list or repeated); crossed with --weighting.",
    show_default="the run's", rich_help_panel="Plugins")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", "-j", help="Runs at once (default 1: one after another). With the local launcher they share this machine: "
                         "each gets cores // N threads and, on a GPU machine, a GPU of its own.")]
LauncherOpt = Annotated[str, typer.Option(
    "--launcher", help="Where the runs execute: local (processes on this machine) or slurm (SLURM jobs through "
                       "submitit), or any registered launcher (`mtl plugins --kind launcher`). Options: "
                       "--set NAME.KEY=VALUE, e.g. --set slurm.partition=gpu.")]
StrategyOpt = Annotated[Optional[list[str]], typer.Option(
    "--strategy", help="SPEC: single (target only), WEIGHTING or WEIGHTING+SAMPLER; comma list or repeated. "
                       "These come first, then the --weighting × --sampler grid; the first is the reference.")]


#: the run options a bench does not take: each run's seed comes from --seeds
BENCH_EXCLUDE = ("seed",)


@run_options(exclude=BENCH_EXCLUDE)
def bench(
    strategy: StrategyOpt = None,
    weighting: ListWeightingOpt = None,
    sampler: ListSamplerOpt = None,
    seeds: Annotated[str, typer.Option(help="Seeds, comma list; every strategy runs each.")] = "0,1,2",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Bench folder; an existing one is continued "
                                                   "(finished runs are kept).", show_default="bench/<time>",
                                                   rich_help_panel="Output")] = None,
    pairs: Annotated[bool, typer.Option("--pairs", help="Train every task of --target/--aux alone and every pair of "
                                                        "them (with each strategy), for `mtl group`.")] = False,
    jobs: JobsOpt = 1,
    launcher: LauncherOpt = "local",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per run on stderr.",
                                        rich_help_panel="Output")] = False,
    **options: Any,
) -> None:
    """Compare strategies over seeds: a table of the target's metrics, bench.json, bench.md and bench.png.

    Every strategy × seed is an `mtl run` (a separate process; --jobs N at once, where --launcher says) writing
    OUTPUT/<strategy>/seed-<s>; the table gives the mean ± std over seeds and each strategy's difference to the
    first one with its paired bootstrap 95% interval over the dev examples (* : it excludes 0). Run the same command
    again (same --output) to continue a stopped bench: finished runs are kept.

    With --pairs: every task alone (OUTPUT/<task>) and every pair (OUTPUT/<a>+<b>, target a) with each strategy
    (default: the run's weighting), each an ordinary bench; the table gives each task alone and with each partner.
    """
    with user_errors():
        from mtl.study import bench as core

        # --weighting/--sampler are lists of strategies here and --output is the bench folder, not run options
        values = run_values(options)
        if jobs < 1:
            raise OptionError(f"--jobs {jobs}: give the number of runs at once, 1 or more")
        mine, values["options"] = core.launcher_options(values.get("options") or {}, launcher)
        runner = core.make_launcher(launcher, mine)  # before anything is written: a wrong name or option is one line
        defaults = make_config({k: v for k, v in values.items() if k not in ("seed", "output")})
        specs = split_list(strategy)
        if pairs and not (specs or weighting or sampler):
            specs = [defaults.weighting]  # the pairs' strategy: the run's weighting and sampler
        strategies = core.parse_strategies(specs, split_list(weighting), split_list(sampler),
                                           base_weighting=defaults.weighting, base_sampler=defaults.sampler)
        seed_list = core.parse_seeds(seeds)
        out = output if output is not None else core.default_output()
        if pairs:
            _bench_pairs(core, values, strategies, seed_list, out, quiet, (jobs, launcher, runner))
            return
        plan = core.make_plan(values, strategies, seed_list, out)

        echo = (lambda _: None) if quiet else err
        echo(f"Bench {out}: {len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'} × "
             f"{len(seed_list)} seed{'' if len(seed_list) == 1 else 's'} "
             f"({', '.join(s.label for s in strategies)}){_at_once(jobs, launcher)}; run again with -o {out} to "
             "continue if stopped.")
        core.execute(plan, echo, jobs=jobs, launcher=runner)
        record = core.finish(plan)
        print_table(record)
        echo(f"Wrote {out / 'bench.json'}, {out / 'bench.md'}, {out / 'bench.png'}")


def _at_once(jobs: int, launcher: str) -> str:
    """`` (2 at once, launcher slurm)`` where the bench is not one local run after another."""
    parts = ([f"{jobs} at once"] if jobs > 1 else []) + ([f"launcher {launcher}"] if launcher != "local" else [])
    return f" ({', '.join(parts)})" if parts else ""


def _bench_pairs(core, values: dict, strategies: list, seeds: list[int], out: Path, quiet: bool,
                 launch: tuple) -> None:
    """`mtl bench --pairs`: every task alone and every pair of tasks, then the table of both."""
    jobs, launcher, runner = launch
    plan = core.make_pairs_plan(values, strategies, seeds, out)
    echo = (lambda _: None) if quiet else err
    pairs = len(plan.plans) - len(plan.tasks)
    echo(f"Bench {out} (--pairs): {len(plan.tasks)} tasks alone and {pairs} pair{'' if pairs == 1 else 's'} "
         f"({', '.join(s.label for s in plan.strategies)}) × {len(seeds)} seed{'' if len(seeds) == 1 else 's'}, "
         f"{plan.runs} runs{_at_once(jobs, launcher)}; run again with -o {out} to continue if stopped.")
    core.execute_pairs(plan, echo, jobs=jobs, launcher=runner)
    record = core.finish_pairs(plan)
    print_pairs(record)
    echo(f"Wrote {out / 'bench.json'}, {out / 'bench.md'} and a bench in each network's folder; "
         f"`mtl group {out} --budget B` chooses the networks to train.")


def report(
    folder: Annotated[Path, typer.Argument(help="A bench folder (written by `mtl bench`).")],
) -> None:
    """Redraw a bench's table, bench.md and bench.png from its run folders and bench.json."""
    with user_errors():
        from mtl.study import bench as core

        if core.is_pairs(folder):
            record = core.finish_pairs(core.load_pairs_plan(folder))
            print_pairs(record)
            err(f"Wrote {folder / 'bench.json'}, {folder / 'bench.md'} and each network's bench")
            return
        plan = core.load_plan(folder)
        record = core.finish(plan)
        print_table(record)
        missing = [r for r in record["runs"] if r["status"] != "finished"]
        if missing:
            err(f"{len(missing)} of {len(record['runs'])} runs are not finished; `mtl bench -o {folder} ...` "
                "continues them.")
        err(f"Wrote {folder / 'bench.json'}, {folder / 'bench.md'}, {folder / 'bench.png'}")


def print_table(record: dict) -> None:
    from rich.table import Table

    from mtl.study.bench import caption, table_rows, title

    header, rows = table_rows(record["table"])
    table = Table(title=title(record["table"]), caption=caption(record["table"]))
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i != 0)
    for cells in rows:
        table.add_row(*cells)
    out = console()
    if not out.is_terminal:  # piped or captured: no terminal to fit, so never squeeze the columns
        from rich.console import Console
        from rich.measure import Measurement

        width = Measurement.get(out, out.options.update(max_width=10_000), table).maximum
        out = Console(width=max(out.width, width), soft_wrap=True)
    out.print(table)


def print_pairs(record: dict) -> None:
    """One table per strategy of a --pairs bench: each task alone and with each other task."""
    from rich.table import Table

    from mtl.study.bench import pairs_rows, pairs_title

    out = console()
    for strategy in record["table"]["strategies"]:
        header, rows = pairs_rows(record["table"], strategy)
        table = Table(title=pairs_title(record["table"], strategy))
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
        for cells in rows:
            table.add_row(*cells)
        printer = out
        if not out.is_terminal:  # as print_table: never squeeze the columns of captured output
            from rich.console import Console
            from rich.measure import Measurement

            width = Measurement.get(out, out.options.update(max_width=10_000), table).maximum
            printer = Console(width=max(out.width, width), soft_wrap=True)
        printer.print(table)


def plot(
    run: Annotated[Path, typer.Argument(help="A run folder (written by `mtl run`).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder for the PNGs.",
                                                   show_default="RUN/plots")] = None,
    smoothing: Annotated[float, typer.Option(help="EMA weight for noisy curves, 0 = none.")] = 0.6,
    overwrite: Annotated[bool, typer.Option(help="Draw into an --output that holds files (PNGs of the same names "
                                                 "are replaced).")] = False,
) -> None:
    """PNG figures of a run's training curves from its metrics.jsonl.

    Losses, task weights, sampler probabilities, evaluation per epoch, then each plugin's figures
    (`mtl plugins --kind figure`: MAMT's similarity, MMoE's gates, ...); each only when the run logged its records.
    """
    with user_errors():
        from mtl.study.figures import plot_run

        if output is not None and output.exists():  # named as this command spells it, before anything is read
            if not output.is_dir():
                raise OptionError(f"--output {output} exists and is not a folder")
            if any(output.iterdir()) and not overwrite:
                raise OptionError(f"--output {output} already exists and is not empty; choose another folder or pass "
                                  "--overwrite (which replaces the PNGs of the same names)")
        for name, path, why in plot_run(run, output, smoothing=smoothing, overwrite=overwrite):
            if path is not None:
                typer.echo(f"wrote {path}")
            else:
                typer.echo(f"skipped {name}: {why}")


def register(app) -> None:
    """Add this module's commands to the `mtl` application."""
    app.command("bench")(bench)
    app.command("report")(report)
    app.command("plot")(plot)
