"""Experiment tracking (``--report-to``): the run's trackers, built before training and fed what
``metrics.jsonl`` records (:class:`mtl.Tracker`, DESIGN.md "Additions").

``--report-to`` is spelled as ``transformers.Trainer``'s ``report_to``: a comma list of tracker names, ``none``
(the default) or ``all`` (every registered tracker whose package is installed). Every rank builds the trackers
(a missing package is the same one-line error everywhere, before anything is written); only rank 0 starts them,
logs and finishes them. A tracker that cannot start is a one-line error before the first step; one that fails
later, while the run trains, is reported once on stderr and dropped: the run itself (and ``metrics.jsonl``) goes on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mtl.contract import loader
from mtl.contract.callback import Callback
from mtl.contract.tracker import FAILED, FINISHED, INTERRUPTED
from mtl.errors import MtlError, UnknownNameError, unknown, warn

NONE, ALL = "none", "all"
#: record keys that are not logged as scalars (``step`` is the x axis; ``tasks`` is a list)
NOT_SCALARS = ("step", "tasks")


def resolve(names: list[str]) -> list[str]:
    """The tracker names of ``--report-to`` (already split into a list): ``none`` -> [], ``all`` -> every registered
    tracker that can be built (its package installed); an unknown name lists the valid ones."""
    available = loader.available("tracker")
    if names == [ALL]:
        return [name for name in available if _buildable(name)]
    for name in names:
        if name not in available:
            raise UnknownNameError("--report-to: " + unknown("tracker", name, [*available, NONE, ALL]))
    return list(dict.fromkeys(names))


def _buildable(name: str) -> bool:
    try:
        loader.create("tracker", name)
    except MtlError:
        return False
    return True


def create(names: list[str], options: dict[str, dict[str, Any]], *, enabled: bool = True) -> Trackers:
    """The trackers ``names`` built with their ``--set NAME.KEY=VALUE`` options (``options[name]``); only an
    ``enabled`` one (rank 0) starts, logs and finishes them."""
    return Trackers({name: loader.create("tracker", name, **options.get(name, {})) for name in names}, enabled=enabled)


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a ``metrics.jsonl`` record (booleans and non-finite values left out)."""
    out = {}
    for key, value in record.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def status(exc: BaseException | None) -> str:
    """The ``finish`` status of a run that ended with ``exc`` (None: it finished)."""
    if exc is None:
        return FINISHED
    # Ctrl-C (KeyboardInterrupt) and any other BaseException that is not an error (a signal's), or an error that
    # exits with 128 + a signal's number (a run stopped by SIGINT/SIGTERM)
    if not isinstance(exc, Exception) or getattr(exc, "exit_code", 0) > 128:
        return INTERRUPTED
    return FAILED


class Trackers:
    """The run's trackers by name; :meth:`start`, :meth:`log` and :meth:`finish` call each of them."""

    def __init__(self, trackers: dict[str, Any], *, enabled: bool = True) -> None:
        self.trackers = trackers if enabled else {}
        self.started = False

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # a tracker's service failing must not stop the training
                del self.trackers[name]
                warn(f"tracker {name!r} stopped reporting: {method} failed: {type(exc).__name__}: "
                     f"{' '.join(str(exc).split())[:300]}")

    def start(self, run_name: str, config: dict[str, Any], output_dir: Path) -> None:
        """Start every tracker; one that cannot start (no login, a refused store) is a one-line error before the
        first step (the trackers started before it are finished as failed)."""
        for name, tracker in self.trackers.items():
            try:
                tracker.start(run_name, config, Path(output_dir))
            except Exception as exc:
                self.started = True
                self.trackers = dict(list(self.trackers.items())[: list(self.trackers).index(name)])
                self.finish(exc)
                if isinstance(exc, MtlError):
                    raise
                raise MtlError(f"tracker {name!r} could not start: {type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        self.started = bool(self.trackers)

    def log(self, step: int, record: dict[str, Any]) -> None:
        if self.started and self.trackers:
            values = scalars(record)
            if values:
                self._each("log", int(step), values)

    def finish(self, exc: BaseException | None = None) -> None:
        """Finish every started tracker once, with the status of ``exc`` (None: the run finished)."""
        if self.started:
            self.started = False
            self._each("finish", status(exc))


class Reporting(Callback):
    """The trackers as a callback: started at train begin with the run's options, fed every metrics record."""

    def __init__(self, trackers: Trackers, config: dict[str, Any]) -> None:
        self.trackers, self.config = trackers, config

    def on_train_begin(self, state, control, **kwargs: Any) -> None:
        folder = Path(state.run_folder)
        self.trackers.start(folder.name, self.config, folder)  # rank 0's only (--report-to)

    def on_log(self, state, control, *, logs: dict[str, Any], **kwargs: Any) -> None:
        self.trackers.log(logs["step"], logs)
