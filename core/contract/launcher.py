"""The launcher base class of the plugin contract (DESIGN.md, "Additions": ``launcher``).

A launcher decides where the runs of ``mtl bench`` execute: ``local`` starts each as a process on this machine,
``slurm`` submits each as a SLURM job through submitit. ``mtl bench --launcher NAME`` chooses it, ``--jobs N`` says how
many runs are in flight at once, and ``--set NAME.KEY=VALUE`` gives its options. The bench decides what runs and
when (a fine-tuning stage after its multi-task run, N at a time); the launcher only starts a :class:`Job` and hands
back a :class:`Running` that the bench polls, and stops when the bench is stopped or another run failed.

Every launcher runs the same command (``python -m mtl.cli run ...``), writes its output to ``job.log`` (the bench
reads its last ``Error:`` line when it fails) and reports its exit code. A launcher imports its service's package
only when it is built (:meth:`Launcher.require`), never at module level, so that listing plugins stays fast.
"""

from __future__ import annotations

import importlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.errors import MtlError


@dataclass(frozen=True)
class Job:
    """One run of a bench, as a launcher receives it."""

    name: str  # "uniform seed 0": names the run in messages and job names
    command: list[str]  # [python, -m, mtl.cli, run, ...]: the same for every launcher
    log: Path  # the file its output (stdout and stderr) goes to
    folder: Path  # its run folder
    bench: Path  # the bench folder (a launcher's own files may go under it)
    env: dict[str, str] = field(default_factory=dict)  # set on top of the environment it inherits


class Running:
    """A started job: polled by the bench until it ends, stopped when the bench stops."""

    def poll(self) -> int | None:
        """Its exit code once it has ended, else None. Called every :attr:`Launcher.poll_seconds`."""
        raise NotImplementedError

    def stop(self, signum: int) -> None:
        """Ask it to stop as ``mtl run`` stops on SIGTERM/SIGINT (its checkpoints stay, so the bench resumes it);
        returns at once, the bench then polls until it has ended."""
        raise NotImplementedError

    def kill(self) -> None:
        """End it now: it did not stop within the bench's timeout after :meth:`stop`."""
        self.stop(signal.SIGTERM)


class Launcher:
    """Base class. Options are the subclass's typed keyword arguments (``--set NAME.KEY=VALUE``)."""

    #: seconds between two polls of the running jobs
    poll_seconds: float = 0.2

    def environment(self, slot: int, jobs: int) -> dict[str, str]:
        """Variables for the run in ``slot`` (0 .. jobs-1; a free slot is reused) when ``jobs`` run at once; the bench
        puts them in :attr:`Job.env`. Default: none (each job has a machine or allocation of its own)."""
        return {}

    def start(self, job: Job) -> Running:
        """Start ``job`` and return at once."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the bench is done with the launcher (finished, failed or stopped)."""

    # ------------------------------------------------------------------ helpers for subclasses
    @staticmethod
    def share(slot: int, jobs: int) -> dict[str, str]:
        """This machine shared by ``jobs`` runs at once: each gets ``max(1, cores // jobs)`` threads
        (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, which torch follows) and, when torch sees GPUs, one GPU each
        (``CUDA_VISIBLE_DEVICES``, round-robin over the visible ones by slot). One job alone: nothing changes."""
        if jobs <= 1:
            return {}
        threads = str(max(1, cores() // jobs))
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        gpus = visible_gpus()
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        return env

    @staticmethod
    def require(module: str, package: str | None = None, *, launcher: str = "") -> Any:
        """``importlib.import_module(module)``, or a one-line :class:`MtlError` naming the package to install."""
        try:
            return importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 -- ImportError, or a broken install failing at import
            package = package or module.partition(".")[0]
            who = f"launcher {launcher!r}" if launcher else "this launcher"
            raise MtlError(f"{who} needs the Python package {package}: pip install {package} "
                           f"({type(exc).__name__}: {exc})") from None


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The ids (as ``CUDA_VISIBLE_DEVICES`` writes them) of the GPUs torch sees; none without CUDA."""
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 -- no torch, or a driver that fails: no GPU to share
        return []
    if count <= 0:
        return []
    given = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return given[:count] if given else [str(i) for i in range(count)]
