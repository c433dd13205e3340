"""Inter-task affinity measured in one multi-task run (TAG: Fifty et al., "Efficiently Identifying Task Groupings
for Multi-Task Learning", NeurIPS 2021; DESIGN.md, "Task affinity").

At a measured step, with the shared parameters θ_s (the backbone) as the step finds them, for each task i a
lookahead update u_i of θ_s along task i's gradient, and for each task j the relative change of j's loss on its
batch of that step:

    Z_{i→j} = 1 − L_j(θ_s − u_i) / L_j(θ_s)          (> 0: a step on i lowers j's loss)

averaged over the measured steps. :class:`AffinityCallback` measures at ``on_step_begin`` every ``every`` steps (steps
0, N, 2N, ...), before the step's own update, and writes ``affinity.json`` and ``affinity.png`` into the run folder;
:class:`AffinityTrainer` is an ordinary :class:`mtl.training.trainer.Trainer` with it. The choices:

- **update**: u_i is exactly what the run's optimizer (AdamW, Adamax, whatever it is) would do to θ_s at this step
  with its current learning rate and state, given task i's gradient: an optimizer of the same class over the
  shared parameters, with a copy of their state, steps once; the model, the run's optimizer and its state are left
  bit for bit as they were. The gradient is that of L_i (the mean over i's batch) with respect to θ_s and the
  task-specific parameters, clipped to ``--clip`` as one training step on i alone would clip it; only θ_s moves
  (heads stay put).
- **losses**: training-mode forwards (dropout on, as TAG's training forward), the unweighted task loss (no weighting,
  regularizer or teacher). Each task's forward draws its dropout masks from a generator state seeded from the run's
  seed, the step and the task, the same before and after every lookahead, so Z measures the update and not two
  different dropout masks. The run's own random generators are forked and left untouched.
- **batches**: a task trained at the step is measured on the step's batch, the one it then trains on (with
  ``--sampler all``, `mtl affinity`'s default, every task); a task not trained at the step (other samplers) on a
  batch drawn from a separate generator seeded from the run's seed, the step and the task, never trained on. The
  data streams and the sampler are not touched, so the run trains exactly as `mtl run` with the same options.
- **resume**: supported; the measurements so far are part of every checkpoint (the callback's state).

Cost of one measurement with T tasks: T forwards with graph and T gradients, T optimizer steps on a copy,
T² forwards without graph; ``affinity.json`` records the seconds per measurement against the seconds of an ordinary
training step (``overhead``).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mtl.contract.callback import Callback
from mtl.errors import MtlError, OptionError
from mtl.runs import folder as run_files
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.training import plan
from mtl.training.lookahead import clipped, fixed_dropout, optimizer_step_on_copy  # noqa: F401 (public here too)
from mtl.training.trainer import Trainer

AFFINITY = "affinity.json"
FIGURE = "affinity.png"
DEFAULT_EVERY = 10
DEFINITION = ("Z[i][j] = 1 - L_j(shared parameters after the optimizer's lookahead step on task i) / "
              "L_j(shared parameters); i = source (row), j = target (column); > 0: a step on i lowers j's loss")
BATCHES = ("a task trained at the measured step: that step's batch (also trained on); any other task: a batch "
           "from a separate generator (seed, step, task), not trained on")
FORWARD = "train mode; each task's dropout masks the same before and after every lookahead (seeded per step and task)"

Matrix = dict[str, dict[str, float | None]]


# ------------------------------------------------------------------------------------------------ the measurement
def _mix(*numbers: int) -> int:
    """A 62-bit seed from integers (a generator seeded with each in turn)."""
    value = 0
    for number in numbers:
        value = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed((value ^ number) % 2**63)))
    return value


def lookahead_affinity(loss_of: Callable[[str], torch.Tensor], tasks: Sequence[str],
                       shared: Sequence[torch.nn.Parameter], optimizer: torch.optim.Optimizer, *,
                       own: Sequence[torch.nn.Parameter] = (), clip: float = 0.0,
                       seeds: Mapping[str, int] | None = None,
                       devices: Sequence[int] = (), buffers: Sequence[torch.Tensor] = ()
                       ) -> tuple[Matrix, dict[str, float]]:
    """One measurement: ``(Z, L)`` with ``Z[i][j] = 1 − L_j(θ_s after the lookahead on i) / L_j(θ_s)`` and
    ``L[j] = L_j(θ_s)``.

    ``loss_of(task)`` is the task's scalar loss on its measurement batch with the model's current parameters; it is
    called once with graph per task, then once per (i, j) under ``no_grad``, each time for task j under
    ``fixed_dropout(seeds[j])``. ``shared`` are the parameters the lookahead moves (θ_s); ``own`` the other trained
    parameters (heads ...), which count in the ``clip`` norm only. The parameters, their ``.grad``, ``buffers``,
    ``optimizer`` and the global random generators are as before when this returns. A non-finite Z (e.g.
    L_j = 0) is None.
    """
    shared, own = list(shared), list(own)
    seeds = dict(seeds or {})
    before, grads = {}, {}
    for j, task in enumerate(tasks):
        with fixed_dropout(seeds.get(task, j), devices):
            loss = loss_of(task)
        before[task] = float(loss.detach())
        wrt = shared + own
        found = torch.autograd.grad(loss, wrt, allow_unused=True)
        grads[task] = clipped(found, clip)[: len(shared)]
    saved = [p.detach().clone() for p in shared]
    saved_buffers = [b.detach().clone() for b in buffers]
    matrix: Matrix = {}
    try:
        for source in tasks:
            optimizer_step_on_copy(optimizer, shared, grads[source])
            row = {}
            with torch.no_grad():
                for j, task in enumerate(tasks):
                    with fixed_dropout(seeds.get(task, j), devices):
                        after = float(loss_of(task))
                    z = 1.0 - after / before[task] if before[task] != 0 else math.nan
                    row[task] = z if math.isfinite(z) else None
            matrix[source] = row
            with torch.no_grad():
                for p, value in zip(shared, saved, strict=False):
                    p.copy_(value)
    finally:
        with torch.no_grad():
            for p, value in zip(shared, saved, strict=False):
                p.copy_(value)
            for b, value in zip(buffers, saved_buffers, strict=False):
                b.copy_(value)
    return matrix, before


# ------------------------------------------------------------------------------------------------ averaging
def average(measurements: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> tuple[Matrix, Matrix]:
    """The mean and the sample standard deviation of each Z_{i→j} over ``measurements`` (finite values only)."""
    mean: Matrix = {i: {} for i in tasks}
    std: Matrix = {i: {} for i in tasks}
    for i in tasks:
        for j in tasks:
            values = [m["matrix"][i][j] for m in measurements if m["matrix"].get(i, {}).get(j) is not None]
            mean[i][j] = statistics.fmean(values) if values else None
            std[i][j] = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def ranking(result: Mapping[str, Any], target: str) -> list[tuple[str, float | None, float | None]]:
    """The other tasks ranked by their affinity onto ``target``: ``(task, Z_{task→target}, Z_{target→task})``,
    highest Z_{task→target} first (undefined last)."""
    matrix = result["matrix"]
    rows = [(task, matrix[task][target], matrix[target][task]) for task in result["tasks"] if task != target]
    return sorted(rows, key=lambda r: (r[1] is None, -(r[1] or 0.0)))


def read(run: str | Path) -> dict[str, Any]:
    """A run's ``affinity.json`` (one-line error when it is missing or malformed)."""
    path = Path(run) / AFFINITY
    result = run_files.read_json(path, "the task affinities (written by `mtl affinity`)")
    if not isinstance(result, dict) or not isinstance(result.get("matrix"), dict):
        raise MtlError(f"{path}: not an affinity record (no 'matrix')")
    return result


