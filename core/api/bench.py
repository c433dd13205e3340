"""``mtl.bench(strategies, seeds=...)``: strategies × seeds, as `mtl bench` runs and tabulates them, from Python.

It calls what `mtl bench` calls (:mod:`mtl.study.bench`: the strategy language, the plan checked before anything
runs, the runs as separate processes, bench.json / bench.md / bench.png) and returns the table's rows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mtl.api.options import run_values
from mtl.api.results import BenchResult
from mtl.errors import OptionError
from mtl.runs.config import RunConfig
from mtl.study import bench as core


def bench(strategies: str | list[str] | None = None, *, seeds: str | list[int] = "0,1,2",
          output: str | os.PathLike | None = None, jobs: int = 1, launcher: str = "local",
          weighting: str | list[str] | None = None, sampler: str | list[str] | None = None,
          progress: bool = False, **options: Any) -> BenchResult:
    """Run every strategy with every seed and return the bench's :class:`BenchResult` (rows, ``to_pandas()``).

    ``strategies``: ``single`` (the target alone), ``WEIGHTING`` or ``WEIGHTING+SAMPLER`` (a list, or one string
    comma-separated); then the grid ``weighting`` × ``sampler``, as `mtl bench`'s --strategy, --weighting and
    --sampler. The first strategy is the reference. ``seeds``: ``[0, 1]`` or ``"0,1"``. ``output``: the bench folder
    (default ``bench/<time>``; an existing bench is continued, its finished runs kept). ``jobs`` runs at once, through
    ``launcher`` (``local`` processes or ``slurm``). ``options``: run options as :func:`mtl.train` takes them (no
    ``seed``). ``progress`` prints a line per run on stderr.
    """
    values = run_values(options, exclude=("seed",))
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise OptionError(f"jobs={jobs!r}: give the number of runs at once, 1 or more")
    mine, values["options"] = core.launcher_options(values.get("options") or {}, launcher)
    runner = core.make_launcher(launcher, mine)  # before anything is written: a wrong name or option is one line
    defaults = RunConfig(**values)
    chosen = core.parse_strategies(_names(strategies, "strategies"), _names(weighting, "weighting"),
                                   _names(sampler, "sampler"), base_weighting=defaults.weighting,
                                   base_sampler=defaults.sampler)
    out = Path(output) if output is not None else core.default_output()
    plan = core.make_plan(values, chosen, core.parse_seeds(_seeds(seeds)), out)
    echo = (lambda line: print(line, file=sys.stderr)) if progress else (lambda _: None)
    core.execute(plan, echo, jobs=jobs, launcher=runner)
    return BenchResult.of(out, core.finish(plan))


def _names(value: str | list[str] | tuple[str, ...] | None, name: str) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]``."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise OptionError(f"{name} must be a name or a list of names (got {value!r})")
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def _seeds(value: Any) -> str:
    """``[0, 1]`` as ``"0,1"`` (what :func:`mtl.study.bench.parse_seeds` reads); a string as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple, range)):
        if not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in value):
            raise OptionError(f"seeds must be integers, e.g. seeds=[0, 1, 2] (got {list(value)!r})")
        return ",".join(str(seed) for seed in value)
    if isinstance(value, str):
        return value
    raise OptionError(f"seeds must be a list of integers, e.g. seeds=[0, 1, 2] (got {value!r})")
