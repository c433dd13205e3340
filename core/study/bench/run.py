"""A bench from start to end: :func:`run_bench` (plan, execute, finish), shared by `mtl bench` and Python callers,
and :func:`finish` / :func:`report`, which write bench.json, bench.md and bench.png from the run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl import locks
from mtl.errors import OptionError
from mtl.study.bench.execute import (
    Echo,
    execute,
    execute_all,
    launcher_options,
    make_launcher,
)
from mtl.study.bench.figure import bench_figure
from mtl.study.bench.folder import BenchFolder
from mtl.study.bench.pairs import PairsPlan, load_pairs_plan, make_pairs_plan
from mtl.study.bench.plan import BenchPlan, default_output, load_plan, make_plan
from mtl.study.bench.record import write_bench_file, write_pairs_file
from mtl.study.bench.render import markdown, pairs_markdown
from mtl.study.bench.results import collect, pairs_table, summarize
from mtl.study.bench.strategy import Strategy


def run_bench(values: dict[str, Any], strategies: list[Strategy], seeds: list[int], output: Path | None = None, *,
              pairs: bool = False, jobs: int = 1, launcher: str = "local",
              echo: Echo = lambda _: None) -> dict[str, Any]:
    """Plan, run and finish a bench (``pairs``: a --pairs bench); returns its bench.json record.

    ``values`` are the run options given (by RunConfig field; ``options`` may hold the launcher's under its name
    or ``launcher``); every name and option is checked before anything is written, and a bench folder that exists
    is continued (its finished runs are kept)."""
    if jobs < 1:
        raise OptionError(f"--jobs {jobs}: give the number of runs at once, 1 or more")
    values = dict(values)
    mine, values["options"] = launcher_options(values.get("options") or {}, launcher)
    runner = make_launcher(launcher, mine)  # before anything is written: a wrong name or option is one line
    out = Path(output) if output is not None else default_output()
    with locks.FolderLock(out, "mtl bench"):  # a second bench of this folder is refused before it writes
        return _run_bench(values, strategies, seeds, out, pairs, jobs, launcher, runner, echo)


def _run_bench(values: dict[str, Any], strategies: list[Strategy], seeds: list[int], out: Path, pairs: bool,
               jobs: int, launcher: str, runner, echo: Echo) -> dict[str, Any]:
    if pairs:
        plan = make_pairs_plan(values, strategies, seeds, out)
        echo(f"Bench {out} (--pairs): {len(plan.tasks)} tasks alone and {plan.pairs} pair"
             f"{'' if plan.pairs == 1 else 's'} ({', '.join(s.label for s in plan.strategies)}) × {len(seeds)} seed"
             f"{'' if len(seeds) == 1 else 's'}, {plan.runs} runs{_at_once(jobs, launcher)}; run again with -o {out} "
             "to continue if stopped.")
        execute_pairs(plan, echo, jobs=jobs, launcher=runner)
        return finish_pairs(plan)
    bench = make_plan(values, strategies, seeds, out)
    echo(f"Bench {out}: {len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'} × "
         f"{len(seeds)} seed{'' if len(seeds) == 1 else 's'} "
         f"({', '.join(s.label for s in strategies)}){_at_once(jobs, launcher)}; run again with -o {out} to "
         "continue if stopped.")
    execute(bench, echo, jobs=jobs, launcher=runner)
    return finish(bench)


def _at_once(jobs: int, launcher: str) -> str:
    """`` (2 at once, launcher slurm)`` where the bench is not one local run after another."""
    parts = ([f"{jobs} at once"] if jobs > 1 else []) + ([f"launcher {launcher}"] if launcher != "local" else [])
    return f" ({', '.join(parts)})" if parts else ""


def finish(plan: BenchPlan) -> dict[str, Any]:
    """bench.json (runs and table), bench.md and bench.png from the plan's run folders."""
    runs = collect(plan)
    table = summarize(plan.target, plan.strategies, runs)
    record = write_bench_file(plan, runs, table)
    plan.bench.write_markdown(markdown(record))
    bench_figure(table, plan.bench.figure_path, seeds=len(plan.seeds))
    return record


def execute_pairs(plan: PairsPlan, echo: Echo = lambda _: None, *, jobs: int = 1,
                  launcher=None) -> list[tuple[str, str, int]]:
    """Every unfinished run of every network, ``jobs`` at once (the networks' runs in one schedule); returns the
    (network, strategy, seed) it ran."""
    plan.output.mkdir(parents=True, exist_ok=True)
    write_pairs_file(plan)
    return execute_all([(n.name, n.plan) for n in plan.networks], echo, jobs, launcher)


def finish_pairs(plan: PairsPlan) -> dict[str, Any]:
    """Each network's bench.json, bench.md and bench.png (those with a finished run), then DIR/bench.json and
    DIR/bench.md with the table of every task alone and with each partner."""
    for network in plan.networks:
        if any(r["status"] == "finished" for r in collect(network.plan)):
            finish(network.plan)
    record = write_pairs_file(plan, pairs_table(plan))
    plan.bench.write_markdown(pairs_markdown(record))
    return record


def report(folder: Path) -> dict[str, Any]:
    """`mtl report`: a bench's (or a --pairs bench's) files written again from its bench.json and run folders."""
    if BenchFolder(folder).is_pairs():
        return finish_pairs(load_pairs_plan(folder))
    return finish(load_plan(folder))
