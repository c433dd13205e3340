"""Multi-task then fine-tune: continue a finished run on its target alone (MT-DNN, Liu et al., ACL 2019, §3.2
"fine-tune the multi-task model on each task"; SIWLM, Son et al. 2021, with SMART; MAMT's "TL" baseline).

``mtl finetune RUN`` is an ordinary run (its own folder, checkpoints, --resume) whose configuration is RUN's with
the auxiliary tasks (and teachers) dropped, the ``uniform`` weighting, and ``parent`` = RUN; before the first step
the model takes RUN's best weights: the shared backbone (with the target's task vector where RUN used task
embeddings) and the target head. Options given to ``mtl finetune`` (epochs, lr, --regularizer ...) override RUN's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtl.errors import MtlError, OptionError
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder

#: RunConfig fields a fine-tuning stage fixes itself (from its parent), so they cannot be given to it
FIXED = ("target", "aux", "weighting", "sampler", "backbone", "teachers", "parent", "output")


def parent_folder(run_dir: str | Path) -> RunFolder:
    """RUN as a finished multi-task run with a target; a one-line error otherwise."""
    folder = RunFolder(run_dir)
    folder.require_run()
    if not folder.finished() or not folder.best_path.is_file():
        if folder.finished() and folder.kept() == "none":
            raise MtlError(f"mtl finetune {folder.path}: the run kept no weights (--keep none), so there is nothing "
                           "to start from; run it again with --keep model or all")
        raise MtlError(f"mtl finetune {folder.path}: the run is not finished (no summary.json or best checkpoint); "
                       f"finish it first (`mtl run --resume {folder.path}`)")
    return folder


def finetune_config(run_dir: str | Path, overrides: dict[str, Any]) -> RunConfig:
    """RUN's configuration for its target alone, ``uniform``, ``parent`` = RUN, with ``overrides`` applied."""
    folder = parent_folder(run_dir)
    parent, _ = folder.config()
    if not parent.target:
        raise MtlError(f"mtl finetune {folder.path}: the run has no target task to fine-tune")
    given = [k for k in FIXED if overrides.get(k) not in (None, [], {})]
    if given:
        raise OptionError(f"mtl finetune: --{given[0].replace('_', '-')} is fixed by the run it continues "
                          f"({folder.path})")
    values = target_alone(parent.to_dict())
    values.update(parent=str(folder.path.resolve()), output=None)
    for key, value in overrides.items():
        if value is None or key in FIXED:
            continue
        if key == "options":
            values["options"] = {**values["options"], **value}
        elif key == "data":
            values["data"] = {**values["data"], **value}
        else:
            values[key] = value
    return RunConfig(**values)


def target_alone(values: dict[str, Any]) -> dict[str, Any]:
    """Run options ``values`` (as in config.json) for their target alone, as a fine-tuning stage starts: no
    auxiliary tasks, teachers or regularizer, ``uniform``/``proportional``, and only the target's --data,
    --limit TASK=N and the backbone's --set options kept."""
    target, backbone = values.get("target"), values.get("backbone") or ""
    return {**values, "aux": [], "weighting": "uniform", "sampler": "proportional", "teachers": {},
            "regularizer": None,
            "options": {k: v for k, v in (values.get("options") or {}).items()
                        if k in ("backbone", backbone, backbone.partition(":")[0])},
            "data": {k: v for k, v in (values.get("data") or {}).items() if k.partition(".")[0] == target},
            "task_limits": {k: v for k, v in (values.get("task_limits") or {}).items() if k == target}}


def parent_state(model: torch.nn.Module, run_dir: str | Path, target: str) -> dict[str, torch.Tensor]:
    """The state of ``model`` (built for ``target`` alone) taken from RUN's best checkpoint.

    Every tensor comes from the parameter of the same name in RUN; a task-embedding tensor with a task axis
    (RUN had T tasks, this model 1) takes the slice of the target, which is task 0 in both (the target comes
    first). RUN's other heads and task vectors are left out. A tensor RUN does not have is an error.
    """
    folder = RunFolder(run_dir)
    trained = folder.best()
    record = folder.record()
    tasks = [record.get("target")] + [t for t in record.get("aux") or [] if t != record.get("target")]
    if tasks[0] != target:
        raise MtlError(f"{folder.path}: its target is {tasks[0]!r}, not {target!r}")
    mine_state = model.state_dict()
    if any(k.startswith("feature_map.") for k in trained) and not any(k.startswith("feature_map.") for k in mine_state):
        raise MtlError(f"mtl finetune {folder.path}: its weighting ({record.get('weighting')}) put a module between "
                       f"backbone and heads, which the target's outputs go through; such a run cannot be fine-tuned "
                       f"alone")
    state = {}
    for name, mine in mine_state.items():
        if name not in trained:
            raise MtlError(f"mtl finetune {folder.path}: the run's model has no {name!r}")
        theirs = trained[name]
        if theirs.shape != mine.shape:
            theirs = _target_slice(name, theirs, mine.shape, len(tasks))
        state[name] = theirs
    return state


def _target_slice(name: str, tensor: torch.Tensor, shape: torch.Size, tasks: int) -> torch.Tensor:
    """The target's part (index 0) of a tensor whose one differing axis is the task axis (T -> 1)."""
    differ = [i for i, (a, b) in enumerate(zip(tensor.shape, shape, strict=False)) if a != b]
    if len(tensor.shape) != len(shape) or len(differ) != 1 or tensor.shape[differ[0]] != tasks or shape[differ[0]] != 1:
        raise MtlError(f"mtl finetune: {name!r} has shape {tuple(tensor.shape)} in the run, {tuple(shape)} here")
    return tensor.narrow(differ[0], 0, 1).clone()


def load_parent(model: torch.nn.Module, run_dir: str | Path, target: str) -> None:
    """Put RUN's weights (backbone, target head, target task vector) into ``model``."""
    model.load_state_dict(parent_state(model, run_dir, target))
