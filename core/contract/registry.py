"""The registry: what every plugin registered, by kind and name, with lazy factories.

Built from the hooks of all loaded plugins (see :mod:`mtl.loader`). A name registered twice within a kind
is a conflict naming both plugins; an unknown name is an error listing the valid names and the closest ones.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtl.errors import MtlError, UnknownNameError, unknown

KINDS = ("weighting", "sampler", "backbone", "task", "regularizer", "tracker", "launcher", "figure", "callback")
HOOKS = {
    "weighting": "register_weightings",
    "sampler": "register_samplers",
    "backbone": "register_backbones",
    "task": "register_tasks",
    "regularizer": "register_regularizers",
    "tracker": "register_trackers",
    "launcher": "register_launchers",
    "figure": "register_figures",
    "callback": "register_callbacks",
}


@dataclass
class Entry:
    """One registered plugin object: a weighting, sampler, backbone, task, regularizer, tracker, launcher, or
    figure (its ``factory`` is the figure's ``draw(run)``)."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    description: str = ""
    aliases: tuple[str, ...] = ()
    plugin: str = ""  # the pluggy plugin (module) that registered it
    package: str = ""  # distribution that provides it
    version: str = ""

    def load(self) -> Callable[..., Any]:
        """The factory itself, importing a ``"module:attr"`` string on first use."""
        if isinstance(self.factory, str):
            module_name, _, attr = self.factory.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split(".") if attr else ():
                    obj = getattr(obj, part)
            except Exception as exc:  # a broken lazy factory must not look like a user mistake elsewhere
                raise MtlError(
                    f"{self.kind} {self.name!r} (plugin {self.plugin!r}) could not be loaded from "
                    f"{self.factory!r}: {type(exc).__name__}: {exc}"
                ) from exc
            self.factory = obj
        return self.factory

    @property
    def source(self) -> str:
        return f"plugin {self.plugin!r} ({self.package} {self.version})".replace(" )", ")")


@dataclass
class Registry:
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    conflicts: list[str] = field(default_factory=list)
    failed: list = field(default_factory=list)  # plugins whose register hook raised (loader.FailedPlugin)

    def add(self, entry: Entry) -> None:
        """Register ``entry``; a name that is not one (see :func:`check_name`) or a factory that is neither callable
        nor a ``"module:attr"`` string raises ValueError, which fails the registering plugin alone."""
        for name in (entry.name, *entry.aliases):
            check_name(name)
        if not (callable(entry.factory) or (isinstance(entry.factory, str) and ":" in entry.factory)):
            raise ValueError(f"{entry.kind} {entry.name!r}: the factory must be callable or a \"module:attr\" "
                             f"string (got {type(entry.factory).__name__})")
        table, aliases = self.entries[entry.kind], self.aliases[entry.kind]
        for name in (entry.name, *entry.aliases):
            other = table.get(name) or (table.get(aliases[name]) if name in aliases else None)
            if other is not None:
                self.conflicts.append(
                    f"{entry.kind} {name!r} is registered twice: by {other.source} and by {entry.source}"
                )
                return
        table[entry.name] = entry
        for alias in entry.aliases:
            aliases[alias] = entry.name

    def check(self) -> None:
        """Raise on name conflicts (used before anything is built)."""
        if self.conflicts:
            raise MtlError(
                self.conflicts[0] + "; uninstall one of them or limit plugins with MTL_LOAD_PLUGINS"
            )

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[check_kind(kind)])

    def get(self, kind: str, name: str) -> tuple[Entry, str | None]:
        """The entry for ``name`` and, for ``prefix:argument`` names (``hf:bert-base-uncased``), the argument."""
        table = self.entries[check_kind(kind)]
        if not isinstance(name, str):
            raise UnknownNameError(unknown(kind, repr(name), table))
        name = self.aliases[kind].get(name, name)
        if name in table:
            return table[name], None
        prefix, sep, argument = name.partition(":")
        if sep and prefix in table and argument:
            return table[prefix], argument
        raise UnknownNameError(unknown(kind, name, table))


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise UnknownNameError(unknown("plugin kind", str(kind), KINDS))
    return kind


def is_name(name: Any) -> bool:
    """A plugin (or task) name: letters, digits, ``_ . -``, starting with a letter or digit (so that it fits on a
    command line, in ``--set NAME.KEY=VALUE`` and before ``:ARGUMENT``)."""
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][\w.-]*", name) is not None


def check_name(name: Any) -> str:
    """``name`` if :func:`is_name`, else ValueError."""
    if not is_name(name):
        raise ValueError(f"{name!r} is not a plugin name (letters, digits, _ . -, starting with a letter or digit)")
    return name
