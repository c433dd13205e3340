"""``mtl.train(**options)``: one run, as `mtl run` trains it, from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl.api.options import run_values
from mtl.api.results import TrainResult
from mtl.data.suite import use_demo
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer


def train(*, overwrite: bool = False, progress: bool = False, **options: Any) -> TrainResult:
    """Train a run and return its :class:`TrainResult` (metrics, summary, run folder, a predictor).

    ``options`` are `mtl run`'s options by their RunConfig names (``target="rte", aux=["mnli"], weighting="mamt",
    backbone="tiny", max_steps=20, output="runs/x", seed=1`` ...), plus ``config=`` (a YAML/JSON options file the
    keywords override) and ``set=`` (plugin options: ``{"mamt": {"psi": 0.5}}``); with no task, the offline demo
    suite with its quick-start defaults, as `mtl run` without task options. ``overwrite`` replaces an existing run
    folder; ``progress`` shows the progress bar. A wrong option name or value is the one-line
    :class:`mtl.OptionError` the command line gives.
    """
    values = run_values(options)
    use_demo(values)
    config = RunConfig(**values)
    result = Trainer(config, progress=progress, overwrite=overwrite).prepare().train()
    return TrainResult(Path(result["output"]).absolute(), config.target, result["eval"] or {}, result["summary"],
                       config)
