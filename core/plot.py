"""Figures (PNG, matplotlib's Agg canvas, no display needed): a run's training curves (`mtl plot`) and the
bar chart of a bench (`mtl bench`, `mtl report`).

From a run folder's ``metrics.jsonl`` (DESIGN.md, "Runs"), one figure per kind of record, each drawn only
when its keys are there:

==================  ============================  ====================================================
file                keys                          what it shows
==================  ============================  ====================================================
``loss.png``        ``loss.<task>``               training loss per task over steps (EMA-smoothed)
``weights.png``     ``weight.<task>``             mean effective loss weight per task (SIWLM's
                                                  schedule, MAMT's τ on auxiliary tasks)
``similarity.png``  ``mamt.similarity``           MAMT: mean auxiliary-to-memory similarity (and the
                                                  mean τ) over training, as in the paper's Fig. 6
``sampler.png``     ``p.<task>``                  the sampler's task probabilities over training
``gates.png``       ``mmoe.gate.<task>.<e>``      MMoE: mean gate weight of each expert, per task
``eval.png``        ``eval.<task>.<split>.<m>``   evaluation metrics per epoch, one panel per task
==================  ============================  ====================================================

matplotlib is imported only here, and only when a figure is drawn; no pyplot state is touched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import MtlError

SMOOTHING = 0.6  # TensorBoard's default EMA weight


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """The records of ``RUN/metrics.jsonl``; a missing or malformed file is a one-line error."""
    run = Path(run)
    if not run.is_dir():
        raise MtlError(f"{run}: no such run folder")
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise MtlError(f"{run}: not a run folder (no metrics.jsonl; `mtl run` writes one)")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MtlError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            if not isinstance(record, dict) or "step" not in record:
                raise MtlError(f"{path}:{number}: not a metrics record (no 'step')")
            records.append(record)
    if not records:
        raise MtlError(f"{path}: no records yet (the run logs every --log-every steps)")
    return records


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average with TensorBoard's bias correction (the first points are not pulled to 0)."""
    out, last, n = [], 0.0, 0
    for value in values:
        n += 1
        last = weight * last + (1 - weight) * value
        out.append(last / (1 - weight ** n) if weight < 1 else value)
    return out


def _figure(width: float = 8.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in records:
        value = record.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            steps.append(record["step"])
            values.append(float(value))
    return steps, values


def _keys(records: list[dict[str, Any]], prefix: str) -> list[str]:
    """Keys starting with ``prefix`` in order of first appearance."""
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            if key.startswith(prefix):
                seen.setdefault(key)
    return list(seen)


class _Run:
    def __init__(self, run: Path) -> None:
        self.path = Path(run)
        self.records = read_metrics(self.path)
        self.train = [r for r in self.records if not any(k.startswith("eval.") for k in r)]
        self.evals = [r for r in self.records if any(k.startswith("eval.") for k in r)]
        config = _read_optional(self.path / "config.json") or {}
        self.summary = _read_optional(self.path / "summary.json") or {}
        self.target = config.get("target")
        names = ([config["target"]] if config.get("target") else []) + list(config.get("aux") or [])
        self.order = {name: i for i, name in enumerate(names)}
        self.name = "/".join(self.path.resolve().parts[-2:])  # e.g. mamt/seed-0 in a bench

    def tasks(self, prefix: str) -> list[str]:
        """Task names of keys ``prefix<task>``, the run's order (target first)."""
        names = [k[len(prefix):] for k in _keys(self.train, prefix)]
        return sorted(names, key=lambda n: (self.order.get(n, len(self.order)), names.index(n)))

    def label(self, task: str) -> str:
        return f"{task} (target)" if task == self.target else task

    def title(self, ax, text: str) -> None:
        ax.set_title(text, fontsize=11, loc="left")
        ax.figure.suptitle(f"run {self.name}", fontsize=8, color="0.4", x=0.99, ha="right")


def _read_optional(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _line(ax, x: list, y: list, **style) -> None:
    """A line, with markers where there are few points (a single point stays visible)."""
    if len(y) <= 40:
        style.setdefault("marker", "o")
        style.setdefault("markersize", 3.5)
    ax.plot(x, y, **style)


def _per_task_lines(run: _Run, prefix: str, ax, smoothing: float) -> None:
    for i, task in enumerate(run.tasks(prefix)):
        steps, values = _series(run.train, prefix + task)
        color = f"C{i % 10}"
        if smoothing > 0 and len(values) > 2:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=1)
            _line(ax, steps, smooth(values, smoothing), color=color, linewidth=2, label=run.label(task))
        else:
            _line(ax, steps, values, color=color, linewidth=2, label=run.label(task))


def _finish_axes(ax, xlabel: str, ylabel: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best", frameon=False)


# ------------------------------------------------------------------------------------------------ figures
def _per_task_figure(run: _Run, path: Path, prefix: str, smoothing: float, missing: str, title: str,
                     ylabel: str, ylim=None) -> Path | str:
    """One line per task of the ``<prefix><task>`` records; ``ylim(ax)`` may then set the y range."""
    if not run.tasks(prefix):
        return missing
    fig = _figure()
    ax = fig.subplots()
    _per_task_lines(run, prefix, ax, smoothing)
    run.title(ax, title)
    _finish_axes(ax, "step", ylabel)
    if ylim is not None:
        ylim(ax)
    return _save(fig, path)


def _loss(run: _Run, path: Path, smoothing: float) -> Path | str:
    return _per_task_figure(run, path, "loss.", smoothing, "no loss.<task> records",
                            f"Training loss per task (EMA smoothing {smoothing:g}; faint: logged values)",
                            "mean instance loss")


def _weights(run: _Run, path: Path, smoothing: float) -> Path | str:
    return _per_task_figure(run, path, "weight.", smoothing, "no weight.<task> records (the weighting logs none)",
                            "Effective loss weight per task (mean over the task's instances in a step)", "weight",
                            ylim=lambda ax: ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0])))


