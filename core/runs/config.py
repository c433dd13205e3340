"""Run configuration: every `mtl run` option, a YAML/JSON config file, and `--set NAME.KEY=VALUE`.

Command-line values override the config file; the file's keys are the option names of `mtl run`
(dashes or underscores), plus ``options: {plugin: {key: value}}`` for plugin options.
"""

from __future__ import annotations

import json
import math
import types
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from mtl.errors import MtlError, OptionError, not_utf8, unknown

PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamax")
KEEPS = ("all", "model", "none")  # --keep: what a finished run keeps (mtl.runs.folder.RunFolder.prune)
LR_SCHEDULES = ("linear", "cosine", "constant")  # --lr-schedule: the learning rate after warm-up


@dataclass
class RunConfig:
    target: str | None = None
    aux: list[str] = field(default_factory=list)
    weighting: str = "uniform"
    sampler: str = "proportional"
    backbone: str = "minilm"
    regularizer: str | None = None  # a term added to every step's loss (e.g. smart); None = none
    parent: str | None = None  # `mtl finetune`: the finished run whose backbone and target head this run starts from
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # plugin name or kind -> options
    data_dir: str | None = None
    data: dict[str, str] = field(default_factory=dict)  # "task.split" (or "task" = a GLUE folder) -> path
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    optimizer: str = "adamw"  # adamw | adamax (MT-DNN, SIWLM)
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    clip: float = 1.0
    dropout: float = 0.1
    limit: int | None = None
    task_limits: dict[str, int] = field(default_factory=dict)  # per-task --limit (e.g. the auxiliary tasks only)
    eval_limit: int | None = None
    seed: int = 0
    output: str | None = None
    log_every: int = 10
    checkpoint_every: int | None = None  # steps between checkpoints (also at every epoch end)
    precision: str = "fp32"  # fp32 | bf16 (autocast, CPU or CUDA) | fp16 (autocast + grad scaler, CUDA)
    skip_nonfinite: bool = False  # skip (and count) a step with a non-finite loss instead of stopping
    group_by_length: bool = False  # batches of similar lengths (windows of 50 batches) instead of random batches
    teachers: dict[str, list[str]] = field(default_factory=dict)  # task -> teacher runs/exports (MT-DNN-KD)
    teacher_temperature: float = 1.0  # divides the student's logits in the soft-target loss (mtl.training.distill)
    report_to: list[str] = field(default_factory=list)  # experiment trackers (--report-to, transformers' spelling)
    keep: str = "all"  # what the finished run keeps: all | model (no training-only state) | none (no weights)
    eval_every: int | None = None  # steps between evaluations (None: at every epoch end); best selection on them
    patience: int | None = None  # stop after this many evaluations without a better selection metric (None: never)
    grad_accum: int = 1  # micro-batches per optimisation step (each of --batch-size instances)
    lr_schedule: str = "linear"  # linear | cosine | constant, each after --warmup's linear warm-up
    callbacks: list[str] = field(default_factory=list)  # registered callback plugins to use (--callback NAME)

    @property
    def tasks(self) -> list[str]:
        return ([self.target] if self.target else []) + [a for a in self.aux if a != self.target]

    def check_types(self) -> "RunConfig":
        """Every option conformed to its type (:func:`conform_option`); a one-line error naming the first that is not."""
        for name in FIELD_NAMES:
            setattr(self, name, conform_option(name, getattr(self, name)))
        if isinstance(self.aux, str):  # "a,b" (a config file's, the Python API's): the tasks it names
            self.aux = [a.strip() for a in self.aux.split(",") if a.strip()]
        return self

    def validate(self) -> "RunConfig":
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

    def check_values(self) -> "RunConfig":
        """Each option's type (:meth:`check_types`) and range, one at a time (a one-line error naming it)."""
        self.check_types()
        self.report_to = parse_report_to(self.report_to)  # a list of tracker names, "none" and "all" read
        positive_int = {"epochs": self.epochs, "batch_size": self.batch_size,
                        "eval_batch_size": self.eval_batch_size, "max_length": self.max_length,
                        "log_every": self.log_every, "grad_accum": self.grad_accum}
        for name, value in positive_int.items():
            if value < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if self.precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.keep not in KEEPS:
            raise OptionError(f"--keep must be one of {', '.join(KEEPS)} (got {self.keep!r})")
        if self.lr_schedule not in LR_SCHEDULES:
            raise OptionError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)} (got {self.lr_schedule!r})")
        for name in ("max_steps", "limit", "eval_limit", "checkpoint_every", "eval_every", "patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr must be a positive number (got {self.lr})")
        for name, low, high in (("weight_decay", 0, math.inf), ("warmup", 0, 1), ("dropout", 0, 1), ("clip", 0, math.inf)):
            value = getattr(self, name)
            if not (low <= value <= high) or math.isnan(value):
                raise OptionError(f"--{name.replace('_', '-')} must be in [{low}, {high}] (got {value})")
        if self.max_length > 512:
            raise OptionError(f"--max-length must be <= 512 (got {self.max_length})")
        for task, value in self.task_limits.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OptionError(f"--limit {task}={value}: the limit must be an integer >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "RunConfig":
        """The options of a run's ``config.json`` record (its other keys, plugins, sizes, versions, are left out)."""
        return cls(**{k: v for k, v in record.items() if k in FIELD_NAMES})

    def plugins(self) -> dict[str, str]:
        """The weighting, sampler, backbone and regularizer (if any) of this run, by kind (its tasks are
        :attr:`tasks`)."""
        kinds = {"weighting": self.weighting, "sampler": self.sampler, "backbone": self.backbone}
        return kinds | ({"regularizer": self.regularizer} if self.regularizer else {})

    def plugin_options(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``options`` routed to this run's plugins: ``(kind, name) -> {option: value}`` (see :func:`plugin_options`)."""
        return plugin_options(self, self.plugins())


FIELD_NAMES = {f.name for f in fields(RunConfig)}

# the type each option's value must have: the field's annotation, widened where a config file may also give a
# string that the run reads later (`aux: a,b`, `report-to: tensorboard,mlflow`, `teachers: {rte: "a,b"}`)
OPTION_TYPES: dict[str, Any] = get_type_hints(RunConfig) | {
    "aux": list[str] | str, "report_to": list[str] | str | None, "teachers": dict[str, list[str] | str]}
FLAGS = {"task_limits": "--task-limit", "teachers": "--teacher", "options": "options"}


class _Mismatch(Exception):
    pass


def conform_option(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` if it has the type of option ``name`` (an int or a numeric string such as YAML 1.1's ``5e-5`` where
    a number is expected becomes a float); otherwise an :class:`OptionError` naming the option, e.g.
    ``--epochs must be an integer (got 'abc')`` (``label`` replaces ``--epochs``, e.g. with a file's name)."""
    hint = OPTION_TYPES[name]
    try:
        return _conform(value, hint)
    except _Mismatch:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        label = label or FLAGS.get(name, f"--{name.replace('_', '-')}")
        raise OptionError(f"{label} must be {_describe(hint)} (got {shown})") from None


def _conform(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for arm in args:
            try:
                return _conform(value, arm)
            except _Mismatch:
                pass
        raise _Mismatch
    if hint is type(None):
        if value is None:
            return None
    elif origin is list:
        if isinstance(value, (list, tuple)):  # a tuple from the Python API is read as the list it spells
            return [_conform(item, args[0]) for item in value]
    elif origin is dict:
        if isinstance(value, dict):
            return {_conform(key, args[0]): _conform(item, args[1]) for key, item in value.items()}
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    raise _Mismatch


def _describe(hint: Any, plural: bool = False) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        arms = [_describe(arm, plural) for arm in args if arm is not type(None)]
        return " or ".join(arms) + (" or null" if type(None) in args else "")
    if origin is list:
        return ("lists" if plural else "a list") + f" of {_describe(args[0], True)}"
    if origin is dict:
        return ("mappings" if plural else "a mapping") + f" of {_describe(args[0], True)} to {_describe(args[1], True)}"
    names = {bool: ("true or false", "true or false"), int: ("an integer", "integers"), float: ("a number", "numbers"),
             str: ("a string", "strings")}
    return names.get(hint, ("any value", "any values"))[plural]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of run options (safe loading only)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MtlError(f"config file not found: {path}") from None
    except OSError as exc:
        raise MtlError(f"config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise MtlError(not_utf8(path, exc)) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise MtlError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise MtlError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MtlError(f"{path}: a config file must be a mapping of option names to values")
    config = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELD_NAMES:
            raise MtlError(f"{path}: " + unknown("option", str(key), sorted(n.replace("_", "-") for n in FIELD_NAMES)))
        config[name] = conform_option(name, value, label=f"{path}: {key}")
    if "options" in config and not (isinstance(config["options"], dict)
                                    and all(isinstance(v, dict) for v in config["options"].values())):
        raise MtlError(f"{path}: 'options' must map plugin names to mappings of option values")
    return config


def parse_assignments(items: list[str], flag: str = "--set") -> dict[str, dict[str, str]]:
    """``["mamt.psi=0.5", "rte.limit=3"]`` -> ``{"mamt": {"psi": "0.5"}, "rte": {"limit": "3"}}``."""
    options: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        plugin, dot, option = key.strip().rpartition(".")
        if not sep or not dot or not plugin or not option:
            raise OptionError(f"{flag} {item!r}: expected NAME.KEY=VALUE, e.g. {flag} mamt.psi=0.5")
        options.setdefault(plugin, {})[option] = value
    return options


def merge_options(*sources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for plugin, values in source.items():
            merged.setdefault(plugin, {}).update(values)
    return merged


def parse_task_limits(items: list[str], flag: str = "--task-limit") -> dict[str, int]:
    """``--task-limit stsb=2000`` (repeatable) -> ``{"stsb": 2000}``; ``flag`` names the option in errors."""
    limits = {}
    for item in items:
        task, sep, value = item.partition("=")
        try:
            limits[task.strip()] = int(value)
        except ValueError:
            sep = ""
        if not sep or not task.strip():
            raise OptionError(f"{flag} {item!r}: expected TASK=N, e.g. {flag} stsb=2000")
    return limits


def parse_limits(items: list[str]) -> tuple[int | None, dict[str, int]]:
    """``--limit 500 --limit stsb=2000`` (repeatable) -> ``(500, {"stsb": 2000})``: N for every task, TASK=N for
    one task (the same as ``--task-limit TASK=N``); the last N given wins. Values >= 1 are checked by
    :meth:`RunConfig.validate`."""
    limit: int | None = None
    tasks: dict[str, int] = {}
    for item in items:
        text = str(item).strip()
        if "=" in text:
            task, _, value = text.partition("=")
            try:
                number = int(value)
            except ValueError:
                number = None
            if number is None or not task.strip():
                raise OptionError(f"--limit {item!r}: expected N or TASK=N, e.g. --limit 500 --limit stsb=2000")
            tasks[task.strip()] = number
            continue
        try:
            limit = int(text)
        except ValueError:
            raise OptionError(f"--limit {item!r}: expected N or TASK=N, e.g. --limit 500 --limit stsb=2000") from None
    return limit, tasks


def parse_data(items: list[str]) -> dict[str, str]:
    """``--data rte.train=path.tsv`` or ``--data rte=folder``."""
    data = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise OptionError(f"--data {item!r}: expected TASK.SPLIT=FILE or TASK=FOLDER")
        data[key.strip()] = value.strip()
    return data


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


def plugin_options(config: RunConfig, kinds: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Route ``config.options`` to the plugins of this run.

    ``kinds`` maps each kind to the selected name (weighting, sampler, backbone, regularizer); tasks are
    ``config.tasks``. A key may be a kind (``weighting``), a plugin name (``mamt``) or a task name.
    """
    routed: dict[tuple[str, str], dict[str, Any]] = {}
    in_run = {kind: name for kind, name in kinds.items()}
    trackers = parse_report_to(config.report_to)
    for key, values in config.options.items():
        matches = []
        if key in in_run:
            matches.append((key, in_run[key]))
        for kind, name in in_run.items():
            if key == name or key == name.partition(":")[0]:
                matches.append((kind, name))
        if key in config.tasks:
            matches.append(("task", key))
        if key in trackers:  # a tracker's options: --set wandb.project=NAME
            matches.append(("tracker", key))
        matches = list(dict.fromkeys(matches))
        if not matches:
            used = ([f"{kind} {name!r}" for kind, name in in_run.items()] + [f"task {t!r}" for t in config.tasks]
                    + [f"tracker {t!r}" for t in trackers])
            raise OptionError(
                f"options for {key!r}: not a plugin of this run ("
                + ", ".join(used) + "); use a plugin name, a task name or weighting/sampler/backbone"
            )
        if len(matches) > 1:
            kinds_hit = " and ".join(f"the {kind}" for kind, _ in matches)
            raise OptionError(
                f"options for {key!r}: {key!r} is {kinds_hit}; write "
                + " or ".join(f"{kind}.KEY" for kind, _ in matches)
            )
        routed.setdefault(matches[0], {}).update(values)
    return routed
