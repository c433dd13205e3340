"""`mtl plugins`: what is installed (kind, name, package, version, description) and `plugins show NAME`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import console, user_errors

app = typer.Typer(help="List installed plugins, or show one plugin's options.", no_args_is_help=False)


#: the order in which weighting families are listed (README "Weighting strategies")
FAMILIES = ("instance", "loss", "gradient", "architecture", "other")


def _family(entry) -> str:
    """A weighting's family (its class attribute ``family``), "other" where it does not say or cannot load."""
    try:
        family = getattr(entry.load(), "family", "other")
    except Exception:  # a factory that fails to import is reported when used, not here
        return "other"
    return family if family in FAMILIES else "other"


def _rows(registry) -> list[dict]:
    rows = []
    for kind, table in registry.entries.items():
        entries = sorted(table.items())
        families = {name: _family(entry) for name, entry in entries} if kind == "weighting" else {}
        if families:  # weightings grouped by family, then by name
            entries.sort(key=lambda item: (FAMILIES.index(families[item[0]]), item[0]))
        for name, entry in entries:
            rows.append({"kind": kind, "name": name, "aliases": list(entry.aliases), "package": entry.package,
                         "version": entry.version, "plugin": entry.plugin, "description": entry.description,
                         **({"family": families[name]} if families else {})})
    return rows


@app.callback(invoke_without_command=True)
def plugins(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    kind: Annotated[str | None, typer.Option(help="Only this kind: weighting, sampler, backbone, task, regularizer, "
                                                  "tracker, launcher, callback or figure.")] = None,
) -> None:
    """List every registered plugin; failed plugins and name conflicts are listed too (exit 1)."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        from mtl.contract import loader
        from mtl.contract.registry import check_kind

        registry = loader.registry()
        rows = _rows(registry)
        if kind:
            check_kind(kind)
            rows = [r for r in rows if r["kind"] == kind]
        failed = [vars(f) for f in loader.failed + registry.failed]
        if as_json:
            typer.echo(json.dumps({"plugins": rows, "failed": failed, "conflicts": registry.conflicts}, indent=2))
        else:
            from rich.markup import escape
            from rich.table import Table

            table = Table()
            for column in ("kind", "family", "name", "package", "version", "description"):
                table.add_column(column)
            for r in rows:
                name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
                table.add_row(r["kind"], r.get("family", ""), escape(name), r["package"], r["version"],
                              escape(r["description"]))
            out = console()
            out.print(table)
            for f in failed:
                out.print(f"[red]failed[/red] {escape(f['name'])} ({f['package']} {f['version']}): "
                          f"{escape(f['error'])}", markup=True)
            for conflict in registry.conflicts:
                out.print(f"[red]conflict[/red] {escape(conflict)}")
        if failed or registry.conflicts:
            raise typer.Exit(1)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Plugin name, e.g. uniform, mamt, rte, hf.")],
    kind: Annotated[str | None, typer.Option(
        help="Only this kind (a name may be both a weighting and a sampler).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a plugin's description and options (types and defaults); a figure has no options."""
    with user_errors():
        from mtl.contract import loader
        from mtl.contract.options import describe
        from mtl.contract.registry import KINDS, check_kind
        from mtl.errors import UnknownNameError, unknown

        registry = loader.registry()
        kinds = [check_kind(kind)] if kind else list(KINDS)
        found = []
        for k in kinds:
            try:
                found.append(registry.get(k, name)[0])
            except UnknownNameError:
                pass
        if not found:
            every = {n for k in kinds for n in registry.names(k)}
            message = unknown(kind or "plugin", name, every)
            elsewhere = [k for k in KINDS if k != kind and name in registry.names(k)] if kind else []
            if elsewhere:  # `--kind sampler mamt`: mamt is a weighting
                message += f" ({name!r} is a {' and a '.join(elsewhere)}: --kind {elsewhere[0]})"
            raise UnknownNameError(message)
        described = []
        for entry in found:
            factory = entry.load()  # a broken lazy "module:attr" is a one-line error here too
            # a figure's draw(run) takes the run's records, not options
            options = [] if entry.kind == "figure" else [
                {"name": o.name, "type": o.type_name, "default": None if o.required else o.default,
                 "required": o.required} for o in describe(factory)]
            described.append({"kind": entry.kind, "name": entry.name, "package": entry.package,
                              "version": entry.version, "description": entry.description, "options": options,
                              **({"family": _family(entry)} if entry.kind == "weighting" else {})})
        if as_json:
            typer.echo(json.dumps(described, indent=2, default=repr))
            return
        from rich.markup import escape
        from rich.table import Table

        out = console()
        for d in described:
            family = f" ({d['family']} family)" if "family" in d else ""
            out.print(f"[bold]{d['kind']} {d['name']}[/bold]{family} — {escape(d['description'])} "
                      f"({d['package']} {d['version']})")
            if d["kind"] == "figure":
                out.print(f"  no options; `mtl plot RUN` writes {d['name']}.png when the run has its records")
                continue
            if not d["options"]:
                out.print("  no options")
                continue
            table = Table()
            for column in ("option", "type", "default"):
                table.add_column(column)
            for o in d["options"]:
                table.add_row(escape(o["name"]), escape(o["type"]),  # list[int] is no markup tag
                              "(required)" if o["required"] else escape(repr(o["default"])))
            out.print(table)
