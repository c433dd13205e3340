"""The run options of `mtl run`, `bench`, `affinity` and `finetune`, generated from the schema (mtl.schema).

:func:`run_options` gives a command one Typer option per :class:`mtl.schema.RunConfig` field (help, short flag,
help group, choices and default from the field) plus ``--config``; the command receives them as ``**options`` and
turns them into RunConfig keyword arguments with :func:`run_values`. A command declares its own parameters as usual;
one named like a field replaces that field's option (bench's ``--weighting`` is a list of strategies), and
``exclude`` leaves fields out (finetune's target and tasks are its parent run's).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer

from mtl.runs.config import (
    merge_options,
    parse_assignments,
    parse_data,
    parse_limits,
    read_config_file,
)
from mtl.schema import OPTIONS, RunOption
from mtl.schema.fields import GROUPS

from .common import split_list

CONFIG = "config"
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="YAML or JSON file of run options (keys: the option names); command-line options override "
                           "it.", rich_help_panel="Tasks and data")]


def run_options(*, exclude: tuple[str, ...] = ()) -> Callable:
    """Decorator: the command's signature gets ``--config`` and an option per schema field that has a flag, minus
    ``exclude`` and the fields the command declares itself (its overrides); they arrive in its ``**options``.

    The command function records ``run_option_names`` (generated), ``run_option_overrides`` and
    ``run_option_exclude`` for the tests that check every field is exposed."""

    def wrap(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in own}
        fields = sorted((o for o in OPTIONS if o.flag.cli and o.name not in exclude and o.name not in names),
                        key=lambda o: GROUPS.index(o.flag.group))  # --help's panels in the schema's order
        generated = [inspect.Parameter(CONFIG, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt)]
        generated += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation(o))
                      for o in fields]
        positional = [p for p in own if p.default is p.empty]
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.default is not p.empty]
        command.__signature__ = inspect.Signature(positional + keyword + generated)
        command.run_option_names = tuple(o.name for o in fields)
        command.run_option_overrides = tuple(o.name for o in OPTIONS if o.name in names)
        command.run_option_exclude = tuple(exclude)
        return command

    return wrap


def annotation(opt: RunOption) -> Any:
    """The Typer annotation of a field's option: its type made optional (None = not given, the config file's value or
    the field's default applies), a list of text for a repeatable one, ``--x/--no-x`` for a switch."""
    flag = opt.flag
    decls = [f"{opt.flag_name}/--no-{opt.flag_name[2:]}" if _base(opt.type) is bool else opt.flag_name]
    decls += [flag.short] if flag.short else []
    kind = list[str] if flag.repeat else _base(opt.type)
    metavar = flag.metavar if flag.metavar and not opt.choices else None
    info = typer.Option(*decls, help=flag.help, rich_help_panel=flag.group, show_default=opt.shown_default,
                        metavar=metavar)
    return Annotated[kind | None, info]


def _base(hint: Any) -> Any:
    """``int`` for ``int | None``; the type itself otherwise."""
    if get_origin(hint) in (Union, types.UnionType):
        arms = [a for a in get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else hint
    return hint


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options a user gave (not None, not an empty repetition, not a switch left off)."""
    return {k: v for k, v in options.items() if v not in (None, [], (), False)}


def run_values(options: dict[str, Any]) -> dict[str, Any]:
    """RunConfig keyword arguments from a command's ``**options``: the ``--config`` file's values, overridden by the
    options given; repeatable options are parsed (``--set``, ``--data``, ``--limit``, ``--teacher``) and merged
    with the file's, or split on commas (``--aux``, ``--callback``, ``--report-to``)."""
    options = dict(options)
    config = options.pop(CONFIG, None)
    values = read_config_file(config) if config else {}
    for name, value in options.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        PARSE.get(name, _replace)(values, name, value)
    return values


def _replace(values: dict[str, Any], name: str, value: Any) -> None:
    values[name] = split_list(list(value)) if isinstance(value, (list, tuple)) else value


def _set(values: dict[str, Any], name: str, items: list[str]) -> None:
    values["options"] = merge_options(values.get("options") or {}, parse_assignments(items))


def _data(values: dict[str, Any], name: str, items: list[str]) -> None:
    values["data"] = {**(values.get("data") or {}), **parse_data(items)}


def _limit(values: dict[str, Any], name: str, items: list[str]) -> None:
    every, per_task = parse_limits(items)
    if every is not None:
        values["limit"] = every
    if per_task:
        values["task_limits"] = {**(values.get("task_limits") or {}), **per_task}


def _teachers(values: dict[str, Any], name: str, items: list[str]) -> None:
    # the training layer (torch): loaded only when --teacher is given
    from mtl.training.distill import parse_teachers

    values["teachers"] = {**(values.get("teachers") or {}), **parse_teachers(items)}


#: the repeatable options whose items are parsed (the others are lists of names, split on commas)
PARSE: dict[str, Callable[[dict[str, Any], str, Any], None]] = {
    "options": _set, "data": _data, "limit": _limit, "teachers": _teachers}


def make_config(values: dict):
    """A RunConfig from :func:`run_values`' dict (an unknown or mistyped key is a one-line error)."""
    from mtl.errors import MtlError
    from mtl.schema import RunConfig

    try:
        return RunConfig(**values)
    except TypeError as exc:
        raise MtlError(f"invalid run options: {exc}") from None
