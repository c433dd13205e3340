"""bench.png: each strategy's difference to the reference with its paired bootstrap interval (matplotlib, drawn
with :mod:`mtl.study.figures`' helpers)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mtl.study import figures


def bench_figure(table: dict[str, Any], path: Path, seeds: int | None = None) -> Path:
    """Each strategy's difference to the reference: one panel per metric of the target's split (the primary
    first); a point at the mean paired difference Δ with its paired bootstrap 95 % interval as the error bar
    (none where a run has no predictions file), each seed's difference as a dot, and 0 (the reference) as a line."""
    metrics = [table["primary"], *[m for m in table["metrics"] if m != table["primary"]]]
    rows = [r for r in table["rows"] if r["strategy"] != table["reference"]]
    cols = min(2, len(metrics))
    panels = math.ceil(len(metrics) / cols)
    fig = figures._figure(max(5.5, 0.9 * max(len(rows), 1) + 3.4) * cols, 4.3 * panels + 0.6)
    axes = fig.subplots(panels, cols, squeeze=False)
    n = f"{seeds} seeds" if seeds else "seeds"
    for ax, metric in zip(axes.flat, metrics, strict=False):
        entries = [r["metrics"][metric] for r in rows]
        shown = [(x, row, m) for x, (row, m) in enumerate(zip(rows, entries, strict=True))
                 if m.get("delta") is not None]
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1, label=f"{table['reference']} (reference)")
        for x, _row, m in shown:
            color = f"C{x % 10}"
            interval = m.get("interval")
            if interval:  # drawn as lines: a percentile interval need not hold the point itself
                ax.vlines([x], interval["low"], interval["high"], color=color, linewidth=1.6)
                ax.hlines([interval["low"], interval["high"]], x - 0.08, x + 0.08, color=color, linewidth=1.6)
                ax.plot([x], [interval["delta"]], marker="o", color=color, markersize=7, linestyle="none",
                        label="Δ and its paired bootstrap 95 % interval" if x == shown[0][0] else None)
                if interval["excludes_zero"]:
                    ax.annotate("*", (x, interval["high"]), xytext=(0, 2), textcoords="offset points",
                                ha="center", va="bottom", fontsize=13)
            else:
                ax.plot([x], [m["delta"]], marker="o", color=color, markersize=7, fillstyle="none")
                ax.annotate("no interval", (x, m["delta"]), xytext=(8, 0), textcoords="offset points",
                            va="center", fontsize=7, color="0.4")
            deltas = m.get("deltas") or []
            offsets = [(k - (len(deltas) - 1) / 2) * 0.07 for k in range(len(deltas))]
            ax.scatter([x + 0.18 + o for o in offsets], deltas, s=14, color="black", zorder=3,
                       label="one seed's difference" if x == shown[0][0] else None)
        if not shown:
            ax.text(0.5, 0.5, "no strategy to compare with the reference", transform=ax.transAxes, ha="center",
                    va="center", fontsize=9, color="0.4")
        ax.set_xticks(range(len(rows)), [r["strategy"] for r in rows], rotation=20 if len(rows) > 4 else 0,
                      ha="right" if len(rows) > 4 else "center")
        ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
        ax.set_title(f"{table['target']} ({table['split']} {metric})", fontsize=10, loc="left")
        figures._finish_axes(ax, "strategy", f"Δ {metric}", legend=False)
        ax.grid(False, axis="x")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"Each strategy − {table['reference']} (the reference) over {n}\npoint: mean paired difference Δ; "
                 f"bar: its paired bootstrap 95 % interval over the {table['split']} examples; *: excludes 0",
                 fontsize=9.5)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return figures._save(fig, path)
