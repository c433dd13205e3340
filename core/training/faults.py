"""Which of a run's plugins raised: an exception from a weighting's, sampler's, regularizer's or backbone's own code
(or its base class's) becomes one line naming the plugin, instead of a traceback (``MTL_TRACEBACK=1`` shows it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from mtl.errors import MtlError, PluginError


def owner(exc: BaseException, plugins: dict[str, tuple[str, Any]]) -> tuple[str, str] | None:
    """The ``(kind, name)`` of the plugin whose code is the innermost frame of ``exc``'s traceback (a module of its
    class or of a base class), or None when no frame is a plugin's. ``plugins``: kind -> (name, object); a module
    several of them share (a common base class) names none."""
    modules: dict[str, set[tuple[str, str]]] = {}
    for kind, (name, obj) in plugins.items():
        for cls in type(obj).__mro__[:-1]:  # not `object`
            modules.setdefault(cls.__module__, set()).add((kind, name))
    found = None
    frame = exc.__traceback__
    while frame is not None:
        owners = modules.get(frame.tb_frame.f_globals.get("__name__", ""))
        if owners is not None and len(owners) == 1:
            found = next(iter(owners))
        frame = frame.tb_next
    return found


@contextlib.contextmanager
def attributed(plugins: Callable[[], dict[str, tuple[str, Any]]],
               where: Callable[[], str] = lambda: "") -> Iterator[None]:
    """Turn an exception raised by one of ``plugins()`` (those built when it was raised; see :func:`owner`) into a
    :class:`PluginError`; ``where()`` ends the message (e.g. what is kept of the run). Anything else, and everything
    under ``MTL_TRACEBACK=1``, passes."""
    try:
        yield
    except MtlError:
        raise
    except Exception as exc:
        found = owner(exc, plugins())
        if found is None or os.environ.get("MTL_TRACEBACK"):
            raise
        kind, name = found
        message = " ".join(str(exc).split())[:300]
        raise PluginError(f"{kind} {name!r} failed: {type(exc).__name__}: {message}{where()} "
                          f"(a fault in the plugin; MTL_TRACEBACK=1 shows where)") from exc
