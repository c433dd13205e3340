"""Knowledge distillation from ensembles of fine-tuned models: MT-DNN-KD (Liu et al. 2019, "Improving Multi-Task
Deep Neural Networks via Knowledge Distillation for Natural Language Understanding", arXiv 1904.09482).

``mtl run --teacher TASK=RUN[,RUN...]`` gives TASK a teacher: an ensemble of finished run folders (``mtl run``)
or exported model folders (``mtl export``) of TASK, with TASK's labels (or, alike, a regression). Before
training, each teacher predicts this run's training examples of TASK once (in eval mode, no dropout, in batches
of the teacher's ``--eval-batch-size``, through :func:`mtl.runs.predict.load_predictor`). The soft targets are

- classification: q_c = mean over teachers of softmax(z)_c, the teachers' class probabilities at temperature 1;
- regression: the mean of the teachers' predictions.

They are stored in the run folder (``soft-targets.safetensors``: one tensor per task, [N, C] or [N], rows in the
order of the run's training examples; the teachers in its metadata and in ``config.json``'s ``teachers``) and
read back by ``--resume`` instead of being predicted again.

For an instance of a task with a teacher, with hard-label loss ℓ_h (the task's own loss) and student logits z:

    loss = ½ · (ℓ_h + ℓ_s),   ℓ_s = −Σ_c q_c · log softmax(z / T)_c    (classification)
                              ℓ_s = (z − q)²                          (regression)

T is ``--teacher-temperature`` (default 1, the paper's setting). The stored soft targets are probabilities at
temperature 1, so T divides the *student's* logits only, and ℓ_s is not rescaled by T²; T does not apply to
regression. Tasks without a teacher keep their loss. The weighting receives these combined per-instance losses,
so distillation composes with every weighting and sampler.

Every problem with ``--teacher`` is a one-line :class:`mtl.errors.MtlError` raised while the trainer prepares,
before anything is written. Nothing in this module imports torch at import time (the CLI and the bench use
:func:`parse_teachers` and :func:`check_teachers`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtl.contract.callback import Callback
from mtl.errors import MtlError, OptionError
from mtl.runs import folder as run_files
from mtl.runs.folder import RunFolder

if TYPE_CHECKING:
    import torch

    from mtl.contract.task import Task
    from mtl.data.examples import Examples

SOFT_TARGETS = run_files.SOFT_TARGETS  # soft-targets.safetensors in the run folder
EXPORT_MANIFEST = "mtl_export.json"  # mtl.runs.exported.MANIFEST (that module imports torch)
FLAG = "--teacher"


# ---------------------------------------------------------------------------------------------- the option
def parse_teachers(items: list[str] | None) -> dict[str, list[str]]:
    """``["rte=runs/a,runs/b", "rte=runs/c"]`` -> ``{"rte": ["runs/a", "runs/b", "runs/c"]}`` (repeatable)."""
    teachers: dict[str, list[str]] = {}
    for item in items or []:
        task, sep, value = item.partition("=")
        runs = [r.strip() for r in value.split(",")]
        if not sep or not task.strip() or not runs or not all(runs):
            raise OptionError(f"{FLAG} {item!r}: expected TASK=RUN[,RUN...] (each RUN a finished run folder or an "
                              f"`mtl export` folder of TASK)")
        teachers.setdefault(task.strip(), []).extend(runs)
    return teachers


def normalise(teachers: Any) -> dict[str, list[str]]:
    """``config.teachers`` as ``{task: [path, ...]}``: a config file may give ``task: "a,b"`` or ``task: [a, b]``."""
    if not teachers:
        return {}
    if not isinstance(teachers, dict):
        raise OptionError(f"teachers: expected a mapping TASK -> [RUN, ...] (got {type(teachers).__name__})")
    out: dict[str, list[str]] = {}
    for task, runs in teachers.items():
        items = runs.split(",") if isinstance(runs, str) else runs
        named = isinstance(items, (list, tuple)) and all(isinstance(r, str) and r.strip() for r in items)
        if not items or not named:
            raise OptionError(f"{FLAG} {task}={runs!r}: expected TASK=RUN[,RUN...]")
        out[str(task)] = [r.strip() for r in items]
    return out


# ---------------------------------------------------------------------------------------------- the teachers
@dataclass
class Teacher:
    """What a teacher folder says about itself, read without loading its model."""

    path: Path
    kind: str  # "run" or "export"
    task: str  # the run's target, the export's task
    labels: tuple[str, ...] | None  # None: regression
    num_outputs: int
    size: int | None  # training examples of ``task`` it was trained on (None: unknown, an export without its run)


def describe(path: str | Path, where: str) -> Teacher:
    """The :class:`Teacher` of a folder: a finished run folder or an export folder; a one-line MtlError otherwise."""
    path = Path(path)
    if not path.exists():
        raise MtlError(f"{where}: {path} does not exist (give a finished run folder or an `mtl export` folder)")
    if path.is_dir() and (path / EXPORT_MANIFEST).is_file():
        return _export_teacher(path, where)
    run = RunFolder(path)
    if not path.is_dir() or not run.is_run():
        raise MtlError(f"{where}: {path} is neither a run folder ({run_files.CONFIG} and {run_files.CHECKPOINTS}/) nor "
                       f"an `mtl export` folder ({EXPORT_MANIFEST})")
    if not run.finished():
        raise MtlError(f"{where}: the run {path} is not finished (no {run_files.SUMMARY}); a teacher is a finished run")
    try:
        run.require_weights()
    except MtlError as exc:
        raise MtlError(f"{where}: {exc}") from None
    record = run.run_record()
    config = record.config
    if not config.target:
        raise MtlError(f"{where}: {run.config_path} names no target task")
    from mtl.contract import loader

    try:
        task = loader.create("task", config.target, **config.plugin_options().get(("task", config.target), {}))
    except MtlError as exc:
        raise MtlError(f"{where}: {run.config_path}: {exc}") from None
    size = record.sizes.get(config.target)
    return Teacher(path, "run", config.target, _labels(task.labels), task.num_outputs,
                   int(size) if size is not None else None)


def _export_teacher(path: Path, where: str) -> Teacher:
    manifest = run_files.read_json(path / EXPORT_MANIFEST, "the export manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "mtl-export" or "task" not in manifest:
        raise MtlError(f"{where}: {path / EXPORT_MANIFEST} is not an mtl export manifest")
    labels = _labels(manifest.get("labels"))
    num_outputs = int(manifest.get("num_labels") or (1 if labels is None else len(labels)))
    # the export's training size: from the run it was exported from, when that run is still there
    size = None
    source = (manifest.get("source") or {}).get("run")
    if source:
        record = RunFolder(source).record(missing_ok=True) if Path(source).is_dir() else None
        value = ((record or {}).get("sizes") or {}).get(manifest["task"])
        size = int(value) if value is not None else None
    return Teacher(path, "export", manifest["task"], labels, num_outputs, size)


def _labels(labels) -> tuple[str, ...] | None:
    return None if labels is None else tuple(str(label) for label in labels)


def _kind(labels: tuple[str, ...] | None) -> str:
    return "a regression (one score)" if labels is None else f"a classification with labels {', '.join(labels)}"


#: the task types a teacher can be given for: one vector of logits per training example (MT-DNN-KD's setting)
DISTILLED_TYPES = ("classification", "regression")


def check_teachers(config, tasks: dict[str, Task]) -> dict[str, list[Teacher]]:
    """Every teacher of ``config.teachers`` described and checked against the run's ``tasks`` (not the data size:
    :func:`check_sizes`). Sets ``config.teachers`` to absolute paths, duplicates dropped, for config.json."""
    teachers = normalise(config.teachers)
    if teachers and not config.teacher_temperature > 0:
        raise OptionError(f"--teacher-temperature must be > 0 (got {config.teacher_temperature})")
    checked: dict[str, list[Teacher]] = {}
    for name, runs in teachers.items():
        if name not in tasks:
            raise OptionError(f"{FLAG} {name}=...: task {name!r} is not in this run ({', '.join(tasks)})")
        if tasks[name].kind.name not in DISTILLED_TYPES:
            raise OptionError(f"{FLAG} {name}=...: task {name!r} is a {tasks[name].kind.name} task; distillation "
                              f"(soft targets per training example) takes {' and '.join(DISTILLED_TYPES)} tasks")
        task, found = tasks[name], []
        for run in runs:
            where = f"{FLAG} {name}={run}"
            teacher = describe(run, where)
            if teacher.task != name:
                raise MtlError(f"{where}: the {teacher.kind} {run} is a model of task {teacher.task!r}, not {name!r}")
            mine = _labels(task.labels)
            if teacher.labels != mine or teacher.num_outputs != task.num_outputs:
                raise MtlError(f"{where}: the teacher is {_kind(teacher.labels)}; task {name!r} of this run is "
                               f"{_kind(mine)}")
            teacher.path = teacher.path.resolve()
            if all(t.path != teacher.path for t in found):
                found.append(teacher)
        checked[name] = found
    config.teachers = {name: [str(t.path) for t in found] for name, found in checked.items()}
    return checked


def check_sizes(teachers: dict[str, list[Teacher]], examples: dict[str, Examples]) -> None:
    """A teacher trained on another number of examples of its task than this run trains on is an error."""
    for name, found in teachers.items():
        for teacher in found:
            if teacher.size is not None and teacher.size != len(examples[name]):
                raise MtlError(f"{FLAG} {name}={teacher.path}: the teacher was trained on {teacher.size} examples of "
                               f"{name!r}, this run trains on {len(examples[name])} (same data and --limit needed)")


# ---------------------------------------------------------------------------------------------- soft targets
def predict(teacher: Teacher, examples: Examples) -> torch.Tensor:
    """The teacher's logits [N, C] on ``examples`` (eval mode, no dropout, no gradients, in batches)."""
    from mtl.runs.predict import load_predictor

    predictor = load_predictor(teacher.path, teacher.task)
    return predictor.logits(predictor.encode(examples.texts))


