"""Reading a YAML or JSON document a user writes (a run's config file, a tasks file): safe loading only, and a
one-line :class:`mtl.errors.MtlError` naming the file (and the line) when it cannot be read or parsed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtl.errors import MtlError, not_utf8


def read_document(path: str | Path, what: str) -> Any:
    """The parsed content of ``path`` (JSON for ``.json``, else YAML); ``what`` names the file in messages
    (``config file``, ``tasks file``)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MtlError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise MtlError(f"{what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise MtlError(not_utf8(path, exc)) from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise MtlError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise MtlError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