# ------------------------------------------------------------------------------------------------ the callback
class AffinityCallback(Callback):
    """Measures the lookahead affinity Z_{i→j} every ``every`` steps at ``on_step_begin``, on the step's batches,
    before the step trains on them (module docstring); writes ``affinity.json`` and ``affinity.png`` at train end.
    Its measurements are part of every checkpoint (:meth:`state_dict`), so a resumed run ends as an uninterrupted one.
    """

    def __init__(self, every: int = DEFAULT_EVERY) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise OptionError(f"--every must be a whole number of steps >= 1 (got {every!r})")
        self.every = every
        self.measurements: list[dict[str, Any]] = []
        # seconds of the training steps (without their measurements) and of the measurements; the first of each in a
        # process is left out (warm-up: the first forward and backward pay for allocations and kernel set-up)
        self.timing = {"step_seconds": 0.0, "steps": 0, "measurement_seconds": 0.0, "measurements": 0}
        self._warm = {"step": False, "measurement": False}
        self._tick = None

    def record(self) -> dict[str, Any]:
        return {"affinity": {"every": self.every}}

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "measurements": self.measurements, "timing": self.timing}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.measurements, self.timing = list(state["measurements"]), dict(state["timing"])

    def on_train_begin(self, state, control, *, run, engine, weighting, **kwargs: Any) -> None:
        self.run, self.engine, self.weighting = run, engine, weighting

    def _time(self, what: str, seconds: float) -> None:
        if self._warm[what]:
            self.timing[f"{what}_seconds"] += seconds
            self.timing[f"{what}s"] += 1
        self._warm[what] = True

    def on_step_begin(self, state, control, *, batches, optimizer, **kwargs: Any) -> None:
        if state.step % self.every == 0:
            self._synchronize()
            tick = time.perf_counter()
            measurement = self.measure(state.step, batches, optimizer)
            self._synchronize()
            measurement["seconds"] = time.perf_counter() - tick
            self.measurements.append(measurement)
            self._time("measurement", measurement["seconds"])
        self._tick = time.perf_counter()

    def on_step_end(self, state, control, **kwargs: Any) -> None:
        if self._tick is not None:
            self._synchronize()
            self._time("step", time.perf_counter() - self._tick)
            self._tick = None

    def measure(self, step: int, batches: Mapping[str, Mapping[str, torch.Tensor]], optimizer) -> dict[str, Any]:
        """One measurement at ``step`` on the step's batches (and separately drawn ones for the other tasks)."""
        run, model = self.run, self.run.model
        tasks = list(run.tasks)
        batches = dict(batches)
        trained = [t for t in tasks if t in batches]
        for k, task in enumerate(tasks):
            if task not in batches:
                batches[task] = self._measurement_batch(step, k, task)

        def loss_of(task: str) -> torch.Tensor:
            with self.engine.autocast():
                logits, _, _ = model(task, batches[task])
            return run.tasks[task].loss(logits.float(), batches[task]["labels"]).mean()

        backbone = {id(p) for p in model.backbone.parameters()}
        shared = [p for p in model.backbone.parameters() if p.requires_grad]
        own = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone]
        own += [p for p in self.weighting.parameters() if p.requires_grad and all(p is not q for q in own)]
        seeds = {task: _mix(run.config.seed, step, k, 1) for k, task in enumerate(tasks)}
        devices = list(range(torch.cuda.device_count())) if run.device.type == "cuda" else []
        matrix, loss = lookahead_affinity(loss_of, tasks, shared, optimizer, own=own, clip=run.config.clip,
                                          seeds=seeds, devices=devices, buffers=list(model.buffers()))
        return {"step": step, "lr": optimizer.param_groups[0]["lr"], "trained": trained, "loss": loss,
                "matrix": matrix}

    def _measurement_batch(self, step: int, k: int, task: str) -> dict[str, torch.Tensor]:
        """A batch of ``task`` for a step that does not train it: its own generator, never the run's streams."""
        data = self.run.train[task]
        generator = torch.Generator().manual_seed(_mix(self.run.config.seed, step, k, 2))
        indices = torch.randperm(len(data), generator=generator)[: self.run.config.batch_size].tolist()
        return {key: value.to(self.run.device) for key, value in data.collate(indices).items()}

    def _synchronize(self) -> None:
        if self.run.device.type == "cuda":
            torch.cuda.synchronize(self.run.device)

    def on_train_end(self, state, control, *, result: dict[str, Any], **kwargs: Any) -> None:
        # affinity.json and affinity.png before the run's results: summary.json stays the run's last file
        self.affinity = self.result(state.max_steps)
        if state.is_main:
            run_files.write_json(Path(state.run_folder) / AFFINITY, self.affinity)
            figure(self.affinity, Path(state.run_folder) / FIGURE)
        result["affinity"] = self.affinity

    def result(self, total_steps: int) -> dict[str, Any]:
        """What ``affinity.json`` holds: the mean matrix, its spread, every measurement, the options and the cost."""
        c, tasks = self.run.config, list(self.run.tasks)
        mean, std = average(self.measurements, tasks)
        timing = self.timing
        measured = statistics.fmean(m["seconds"] for m in self.measurements) if self.measurements else None
        per_measurement = (timing["measurement_seconds"] / timing["measurements"] if timing["measurements"]
                           else measured)
        per_step = timing["step_seconds"] / timing["steps"] if timing["steps"] else None
        return {
            "matrix": mean, "std": std, "definition": DEFINITION, "tasks": tasks, "target": c.target,
            "measured_steps": [m["step"] for m in self.measurements],
            "options": {"every": self.every, "steps": total_steps, "sampler": c.sampler,
                        "weighting": c.weighting, "optimizer": c.optimizer, "lr": c.lr, "clip": c.clip,
                        "batch_size": c.batch_size, "seed": c.seed, "backbone": c.backbone,
                        "shared": "the backbone's trainable parameters (heads are not moved by the lookahead)",
                        "forward": FORWARD, "batches": BATCHES},
            "overhead": {
                "measurements": len(self.measurements), "seconds_per_measurement": per_measurement,
                "seconds_per_step": per_step,
                "timed": "means over the measurements and training steps after the first of each (warm-up) in the "
                         "process; a step's time leaves its measurement out",
                "first_measurement_seconds": self.measurements[0]["seconds"] if self.measurements else None,
                "measurement_vs_step": per_measurement / per_step if per_measurement and per_step else None,
                "forwards_per_measurement": len(tasks) + len(tasks) ** 2, "gradients_per_measurement": len(tasks),
                "run_slowdown": (per_measurement * len(self.measurements) / (per_step * total_steps)
                                 if per_measurement and per_step else None),
                "device": str(self.run.device),
            },
            "measurements": self.measurements,
        }


