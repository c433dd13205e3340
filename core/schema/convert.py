"""The one converter of option values: text (the command line, ``--set``, a config file, ``config.json``) or a
Python value to an annotated type. Run options (:class:`mtl.schema.RunConfig`) and plugin options
(:mod:`mtl.contract.options`) both convert with :func:`convert`, so a value that spells a value of the type is read
the same way on every path."""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

_EMPTY = inspect.Parameter.empty


def type_name(annotation: Any) -> str:
    if annotation is _EMPTY or annotation is Any:
        return "any"
    origin = get_origin(annotation)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(type_name(a) for a in get_args(annotation))}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def convert(value: Any, annotation: Any) -> Any:
    """Convert ``value`` (text from the CLI, or a YAML/JSON value) to ``annotation``; ValueError if it cannot."""
    if annotation is _EMPTY or annotation is Any:
        return value
    origin, args = get_origin(annotation), get_args(annotation)
    if value is None and origin not in (Union, types.UnionType) and annotation is not type(None):
        raise ValueError(f"expected {type_name(annotation)}, got None")
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null"}):
            if type(None) in args:
                return None
        errors = []
        arms = [arg for arg in args if arg is not type(None)]
        for arg in arms:
            try:
                return convert(value, arg)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        if len(arms) == 1:  # `X | None`: the reason X gave is the useful one
            raise ValueError(errors[0])
        raise ValueError(f"expected {type_name(annotation)}, got {value!r}")
    if origin is Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        items = _parse_sequence(value)
        item_type = args[0] if args else Any
        converted = [convert(item, item_type) for item in items]
        container = origin or annotation
        return converted if container is list else container(converted)
    if origin is dict or annotation is dict:
        key_type, value_type = (args + (Any, Any))[:2] if args else (Any, Any)
        return {convert(k, key_type): convert(v, value_type) for k, v in _parse_mapping(value).items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise ValueError(f"expected text, got {value!r}")
        return str(value)
    if annotation is Path:
        return Path(str(value))
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    try:
        return annotation(value)
    except Exception as exc:
        raise ValueError(f"expected {type_name(annotation)}, got {value!r}") from exc


def _parse_sequence(value: Any) -> list:
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a list, got {value!r}")
    text = value.strip()
    if text.startswith("["):
        return _parse_json(text, list, "list")
    return [item.strip() for item in text.split(",") if item.strip()] if text else []


def _parse_mapping(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a mapping, got {value!r}")
    text = str(value).strip()
    if text.startswith("{"):
        return _parse_json(text, dict, "mapping")
    mapping = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, sep, val = item.partition(":")
        if not sep:
            key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY:VALUE (or KEY=VALUE) pairs separated by commas, got {text!r}")
        mapping[key.strip()] = val.strip()
    return mapping


def _parse_json(text: str, expected: type, what: str) -> Any:
    """``text`` read as JSON, which must give ``expected`` (a list or a mapping, named ``what`` in the error)."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON {what} {text!r}: {exc.msg}") from None
    if not isinstance(parsed, expected):
        raise ValueError(f"expected a {what}, got {text!r}")
    return parsed
