"""`mtl bench`, `mtl report`, `mtl plot`: compare strategies over seeds, and draw a run's training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mtl.errors import OptionError

from .common import console, err, split_list, user_errors
from .run_options import make_config, run_options, run_values

ListWeightingOpt = Annotated[list[str] | None, typer.Option(
    "--weighting", "-w", help="Weighting strategies to compare (comma list or repeated); crossed with --sampler.",
    show_default="the run's", rich_help_panel="Plugins")]
ListSamplerOpt = Annotated[list[str] | None, typer.Option(
    "--sampler", "-s", help="Samplers to compare (comma list or repeated); crossed with --weighting.",
    show_default="the run's", rich_help_panel="Plugins")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", "-j", help="Runs at once (default 1: one after another). With the local launcher they share this "
                         "machine: each gets cores // N threads and, on a GPU machine, a GPU of its own.")]
LauncherOpt = Annotated[str, typer.Option(
    "--launcher", help="Where the runs execute: local (processes on this machine) or slurm (SLURM jobs through "
                       "submitit), or any registered launcher (`mtl plugins --kind launcher`). Options: "
                       "--set NAME.KEY=VALUE, e.g. --set slurm.partition=gpu.")]
StrategyOpt = Annotated[list[str] | None, typer.Option(
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
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Bench folder; an existing one is continued "
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
        defaults = make_config({k: v for k, v in values.items() if k not in ("seed", "output", "options")})
        specs = split_list(strategy)
        if pairs and not (specs or weighting or sampler):
            specs = [defaults.weighting]  # the pairs' strategy: the run's weighting and sampler
        strategies = core.parse_strategies(specs, split_list(weighting), split_list(sampler),
                                           base_weighting=defaults.weighting, base_sampler=defaults.sampler)
        seed_list = core.parse_seeds(seeds)
        out = output if output is not None else core.default_output()
        echo = (lambda _: None) if quiet else err
        record = core.run_bench(values, strategies, seed_list, out, pairs=pairs, jobs=jobs, launcher=launcher,
                                echo=echo)
        if pairs:
            print_pairs(record)
            echo(f"Wrote {core.BenchFolder(out).json_path}, {core.BenchFolder(out).markdown_path} and a bench in each "
                 "network's folder; "
                 f"`mtl group {out} --budget B` chooses the networks to train.")
            return
        print_table(record)
        echo(written(core.BenchFolder(out)))


def report(
    folder: Annotated[Path, typer.Argument(help="A bench folder (written by `mtl bench`).")],
) -> None:
    """Redraw a bench's table, bench.md and bench.png from its run folders and bench.json."""
    with user_errors():
        from mtl.study import bench as core

        record = core.report(folder)
        if record.get("pairs"):
            print_pairs(record)
            err(f"Wrote {core.BenchFolder(folder).json_path}, {core.BenchFolder(folder).markdown_path} and each "
                "network's bench")
            return
        print_table(record)
        missing = [r for r in record["runs"] if r["status"] != "finished"]
        if missing:
            err(f"{len(missing)} of {len(record['runs'])} runs are not finished; `mtl bench -o {folder} ...` "
                "continues them.")
        err(written(core.BenchFolder(folder)))


def written(bench) -> str:
    return f"Wrote {bench.json_path}, {bench.markdown_path}, {bench.figure_path}"


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
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for the PNGs.",
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
