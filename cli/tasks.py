"""`mtl tasks`: the registered tasks with their labels, metrics and where their data is found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import console, user_errors


def tasks(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
          tasks_file: Annotated[Path | None, typer.Option(
              "--tasks-file", help="Also list the tasks this YAML/JSON file declares (checked against their data).",
              metavar="FILE")] = None) -> None:
    """List tasks: type, labels, metrics (first = primary), evaluation splits, GLUE folder, hub dataset; declared
    tasks (--tasks-file) are marked "declared"."""
    with user_errors():
        import mtl
        from mtl.contract import declared

        if tasks_file is not None:
            declared.register(declared.read_tasks_file(tasks_file), str(tasks_file))

        rows = []
        for name in mtl.available("task"):
            task = mtl.create("task", name)
            rows.append({
                "name": name,
                "type": (f"{task.num_outputs}-way classification" if task.kind.name == "classification"
                         else task.kind.name),
                "labels": list(task.labels or []),
                "metrics": list(task.metrics),
                "eval_splits": list(task.eval_splits),
                "glue_folder": task.glue.folder if task.glue else None,
                "hub": "/".join(p for p in (task.hub or ()) if p) or None,
                "description": task.description,
                "declared": declared.declared(name) is not None,
            })
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        table = Table()
        for column in ("task", "type", "labels", "metrics", "eval splits", "GLUE folder", "hub"):
            table.add_column(column)
        for r in rows:
            name = r["name"] + (" (declared)" if r["declared"] else "")
            labels = ", ".join(r["labels"]) or ("score" if r["type"] == "regression" else "-")
            table.add_row(name, r["type"], labels, ", ".join(r["metrics"]),
                          ", ".join(r["eval_splits"]), r["glue_folder"] or "-", r["hub"] or "-")
        console().print(table)
