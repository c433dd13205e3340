"""RunConfig: every run option, declared once (type, default, help, flag), converted and checked.

The commands' parameters, ``--help`` and the README's option table are generated from these fields; a config
file, ``--set``-style text, a run's ``config.json`` and Python keyword arguments all convert with
:func:`convert_option` (the one converter, :func:`mtl.schema.convert.convert`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from mtl.errors import OptionError
from mtl.schema.convert import convert
from mtl.schema.fields import (
    DISTILLATION,
    EVALUATION,
    OUTPUT,
    PLUGINS,
    TASKS,
    TRAINING,
    RunOption,
    option,
    run_options,
)
from mtl.schema.routing import plugin_options

Precision = Literal["fp32", "bf16", "fp16"]
Optimizer = Literal["adamw", "adamax"]
Keep = Literal["all", "model", "none"]  # what a finished run keeps (mtl.runs.folder.RunFolder.prune)
LrSchedule = Literal["linear", "cosine", "constant"]  # the learning rate after warm-up


@dataclass
class RunConfig:
    target: str | None = option(None, short="-t", metavar="TASK", group=TASKS, absent="demo suite", help=(
        "The task to improve; its first dev metric picks the best checkpoint. Without --target/--aux: the built-in "
        "demo suite, whose own --epochs, --batch-size and --lr replace those you do not give."))
    aux: list[str] = option(factory=list, short="-a", metavar="TASK", group=TASKS, repeat=True,
                            help="Auxiliary tasks; repeat or comma-separate.")
    data_dir: str | None = option(None, metavar="DIR", group=TASKS, absent="hub",
                                  help="A GLUE-format folder (glue_data/ layout: RTE/train.tsv, ...).")
    data: dict[str, str] = option(factory=dict, metavar="TASK.SPLIT=FILE", group=TASKS, repeat=True, help=(
        "A user file for a split (CSV/TSV/JSONL, named columns), or TASK=FOLDER; repeatable."))
    tasks_file: str | None = option(None, metavar="FILE", group=TASKS, help=(
        "A YAML or JSON file declaring your own tasks (type, columns, labels, data files or Hub dataset); use their "
        "names as --target/--aux. The run records the declarations, so it resumes and evaluates without the file."))
    declared: list[dict[str, Any]] = option(factory=list, group=TASKS, cli=False, help=(
        "The declared tasks of the run (config.json: labels resolved, absolute paths), as a tasks file's entries."))
    limit: int | None = option(None, metavar="N|TASK=N", group=TASKS, repeat=True, absent="all", help=(
        "N: at most N training examples per task; TASK=N: at most N of TASK (overrides N for it); repeatable: "
        "--limit 500 --limit stsb=2000."))
    task_limits: dict[str, int] = option(factory=dict, name="--limit", group=TASKS, cli=False,
                                         help="The per-task training limits (--limit TASK=N).")
    eval_limit: int | None = option(None, metavar="N", group=EVALUATION, absent="all",
                                    help="At most N evaluation examples per task and split.")
    weighting: str = option("uniform", short="-w", metavar="NAME", group=PLUGINS,
                            help="Weighting strategy (`mtl plugins --kind weighting`).")
    sampler: str = option("proportional", short="-s", metavar="NAME", group=PLUGINS,
                          help="Task sampler (`mtl plugins --kind sampler`).")
    backbone: str = option("minilm", short="-b", metavar="NAME", group=PLUGINS,
                           help="minilm (offline), tiny, or hf:NAME-OR-PATH (a Hugging Face encoder).")
    regularizer: str | None = option(None, short="-r", metavar="NAME", group=PLUGINS,
                                     help="A term added to every step's loss, e.g. smart.")
    options: dict[str, dict[str, Any]] = option(factory=dict, name="--set", metavar="NAME.KEY=VALUE", group=PLUGINS,
                                                repeat=True, help=(
        "A plugin option (NAME: a plugin, a task, a tracker or weighting/sampler/backbone); repeatable."))
    callbacks: list[str] = option(factory=list, name="--callback", metavar="NAME", group=PLUGINS, repeat=True,
                                  help="A registered callback plugin to use; repeat or comma-separate.")
    report_to: list[str] | None = option(factory=list, metavar="NAME", group=OUTPUT, repeat=True, help=(
        "Experiment trackers as transformers.Trainer's report_to: tensorboard, mlflow, wandb, trackio (or any "
        "registered tracker), all (every installed one) or none; repeat or comma-separate."))
    parent: str | None = option(None, group=TRAINING, cli=False,
                                help="The finished run whose backbone and target head this run starts from.")
    epochs: int = option(3, group=TRAINING, help="Epochs (one epoch = every task's examples once).")
    max_steps: int | None = option(None, group=TRAINING, help="Stop after this many steps (overrides --epochs).")
    batch_size: int = option(32, group=TRAINING, help="Training batch size (per micro-batch).")
    grad_accum: int = option(1, group=TRAINING,
                             help="Micro-batches of --batch-size per optimisation step (gradient accumulation).")
    max_length: int = option(128, group=TRAINING, help="Maximum tokens per example (at most 512).")
    data_cache: bool = option(True, group=TASKS, help=(
        "Tokenised splits cached on disk and shared by runs ($MTL_DATA_CACHE, else $HF_DATASETS_CACHE/mtl); "
        "--no-data-cache tokenises in memory and writes nothing."))
    group_by_length: bool = option(False, group=TRAINING, help=(
        "Batches of similar lengths (windows of 50 batches; transformers' group_by_length) instead of random ones."))
    optimizer: Optimizer = option("adamw", group=TRAINING, help=(
        "adamw (decoupled weight decay) or adamax (MT-DNN, SIWLM; weight decay as an L2 term)."))
    lr: float = option(5e-5, group=TRAINING, help="Peak learning rate.")
    lr_schedule: LrSchedule = option("linear", group=TRAINING,
                                     help="The learning rate after --warmup's linear warm-up.")
    warmup: float = option(0.1, group=TRAINING, help="Fraction of the steps of linear warm-up.")
    weight_decay: float = option(0.01, group=TRAINING, help="Weight decay (biases, norms and task vectors exempt).")
    clip: float = option(1.0, group=TRAINING, help="Gradient-norm clipping; 0 = off.")
    dropout: float = option(0.1, group=TRAINING, help="Dropout before each task head.")
    seed: int = option(0, group=TRAINING, help="Random seed; the same seed gives the same run.")
    precision: Precision = option("fp32", group=TRAINING, help=(
        "fp32, bf16 (autocast; CPU or CUDA) or fp16 (autocast + grad scaler; CUDA)."))
    skip_nonfinite: bool = option(False, group=TRAINING, help=(
        "Skip (and count) a step whose loss or gradient is not finite instead of stopping."))
    eval_batch_size: int = option(128, group=EVALUATION, help="Evaluation batch size.")
    eval_every: int | None = option(None, group=EVALUATION, absent="epoch ends", help=(
        "Evaluate every N steps (and select the best checkpoint on these evaluations)."))
    patience: int | None = option(None, group=EVALUATION, absent="never", help=(
        "Stop after this many evaluations without a better selection metric (early stopping)."))
    output: str | None = option(None, short="-o", metavar="DIR", group=OUTPUT,
                                absent="runs/<time>-<target>-<weighting>-<sampler>-s<seed>", help="The run folder.")
    keep: Keep = option("all", group=OUTPUT, help=(
        "What the finished run keeps: all, model (the best model, no training-only state) or none (no weights)."))
    log_every: int = option(10, group=OUTPUT, help="Write metrics.jsonl every N steps.")
    checkpoint_every: int | None = option(None, group=OUTPUT, absent="epoch ends", help=(
        "Also checkpoint every N steps (always at each epoch end); the last two are kept."))
    teachers: dict[str, list[str]] = option(factory=dict, name="--teacher", metavar="TASK=RUN[,RUN...]",
                                            group=DISTILLATION, repeat=True, help=(
        "Distil TASK from the ensemble of these finished runs or `mtl export` folders of TASK; repeatable."))
    teacher_temperature: float = option(1.0, group=DISTILLATION, help=(
        "Temperature T of the soft-target loss: −Σ q·log softmax(z/T) on the student's logits."))

    def __post_init__(self) -> None:
        self.check_types()

    @property
    def tasks(self) -> list[str]:
        return ([self.target] if self.target else []) + [a for a in self.aux if a != self.target]

    def check_types(self) -> RunConfig:
        """Every option converted to its type (:func:`convert_option`); a one-line error naming the first that fails."""
        for opt in OPTIONS:
            setattr(self, opt.name, convert_option(opt.name, getattr(self, opt.name)))
        self.report_to = parse_report_to(self.report_to)  # a list of tracker names, "none" and "all" read
        return self

    def validate(self) -> RunConfig:
        """:meth:`check_values`, then what must hold between options (tasks, per-task limits)."""
        self.check_values()
        for task, value in self.task_limits.items():
            if task not in self.tasks:
                raise OptionError(f"--limit {task}={value}: task {task!r} is not in this run ({', '.join(self.tasks)})")
        if self.aux and not self.target:
            raise OptionError("--aux needs a --target (the task the auxiliary tasks help)")
        if self.target in self.aux:
            raise OptionError(f"task {self.target!r} is given twice: as --target and in --aux")
        seen = set()
        for name in self.tasks:
            if name in seen:
                raise OptionError(f"task {name!r} is given twice")
            seen.add(name)
        return self

    def check_values(self) -> RunConfig:
        """Each option's type (:meth:`check_types`) and range, one at a time (a one-line error naming it)."""
        self.check_types()
        for name in ("epochs", "batch_size", "eval_batch_size", "max_length", "log_every", "grad_accum",
                     "max_steps", "limit", "eval_limit", "checkpoint_every", "eval_every", "patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionError(f"{FLAGS[name]} must be >= 1 (got {value})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr must be a positive number (got {self.lr})")
        ranges = (("weight_decay", 0, math.inf), ("warmup", 0, 1), ("dropout", 0, 1), ("clip", 0, math.inf))
        for name, low, high in ranges:
            value = getattr(self, name)
            if not (low <= value <= high) or math.isnan(value):
                raise OptionError(f"{FLAGS[name]} must be in [{low}, {high}] (got {value})")
        if self.max_length > 512:
            raise OptionError(f"--max-length must be <= 512 (got {self.max_length})")
        for task, value in self.task_limits.items():
            if value < 1:
                raise OptionError(f"--limit {task}={value}: the limit must be an integer >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunConfig:
        """The options of a run's ``config.json`` record (its other keys, plugins, sizes, versions, are left out)."""
        return cls(**{k: v for k, v in record.items() if k in FIELD_NAMES})

    def plugins(self) -> dict[str, str]:
        """The weighting, sampler, backbone and regularizer (if any) of this run, by kind (its tasks are
        :attr:`tasks`)."""
        kinds = {"weighting": self.weighting, "sampler": self.sampler, "backbone": self.backbone}
        return kinds | ({"regularizer": self.regularizer} if self.regularizer else {})

    def plugin_options(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``options`` routed to this run's plugins: ``(kind, name) -> {option: value}`` (:func:`plugin_options`)."""
        return plugin_options(self.options, self.plugins(), self.tasks, parse_report_to(self.report_to),
                              self.callbacks)


OPTIONS: list[RunOption] = run_options(RunConfig)
BY_NAME: dict[str, RunOption] = {opt.name: opt for opt in OPTIONS}
FIELD_NAMES: set[str] = set(BY_NAME)
FLAGS: dict[str, str] = {opt.name: opt.flag_name for opt in OPTIONS}  # field -> the flag that sets it
PRECISIONS, OPTIMIZERS, KEEPS, LR_SCHEDULES = (get_args(t) for t in (Precision, Optimizer, Keep, LrSchedule))


def convert_option(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` converted to the type of option ``name`` (``"3"`` -> 3 for an integer, ``"a,b"`` -> a list, ...);
    otherwise an :class:`OptionError` naming the option, e.g. ``--epochs: expected an integer, got 'abc'``
    (``label`` replaces ``--epochs``, e.g. ``run.yaml: epochs`` for a config file's key)."""
    try:
        return convert(value, BY_NAME[name].type)
    except (ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise OptionError(f"{label or FLAGS[name]}: {reason}") from None


def parse_report_to(value: Any) -> list[str]:
    """``--report-to`` as ``transformers.Trainer`` spells ``report_to``: ``"tensorboard,mlflow"`` or a list of names
    -> ``["tensorboard", "mlflow"]``; ``"none"`` (or nothing) -> ``[]``; ``"all"`` stays ``["all"]`` (every
    installed tracker, resolved by the trainer). Tracker names are checked when the trackers are built."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise OptionError(f"--report-to must be tracker names, comma-separated (got {value!r})")
    names = [item.strip() for item in items if item.strip()]
    for special in ("none", "all"):
        if special in names and len(names) > 1:
            raise OptionError(f"--report-to {','.join(names)}: {special!r} cannot be combined with other trackers")
    return [] if names == ["none"] else names
