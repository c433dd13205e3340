"""The declared tasks of this process (:mod:`mtl.contract.declare`): a tasks file (``--tasks-file``), a run's
``declared`` option (what ``config.json`` records) and ``mtl.task(...)`` register them with the plugin loader as
one plugin, ``declared``, so every command finds them by name like any registered task.

- :func:`read_tasks_file`: a YAML/JSON file, ``tasks: [...]`` or a list; relative paths relative to the file.
- :func:`use`: a run's config made self-contained: its tasks file read into ``config.declared`` (labels resolved,
  absolute paths) and the declarations of its tasks declared in Python added; all registered.
- :func:`record`: the declarations ``config.json`` keeps, with data given in memory copied into the run folder.
- :func:`register_recorded`: what restoring a run folder calls (no data is read).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mtl.contract import declare, loader
from mtl.contract.hookspecs import hookimpl
from mtl.errors import MtlError
from mtl.schema.documents import read_document

PLUGIN = "declared"  # the plugin name declared tasks are registered under (`mtl plugins`, config.json)

_declared: dict[str, dict[str, Any]] = {}  # name -> normalised declaration (labels resolved)
_plugin: Any = None
_memory: Path | None = None  # where data given in memory (a datasets.Dataset) is written for this process


class _Plugin:
    """The pluggy plugin that registers the declared tasks (a new object at each change, so that the loader's
    registry is rebuilt)."""

    def __init__(self, declarations: dict[str, dict[str, Any]]) -> None:
        self.classes = {name: declare.task_class(decl) for name, decl in declarations.items()}

    @hookimpl
    def register_tasks(self, register):
        for name, cls in self.classes.items():
            register(name, cls, description=cls.description)


def _refresh() -> None:
    global _plugin
    loader.load_plugins()
    if _plugin is not None and loader.pm.is_registered(_plugin):
        loader.pm.unregister(_plugin)
    _plugin = _Plugin(dict(_declared))
    loader.register_module(_plugin, loader.PluginInfo(PLUGIN, "declared", "", builtin=False))


def declared(name: str) -> dict[str, Any] | None:
    """The declaration of task ``name`` if it is a declared task of this process."""
    return _declared.get(name)


def names() -> list[str]:
    return sorted(_declared)


def register(decls: list[dict[str, Any]], where: str) -> None:
    """Register normalised declarations (a later one of the same name replaces the earlier); a name a plugin
    registered is a one-line error naming ``where``."""
    if not decls or all(_declared.get(d["name"]) == d for d in decls):
        return  # nothing new (a run folder read again)
    registry = loader.registry()
    for decl in decls:
        name = decl["name"]
        entry = registry.entries["task"].get(name) or registry.entries["task"].get(
            registry.aliases["task"].get(name, ""))
        if entry is not None and entry.plugin != PLUGIN:
            raise MtlError(f"{decl.get('source') or where}: task {name!r} is already registered by {entry.source}; "
                           f"give the declared task another name")
    for decl in decls:
        _declared[decl["name"]] = decl
    _refresh()


def clear() -> None:
    """Forget every declared task of this process (tests)."""
    global _plugin
    _declared.clear()
    if _plugin is not None and loader.pm.is_registered(_plugin):
        loader.pm.unregister(_plugin)
    _plugin = None


def read_tasks_file(path: str | Path) -> list[dict[str, Any]]:
    """The declarations of a tasks file, resolved (columns checked, labels inferred); one-line errors name the file
    and the task, before anything is written."""
    path = Path(path)
    data = read_document(path, "tasks file")
    if isinstance(data, dict) and set(data) == {"tasks"}:
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        raise MtlError(f"{path}: a tasks file holds 'tasks:' with a list of task declarations (or the list alone)")
    decls, seen = [], set()
    for raw in data:
        decl = declare.normalise(raw, str(path), base=path.parent.resolve())
        if decl["name"] in seen:
            raise MtlError(f"{path}: task {decl['name']!r} is declared twice")
        seen.add(decl["name"])
        decl.setdefault("source", str(path.resolve()))
        decls.append(declare.resolve(decl, str(path)))
    return decls


def use(config) -> None:
    """Make ``config`` (a RunConfig) self-contained: its tasks file read into ``config.declared`` (then
    ``tasks_file`` is None), the declarations of its tasks declared in Python added, all registered."""
    decls = [declare.normalise(d, "declared") for d in (config.declared or [])]
    decls = [declare.resolve(d, "declared") if _unresolved(d) else d for d in decls]
    if config.tasks_file:
        decls += read_tasks_file(config.tasks_file)
        config.tasks_file = None
    by_name = {d["name"]: d for d in decls}
    for name in config.tasks:
        if name not in by_name and name in _declared:
            by_name[name] = _declared[name]
    register(list(by_name.values()), "declared tasks")
    config.declared = list(by_name.values())


def _unresolved(decl: dict[str, Any]) -> bool:
    """A declaration whose labels are still to be inferred from its data (not one a run recorded)."""
    return "metrics" not in decl or (decl.get("labels") is None and decl["type"] in declare.LABEL_SOURCE)


def use_values(values: dict[str, Any]) -> dict[str, Any]:
    """:func:`use` for run option values (``mtl bench``'s, as bench.json stores them)."""
    from types import SimpleNamespace

    tasks = [t for t in [values.get("target"), *(values.get("aux") or [])] if t]
    config = SimpleNamespace(tasks_file=values.get("tasks_file"), declared=values.get("declared") or [], tasks=tasks)
    use(config)
    out = {k: v for k, v in values.items() if k != "tasks_file"}
    if config.declared:
        out["declared"] = config.declared
    return out


def register_recorded(decls: Any, where: str) -> None:
    """Register the declarations a run folder's ``config.json`` records (checked, no data read)."""
    if decls:
        register([declare.normalise(d, where) for d in decls], where)


# ------------------------------------------------------------------------------------------ data given in memory
def memory_folder() -> Path:
    """This process's folder for data given in memory (removed when the process exits)."""
    global _memory
    if _memory is None:
        _memory = Path(tempfile.mkdtemp(prefix="mtl-declared-"))
        atexit.register(shutil.rmtree, _memory, True)
    return _memory


def in_memory(path: str) -> bool:
    return _memory is not None and Path(path).is_relative_to(_memory)


def record(decls: list[dict[str, Any]], folder: Path, *, copy: bool = True) -> list[dict[str, Any]]:
    """The declarations as a run (or bench) folder records them: a split written from memory copied to
    ``FOLDER/data/<task>/<split>.parquet`` (unless not ``copy``) and named there."""
    out = []
    for decl in decls:
        files = decl.get("files") or {}
        if any(in_memory(p) for p in files.values()):
            decl = {**decl, "files": dict(files)}
            for split, path in files.items():
                if in_memory(path):
                    target = Path(folder).absolute() / "data" / decl["name"] / f"{split}.parquet"
                    if copy:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, target)
                    decl["files"][split] = str(target)
        out.append(decl)
    return out
