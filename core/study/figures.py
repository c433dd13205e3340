"""Figures (PNG, matplotlib's Agg canvas, no display needed): a run's training curves (`mtl plot`) and the
differences of a bench's strategies to its reference with their intervals (`mtl bench`, `mtl report`).

From a run folder's ``metrics.jsonl`` (DESIGN.md, "Runs"), one figure per kind of record, each drawn only
when its keys are there. Core draws the figures of the keys core itself logs:

==================  ============================  ====================================================
file                keys                          what it shows
==================  ============================  ====================================================
``loss.png``        ``loss.<task>``               training loss per task over steps (EMA-smoothed)
``weights.png``     ``weight.<task>``             mean effective loss weight per task (as the
                                                  weighting applied it)
``sampler.png``     ``p.<task>``                  the sampler's task probabilities over training
``eval.png``        ``eval.<task>.<split>.<m>``   evaluation metrics per epoch, one panel per task
==================  ============================  ====================================================

Plugins add figures of the scalars their ``log()`` records: hook ``register_figures(register)``,
``register(name, draw)``, ``draw(run)`` given a read-only :class:`RunRecords` and returning a matplotlib
``Figure`` made with ``run.figure()`` (written as ``<name>.png``) or a string saying why there is nothing to
draw. They are drawn after core's, in name order; one that raises is skipped with a one-line reason.

The run folder is read through :class:`mtl.runs.folder.RunFolder`. matplotlib is imported only here, and only
when a figure is drawn; no pyplot state is touched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mtl import locks
from mtl.errors import MtlError
from mtl.runs.folder import RunFolder

SMOOTHING = 0.6  # TensorBoard's default EMA weight


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
    """``fig`` as a PNG at ``path``, written whole or not at all (a PNG it replaces stays intact on a full disk)."""
    import io

    from mtl.runs import storage
    from mtl.runs.folder import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MtlError(f"--output {path.parent} exists and is not a folder") from None
    except OSError as exc:
        raise storage.error(path, exc) from None
    image = io.BytesIO()
    fig.savefig(image, format="png")
    write_atomic(path, image.getvalue())
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


class RunRecords:
    """A read-only view of one run's records: what every figure's ``draw(run)`` receives, core's and plugins'.

    A figure plugin uses only these attributes and methods (and matplotlib's own ``Axes`` methods on the axes
    of ``run.figure()``); it imports nothing of mtl, and matplotlib is already imported when it is called.

    ``records``   the training records of ``metrics.jsonl`` (read-only mappings with ``step``, ``epoch``,
                  ``loss.<task>``, ``weight.<task>``, ``p.<task>`` and every plugin's ``log()`` scalars)
    ``evals``     the evaluation records (``eval.<task>.<split>.<metric>`` with their ``epoch``)
    ``target``    the target task, or None
    ``smoothing`` the EMA weight of ``mtl plot --smoothing`` (0 = none); ``smooth(values)`` applies it
    ``summary``   ``summary.json`` (``best_epoch`` ...), empty while the run is not finished
    ``name``      the run's name as the figures show it (the folder's last two parts, e.g. ``mamt/seed-0``)
    ``path``      the run folder
    """

    def __init__(self, run: str | Path, smoothing: float = SMOOTHING) -> None:
        folder = RunFolder(run)
        records = tuple(MappingProxyType(r) for r in folder.metrics())
        config = folder.record(missing_ok=True) or {}
        self._path = folder.path
        self._records = tuple(r for r in records if not any(k.startswith("eval.") for k in r))
        self._evals = tuple(r for r in records if any(k.startswith("eval.") for k in r))
        self._summary = MappingProxyType(folder.summary() or {})
        self._target = config.get("target")
        self._smoothing = smoothing
        names = ([config["target"]] if config.get("target") else []) + list(config.get("aux") or [])
        self._order = {name: i for i, name in enumerate(names)}
        self._name = "/".join(self._path.resolve().parts[-2:])  # e.g. mamt/seed-0 in a bench

    def __repr__(self) -> str:
        return f"RunRecords({str(self._path)!r}, {len(self._records)} training records)"

    # -------------------------------------------------------------------------------- the records
    @property
    def records(self) -> tuple[Mapping[str, Any], ...]:
        """The training records, in step order."""
        return self._records

    @property
    def evals(self) -> tuple[Mapping[str, Any], ...]:
        """The evaluation records (one per evaluated epoch)."""
        return self._evals

    @property
    def target(self) -> str | None:
        return self._target

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @property
    def summary(self) -> Mapping[str, Any]:
        return self._summary

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> Path:
        return self._path

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of the training records that have a finite number under ``key``."""
        return _series(self._records, key)

    def keys(self, prefix: str) -> list[str]:
        """The keys of the training records starting with ``prefix``, in order of first appearance."""
        return _keys(self._records, prefix)

    def tasks(self, prefix: str) -> list[str]:
        """Task names of the keys ``<prefix><task>`` (``tasks("loss.")``), in the run's order (target first)."""
        return self.ordered(k[len(prefix):] for k in self.keys(prefix))

    def ordered(self, tasks: Iterable[str]) -> list[str]:
        """``tasks`` in the run's order: the target, then the auxiliary tasks as configured, then the others as
        given."""
        names = list(dict.fromkeys(tasks))
        return sorted(names, key=lambda n: (self._order.get(n, len(self._order)), names.index(n)))

    def label(self, task: str) -> str:
        """A task's legend label: ``rte (target)`` for the target."""
        return f"{task} (target)" if task == self._target else task

    def smooth(self, values: list[float]) -> list[float]:
        """``values`` smoothed with the run's ``smoothing`` (bias-corrected EMA, as TensorBoard)."""
        return smooth(values, self._smoothing)

    # -------------------------------------------------------------------------------- drawing
    def figure(self, width: float = 8.0, height: float = 4.5):
        """A new matplotlib ``Figure`` (inches; Agg canvas, constrained layout, no pyplot state): add axes with
        ``fig.subplots()`` and return it from ``draw``."""
        return _figure(width, height)

    def line(self, ax, x: list, y: list, **style) -> None:
        """``ax.plot(x, y, **style)``, with markers where there are few points (a single point stays visible)."""
        _line(ax, x, y, **style)

    def title(self, ax, text: str) -> None:
        """The axes' title, and the run's name in small print at the figure's top right."""
        ax.set_title(text, fontsize=11, loc="left")
        ax.figure.suptitle(f"run {self._name}", fontsize=8, color="0.4", x=0.99, ha="right")

    def finish(self, ax, xlabel: str, ylabel: str, legend: bool = True) -> None:
        """Axis labels, a light grid, and a legend when ``legend`` and some line has a label."""
        _finish_axes(ax, xlabel, ylabel, legend)


