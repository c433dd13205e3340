"""Weighting ``siwlm``: sequential and intensive weighted language modeling (Son et al., "Sequential and
Intensive Weighted Language Modeling for Natural Language Understanding", Applied Sciences 2021; reference
code sonsuhyune/SIWLM).

Task n starts from a weight w_n (option ``weights``; the central/target task 6, every other task 1).
Epochs count from 0 and alternate:
- even epochs, sequential weighted learning (SWL): the focus task is ``tasks[(i // period) % T]``, i the
  index of the step within the epoch (batches of any task), ``tasks`` the run's tasks starting with the
  target; a batch of the focus task weighs w_n × 1, any other w_n × ``damp`` (0.1);
- odd epochs, intensive weighted learning (IWL): the target weighs w_n × 1, the others w_n × ``damp``.
The loss is mean(weight_task · ℓ_i) over all instances of the step (one task per step: weight × mean loss).
"""

from __future__ import annotations

import difflib

from mtl import Weighting, hookimpl

CENTRAL_WEIGHT, OTHER_WEIGHT = 6.0, 1.0


class Siwlm(Weighting):
    family = "loss"

    def __init__(self, weights: dict[str, float] | None = None, period: int = 20, damp: float = 0.1):
        super().__init__()
        if period < 1:
            raise ValueError(f"period must be >= 1 (got {period})")
        if not damp >= 0:
            raise ValueError(f"damp must be >= 0 (got {damp})")
        for task, value in (weights or {}).items():
            if not value >= 0:
                raise ValueError(f"weights: the weight of {task!r} must be >= 0 (got {value})")
        self.given = dict(weights or {})
        self.period, self.damp = period, float(damp)
        self.tasks: list[str] = []
        self.initial: dict[str, float] = {}
        self.target: str | None = None
        self.steps_per_epoch = 0
        self.focus: str | None = None

    def setup(self, run) -> None:
        from mtl.errors import MtlError

        if run.target is None:
            raise MtlError("weighting 'siwlm' needs a --target (the central task)")
        names = list(run.tasks)
        for task in self.given:
            if task not in names:
                close = difflib.get_close_matches(task, names, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise MtlError(f"weighting 'siwlm': option 'weights' names task {task!r}, which is not in this run."
                               f"{hint} Tasks of this run: {', '.join(names)}")
        self.target = run.target
        self.tasks = [run.target] + [name for name in names if name != run.target]
        self.initial = {name: float(self.given.get(name, CENTRAL_WEIGHT if name == run.target else OTHER_WEIGHT))
                        for name in self.tasks}
        self.steps_per_epoch = int(getattr(run, "steps_per_epoch", 0) or 0)

    def focus_task(self, index: int, epoch: int) -> str:
        """The task weighted w_n × 1 at global step ``index`` of ``epoch`` (SWL in even, IWL in odd epochs)."""
        if epoch % 2 == 1:
            return self.target
        i = index - epoch * self.steps_per_epoch if self.steps_per_epoch else index
        return self.tasks[(i // self.period) % len(self.tasks)]

    def weight(self, task: str, index: int, epoch: int) -> float:
        factor = 1.0 if task == self.focus_task(index, epoch) else self.damp
        return self.initial[task] * factor

    def loss(self, step):
        self.focus = self.focus_task(step.index, step.epoch)
        return step.weighted({task: self.weight(task, step.index, step.epoch) for task in step.losses})

    def log(self) -> dict[str, float]:
        focus = float(self.tasks.index(self.focus)) if self.focus in self.tasks else -1.0
        return {**super().log(), "siwlm.focus": focus}


@hookimpl
def register_weightings(register):
    register("siwlm", Siwlm, description="sequential/intensive task weights by epoch (Son et al., Appl. Sci. 2021)")
