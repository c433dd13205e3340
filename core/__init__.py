"""mtl: multi-task learning for natural-language understanding.

Public API (the plugin contract of DESIGN.md)::

    from mtl import hookimpl, Weighting, Sampler, Task
    mtl.available("weighting")            # registered names of a kind
    mtl.create("weighting", "uniform")    # build one, exactly as the CLI does

Importing ``mtl`` does not import torch; plugins are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import DataError, MtlError, OptionError, UnknownNameError
from .hookspecs import hookimpl, hookspec
from .sampler import Sampler
from .task import Examples, Task
from .weighting import Step, Weighting

__version__ = "0.1.0"

__all__ = [
    "DataError", "Examples", "MtlError", "OptionError", "Sampler", "Step", "Task", "UnknownNameError",
    "Weighting", "available", "create", "hookimpl", "hookspec", "__version__",
]


def available(kind: str) -> list[str]:
    """Registered names of a kind: ``"weighting"``, ``"sampler"``, ``"backbone"`` or ``"task"``."""
    from . import loader

    registry = loader.registry()
    registry.check()
    return registry.names(kind)


def create(kind: str, name: str, **options: Any) -> Any:
    """Build the plugin ``name`` of ``kind`` with ``options`` (converted to the factory's annotated types)."""
    from . import loader
    from .options import build

    registry = loader.registry()
    registry.check()
    entry, argument = registry.get(kind, name)
    factory = entry.load()
    args = (argument,) if argument is not None else ()
    obj = build(f"{kind} {name!r}", factory, options, *args)
    if kind == "task":
        obj.name = entry.name
    return obj