def _line(ax, x: list, y: list, **style) -> None:
    """A line, with markers where there are few points (a single point stays visible)."""
    if len(y) <= 40:
        style.setdefault("marker", "o")
        style.setdefault("markersize", 3.5)
    ax.plot(x, y, **style)


def _per_task_lines(run: RunRecords, prefix: str, ax, smoothing: float) -> None:
    for i, task in enumerate(run.tasks(prefix)):
        steps, values = run.series(prefix + task)
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
def _per_task_figure(run: RunRecords, prefix: str, smoothing: float, missing: str, title: str, ylabel: str,
                     ylim=None):
    """One line per task of the ``<prefix><task>`` records; ``ylim(ax)`` may then set the y range."""
    if not run.tasks(prefix):
        return missing
    fig = run.figure()
    ax = fig.subplots()
    _per_task_lines(run, prefix, ax, smoothing)
    run.title(ax, title)
    run.finish(ax, "step", ylabel)
    if ylim is not None:
        ylim(ax)
    return fig


def _loss(run: RunRecords):
    return _per_task_figure(run, "loss.", run.smoothing, "no loss.<task> records",
                            f"Training loss per task (EMA smoothing {run.smoothing:g}; faint: logged values)",
                            "mean instance loss")


def _weights(run: RunRecords):
    return _per_task_figure(run, "weight.", run.smoothing, "no weight.<task> records (the weighting logs none)",
                            "Effective loss weight per task (mean over the task's instances in a step)", "weight",
                            ylim=lambda ax: ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0])))


def _sampler(run: RunRecords):
    return _per_task_figure(run, "p.", 0.0, "no p.<task> records",
                            "Sampler: probability of training each task at a step", "probability",
                            ylim=lambda ax: ax.set_ylim(0, 1.02))