class AffinityTrainer(Trainer):
    """An ordinary run with an :class:`AffinityCallback` (same metrics, eval.json, model). ``--tasks`` without a
    target is allowed here (``config.target`` None, the tasks in ``aux``): the best epoch is then chosen on the mean
    primary metric and no model is exported. One process only (the lookahead steps are not distributed)."""

    COMMAND = "mtl affinity"
    RESUME_COMMAND = "mtl affinity --resume"
    TARGET_OPTIONAL = True

    def __init__(self, config: RunConfig, *, every: int = DEFAULT_EVERY, **kwargs) -> None:
        self.measuring = AffinityCallback(every)
        super().__init__(config, callbacks={"affinity": self.measuring}, **kwargs)

    @classmethod
    def resuming(cls, run_dir: str | Path, *, progress: bool = False) -> AffinityTrainer:
        """Continue a stopped `mtl affinity` run, its measurements so far included."""
        RunFolder(run_dir).require_started("--resume")
        record = RunFolder(run_dir).record() or {}
        options = record.get("affinity")
        if record and not isinstance(options, dict):
            raise MtlError(f"--resume {run_dir}: not an `mtl affinity` run (its config.json has no affinity "
                           f"options); continue it with `mtl run --resume {run_dir}`")
        trainer = super().resuming(run_dir, progress=progress)
        trainer.measuring.every = int(options["every"])
        return trainer

    def prepare(self) -> AffinityTrainer:
        plan.check(self.config, target_optional=True)
        if len(self.config.tasks) < 2:
            raise OptionError(f"mtl affinity needs at least two tasks (got only {self.config.tasks[0]!r}); give "
                              f"--aux TASK,... or --tasks A,B,...")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise MtlError("mtl affinity trains in one process (its lookahead steps are not distributed); "
                           "run it without torchrun")
        super().prepare()
        return self


