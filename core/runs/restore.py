"""Rebuilding a trained model from its run folder (DESIGN.md, "Runs"): no training data, no pickle.

``load_run(run_dir)`` reads ``config.json``, builds the same backbone (name and options, task embeddings
included), the same tasks and heads in the same order (task ids) and the same dropout, recreates the module a
weighting put between backbone and heads (``model.feature_map``) by calling that weighting's own ``setup`` on
a run without data, and loads the best model with safetensors (``checkpoint/best.safetensors``; for a finished run
with the tensors it refers to in ``model/``, :mod:`mtl.runs.best`). Every problem is a one-line
:class:`mtl.errors.MtlError` naming the file. The run folder is read through :class:`mtl.runs.folder.RunFolder`.

Predicting and evaluating (``Predictor``, ``load_predictor``, ``parse_lines``) live in :mod:`mtl.runs.predict`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtl.contract import loader
from mtl.errors import MtlError
from mtl.model.context import Run
from mtl.model.multitask import MultiTaskModel
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder


def read_config(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """The run's :class:`RunConfig` and the whole ``config.json`` record; a one-line error for a folder that is
    not a run or a run without tasks."""
    folder = RunFolder(run_dir)
    folder.require_run()
    config, record = folder.config()
    if not config.tasks:
        raise MtlError(f"{folder.config_path}: the run has no tasks (no 'target')")
    return config, record


def build_model(config: RunConfig):
    """A freshly initialised :class:`MultiTaskModel` of ``config``, its tasks and the weighting's options:
    ``(model, tasks, weighting_options)``."""
    routed = config.plugin_options()
    tasks = {name: loader.create("task", name, **routed.get(("task", name), {})) for name in config.tasks}
    with torch.random.fork_rng(devices=[]):  # a random backbone (tiny) must not move the caller's generator
        torch.manual_seed(config.seed)
        backbone = loader.create("backbone", config.backbone, **routed.get(("backbone", config.backbone), {}))
    model = MultiTaskModel(backbone, {n: t.num_outputs for n, t in tasks.items()}, config.dropout, tasks=tasks)
    weighting_options = routed.get(("weighting", config.weighting), {})
    return model, tasks, weighting_options


def _add_feature_map(config: RunConfig, model, tasks, options: dict, checkpoint: Path) -> None:
    """Recreate the module the run's weighting installed as ``model.feature_map``, by its own setup."""
    weighting = loader.create("weighting", config.weighting, **options)
    try:
        # what setup sees when a model is rebuilt for inference: the model and tasks, no training data
        weighting.setup(Run(config, model, tasks, config.target, train={}, device=torch.device("cpu"),
                            rng=torch.Generator().manual_seed(config.seed)))
    except MtlError:
        raise
    except Exception as exc:
        raise MtlError(f"{checkpoint}: the model has a feature map from weighting {config.weighting!r}, which "
                       f"cannot be rebuilt without training data ({type(exc).__name__}: {exc})") from None
    if model.feature_map is None:
        raise MtlError(f"{checkpoint}: holds feature_map.* parameters but weighting {config.weighting!r} "
                       "adds no feature map to the model")


def load_state(model, state: dict, path: Path, what: str = "the model of config.json") -> None:
    """``model.load_state_dict(state)`` with a one-line MtlError naming ``path`` when keys or shapes differ
    (``what``: the model the file should match)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise MtlError(f"{path}: the checkpoint does not match {what}: keys "
                       + "; ".join(parts))
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise MtlError(f"{path}: the checkpoint does not match {what}: {key} has shape "
                           f"{tuple(state[key].shape)}, the model {tuple(value.shape)}")
    model.load_state_dict(state)


def load_run(run_dir: str | Path):
    """``(config, model, tasks)`` of a run folder: the best checkpoint in a rebuilt model, in eval mode, on CPU.

    ``tasks`` maps each task name of the run (target first) to its :class:`mtl.Task`.
    """
    folder = RunFolder(run_dir)
    config, _ = read_config(folder.path)
    state = folder.best()
    model, tasks, weighting_options = build_model(config)
    if any(k.startswith("feature_map.") for k in state):
        _add_feature_map(config, model, tasks, weighting_options, folder.best_path)
    load_state(model, state, folder.best_path)
    model.eval()
    return config, model, tasks
