"""The `mtl` command line (Typer): one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from . import affinity as affinity_cmd
from . import bench as bench_cmd
from . import export as export_cmd
from . import finetune as finetune_cmd
from . import group as group_cmd
from . import plugins as plugins_cmd
from . import push as push_cmd
from . import run as run_cmd
from . import tasks as tasks_cmd

app = typer.Typer(
    name="mtl",
    help="Multi-task learning for NLU: train a target task with auxiliary tasks, compare weighting strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from mtl import __version__

        typer.echo(f"mtl {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """mtl: multi-task learning for natural-language understanding."""


app.command("run")(run_cmd.run)
app.command("finetune")(finetune_cmd.finetune)
app.command("affinity")(affinity_cmd.affinity)
app.command("tasks")(tasks_cmd.tasks)
app.add_typer(plugins_cmd.app, name="plugins")
export_cmd.register(app)  # export, predict, eval
bench_cmd.register(app)  # bench, report, plot
group_cmd.register(app)  # group
push_cmd.register(app)  # push


def main() -> None:
    import os
    import sys

    from mtl.errors import Stopped
    from mtl.runs import signals

    signals.install()  # SIGTERM stops a run or a bench cleanly (exit 143), like Ctrl-C (exit 130)
    try:
        try:
            code = app(standalone_mode=False, prog_name="mtl")  # click's exceptions come here: one line each
        finally:
            sys.stdout.flush()  # a failed write of buffered output is an error here, not at interpreter exit
        raise SystemExit(code if isinstance(code, int) else 0)
    except typer.TyperException as exc:  # a wrong option or value: one line naming it, not a usage box
        if type(exc).__name__ == "NoArgsIsHelpError":  # `mtl` alone: the help was printed
            raise SystemExit(exc.exit_code) from None
        ctx = getattr(exc, "ctx", None)
        listed = "commands" if hasattr(getattr(ctx, "command", None), "commands") else "options"
        hint = f" (`{ctx.command_path} --help` lists the {listed})" if ctx is not None else ""
        print(f"Error: {' '.join(exc.format_message().split())}{hint}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:  # end of input at a prompt
        print("Aborted.", file=sys.stderr)
        raise SystemExit(1) from None
    except (KeyboardInterrupt, Stopped) as exc:  # stopped while the command line is being set up: one line too
        signum = signals.stopping(exc)
        print(f"Stopped by {signals.name(signum)}.", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except BrokenPipeError:  # the reader went away (`mtl tasks | head -1`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
    except OSError as exc:  # the output could not be written (a full disk behind `> file`, /dev/full)
        if os.environ.get("MTL_TRACEBACK"):
            raise
        where = exc.filename or "the output"
        print(f"Error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(74) from None


if __name__ == "__main__":
    main()
