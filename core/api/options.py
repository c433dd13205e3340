"""Python keyword arguments as run options: the names and values `mtl run` takes, with its one-line errors.

Every keyword is a :class:`mtl.runs.config.RunConfig` field (``target=``, ``aux=``, ``max_steps=`` ...), converted by
RunConfig's own converter (:meth:`RunConfig.check_types`, the one config files go through), so ``epochs="x"`` is a
one-line ``OptionError`` naming ``--epochs``. Besides the fields: ``config=`` (a YAML/JSON file of options that the
keywords override, as ``--config``) and ``set=`` (plugin options, ``{"mamt": {"psi": 0.5}}`` or
``["mamt.psi=0.5"]``, as ``--set``). ``None`` means "not given", as an option left off the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mtl.errors import OptionError, unknown
from mtl.runs.config import FIELD_NAMES, RunConfig, merge_options, parse_assignments, read_config_file

EXTRA = ("config", "set")  # keywords that are not RunConfig fields: the --config file and --set's plugin options


def run_values(options: Mapping[str, Any], *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """RunConfig keyword values from the API's keyword arguments (``exclude``: fields this function does not take,
    e.g. ``seed`` for ``mtl.bench``, which has ``seeds=``). A wrong name or value is a one-line OptionError."""
    options = {k: v for k, v in options.items() if v is not None}
    for name in options:
        if name in exclude or (name not in FIELD_NAMES and name not in EXTRA):
            valid = sorted((FIELD_NAMES | set(EXTRA)) - set(exclude))
            raise OptionError(unknown("option", name, valid))
    config = options.pop("config", None)
    values = read_config_file(_path(config)) if config is not None else {}
    assignments = options.pop("set", None)
    values.update({name: _paths(value) for name, value in options.items()})
    converted = RunConfig(**values).check_types()  # each value in its option's type, or a one-line error naming it
    values = {name: getattr(converted, name) for name in values}
    values["options"] = merge_options(values.get("options") or {}, _plugin_options(assignments))
    return values


def _plugin_options(value: Any) -> dict[str, dict[str, Any]]:
    """``set=``: a mapping of plugin names to option mappings, or ``NAME.KEY=VALUE`` strings as ``--set`` takes."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return parse_assignments(list(value), flag="set")
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()):
        return {plugin: dict(values) for plugin, values in value.items()}
    raise OptionError(f"set must map plugin names to mappings of options, e.g. set={{'mamt': {{'psi': 0.5}}}} "
                      f"(got {value!r})"[:200])


def _path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _paths(value: Any) -> Any:
    """A path given as a :class:`pathlib.Path` (``output=``, ``data_dir=``, ``data={...}`` values) as the string
    the option holds."""
    if isinstance(value, Mapping):
        return {k: _paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_paths(v) for v in value)
    return _path(value)