def _similarity(run: _Run, path: Path, smoothing: float) -> Path | str:
    steps, values = _series(run.train, "mamt.similarity")
    if not values:
        return "no mamt.similarity records (not a MAMT run)"
    fig = _figure()
    ax = fig.subplots()
    if len(values) > 2:
        ax.plot(steps, values, color="C0", alpha=0.25, linewidth=1)
    _line(ax, steps, smooth(values, smoothing), color="C0", linewidth=2,
          label="mean similarity S of auxiliary examples to the memory")
    tau_steps, tau = _series(run.train, "mamt.tau")
    if tau:
        _line(ax, tau_steps, smooth(tau, smoothing), color="C1", linewidth=1.5, linestyle="--",
              label="mean weight τ = min(φ, max(0, S))")
    run.title(ax, f"MAMT: auxiliary-to-memory similarity over training (EMA {smoothing:g})")
    _finish_axes(ax, "step", "similarity / τ")
    return _save(fig, path)


def _sampler(run: _Run, path: Path, smoothing: float) -> Path | str:
    return _per_task_figure(run, path, "p.", 0.0, "no p.<task> records",
                            "Sampler: probability of training each task at a step", "probability",
                            ylim=lambda ax: ax.set_ylim(0, 1.02))


def _gates(run: _Run, path: Path, smoothing: float) -> Path | str:
    keys = _keys(run.train, "mmoe.gate.")
    if not keys:
        return "no mmoe.gate.<task>.<expert> records (not an MMoE run)"
    sums: dict[tuple[str, int], list[float]] = {}
    for key in keys:
        task, _, expert = key[len("mmoe.gate."):].rpartition(".")
        if not task or not expert.isdigit():
            continue
        sums[(task, int(expert))] = _series(run.train, key)[1]
    tasks = sorted({t for t, _ in sums}, key=lambda n: (run.order.get(n, len(run.order)), n))
    experts = sorted({e for _, e in sums})
    if not tasks:
        return "no mmoe.gate.<task>.<expert> records"
    import numpy as np

    matrix = np.full((len(tasks), len(experts)), np.nan)
    for (task, expert), values in sums.items():
        if values:
            matrix[tasks.index(task), experts.index(expert)] = sum(values) / len(values)
    fig = _figure(max(5.0, 1.3 * len(experts) + 3), max(2.8, 0.6 * len(tasks) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=max(1e-9, float(np.nanmax(matrix))), aspect="auto")
    for i in range(len(tasks)):
        for j in range(len(experts)):
            if not np.isnan(matrix[i, j]):
                bright = matrix[i, j] > 0.6 * np.nanmax(matrix)
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="black" if bright else "white")
    ax.set_xticks(range(len(experts)), [f"expert {e}" for e in experts])
    ax.set_yticks(range(len(tasks)), [run.label(t) for t in tasks])
    fig.colorbar(image, ax=ax, label="mean gate weight")
    run.title(ax, "MMoE gate use: mean gate weight per task and expert")
    ax.set_xlabel("expert")
    ax.set_ylabel("task")
    return _save(fig, path)


