"""`mtl push`: upload a run's exported model (or an `mtl export` folder) to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import err, user_errors


def push(
    source: Annotated[Path, typer.Argument(metavar="RUN_OR_EXPORT", help="A run folder (exported first, into a "
                                                "temporary folder) or an `mtl export` folder.", show_default=False)],
    repo: Annotated[str, typer.Option("--repo", help="The Hub model repository: NAME (in your namespace) or "
                                                     "OWNER/NAME; created if it does not exist.", show_default=False)],
    private: Annotated[bool, typer.Option("--private", help="Create the repository private (an existing one keeps "
                                                            "its visibility).")] = False,
    token: Annotated[str | None, typer.Option("--token", help="A Hub token with write access (default: HF_TOKEN "
                                                                 "or the one saved by `hf auth login`).",
                                                 show_default=False)] = None,
) -> None:
    """Upload the model and its model card (README.md) with huggingface_hub's create_repo and upload_folder.

    The card is written for the repository (its name in the metadata and in the loading example).
    Without the Hub (no connection, HF_HUB_OFFLINE=1) nothing is exported or uploaded.
    """
    with user_errors():
        from mtl.runs.push import push as push_model

        result = push_model(source, repo, private=private, token=token, echo=err)
        typer.echo(f"Pushed {len(result['files'])} files to {result['url']}")


def register(app) -> None:
    """Add this module's commands to the `mtl` application."""
    app.command("push")(push)
