"""Evaluation on dev: when (:class:`EvaluationSchedule`: every epoch end, or every ``--eval-every`` steps), the
metrics of every evaluation split (:func:`evaluate`), the selection metric the best model is chosen on, and early
stopping (:class:`EarlyStopping`: ``--patience`` evaluations without a better selection metric)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtl.contract.callback import Callback
from mtl.data.batching import sorted_batches
from mtl.training import distributed


class EvaluationSchedule(Callback):
    """Asks for an evaluation every ``every`` optimisation steps (None: at every epoch end) and at the last step."""

    def __init__(self, every: int | None) -> None:
        self.every = every

    def on_step_end(self, state, control, **kwargs: Any) -> None:
        step = state.step
        due = step % self.every == 0 if self.every else step % state.steps_per_epoch == 0
        if due or step == state.max_steps:
            control.should_evaluate = True


class EarlyStopping(Callback):
    """Stops the run after ``patience`` evaluations in a row without a better selection metric than the best so far."""

    def __init__(self, patience: int) -> None:
        self.patience, self.waited, self.stopped_at = patience, 0, None

    def on_evaluate(self, state, control, **kwargs: Any) -> None:
        self.waited = 0 if state.best_step == state.step else self.waited + 1
        if self.waited >= self.patience and state.step < state.max_steps:
            control.should_stop = True
            self.stopped_at = state.step

    def on_train_end(self, state, control, *, summary: dict[str, Any], **kwargs: Any) -> None:
        summary["early_stopping"] = {"patience": self.patience, "stopped": self.stopped_at is not None,
                                     "stopped_at_step": self.stopped_at,
                                     "evaluations_without_improvement": self.waited}

    def state_dict(self) -> dict[str, Any]:
        return {"waited": self.waited, "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.waited, self.stopped_at = int(state["waited"]), state["stopped_at"]


def selection_name(config, tasks: dict) -> str:
    if config.target:
        task = tasks[config.target]
        return f"{config.target}.{task.eval_splits[0]}.{task.primary_metric}"
    return "mean primary metric"


def selection_value(config, tasks: dict, results: dict) -> float:
    """The target's primary metric on its first evaluation split (without a target: the tasks' mean)."""
    def primary(name: str) -> float:
        task = tasks[name]
        return results.get(name, {}).get(task.eval_splits[0], {}).get(task.primary_metric, -math.inf)

    if config.target:
        return primary(config.target)
    return float(np.mean([primary(n) for n in tasks]))


def flat(results: dict) -> dict[str, float]:
    """``eval.<task>.<split>.<metric>`` -> value."""
    return {f"eval.{t}.{s}.{m}": v for t, splits in results.items() for s, ms in splits.items() for m, v in ms.items()}


@torch.no_grad()
def evaluate(model, eval_data: dict, tasks: dict, batch_size: int, device,
             ctx: distributed.Context | None = None) -> tuple[dict, dict]:
    """Metrics on every evaluation split, in float32; under torchrun each rank predicts every world-th batch. Also
    the predictions and labels behind them (in the order of each split's file): ``"<task>.<split>" -> (predictions,
    labels)``, for predictions.safetensors."""
    was_training = model.training
    model.eval()
    ctx = ctx or distributed.Context()
    results: dict[str, dict[str, dict[str, float]]] = {}
    predictions_of: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    try:
        for (name, split), data in eval_data.items():
            if not data.labelled or len(data) == 0:
                continue
            task = tasks[name]
            mine = []
            for positions in sorted_batches(data.lengths, batch_size)[ctx.rank :: ctx.world]:
                batch = {k: v.to(device) for k, v in data.collate(positions).items()}
                logits, _, _ = model(name, batch)
                mine.append((positions, task.predict(logits).cpu()))
            values: list = [None] * len(data)  # one prediction per instance, in the split's order
            for part in ctx.objects(mine):
                for positions, predicted in part:
                    for position, value in zip(positions, predicted, strict=True):
                        values[position] = value
            predictions, references = task.kind.score(task, data, values)
            results.setdefault(name, {})[split] = task.compute_metrics(predictions.numpy(), references.numpy())
            predictions_of[f"{name}.{split}"] = (predictions, references.to(predictions.dtype))
    finally:
        model.train(was_training)
    return results, predictions_of