def _eval(run: _Run, path: Path, smoothing: float) -> Path | str:
    keys = _keys(run.evals, "eval.")
    if not keys:
        return "no eval.<task>.<split>.<metric> records"
    by_task: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        task, split, metric = key[len("eval."):].rsplit(".", 2) if key.count(".") >= 3 else (key, "", "")
        by_task.setdefault(task, []).append((key, f"{split} {metric}"))
    tasks = sorted(by_task, key=lambda n: (run.order.get(n, len(run.order)), n))
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig = _figure(4.2 * cols + 0.5, 3.3 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    best = run.summary.get("best_epoch")
    last_epoch = max(r["epoch"] for r in run.evals)
    for ax, task in zip(axes.flat, tasks):
        for i, (key, label) in enumerate(by_task[task]):
            epochs = [r["epoch"] for r in run.evals if isinstance(r.get(key), (int, float))]
            values = [r[key] for r in run.evals if isinstance(r.get(key), (int, float))]
            ax.plot(epochs, values, marker="o", color=f"C{i % 10}", label=label)
        if isinstance(best, int) and best >= 0:
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1, label="best epoch (kept)")
        ax.set_title(run.label(task), fontsize=10)
        ax.set_xlim(-0.5, max(last_epoch, 1) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        _finish_axes(ax, "epoch", "value")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.suptitle(f"Evaluation metrics per epoch — run {run.name}", fontsize=11)
    return _save(fig, path)


FIGURES = (
    ("loss.png", _loss),
    ("weights.png", _weights),
    ("similarity.png", _similarity),
    ("sampler.png", _sampler),
    ("gates.png", _gates),
    ("eval.png", _eval),
)


def plot_run(run: str | Path, out: str | Path | None = None, *, smoothing: float = SMOOTHING
             ) -> list[tuple[str, Path | None, str]]:
    """Draw every figure whose records the run has; returns ``(file, path or None, why skipped)`` per figure."""
    if not 0 <= smoothing < 1:
        raise MtlError(f"--smoothing must be in [0, 1) (got {smoothing})")
    data = _Run(Path(run))
    folder = Path(out) if out is not None else data.path / "plots"
    results = []
    for name, draw in FIGURES:
        outcome = draw(data, folder / name, smoothing)
        if isinstance(outcome, Path):
            results.append((name, outcome, ""))
        else:
            results.append((name, None, outcome))
    return results


# ------------------------------------------------------------------------------------------------ bench
def bench_figure(table: dict[str, Any], path: Path, seeds: int | None = None) -> Path:
    """Bars: the target's primary metric per strategy, mean with ± sample-std error bars, the seeds as dots."""
    metric = table["primary"]
    rows = [r for r in table["rows"] if r["metrics"][metric]["mean"] is not None]
    fig = _figure(max(5.0, 1.1 * len(rows) + 2.5), 4.5)
    ax = fig.subplots()
    xs = list(range(len(rows)))
    means = [r["metrics"][metric]["mean"] for r in rows]
    stds = [r["metrics"][metric]["std"] or 0.0 for r in rows]
    colors = ["0.6" if r["strategy"] == table["reference"] else f"C{i % 10}" for i, r in enumerate(rows)]
    ax.bar(xs, means, yerr=stds, capsize=5, color=colors, alpha=0.85, edgecolor="black", linewidth=0.6,
           error_kw={"elinewidth": 1.2})
    for x, row in zip(xs, rows):
        values = row["metrics"][metric]["values"]
        offsets = [(k - (len(values) - 1) / 2) * 0.08 for k in range(len(values))]
        ax.scatter([x + o for o in offsets], values, s=14, color="black", zorder=3,
                   label="one seed" if x == 0 else None)
    for x, mean, std in zip(xs, means, stds):
        ax.annotate(f"{mean:.3f}", (x, mean + std), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ref = next((r for r in rows if r["strategy"] == table["reference"]), None)
    if ref is not None:
        ax.axhline(ref["metrics"][metric]["mean"], color="0.3", linestyle="--", linewidth=1,
                   label=f"{table['reference']} (reference) mean")
    ax.set_xticks(xs, [r["strategy"] for r in rows], rotation=20 if len(rows) > 4 else 0,
                  ha="right" if len(rows) > 4 else "center")
    top = max((m + s for m, s in zip(means, stds)), default=1.0)
    all_values = [v for r in rows for v in r["metrics"][metric]["values"]]
    low = min([0.0, *all_values])
    ax.set_ylim(low, top * 1.12 if top > 0 else 1.0)
    n = f"{seeds} seeds" if seeds else "seeds"
    ax.set_title(f"{table['target']} ({table['split']} {metric}) per strategy\n"
                 f"bars: mean, error bars: ± sample std over {n}", fontsize=10.5, loc="left")
    _finish_axes(ax, "strategy", f"{table['target']} {table['split']} {metric}", legend=False)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    ax.grid(False, axis="x")
    return _save(fig, path)