# ------------------------------------------------------------------------------------------------ the heatmap
def _cell(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:+.2g}"


def figure(result: Mapping[str, Any], path: Path) -> Path:
    """``affinity.png``: the mean Z_{i→j} as a heatmap, rows = source i, columns = target j, values written in."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    from mtl.study.figures import _figure, _save

    tasks, target = list(result["tasks"]), result.get("target")
    values = np.array([[np.nan if result["matrix"][i][j] is None else result["matrix"][i][j] for j in tasks]
                       for i in tasks], dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    span = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    n = len(tasks)
    fig = _figure(max(5.5, 1.25 * n + 3.2), max(4.2, 0.9 * n + 2.4))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", norm=TwoSlopeNorm(0.0, -span, span))
    for r in range(n):
        for col in range(n):
            value = values[r, col]
            strong = np.isfinite(value) and abs(value) > 0.6 * span
            ax.text(col, r, _cell(None if not np.isfinite(value) else float(value)), ha="center", va="center",
                    fontsize=9, color="white" if strong else "black", fontweight="bold" if r == col else "normal")
    labels = [f"{t} (target)" if t == target else t for t in tasks]
    tilt = n > 2 and max(len(label) for label in labels) > 8
    ax.set_xticks(range(n), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("target j: the task whose loss is measured")
    ax.set_ylabel("source i: the task of the lookahead step")
    count = result["overhead"]["measurements"] if "overhead" in result else len(result.get("measurements", []))
    every = result.get("options", {}).get("every")
    ax.set_title("Task affinity Z(i→j) = 1 − L_j(after a step on i) / L_j(before)\n"
                 f"mean of {count} measurement{'s' if count != 1 else ''}"
                 + (f" (every {every} steps)" if every else "") + "\nblue > 0: the step on i lowers j's loss",
                 fontsize=10, loc="left")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label("Z(i→j)")
    return _save(fig, path)
