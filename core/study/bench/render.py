"""A bench's tables as text: the cells the terminal table and bench.md share, and bench.md itself (a plain bench's and
a --pairs bench's)."""

from __future__ import annotations

from typing import Any

from mtl.runs import folder as run_files
from mtl.study import statistics as stats


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names and cells, shared by the terminal table and bench.md."""
    ref = table["reference"]
    header = ["strategy", "seeds"]
    for metric in table["metrics"]:
        header += [metric, f"Δ {metric} [95% CI]"]
    header += ["train s", "examples/s", "peak MB"]
    rows = []
    for row in table["rows"]:
        cells = [row["strategy"], str(row["n"])]
        for metric in table["metrics"]:
            m = row["metrics"][metric]
            if m["mean"] is None:
                cells.append("-")
            else:
                std = "-" if len(m["values"]) < 2 else _num(m["std"])
                cells.append(f"{_num(m['mean'])} ± {std}")
            if row["strategy"] == ref:
                cells.append("(reference)")
            elif m.get("delta") is None:
                cells.append("-")
            else:
                cells.append(f"{m['delta']:+.4f} {interval_text(m.get('interval'))}")
        cells += [_num(row["train_seconds"], 1), _num(row["examples_per_second"], 1),
                  _num(row["peak_memory_mb"], 0)]
        rows.append(cells)
    return header, rows


def interval_text(interval: dict[str, Any] | None) -> str:
    """``[-0.0123, +0.0456]``, with `` *`` when it excludes 0; ``[n/a]`` without one."""
    if not interval:
        return "[n/a]"
    return f"[{interval['low']:+.4f}, {interval['high']:+.4f}]" + (" *" if interval["excludes_zero"] else "")


def title(table: dict[str, Any]) -> str:
    return f"{table['target']} ({table['split']}): mean ± std over seeds"


def caption(table: dict[str, Any]) -> str:
    return (f"Δ: mean paired difference to {table['reference']} (the first strategy) over seeds; [95% CI]: paired "
            f"bootstrap over the dev examples ({stats.RESAMPLES} resamples); *: the interval excludes 0; "
            f"n/a: a run without {run_files.PREDICTIONS}")


def markdown(bench: dict[str, Any]) -> str:
    table = bench["table"]
    header, rows = table_rows(table)
    aux = ", ".join(f"`{a}`" for a in bench.get("aux") or []) or "none"
    options = bench.get("run_options", {})
    lines = [
        f"# mtl bench: {table['target']}",
        "",
        f"Target `{table['target']}` (metrics of its `{table['split']}` split), auxiliary tasks {aux}; "
        f"backbone `{options.get('backbone', 'minilm')}`; seeds {', '.join(map(str, bench.get('seeds', [])))}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(cells) + " |" for cells in rows),
        "",
        f"Mean ± sample standard deviation (ddof = 1) over seeds; Δ is the mean paired difference to "
        f"`{table['reference']}` (the first strategy) over the seeds both ran, with its paired bootstrap 95 % "
        f"interval: {stats.RESAMPLES} resamples of the `{table['split']}` examples (seed {stats.BOOTSTRAP_SEED}), "
        f"each scored for the strategy and the reference on the same examples in every seed, the difference "
        f"averaged over seeds, percentiles 2.5 and 97.5. `*`: the interval excludes 0. n/a: a run has no "
        f"`{run_files.PREDICTIONS}` (older runs). The interval covers the choice of evaluation examples, not "
        f"the spread over seeds (mean ± std); bench.json also holds the paired t-test over seeds (`p`). Train s "
        f"and examples/s are means over seeds (training only, no evaluation); peak MB is the largest peak "
        f"resident memory of a run.",
        "",
    ]
    return "\n".join(lines)


def pairs_rows(table: dict[str, Any], strategy: str) -> tuple[list[str], list[list[str]]]:
    """Column names and cells of one strategy's table: each row task alone and with each column task (Δ to alone)."""
    tasks = table["tasks"]
    header = ["task", "metric", "alone", *[f"with {t}" for t in tasks]]
    rows = []
    for task in tasks:
        entry = table["scores"][strategy][task]
        alone = entry["alone"]
        cells = [task, table["metrics"].get(task, "-"), _num(alone)]
        for other in tasks:
            value = entry["with"].get(other)
            if other == task:
                cells.append("")
            elif value is None:
                cells.append("-")
            else:
                cells.append(_num(value) + ("" if alone is None else f" ({value - alone:+.4f})"))
        rows.append(cells)
    return header, rows


def pairs_title(table: dict[str, Any], strategy: str) -> str:
    return f"Pairs, {strategy}: each task alone and trained with another (mean over seeds; Δ to alone)"


def pairs_markdown(record: dict[str, Any]) -> str:
    table = record["table"]
    options = record.get("run_options", {})
    about = (f"Every task alone (`single`) and every pair of tasks; backbone `{options.get('backbone', 'minilm')}`; "
             f"seeds {', '.join(map(str, record.get('seeds', [])))}. A task's score is its primary metric (the first "
             "metric of its first evaluation split), the mean over seeds; a pair's target is the task listed "
             "first in the bench, and both tasks are evaluated. `mtl group` chooses networks from these scores.")
    lines = [f"# mtl bench --pairs: {', '.join(record['tasks'])}", "", about, ""]
    for strategy in table["strategies"]:
        header, rows = pairs_rows(table, strategy)
        lines += [f"## {pairs_title(table, strategy)}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
                  *("| " + " | ".join(cells) + " |" for cells in rows), ""]
    return "\n".join(lines)
