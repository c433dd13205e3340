"""Comparing strategies (`mtl bench`, `mtl report`): a grid of runs over seeds and the table of their results.

A *strategy* is a weighting, a weighting with a sampler, or ``single`` (the target alone: the single-task
baseline). Every run of the grid is a separate ``mtl run`` process writing ``DIR/<strategy>/seed-<s>/``, so
runs are isolated and each reports its own peak memory; a run whose folder holds ``eval.json`` is finished
and never run again, so a stopped bench continues where it stopped.

The table gives, per strategy, the mean ± sample standard deviation (ddof = 1) over seeds of every metric
of the target's first evaluation split, and the paired difference Δ to the *first* strategy (the reference) over
the seeds both ran, with its paired bootstrap 95 % interval over the evaluation examples
(:func:`mtl.study.statistics.paired_bootstrap`: 2,000 resamples of the dev examples, the same resample for the
strategy and the reference in every seed, the difference averaged over seeds) from each run's
``predictions.safetensors``; an interval that excludes 0 is marked ``*``. A run without that file (written by an
older mtl) leaves the interval "n/a". bench.json also keeps the paired t-test across seeds
(``scipy.stats.ttest_rel``; fewer than two pairs: no p value). bench.png draws each strategy's Δ with its interval
and each seed's difference.

With ``--pairs`` (:func:`make_pairs_plan`) a bench trains every task alone (``single``) and every pair of its
tasks with each multi-task strategy, one ordinary bench per network in ``DIR/<task>/`` and ``DIR/<a>+<b>/`` (the
pair's target is the task listed first); ``DIR/bench.json`` lists them with the table of each task's primary
metric alone and with each partner, the scores ``mtl group`` chooses networks from.

Modules, one job each: :mod:`.strategy` (the ``--strategy`` language), :mod:`.seeds`, :mod:`.options` (each
strategy's run options), :mod:`.validate`, :mod:`.plan` and :mod:`.pairs` (typed plans), :mod:`.execute`
(launchers, ``--jobs``), :mod:`.results` (records and statistics), :mod:`.render` (table cells, bench.md),
:mod:`.figure` (bench.png), :mod:`.record` and :mod:`.folder` (bench.json, :class:`BenchFolder`), :mod:`.run`
(:func:`run_bench`, :func:`finish`). Nothing here imports torch at import time.
"""

from mtl.study.bench.execute import execute, launcher_options, make_launcher
from mtl.study.bench.folder import FORMAT, BenchFolder, folder_name
from mtl.study.bench.options import stage_values, strategy_values
from mtl.study.bench.pairs import Network, PairsPlan, load_pairs_plan, make_pairs_plan
from mtl.study.bench.plan import (
    BenchPlan,
    Plan,
    RunPlan,
    default_output,
    load_plan,
    make_plan,
)
from mtl.study.bench.render import (
    caption,
    markdown,
    pairs_markdown,
    pairs_rows,
    pairs_title,
    table_rows,
    title,
)
from mtl.study.bench.results import collect, pairs_table, summarize
from mtl.study.bench.run import execute_pairs, finish, finish_pairs, report, run_bench
from mtl.study.bench.seeds import parse_seeds
from mtl.study.bench.strategy import FINETUNE, SINGLE, Strategy, parse_strategies


def read_bench_file(folder) -> dict:
    """A bench folder's bench.json, its structure checked (:meth:`BenchFolder.read`)."""
    return BenchFolder(folder).read()


def is_pairs(folder) -> bool:
    return BenchFolder(folder).is_pairs()


__all__ = [
    "FINETUNE", "FORMAT", "SINGLE", "BenchFolder", "BenchPlan", "Network", "PairsPlan", "Plan", "RunPlan", "Strategy",
    "caption", "collect", "default_output", "execute", "execute_pairs", "finish", "finish_pairs", "folder_name",
    "is_pairs", "launcher_options", "load_pairs_plan", "load_plan", "make_launcher", "make_pairs_plan", "make_plan",
    "markdown", "pairs_markdown", "pairs_rows", "pairs_table", "pairs_title", "parse_seeds", "parse_strategies",
    "read_bench_file", "report", "run_bench", "stage_values", "strategy_values", "summarize", "table_rows", "title",
]
