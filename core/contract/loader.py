"""The plugins loader: built-in plugins and entry-point group ``mtl``, registered with one pluggy manager.

Modelled on simonw/llm's ``plugins.py``: built-in plugins are a tuple of module names registered exactly
like third-party ones. Each third-party entry point is loaded in isolation (a broken one is reported and
skipped), ``MTL_LOAD_PLUGINS`` (comma list; empty = none) limits which load, and ``check_pending`` runs for
every plugin so a misspelled hook is reported instead of silently ignored.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any

import pluggy

from mtl.contract import hookspecs
from mtl.contract.registry import HOOKS, Entry, Registry
from mtl.errors import UnknownNameError, warn
from mtl.version import __version__

BUILTIN_PLUGINS = (
    "mtl.plugins.weightings.uniform",
    "mtl.plugins.weightings.mamt",
    "mtl.plugins.weightings.siwlm",
    "mtl.plugins.weightings.mmoe",
    # gradient family (TorchJD aggregators): mtl.plugins.weightings.gradient.<name>
    "mtl.plugins.weightings.gradient.upgrad",
    "mtl.plugins.weightings.gradient.mgda",
    "mtl.plugins.weightings.gradient.cagrad",
    "mtl.plugins.weightings.gradient.nash_mtl",
    "mtl.plugins.weightings.gradient.imtl_g",
    "mtl.plugins.weightings.gradient.aligned_mtl",
    "mtl.plugins.weightings.gradient.dualproj",
    "mtl.plugins.weightings.gradient.graddrop",
    "mtl.plugins.weightings.gradient.gradvac",
    "mtl.plugins.weightings.gradient.fairgrad",
    "mtl.plugins.weightings.gradient.config",
    "mtl.plugins.weightings.gradient.krum",
    "mtl.plugins.weightings.gradient.trimmed_mean",
    "mtl.plugins.weightings.gradient.excess_mtl",
    "mtl.plugins.weightings.gradient.pcd",
    "mtl.plugins.weightings.gradient.cr_mogm",
    "mtl.plugins.weightings.gradient.mo_do",
    "mtl.plugins.weightings.gradient.sdmgrad",
    "mtl.plugins.weightings.gradient.pcgrad",
    "mtl.plugins.weightings.gradient.moco",
    "mtl.plugins.weightings.gradient.db_mtl",
    # loss family: mtl.plugins.weightings.loss.<name>
    "mtl.plugins.weightings.loss.static",
    "mtl.plugins.weightings.loss.uw",
    "mtl.plugins.weightings.loss.dwa",
    "mtl.plugins.weightings.loss.gls",
    "mtl.plugins.weightings.loss.imtl_l",
    "mtl.plugins.weightings.loss.famo",
    "mtl.plugins.weightings.loss.rlw",
    "mtl.plugins.weightings.loss.stch",
    "mtl.plugins.weightings.loss.gradnorm",
    "mtl.plugins.samplers.proportional",
    "mtl.plugins.samplers.uniform",
    "mtl.plugins.samplers.adaptive",
    "mtl.plugins.samplers.temperature",
    "mtl.plugins.samplers.round_robin",
    "mtl.plugins.samplers.sequential",
    "mtl.plugins.samplers.all_tasks",
    "mtl.plugins.backbones.minilm",
    "mtl.plugins.backbones.tiny",
    "mtl.plugins.backbones.hf",
    "mtl.plugins.tasks.cola",
    "mtl.plugins.tasks.sst2",
    "mtl.plugins.tasks.mrpc",
    "mtl.plugins.tasks.stsb",
    "mtl.plugins.tasks.qqp",
    "mtl.plugins.tasks.mnli",
    "mtl.plugins.tasks.qnli",
    "mtl.plugins.tasks.rte",
    "mtl.plugins.tasks.wnli",
    "mtl.plugins.tasks.snli",
    "mtl.plugins.tasks.squad",
    "mtl.plugins.tasks.demo",
    "mtl.plugins.tasks.conll2003",
    "mtl.plugins.tasks.demo_entities",
    "mtl.plugins.tasks.demo_types",
    "mtl.plugins.tasks.swag",
    "mtl.plugins.tasks.copa",
    "mtl.plugins.tasks.boolq",
    "mtl.plugins.tasks.cb",
    "mtl.plugins.tasks.wic",
    "mtl.plugins.tasks.qnli_ranking",
    "mtl.plugins.regularizers.smart",
    "mtl.plugins.trackers.tensorboard",
    "mtl.plugins.trackers.mlflow",
    "mtl.plugins.trackers.wandb",
    "mtl.plugins.trackers.trackio",
    "mtl.plugins.launchers.local",
    "mtl.plugins.launchers.slurm",
)

ENTRY_POINT_GROUP = "mtl"


@dataclass
class FailedPlugin:
    name: str
    package: str
    version: str
    error: str


@dataclass
class PluginInfo:
    name: str
    package: str
    version: str
    builtin: bool


pm = pluggy.PluginManager("mtl")
pm.add_hookspecs(hookspecs)

_loaded = False
failed: list[FailedPlugin] = []
_info: dict[str, PluginInfo] = {}


def register_module(module: object, info: PluginInfo) -> bool:
    """Register one plugin module; a misspelled hook unregisters it and records the failure."""
    try:
        pm.register(module, name=info.name)
        pm.check_pending()
    except Exception as exc:  # PluginValidationError, or a module registered twice
        if pm.is_registered(module):
            pm.unregister(module)
        failed.append(FailedPlugin(info.name, info.package, info.version, f"{type(exc).__name__}: {exc}"))
        warn(f"plugin {info.name!r} ({info.package}) was not loaded: {exc}")
        return False
    _info[info.name] = info
    return True


def load_plugins() -> None:
    """Load built-in and third-party plugins once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN_PLUGINS:
        info = PluginInfo(module_name, "mtl", __version__, builtin=True)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a built-in plugin missing an optional dependency is isolated too
            failed.append(FailedPlugin(module_name, "mtl", info.version, f"{type(exc).__name__}: {exc}"))
            warn(f"built-in plugin {module_name!r} failed to load: {type(exc).__name__}: {exc}")
            continue
        register_module(module, info)

    allowed = os.environ.get("MTL_LOAD_PLUGINS")
    allowed_names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if allowed_names is not None and ep.name not in allowed_names and package not in allowed_names:
            continue
        if ep.name in seen or pm.has_plugin(ep.name):
            failed.append(FailedPlugin(ep.name, package, version, "another plugin has the same entry-point name"))
            warn(f"plugin {ep.name!r} from {package} was skipped: another plugin has the same name")
            continue
        seen.add(ep.name)
        try:
            module = ep.load()
        except Exception as exc:  # any import-time error of a third-party plugin is isolated
            failed.append(FailedPlugin(ep.name, package, version, f"{type(exc).__name__}: {exc}"))
            warn(f"plugin {ep.name!r} ({package} {version}) failed to load: {type(exc).__name__}: {exc}")
            continue
        register_module(module, PluginInfo(ep.name, package, version, builtin=False))


