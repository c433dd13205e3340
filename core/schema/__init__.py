"""The schema of a run's options: :class:`RunConfig`, each field declared once with its type, default, help text
and flag (:mod:`mtl.schema.fields`), and the one converter of option values (:mod:`mtl.schema.convert`).

Low in the layers (above :mod:`mtl.errors` only): the command line (``mtl.cli.run_options``), config files
(:mod:`mtl.runs.config`), the trainer and the README's option table (:func:`markdown_table`) all read it.
"""

from __future__ import annotations

from mtl.schema import fields
from mtl.schema.convert import convert, type_name
from mtl.schema.fields import Flag, RunOption
from mtl.schema.run import (
    BY_NAME,
    FIELD_NAMES,
    FLAGS,
    KEEPS,
    LR_SCHEDULES,
    OPTIMIZERS,
    OPTIONS,
    PRECISIONS,
    RunConfig,
    convert_option,
    parse_report_to,
)


def markdown_table() -> str:
    """The README's table of run options, one row per option that has a flag (see `mtl run --help`)."""
    return fields.markdown_table(RunConfig)


__all__ = [
    "BY_NAME",
    "FIELD_NAMES",
    "FLAGS",
    "KEEPS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "OPTIONS",
    "PRECISIONS",
    "Flag",
    "RunConfig",
    "RunOption",
    "convert",
    "convert_option",
    "markdown_table",
    "parse_report_to",
    "type_name",
]
