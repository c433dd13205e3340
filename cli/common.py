"""What every command shares: user errors printed as one line, consoles, list-option parsing."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from mtl.errors import Interrupted, MtlError, Stopped
from mtl.runs import signals


def err(message: str) -> None:
    typer.echo(message, err=True)


@contextlib.contextmanager
def user_errors():
    """Turn a user mistake (MtlError) into ``Error: <one line>`` on stderr and a non-zero exit.

    ``MTL_TRACEBACK=1`` shows the full traceback instead, for debugging.
    """
    try:
        yield
    except Interrupted as exc:  # SIGINT/SIGTERM: the line says how to continue
        err(f"Stopped: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except MtlError as exc:
        if os.environ.get("MTL_TRACEBACK"):
            raise
        message = " ".join(str(exc).split("\n"))
        err(f"Error: {message}")
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, Stopped) as exc:  # stopped outside a run (loading, a listing)
        signum = signals.stopping(exc)
        err(f"Stopped by {signals.name(signum)}.")
        raise typer.Exit(128 + signum) from None


def split_list(values: list[str] | None) -> list[str]:
    """``--aux a --aux b,c`` -> ``["a", "b", "c"]``."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=not sys.stdout.isatty())
