"""`mtl push`: upload an exported model (or a run, exported first) to a Hugging Face Hub model repository.

A run folder is exported into a temporary folder (as ``mtl export`` does), an export folder is copied there (hard
links where possible); the copy's model card (``README.md``) is written again for the repository's name, then
``huggingface_hub``'s ``create_repo`` and ``upload_folder`` send it. Everything that can be checked here is
checked before anything is exported or sent: the folder (a run or an export), the repository name, and that the
Hub can be reached (``HF_HUB_OFFLINE`` and the other offline switches, then a quick connection test): without it
the command is a one-line error and nothing else happens.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub.utils import HFValidationError, validate_repo_id

from mtl.data import hub
from mtl.errors import MtlError
from mtl.runs import card, restore
from mtl.runs import folder as run_folder
from mtl.runs.export import export_model
from mtl.runs.exported import MANIFEST, manifest_problem

RUN, EXPORT = "run", "export"


def classify(path: str | Path) -> str:
    """``"run"`` for a run folder (its ``config.json``), ``"export"`` for an ``mtl export`` folder (its
    ``mtl_export.json``); anything else is a one-line error."""
    path = Path(path)
    if not path.is_dir():
        what = "a file, not a folder" if path.exists() else "no such folder"
        raise MtlError(f"{path}: {what} (give a run folder written by `mtl run` or a folder written by `mtl export`)")
    if (path / MANIFEST).is_file():
        return EXPORT
    if (path / run_folder.CONFIG).is_file():
        return RUN
    raise MtlError(f"{path} is neither a run folder (no {run_folder.CONFIG}) nor an exported model (no {MANIFEST}); "
                   "give a folder written by `mtl run` or `mtl export`")


def check_repo(repo: str) -> str:
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise MtlError(f"--repo {repo!r}: not a Hub repository name ({' '.join(str(exc).split())[:200]}); "
                       "write NAME or OWNER/NAME") from None
    return repo


def check_hub() -> None:
    reason = hub.unavailable()
    if reason:
        raise MtlError(f"the Hugging Face Hub cannot be reached ({reason}); nothing was exported or uploaded")


def push(path: str | Path, repo: str, *, private: bool = False, token: str | None = None,
         echo: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Upload the export of ``path`` (a run or an export folder) to the model repository ``repo``; returns
    ``{"repo", "url", "commit", "files", "exported"}``."""
    path = Path(path)
    kind = classify(path)
    check_repo(repo)
    check_hub()
    with tempfile.TemporaryDirectory(prefix="mtl-push-") as tmp:
        out = Path(tmp) / "model"
        if kind == RUN:
            manifest = _export_run(path, out, repo)
            echo(f"Exported {path} ({manifest['task']}) for {repo}")
        else:
            manifest = _copy_export(path, out, repo)
        _forget_local_paths(out)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        url, commit = _upload(out, repo, private=private, token=token, target=manifest["task"])
    return {"repo": repo, "url": url, "commit": commit, "files": files, "exported": kind == RUN}


def _export_run(run: Path, out: Path, repo: str) -> dict[str, Any]:
    config, _ = restore.read_config(run)  # a one-line error for a broken config before the model is loaded
    if not config.target:
        raise MtlError(f"{run}: the run has no target task, so there is no model to push")
    config, model, tasks = restore.load_run(run)
    return export_model(model, tasks, config.target, out, run_dir=run, model_id=repo)


def _copy_export(export: Path, out: Path, repo: str) -> dict[str, Any]:
    """A copy of the export (hard links where the file system allows; the card is written anew, never through a
    link) with its card written for ``repo``."""
    manifest = run_folder.read_json(export / MANIFEST, f"the export's {MANIFEST}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("task"), str):
        raise MtlError(f"{export / MANIFEST}: not an mtl export manifest (no task)")
    problem = manifest_problem(manifest)
    if problem:
        raise MtlError(f"{export / MANIFEST}: {problem}")

    def link(source: str, destination: str) -> None:
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)

    shutil.copytree(export, out, copy_function=link, ignore=shutil.ignore_patterns(card.CARD, ".*"))
    card.write(out, manifest, repo)
    return manifest


def _forget_local_paths(out: Path) -> None:
    """The uploaded manifest names its source run by the folder's name, not by where it lies on this machine (an
    absolute path says who and where); written anew (``write_json`` replaces the file), never through a hard link to
    the export."""
    manifest_path = out / MANIFEST
    manifest = run_folder.read_json(manifest_path, f"the export's {MANIFEST}")
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("run"), str) or not Path(source["run"]).is_absolute():
        return
    source["run"] = Path(source["run"]).name
    run_folder.write_json(manifest_path, manifest)


def _upload(folder: Path, repo: str, *, private: bool, token: str | None, target: str) -> tuple[str, str | None]:
    try:
        url = huggingface_hub.create_repo(repo, private=private, token=token, exist_ok=True, repo_type="model")
        info = huggingface_hub.upload_folder(repo_id=repo, folder_path=str(folder), token=token, repo_type="model",
                             commit_message=f"Upload the {target} model (mtl)")
    except Exception as exc:  # HTTP errors, no connection, no token: one line, nothing half-done on our side
        raise MtlError(_upload_error(repo, exc)) from None
    return str(getattr(url, "url", url)), getattr(info, "oid", None)


def _upload_error(repo: str, exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = " ".join(str(exc).split())[:300] or type(exc).__name__
    if status in (401, 403) or type(exc).__name__ in ("LocalTokenNotFoundError",):
        return (f"the Hub refused to create or write {repo!r} ({status or type(exc).__name__}): log in with "
                f"`hf auth login`, set HF_TOKEN or pass --token, with write access to the repository")
    if status is None and any(word in type(exc).__name__ for word in ("Connect", "Timeout", "Network", "Offline")):
        return f"the Hugging Face Hub cannot be reached ({type(exc).__name__}: {first}); nothing was uploaded"
    return f"uploading to {repo!r} failed: {type(exc).__name__}: {first}"
