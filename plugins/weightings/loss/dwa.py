"""Weighting ``dwa``: dynamic weight average (Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019, arXiv 1803.10704, Eq. 1).

At epoch t (counted from 0) task k weighs w_k(t) = K·exp(r_k(t−1)/T) / Σ_i exp(r_i(t−1)/T), with
r_k(t−1) = L_k(t−1) / L_k(t−2) the ratio of the task's epoch-average losses over the two previous epochs, K the number
of tasks of the run and T the temperature (option ``temperature``, default 2 as in the paper); w_k = 1 in the first
two epochs. A task that fell slower than the others gets more weight. The loss is Σ_k w_k·L_k over the tasks of the
step, L_k the task's mean instance loss (over every rank); an epoch average is the mean of L_k over the steps of the
epoch that trained task k. The running sums of the current epoch and the two previous averages are the weighting's
state (checkpointed, so a resumed run weighs exactly as an uninterrupted one).

Written by hand rather than with ``torchjd.scalarization.DWA``: that one keeps its epoch history in private
attributes (not checkpointable) and needs every task in every step.

Sampler: any. The weights are computed over all K tasks of the run from epoch averages, and each step applies those
of its own tasks: with ``all`` it is the paper's method; with one task per step a task's loss is multiplied by its
weight whenever it is trained. A task no step of an epoch trained has no average for it, and the weights of the
next two epochs are 1.
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class DynamicWeightAverage(Weighting):
    family = "loss"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        self.temperature = float(temperature)
        self.tasks: list[str] = []
        self.epoch = 0  # the epoch whose losses are being summed
        self.sums: dict[str, float] = {}  # Σ L_k over this epoch's steps that trained task k
        self.counts: dict[str, int] = {}
        self.previous: dict[str, float] = {}  # L_k(t−1): the average of the last finished epoch
        self.before_previous: dict[str, float] = {}  # L_k(t−2)

    def setup(self, run) -> None:
        self.tasks = list(run.tasks)

    def _finish_epochs(self, epoch: int) -> None:
        """Roll the history forward when ``epoch`` starts (the epochs before it have all been summed)."""
        if epoch == self.epoch:
            return
        averages = {task: self.sums[task] / self.counts[task] for task in self.sums}
        if epoch == self.epoch + 1:
            self.before_previous, self.previous = self.previous, averages
        else:  # an epoch without a step in between (not produced by the trainer): no two consecutive averages
            self.before_previous, self.previous = {}, {}
        self.epoch, self.sums, self.counts = epoch, {}, {}

    def weights(self) -> dict[str, float]:
        """w_k of every task of the run for the current epoch (Eq. 1; all 1 without two previous averages)."""
        import math

        if not all(task in self.previous and task in self.before_previous for task in self.tasks):
            return {task: 1.0 for task in self.tasks}
        rates = {task: self.previous[task] / self.before_previous[task] for task in self.tasks}
        top = max(rates.values())  # subtracted inside exp for stability; the softmax is unchanged
        exponentials = {task: math.exp((rate - top) / self.temperature) for task, rate in rates.items()}
        total = sum(exponentials.values())
        return {task: len(self.tasks) * value / total for task, value in exponentials.items()}

    def loss(self, step):
        self._finish_epochs(step.epoch)
        losses = step.task_losses()
        weights = self.weights()
        applied = {task: weights[task] for task in losses}
        step.record_weights(applied)
        for task, value in losses.items():
            self.sums[task] = self.sums.get(task, 0.0) + float(value.detach())
            self.counts[task] = self.counts.get(task, 0) + 1
        return sum(applied[task] * value for task, value in losses.items())

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "sums": dict(self.sums), "counts": dict(self.counts),
                "previous": dict(self.previous), "before_previous": dict(self.before_previous)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.sums = {task: float(v) for task, v in state["sums"].items()}
        self.counts = {task: int(v) for task, v in state["counts"].items()}
        self.previous = {task: float(v) for task, v in state["previous"].items()}
        self.before_previous = {task: float(v) for task, v in state["before_previous"].items()}


@hookimpl
def register_weightings(register):
    register("dwa", DynamicWeightAverage,
             description="weights from the tasks' epoch-loss descent rates (Liu, Johns & Davison, CVPR 2019)")