def soft_targets(teachers: dict[str, list[Teacher]], tasks: dict[str, Task],
                 examples: dict[str, Examples]) -> dict[str, torch.Tensor]:
    """Per task: the mean over its teachers of softmax(logits) [N, C] (classification) or of the prediction [N]."""
    import torch

    out = {}
    for name, found in teachers.items():
        total = None
        for teacher in found:
            logits = predict(teacher, examples[name]).double()
            values = logits.view(-1) if tasks[name].is_regression else logits.softmax(dim=-1)
            total = values if total is None else total + values
        out[name] = (total / len(found)).to(torch.float32)
    return out


def kd_loss(hard: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor, *, regression: bool,
            temperature: float = 1.0) -> torch.Tensor:
    """Per-instance ½·(hard + soft-target loss): cross-entropy −Σ_c q_c log softmax(z/T)_c against the soft
    distribution ``soft`` [B, C], or the squared error (z − q)² against the mean prediction ``soft`` [B]."""
    import torch.nn.functional as F

    if regression:
        distilled = (logits.float().view(-1) - soft.float().view(-1)) ** 2
    else:
        distilled = -(soft.float() * F.log_softmax(logits.float() / temperature, dim=-1)).sum(dim=-1)
    return 0.5 * (hard + distilled)


class Distiller(Callback):
    """The soft targets of a run and the loss that uses them: a callback whose :meth:`loss` hook the trainer calls
    per task; a new run keeps the soft targets in its folder at train begin (a resumed one reads them back)."""

    def __init__(self, targets: dict[str, torch.Tensor], tasks: dict[str, Task], teachers: dict[str, list[str]],
                 temperature: float = 1.0) -> None:
        self.targets, self.teachers, self.temperature = targets, teachers, temperature
        self.regression = {name: tasks[name].is_regression for name in targets}

    @classmethod
    def prepare(cls, config, tasks: dict[str, Task], examples: dict[str, Examples], *,
                resume_from: str | Path | None = None) -> Distiller | None:
        """None without teachers; else the teachers checked and their soft targets predicted, or, when resuming,
        the soft targets the run stored (the teachers are not loaded again)."""
        if not config.teachers:
            return None
        if resume_from is not None:
            return cls.load(RunFolder(resume_from), config, tasks, examples)
        teachers = check_teachers(config, tasks)
        check_sizes(teachers, examples)
        return cls(soft_targets(teachers, tasks, examples), tasks, config.teachers, config.teacher_temperature)

    def loss(self, name: str, hard: torch.Tensor, logits: torch.Tensor, rows) -> torch.Tensor:
        """The per-instance loss of task ``name`` on the training examples ``rows``: ``hard`` unchanged without a
        teacher, else :func:`kd_loss`."""
        soft = self.targets.get(name)
        if soft is None:
            return hard
        import torch

        q = soft[torch.as_tensor(list(rows), dtype=torch.long)].to(logits.device)
        return kd_loss(hard, logits, q, regression=self.regression[name], temperature=self.temperature)

    def on_train_begin(self, state, control, *, resumed: bool = False, **kwargs) -> None:
        if state.is_main and not resumed:
            self.save(RunFolder(state.run_folder))

    # ------------------------------------------------------------------ the run folder
    def save(self, folder: RunFolder) -> None:
        run_files.save_tensors(folder.path / SOFT_TARGETS, self.targets,
                               {"format": "pt", "kind": "mtl-soft-targets", "teachers": json.dumps(self.teachers)})

    @classmethod
    def load(cls, folder: RunFolder, config, tasks: dict[str, Task], examples: dict[str, Examples]) -> Distiller:
        path = folder.path / SOFT_TARGETS
        targets = run_files.load_tensors(path, "soft targets", missing=f"the soft targets of the teachers in "
                                                                       f"{run_files.CONFIG}")
        teachers = normalise(config.teachers)
        for name in teachers:
            rows = targets.get(name)
            shape = (len(examples.get(name, [])),) + (() if tasks[name].is_regression else (tasks[name].num_outputs,))
            if rows is None or tuple(rows.shape) != shape:
                got = "none" if rows is None else str(tuple(rows.shape))
                raise MtlError(f"{path}: no soft targets of shape {shape} for task {name!r} (got {got}); the run's "
                               f"training data changed since it started")
        return cls({n: targets[n] for n in teachers}, tasks, teachers, config.teacher_temperature)
