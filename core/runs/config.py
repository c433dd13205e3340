"""Reading run options: a YAML/JSON config file, ``--set NAME.KEY=VALUE``, ``--data``, ``--limit``, and the
routing of plugin options. The options themselves, their types and their converter are :mod:`mtl.schema`'s
(``RunConfig`` is re-exported here).

Command-line values override the config file; the file's keys are the option names of `mtl run`
(dashes or underscores), plus ``options: {plugin: {key: value}}`` for plugin options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl.errors import MtlError, OptionError, unknown
from mtl.schema import (
    FIELD_NAMES,
    KEEPS,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    RunConfig,
    convert_option,
    parse_report_to,
)
from mtl.schema.documents import read_document
from mtl.schema.routing import plugin_options as route

__all__ = ["FIELD_NAMES", "KEEPS", "LR_SCHEDULES", "OPTIMIZERS", "PRECISIONS", "RunConfig", "convert_option",
           "merge_options", "parse_assignments", "parse_data", "parse_limits", "parse_report_to", "plugin_options",
           "read_config_file"]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of run options (safe loading only)."""
    path = Path(path)
    data = read_document(path, "config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MtlError(f"{path}: a config file must be a mapping of option names to values")
    config = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELD_NAMES:
            raise MtlError(f"{path}: " + unknown("option", str(key), sorted(n.replace("_", "-") for n in FIELD_NAMES)))
        config[name] = convert_option(name, value, label=f"{path}: {key}")
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


def parse_limits(items: list[str]) -> tuple[int | None, dict[str, int]]:
    """``--limit 500 --limit stsb=2000`` (repeatable) -> ``(500, {"stsb": 2000})``: N for every task, TASK=N for
    one task; the last N given wins. Values >= 1 are checked by
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


def plugin_options(config: RunConfig, kinds: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Route ``config.options`` to the plugins of this run (:func:`mtl.schema.routing.plugin_options`).

    ``kinds`` maps each kind to the selected name (weighting, sampler, backbone, regularizer); tasks are
    ``config.tasks``. A key may be a kind (``weighting``), a plugin name (``mamt``), a task or a tracker name.
    """
    return route(config.options, kinds, config.tasks, parse_report_to(config.report_to))
