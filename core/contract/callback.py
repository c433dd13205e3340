"""The callback contract: code run at the events of a training run, in the spirit of transformers'
``TrainerCallback``.

A callback overrides the events it needs; each receives the run's read-only :class:`TrainerState` and the
:class:`TrainerControl` it may set (stop the run, evaluate or save now), plus keyword arguments for what the event
is about (``batches``, ``optimizer`` and ``model`` at ``on_step_begin``; ``metrics`` at ``on_evaluate``; ``logs``
at ``on_log``). The loop calls only the events a callback overrides, so an unused event costs nothing.

A callback registered by a package (``register_callbacks``) is chosen with ``RunConfig.callbacks`` (``--callback
NAME``). Its :meth:`Callback.state_dict` (numbers, strings, lists, dicts and tensors; no pickle) is saved in every
checkpoint and handed back to :meth:`Callback.load_state_dict` on resume, so a resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the events of a run, in the order a step meets them
EVENTS = ("on_train_begin", "on_step_begin", "on_step_end", "on_log", "on_evaluate", "on_save", "on_train_end")


class TrainerState:
    """Where the run is (read-only for callbacks): ``step`` (optimisation steps done), ``epoch``, ``max_steps``,
    ``steps_per_epoch``, ``metrics`` (the last evaluation, flat ``eval.<task>.<split>.<metric>`` keys),
    ``best_value`` and ``best_step`` (the selection metric's best so far), ``evaluations`` (how many so far),
    ``run_folder`` (a :class:`pathlib.Path`) and ``is_main`` (rank 0 of a torchrun job, or the only process)."""

    __slots__ = ("step", "epoch", "max_steps", "steps_per_epoch", "metrics", "best_value", "best_step",
                 "evaluations", "run_folder", "is_main")

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values.get(name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"TrainerState is read-only (set {name!r} through TrainerControl, or keep it in the "
                             f"callback)")

    def _update(self, **values: Any) -> None:
        """For the loop only."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "metrics")
        return f"TrainerState({shown})"


@dataclass
class TrainerControl:
    """What a callback asks of the loop: stop after this step, evaluate now, save a checkpoint now. The loop resets
    ``should_evaluate`` and ``should_save`` after acting on them; ``should_stop`` ends the run (best model kept,
    summary written) after the current step."""

    should_stop: bool = False
    should_evaluate: bool = False
    should_save: bool = False


class Callback:
    """Base class: every event does nothing. ``run_folder`` and the other fields of the state are read-only."""

    def on_train_begin(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Before the first step (also of a resumed run, after its checkpoint is loaded): ``resumed``, ``model``,
        ``weighting``, ``run`` (the :class:`mtl.Run` a weighting's ``setup`` sees: config, tasks, training data,
        device) and ``engine`` (its ``autocast()`` is the run's precision)."""

    def on_step_begin(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Before step ``state.step`` trains: ``batches`` (task -> its first micro-batch, on the device),
        ``model`` and ``optimizer``, which the callback leaves as it finds them."""

    def on_step_end(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """After an optimisation step (``state.step`` counts it); ``losses``: each task's mean loss."""

    def on_log(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """A record was written to ``metrics.jsonl``: ``logs`` (its keys and values)."""

    def on_evaluate(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """After an evaluation on dev: ``metrics`` (task -> split -> metric -> value) and ``value`` (the selection
        metric); ``state.best_value`` already counts it."""

    def on_save(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """A crash-safe checkpoint of ``state.step`` is written next (with this callback's state as this event
        leaves it, so that a run resumed from it continues exactly)."""

    def on_train_end(self, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """After the last step, before the run's results are written: ``summary`` (the summary.json dict, which a
        callback may add keys to)."""

    def loss(self, task: str, losses: Any, logits: Any, rows: Any) -> Any:
        """Each step's per-instance losses of ``task`` (computed from ``logits`` on the training rows ``rows``);
        return them changed (e.g. distillation's soft-target term) or as they are."""
        return losses

    def record(self) -> dict[str, Any]:
        """Keys added to the run's ``config.json`` (e.g. the callback's own options)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly (saved in every checkpoint; no pickle)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def overrides(callback: Any, method: str) -> bool:
    """Whether ``callback`` has its own ``method`` (a duck-typed callback without the base class: whether it has it)."""
    own = getattr(type(callback), method, None)
    return own is not None and own is not getattr(Callback, method, None)

