"""A run's ``config.json``, read in one place: its options as a :class:`RunConfig`, the rest as a :class:`RunRecord`.

The trainer writes ``config.json`` once, when a run starts: every option of :class:`mtl.runs.config.RunConfig`
and, beside them, what the run found out (the plugins' packages and versions, the data's sizes and sources, the
steps, the library versions, the device ...). :func:`read_record` is the only code that reads the file; a file that is
missing, is not JSON or holds an option of the wrong type is a one-line :class:`mtl.errors.MtlError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.contract import declared
from mtl.errors import MtlError
from mtl.runs.config import FIELD_NAMES, RunConfig
from mtl.runs.files import read_json

CONFIG = "config.json"


@dataclass(frozen=True)
class RunRecord:
    """What ``config.json`` holds: the run's options (:attr:`config`) and what the trainer recorded beside them.
    Keys of neither kind (a command's own, e.g. ``mtl affinity``'s ``affinity``) are in :attr:`extra`."""

    config: RunConfig
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)  # "kind.name" -> {package, version}
    sizes: dict[str, int] = field(default_factory=dict)  # training examples per task
    sources: dict[str, str] = field(default_factory=dict)  # "task" / "task.split" -> where its examples came from
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    versions: dict[str, str] = field(default_factory=dict)  # mtl, torch, transformers, python
    device: str | None = None
    world_size: int | None = None
    dropout_backend: str | None = None
    resume_command: str | None = None  # the command that continues the run when it stops
    extra: dict[str, Any] = field(default_factory=dict)


RECORDED = ("plugins", "sizes", "sources", "steps_per_epoch", "total_steps", "versions", "device", "world_size",
            "dropout_backend", "resume_command")
_TYPES = {"plugins": dict, "sizes": dict, "sources": dict, "steps_per_epoch": int, "total_steps": int,
          "versions": dict, "device": str, "world_size": int, "dropout_backend": str, "resume_command": str}


def read_config_object(path: Path, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """``config.json`` as the JSON object it must be; None when it is missing and ``missing_ok``."""
    record = read_json(path, "the run's configuration", missing_ok=missing_ok)
    if record is not None and not isinstance(record, dict):
        raise MtlError(f"{path}: not a run configuration (expected a JSON object)")
    return record


def read_record(path: Path, *, missing_ok: bool = False) -> RunRecord | None:
    """The :class:`RunRecord` of the ``config.json`` at ``path``, every option checked (its type and range); None
    when the file is missing and ``missing_ok``."""
    values = read_config_object(path, missing_ok=missing_ok)
    return parse_record(values, path) if values is not None else None


def parse_record(values: dict[str, Any], path: Path) -> RunRecord:
    """The :class:`RunRecord` of ``config.json``'s object ``values`` (read from ``path``, named in errors)."""
    try:
        config = RunConfig.from_record(values).check_values()
    except TypeError as exc:
        raise MtlError(f"{path}: not a run configuration: {exc}") from None
    except MtlError as exc:
        raise MtlError(f"{path}: {exc}") from None
    declared.register_recorded(config.declared, str(path))  # the run's declared tasks, known by name from now on
    recorded = {}
    for name in RECORDED:
        value = values.get(name)
        if value is None:
            continue
        wanted = _TYPES[name]
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise MtlError(f"{path}: '{name}' must be {'an object' if wanted is dict else wanted.__name__} "
                           f"(got {value!r})")
        recorded[name] = value
    extra = {k: v for k, v in values.items() if k not in FIELD_NAMES and k not in RECORDED}
    return RunRecord(config, **recorded, extra=extra)
