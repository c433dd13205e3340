"""`mtl group`: which tasks to train together within a budget (Standley et al., ICML 2020)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import user_errors


def group(
    source: Annotated[Path, typer.Argument(help="A bench folder (mtl bench, best with --pairs), an affinity folder or "
                                                "affinity.json (mtl affinity), or a networks file (JSON).")],
    budget: Annotated[float | None, typer.Option(help="Total cost of the chosen networks (each network costs 1 "
                                                         "unless a networks file says otherwise).")] = None,
    higher_order: Annotated[int | None, typer.Option(
        "--higher-order", help="Also consider groups of up to N tasks scored from pairs: a bench's or networks "
                               "file's pairs (Standley's approximation: mean of the pair scores), or an affinity "
                               "matrix's sums (default there: every size).")] = None,
    kind: Annotated[str | None, typer.Option("--from", help="What SOURCE is: bench, affinity or networks "
                                                               "(default: told from its contents).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Choose the networks to train (sets of tasks trained together) within a budget: the sum over tasks of
    each task's score in its best chosen network is the largest possible (exact branch and bound).

    Prints the chosen networks, each task's score, the objective and the `mtl run` commands that train them.
    """
    with user_errors():
        from mtl.errors import OptionError
        from mtl.study import grouping

        if budget is None:
            raise OptionError("give --budget B: the total cost of the networks to train (e.g. --budget 2 for two "
                              "networks)")
        candidates = grouping.load(source, kind, higher_order)
        selection = grouping.select(candidates.tasks, candidates.networks, budget)
        if as_json:
            typer.echo(json.dumps(grouping.record(candidates, selection), indent=2))
        else:
            typer.echo(grouping.text(candidates, selection))


def register(app) -> None:
    """Add this module's command to the `mtl` application."""
    app.command("group")(group)