def plugin_info(plugin_name: str) -> PluginInfo:
    return _info.get(plugin_name) or PluginInfo(plugin_name, "?", "?", builtin=False)


def build_registry() -> Registry:
    """Call every plugin's hooks one by one (so each registration is attributed to its plugin)."""
    load_plugins()
    registry = Registry()
    for kind, hook_name in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = plugin_info(impl.plugin_name)

            def register(name, factory, *, description="", aliases=(), _kind=kind, _info=info):
                registry.add(
                    Entry(
                        kind=_kind,
                        name=name,
                        factory=factory,
                        description=description,
                        aliases=tuple(aliases),
                        plugin=_info.name,
                        package=_info.package,
                        version=_info.version,
                    )
                )

            try:
                impl.function(register=register)
            except Exception as exc:  # isolate a plugin whose hook raises
                registry.failed.append(
                    FailedPlugin(info.name, info.package, info.version, f"{hook_name}: {type(exc).__name__}: {exc}")
                )
                warn(f"plugin {info.name!r} failed in {hook_name}: {type(exc).__name__}: {exc}")
    return registry


_cache: tuple[tuple[object, ...], Registry] | None = None


def registry() -> Registry:
    """The registry of all loaded plugins, rebuilt only when plugins are registered or unregistered.

    The cache key holds the plugin objects themselves, not their ``id()``: a plugin object unregistered and
    garbage-collected could otherwise hand its id to a new one and the stale registry would be reused.
    """
    global _cache
    load_plugins()
    plugins = tuple(plugin for _, plugin in pm.list_name_plugin())
    same = _cache is not None and len(_cache[0]) == len(plugins) and all(
        a is b for a, b in zip(_cache[0], plugins, strict=True))
    if not same:
        _cache = (plugins, build_registry())
    return _cache[1]


def available(kind: str) -> list[str]:
    """Registered names of a kind: ``"weighting"``, ``"sampler"``, ``"backbone"``, ``"task"``, ``"regularizer"``,
    ``"tracker"``, ``"launcher"``, ``"figure"`` or ``"callback"``."""
    current = registry()
    current.check()
    return current.names(kind)


def _factory(kind: str, name: str) -> tuple[Entry, Any, tuple[str, ...]]:
    """The entry, the factory and the positional argument (``hf:NAME``'s NAME) of the plugin ``name``."""
    from mtl.contract.options import takes_argument

    current = registry()
    current.check()
    entry, argument = current.get(kind, name)
    factory = entry.load()
    if argument is not None and not takes_argument(factory):
        raise UnknownNameError(f"{kind} {entry.name!r} takes no argument (got {name!r}); set its options with "
                               f"--set {entry.name}.KEY=VALUE")
    return entry, factory, (argument,) if argument is not None else ()


def check(kind: str, name: str, **options: Any) -> None:
    """What :func:`create` would reject about ``name`` and ``options`` (an unknown name or option, a value that does
    not convert), without building the plugin (a backbone's weights are not loaded)."""
    from mtl.contract.options import convert_options

    convert_options(f"{kind} {name!r}", _factory(kind, name)[1], options)


# the methods DESIGN.md's contract gives each kind (the base classes have them; a plugin may also duck-type)
REQUIRED_METHODS = {"weighting": ("setup", "loss", "backward", "parameters"),
                    "sampler": ("setup", "tasks", "probabilities", "state_dict", "load_state_dict")}


def create(kind: str, name: str, **options: Any) -> Any:
    """Build the plugin ``name`` of ``kind`` with ``options`` (converted to the factory's annotated types)."""
    from mtl.contract.options import build
    from mtl.errors import PluginError

    entry, factory, args = _factory(kind, name)
    obj = build(f"{kind} {name!r}", factory, options, *args)
    missing = [m for m in REQUIRED_METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(f"{kind} {name!r}: its factory returned {type(obj).__name__!r}, which has no {missing[0]}() "
                          f"(a {kind} has {', '.join(REQUIRED_METHODS[kind])}; see DESIGN.md)")
    if kind == "task":
        obj.name = entry.name
    return obj
