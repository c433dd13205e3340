"""The one validation phase of a run: :meth:`RunPlan.build` checks a :class:`RunConfig` and builds its plugins
(tasks, weighting, sampler, regularizer, trackers, callbacks) and the data sources of each task's splits, once,
writing nothing and loading no data or model; the trainer (and ``mtl bench``, before it starts any run) use it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mtl.contract import declared, loader
from mtl.errors import MtlError, PluginError
from mtl.runs.config import FIELD_NAMES, RunConfig
from mtl.training import tracking


@dataclass
class Source:
    """Where a task's split is read from: a file given with ``--data task.split=FILE`` or a folder."""

    file: str | None
    data_dir: str | None


@dataclass
class RunPlan:
    """A checked run: its config (normalised by :meth:`RunConfig.validate`), its plugins built with their options,
    and the source of every split it reads."""

    config: RunConfig
    tasks: dict[str, Any]
    weighting: Any
    sampler: Any
    regularizer: Any | None
    backbone_options: dict[str, Any]
    trackers: tracking.Trackers
    callbacks: dict[str, Any]
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)

    @classmethod
    def build(cls, config: RunConfig, *, distributed: bool = False, main: bool = True,
              target_optional: bool = False) -> RunPlan:
        """Check ``config`` and build the run's plugins (one-line errors naming what is wrong). ``distributed``:
        under torchrun; ``main``: rank 0 (the trackers report there only); ``target_optional``: tasks without a
        target are allowed (`mtl affinity --tasks`; the first task is checked as the target would be)."""
        declared.use(config)  # --tasks-file read, declared tasks registered (one-line errors, nothing written)
        check(config, target_optional)
        c = config
        routed = c.plugin_options()
        tasks = {name: loader.create("task", name, **routed.get(("task", name), {})) for name in c.tasks}
        for name, task in tasks.items():
            check_task(name, task)
        for key in c.data:
            name, _, split = key.partition(".")
            read = [tasks[name].train_split, *tasks[name].eval_splits]
            if split and split not in read:
                raise MtlError(f"--data {key}: a run of {name!r} reads the splits {', '.join(read)} (got {split!r})")
        weighting = loader.create("weighting", c.weighting, **routed.get(("weighting", c.weighting), {}))
        sampler = loader.create("sampler", c.sampler, **routed.get(("sampler", c.sampler), {}))
        regularizer = (loader.create("regularizer", c.regularizer, **routed.get(("regularizer", c.regularizer), {}))
                       if c.regularizer else None)
        # --report-to: built on every rank (a missing package is an error before anything is written), used on rank 0
        c.report_to = tracking.resolve(c.report_to)
        trackers = tracking.create(c.report_to, {name: routed.get(("tracker", name), {}) for name in c.report_to},
                                   enabled=main)
        callbacks = {name: loader.create("callback", name, **routed.get(("callback", name), {}))
                     for name in dict.fromkeys(c.callbacks)}
        if distributed and not getattr(weighting, "supports_distributed", True):
            raise MtlError(f"weighting {c.weighting!r} does not support distributed training (run it in one process)")
        if distributed and not getattr(regularizer, "supports_distributed", True):
            raise MtlError(f"regularizer {c.regularizer!r} does not support distributed training (run it in one "
                           f"process)")
        sources = {(name, split): Source(*split_file(c, name, split))
                   for name, task in tasks.items() for split in (task.train_split, *task.eval_splits)}
        return cls(c, tasks, weighting, sampler, regularizer, routed.get(("backbone", c.backbone), {}), trackers,
                   callbacks, sources)

    def plugins(self) -> dict[str, tuple[str, Any]]:
        """kind -> (name, object) of the run's weighting, sampler and regularizer (for fault attribution)."""
        c = self.config
        built = {"weighting": (c.weighting, self.weighting), "sampler": (c.sampler, self.sampler),
                 "regularizer": (c.regularizer, self.regularizer)}
        return {kind: (name, obj) for kind, (name, obj) in built.items() if obj is not None}


def check(config: RunConfig, target_optional: bool = False) -> None:
    """The options' types and ranges and what must hold between them (tasks, ``--data`` keys)."""
    if target_optional and config.target is None and config.aux:
        first = dataclasses.replace(config, target=config.aux[0], aux=config.aux[1:])
        check(first)  # the tasks checked as a run with the first one as its target, the values normalised
        for name in FIELD_NAMES - {"target", "aux"}:
            setattr(config, name, getattr(first, name))
        return
    c = config.validate()
    if not c.tasks:
        raise MtlError("no tasks: give --target (and --aux), or run without task options for the demo suite")
    for key in c.data:
        task = key.partition(".")[0]
        if task not in c.tasks:
            raise MtlError(f"--data {key}: task {task!r} is not in this run ({', '.join(c.tasks)})")


def split_file(config: RunConfig, task: str, split: str) -> tuple[str | None, str | None]:
    """(file, data_dir) for a task's split from ``--data``: ``task.split=FILE`` or ``task=FOLDER``."""
    if f"{task}.{split}" in config.data:
        return config.data[f"{task}.{split}"], None
    if task in config.data:
        return None, config.data[task]
    return None, config.data_dir


def check_task(name: str, task) -> None:
    """What a task plugin must declare before a run trains it: known metrics, the first one primary, and labels
    (or None for a regression task)."""
    from mtl.data.metrics import METRICS

    metrics = tuple(task.metrics or ())
    if not metrics:
        raise PluginError(f"task {name!r} declares no metrics (the first one is the primary metric)")
    kind = task.kind
    known = METRICS if kind.name in ("classification", "regression") else kind.metric_names  # a type's own metrics
    for metric in metrics:
        if metric not in known:
            raise PluginError(f"task {name!r}: unknown metric {metric!r} (known: {', '.join(known)})")
    if not getattr(kind, "structured", False) and task.labels is not None and len(task.labels) < 2:
        raise PluginError(f"task {name!r} declares {len(task.labels)} labels; a classification task needs two or "
                          f"more (labels = None for a regression task)")
