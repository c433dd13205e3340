"""How a run option is declared: a dataclass field whose metadata says how the command line shows it.

In the way of ``transformers.TrainingArguments`` + ``HfArgumentParser``: the field holds the type and the default,
its metadata the help text, the short flag, the help group (Typer's ``rich_help_panel``) and the flag where it
is not ``--field-name``; the commands' parameters (``mtl.cli.run_options``) and the README's option table
(:func:`markdown_table`) are generated from them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Literal, Union, get_args, get_origin

from mtl.schema.convert import type_name

TASKS, PLUGINS, TRAINING, EVALUATION, OUTPUT, DISTILLATION = (
    "Tasks and data", "Plugins", "Training", "Evaluation", "Output", "Distillation")
GROUPS = (TASKS, PLUGINS, TRAINING, EVALUATION, OUTPUT, DISTILLATION)


@dataclass(frozen=True)
class Flag:
    """The command-line face of a run option (a field's ``metadata["flag"]``)."""

    help: str
    group: str
    short: str | None = None  # "-t"
    name: str | None = None  # "--teacher" where the flag is not --field-name
    metavar: str | None = None  # what a value looks like, e.g. TASK=N (also the README table's)
    repeat: bool = False  # the flag is repeatable; each value is text the command parses (mtl.cli.run_options)
    absent: str | None = None  # what an unset (None) default means, shown as the default, e.g. "all"
    cli: bool = True  # False: set by another flag or by a command (task_limits by --limit, parent by finetune)


def option(default: Any = MISSING, *, factory: Any = MISSING, **flag: Any) -> Any:
    """A RunConfig field: its default (or ``factory`` for a mutable one) and its :class:`Flag` metadata."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"flag": Flag(**flag)})


@dataclass(frozen=True)
class RunOption:
    """One field of a schema dataclass with its resolved type and its :class:`Flag`."""

    name: str
    type: Any
    default: Any  # the default value (a fresh one for a factory field)
    flag: Flag

    @property
    def flag_name(self) -> str:
        return self.flag.name or "--" + self.name.replace("_", "-")

    @property
    def choices(self) -> tuple[Any, ...]:
        """The values of a ``Literal`` type (also inside ``X | None``); ``()`` for any other type."""
        for arm in get_args(self.type) if get_origin(self.type) in (Union, types.UnionType) else (self.type,):
            if get_origin(arm) is Literal:
                return get_args(arm)
        return ()

    @property
    def shown_default(self) -> str:
        """The default as the help and the README show it: ``3``, ``on``/``off``, ``none``, or :attr:`Flag.absent`."""
        value = self.default
        if value is None or value == [] or value == {}:
            return self.flag.absent or "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)


def run_options(schema: type) -> list[RunOption]:
    """The fields of ``schema`` in declaration order, each with its type (annotations resolved) and flag."""
    hints = typing.get_type_hints(schema)
    out = []
    for field in dataclasses.fields(schema):
        default = field.default_factory() if field.default_factory is not MISSING else field.default
        out.append(RunOption(field.name, hints[field.name], default, field.metadata["flag"]))
    return out


def markdown_table(schema: type) -> str:
    """The README's table of run options: flag (with its short flag and metavar), default, meaning (and the config
    file's key where it is not the flag's name); by group."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    options = [o for o in run_options(schema) if o.flag.cli]
    for group in GROUPS:
        for opt in (o for o in options if o.flag.group == group):
            flag = opt.flag_name + (f"/{opt.flag.short}" if opt.flag.short else "")
            value = opt.flag.metavar or ("|".join(map(str, opt.choices)) if opt.choices else _metavar(opt.type))
            default = f"`{opt.shown_default}`" if "<" in opt.shown_default else opt.shown_default
            meaning = opt.flag.help + (f" Config file key: `{opt.name}`." if opt.flag.name else "")
            cells = (f"`{flag} {value}`".replace(" `", "`"), default, meaning)
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def _metavar(hint: Any) -> str:
    """``N`` for an integer, ``X`` for a number, ``TEXT`` for a string, nothing for a switch."""
    names = {"int": "N", "float": "X", "str": "TEXT", "bool": ""}
    arms = [a for a in (get_args(hint) or (hint,)) if a is not type(None)]
    return names.get(type_name(arms[0]), type_name(hint).upper()) if len(arms) == 1 else type_name(hint).upper()