def _eval(run: RunRecords):
    keys = _keys(run.evals, "eval.")
    if not keys:
        return "no eval.<task>.<split>.<metric> records"
    by_task: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        task, split, metric = key[len("eval."):].rsplit(".", 2) if key.count(".") >= 3 else (key, "", "")
        by_task.setdefault(task, []).append((key, f"{split} {metric}"))
    tasks = run.ordered(sorted(by_task))
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig = run.figure(4.2 * cols + 0.5, 3.3 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    best = run.summary.get("best_epoch")
    last_epoch = max(r["epoch"] for r in run.evals)
    for ax, task in zip(axes.flat, tasks, strict=False):
        for i, (key, label) in enumerate(by_task[task]):
            epochs = [r["epoch"] for r in run.evals if isinstance(r.get(key), (int, float))]
            values = [r[key] for r in run.evals if isinstance(r.get(key), (int, float))]
            ax.plot(epochs, values, marker="o", color=f"C{i % 10}", label=label)
        if isinstance(best, int) and best >= 0:
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1, label="best epoch (kept)")
        ax.set_title(run.label(task), fontsize=10)
        ax.set_xlim(-0.5, max(last_epoch, 1) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        run.finish(ax, "epoch", "value")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.suptitle(f"Evaluation metrics per epoch — run {run.name}", fontsize=11)
    return fig


# Core's own figures: the keys core itself logs (DESIGN.md, "Runs"). Plugins add theirs (``register_figures``).
FIGURES: tuple[tuple[str, Callable[[RunRecords], Any]], ...] = (
    ("loss", _loss),
    ("weights", _weights),
    ("sampler", _sampler),
    ("eval", _eval),
)

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plugin_figures() -> list:
    """The registered figures (registry entries of kind ``figure``), in name order."""
    from mtl.contract import loader

    registry = loader.registry()
    conflicts = [c for c in registry.conflicts if c.startswith("figure ")]
    if conflicts:
        raise MtlError(conflicts[0] + "; uninstall one of them or limit plugins with MTL_LOAD_PLUGINS")
    return [registry.entries["figure"][name] for name in registry.names("figure")]


def _draw_plugin(entry, run: RunRecords):
    """A plugin figure's ``Figure`` or the one-line reason it is skipped; nothing a plugin does escapes as a
    traceback."""
    who = f"figure {entry.name!r} (plugin {entry.plugin!r})"
    if not _STEM.fullmatch(entry.name):
        return f"{who}: the name is not a file stem (letters, digits, '_', '.', '+', '-')"
    if entry.name in dict(FIGURES):
        return f"{who}: {entry.name}.png is a figure mtl draws itself; register another name"
    try:
        draw = entry.load()
    except Exception as exc:  # noqa: BLE001 - MtlError naming the figure, its plugin and the lazy "module:attr"
        reason = f"{who} could not be loaded: {type(exc).__name__}: {exc}"
        return _one_line(exc if isinstance(exc, MtlError) else reason)
    try:
        outcome = draw(run)
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises is its figure's skip line
        return _one_line(f"{who} failed: {type(exc).__name__}: {exc}")
    if isinstance(outcome, str):
        return _one_line(outcome)
    if not callable(getattr(outcome, "savefig", None)):
        return f"{who} returned {type(outcome).__name__}, not a matplotlib Figure or a reason string"
    return outcome


def plot_run(run: str | Path, out: str | Path | None = None, *, smoothing: float = SMOOTHING,
             overwrite: bool = False) -> list[tuple[str, Path | None, str]]:
    """Draw core's figures, then every registered figure (name order), each when the run has its records.

    Returns ``(file, path or None, why skipped)`` per figure. A plugin's figure that cannot be loaded, raises,
    or returns something else than a ``Figure`` or a string is skipped with a one-line reason. The default folder,
    RUN/plots, is drawn again freely; an ``out`` that holds files needs ``overwrite`` (PNGs of the same names are
    replaced, nothing else is touched).
    """
    if not 0 <= smoothing < 1:
        raise MtlError(f"--smoothing must be in [0, 1) (got {smoothing})")
    if not (overwrite and out is not None):
        return _plot_run(run, out, smoothing)
    with locks.FolderLock(out, "mtl plot --overwrite"):  # a second writer of --output is refused
        return _plot_run(run, out, smoothing, overwrite=True)


def _plot_run(run: str | Path, out: str | Path | None, smoothing: float,
              overwrite: bool = False) -> list[tuple[str, Path | None, str]]:
    if out is not None and Path(out).exists():
        if not Path(out).is_dir():
            raise MtlError(f"--output {out} exists and is not a folder")
        if any(Path(out).iterdir()) and not overwrite:
            raise MtlError(f"--output {out} already exists and is not empty; choose another folder or pass --overwrite "
                           f"(which replaces the PNGs of the same names)")
    data = RunRecords(run, smoothing)
    folder = Path(out) if out is not None else data.path / "plots"
    results: list[tuple[str, Path | None, str]] = []
    for name, draw in FIGURES:
        outcome = draw(data)
        if isinstance(outcome, str):
            results.append((f"{name}.png", None, outcome))
        else:
            results.append((f"{name}.png", _save(outcome, folder / f"{name}.png"), ""))
    for entry in _plugin_figures():
        file = f"{entry.name}.png"
        outcome = _draw_plugin(entry, data)
        if isinstance(outcome, str):
            results.append((file, None, outcome))
            continue
        try:
            results.append((file, _save(outcome, folder / file), ""))
        except OSError:
            raise  # the output folder: the user's to fix, reported as usual
        except Exception as exc:  # noqa: BLE001 - the plugin's figure does not render
            results.append((file, None, _one_line(f"figure {entry.name!r} (plugin {entry.plugin!r}) failed: "
                                                  f"{type(exc).__name__}: {exc}")))
    return results
