"""Plugin options: a factory's typed keyword arguments, converted from text (CLI, config) and validated.

``describe(factory)`` lists the options with types and defaults; ``build(entry, options)`` converts every
value to its annotated type (with the run options' converter, :func:`mtl.schema.convert.convert`) and calls
the factory. Unknown keys, unconvertible values and values the
factory rejects (it raises ``ValueError``) become :class:`OptionError` naming the plugin and the key.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

from mtl.errors import MtlError, OptionError, PluginError, unknown
from mtl.schema.convert import convert, type_name

__all__ = ["Option", "build", "convert", "convert_options", "describe", "takes_argument", "type_name"]

_EMPTY = inspect.Parameter.empty


@dataclass
class Option:
    name: str
    annotation: Any
    default: Any
    required: bool

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


def _signature_target(factory: Any) -> Any:
    return factory.__init__ if inspect.isclass(factory) else factory


def describe(factory: Any) -> list[Option]:
    """The options of a factory: its keyword arguments (positional-only and ``*args`` are not options)."""
    target = _signature_target(factory)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    options = []
    for i, param in enumerate(inspect.signature(target).parameters.values()):
        if inspect.isclass(factory) and i == 0:  # self
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        annotation = hints.get(param.name, param.annotation)
        options.append(Option(param.name, annotation, param.default, param.default is _EMPTY))
    return options


def takes_argument(factory: Any) -> bool:
    """The factory's first parameter is positional and required: ``NAME:ARGUMENT`` passes it (``hf:bert-base-uncased``
    calls ``hf("bert-base-uncased")``); a factory whose parameters all have defaults takes no argument."""
    params = list(inspect.signature(_signature_target(factory)).parameters.values())
    first = params[1:2] if inspect.isclass(factory) else params[:1]  # after self
    return bool(first) and first[0].default is _EMPTY and first[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def convert_options(label: str, factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Check keys against the factory's options and convert each value; errors name ``label`` and the key."""
    known = {opt.name: opt for opt in describe(factory)}
    converted = {}
    for key, value in options.items():
        opt = known.get(key)
        if opt is None:
            raise OptionError(f"{label}: " + unknown("option", key, known))
        try:
            converted[key] = convert(value, opt.annotation)
        except (ValueError, TypeError) as exc:
            raise OptionError(f"{label}: option {key!r}: {exc}") from None
    return converted


def build(label: str, factory: Any, options: dict[str, Any], *args: Any) -> Any:
    """Convert ``options`` and call the factory; its ValueError becomes an OptionError naming ``label``."""
    kwargs = convert_options(label, factory, options)
    missing = [o.name for o in describe(factory) if o.required and o.name not in kwargs]
    if args:
        missing = missing[len(args):]
    if missing:
        raise OptionError(f"{label}: missing required option {missing[0]!r}")
    try:
        return factory(*args, **kwargs)
    except ValueError as exc:
        raise OptionError(f"{label}: {exc}") from None
    except MtlError:
        raise
    except Exception as exc:  # the plugin's own fault, not an option's: named, with its cause for MTL_TRACEBACK=1
        raise PluginError(f"{label} could not be built: {type(exc).__name__}: {exc}") from exc
