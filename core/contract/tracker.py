"""The experiment-tracker base class of the plugin contract (DESIGN.md, "Additions": experiment trackers).

A tracker receives what a run writes to ``metrics.jsonl`` (losses, ``weight.<task>``, the sampler's ``p.<task>``,
the strategy's scalars, ``lr``, evaluation metrics) and the run's options as hyper-parameters, and sends them
to an experiment-tracking service: TensorBoard, MLflow, Weights & Biases, trackio. ``mtl run --report-to
tensorboard,mlflow`` chooses them (the spelling of ``transformers.Trainer``'s ``report_to``). Under torchrun only
rank 0 starts, logs and finishes its trackers; every rank builds them, so a missing package is the same one-line
error on every rank, before anything is written.

A tracker imports its service's package only when it is used: in ``__init__`` through :meth:`Tracker.require`
(a missing package is then a one-line error naming the package to install, before training starts), never at
module level, so that listing plugins stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mtl.errors import MtlError

#: the values of ``status`` in :meth:`Tracker.finish`
FINISHED, FAILED, INTERRUPTED = "finished", "failed", "interrupted"


class Tracker:
    """Base class: tracks nothing. Options are the subclass's typed keyword arguments (``--set NAME.KEY=VALUE``)."""

    def start(self, run_name: str, config: dict[str, Any], output_dir: Path) -> None:
        """Called once on rank 0 before the first step: ``run_name`` is the run folder's name, ``config`` the run's
        options (``config.json``'s options, nested: ``options`` maps plugins to their options), ``output_dir``
        the run folder (a tracker that writes files writes them under it unless told otherwise)."""

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Called with each record of ``metrics.jsonl``: the training step (0-based) and its numbers by their flat
        names (``loss.rte``, ``weight.mnli``, ``p.rte``, ``lr``, ``mamt.similarity``, ``eval.rte.dev.accuracy``,
        ``epoch``). An evaluation record has the step of the last training record of its epoch."""

    def finish(self, status: str) -> None:
        """Called once at the end: ``status`` is ``"finished"``, ``"failed"`` (an error stopped the run) or
        ``"interrupted"`` (Ctrl-C, SIGTERM; the run can be resumed)."""

    # ------------------------------------------------------------------ helpers for subclasses
    @staticmethod
    def require(module: str, package: str | None = None, *, tracker: str = "") -> Any:
        """``importlib.import_module(module)``, or a one-line :class:`MtlError` naming the package to install
        (``package``, default the module's top-level name)."""
        try:
            return importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken install failing at import
            package = package or module.partition(".")[0]
            who = f"tracker {tracker!r}" if tracker else "this tracker"
            raise MtlError(f"{who} needs the Python package {package}: pip install {package} "
                           f"({type(exc).__name__}: {exc})") from None

    @staticmethod
    def flatten(config: dict[str, Any], *, sep: str = ".",
                max_length: int = 500) -> dict[str, str | int | float | bool]:
        """``config`` as flat hyper-parameters for services that take only scalars: nested mappings joined with
        ``sep`` (``options.mamt.psi``), lists as comma-separated text, None as ``"none"``, long texts cut to
        ``max_length`` characters."""
        flat: dict[str, str | int | float | bool] = {}

        def visit(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                if not value and prefix:
                    flat[prefix] = ""
                for key, item in value.items():
                    visit(f"{prefix}{sep}{key}" if prefix else str(key), item)
                return
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            elif value is None:
                value = "none"
            elif not isinstance(value, (str, int, float, bool)):
                value = str(value)
            if isinstance(value, str) and len(value) > max_length:
                value = value[: max_length - 1] + "…"
            flat[prefix] = value

        visit("", config)
        return flat
