"""Launcher ``slurm``: each run of the bench a SLURM job, submitted and watched with submitit
(``pip install submitit``).

Each job runs the same command as the ``local`` launcher (``python -m mtl.cli run ...``; the bench folder must be on a
file system the nodes share, as it is on a cluster's home or project space), with its output in the run's log file;
``mtl bench --jobs N`` keeps N jobs in flight. A stopped bench cancels its jobs (``scancel``: SLURM sends SIGTERM, so
a run keeps its checkpoints and the bench resumes it next time). Options (``--set slurm.KEY=VALUE``) are those of
submitit's ``AutoExecutor.update_parameters``; ``cluster=local`` runs the jobs through submitit's local executor on
this machine instead (for trying a setup, and for the tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Literal

from mtl import Launcher, Running, hookimpl
from mtl.errors import MtlError


def run_command(command: list[str], log: str, env: dict[str, str], cwd: str) -> int:
    """What a job executes: ``command`` with its output in ``log``; its exit code (the job's result).

    Under SLURM the command stays in the job's process group, so ``scancel`` signals it directly. Under submitit's
    local executor it gets a session of its own and this function passes it the first SIGTERM or SIGINT the job
    receives (the executor forwards SIGTERM to the job), then waits for it to stop.
    """
    own_session = os.environ.get("SUBMITIT_EXECUTOR") != "slurm"
    with open(log, "w", encoding="utf-8") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                 env={**os.environ, **env}, start_new_session=own_session)
    if own_session:
        forwarded: list[int] = []

        def forward(signum, frame):
            if not forwarded and child.poll() is None:
                forwarded.append(signum)
                child.send_signal(signum)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, forward)
    return child.wait()


class SlurmRun(Running):
    def __init__(self, job, log: Path, local: bool) -> None:
        self.job, self.log, self.local = job, log, local
        self.code: int | None = None

    def poll(self):
        if self.code is None and self.job.done():
            self.code = self._result()
        return self.code

    def _result(self) -> int:
        try:
            code = self.job.result()
            return code if isinstance(code, int) else 1
        except Exception as exc:  # noqa: BLE001 -- the job failed outside the command (node, submitit), or was cancelled
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            with open(self.log, "a", encoding="utf-8") as out:
                out.write(f"\nError: SLURM job {self.job.job_id} ended without the run's exit code: {first} "
                          f"(submitit's logs: {self.job.paths.folder})\n")
            return 1

    def stop(self, signum):
        if self.job.done():
            return
        process = getattr(self.job, "_process", None)  # the local executor's controller process
        if self.local and process is not None:
            process.send_signal(signal.SIGTERM)  # the controller forwards SIGTERM to the job (SIGINT would kill it)
        else:
            self.job.cancel(check=False)  # scancel: SLURM sends SIGTERM to the job's processes

    def kill(self):
        process = getattr(self.job, "_process", None)
        if self.local and process is not None:
            process.send_signal(signal.SIGINT)  # the controller kills the job
        else:
            self.job.cancel(check=False)


class Slurm(Launcher):
    """Submits each run as a SLURM job with submitit."""

    poll_seconds = 1.0

    def __init__(self, cluster: Literal["slurm", "local"] = "slurm", folder: str = "", partition: str = "",
                 timeout_min: int = 24 * 60, gpus_per_node: int = 0, cpus_per_task: int = 0, mem_gb: float = 0,
                 account: str = "", qos: str = "", constraint: str = "", exclude: str = "", setup: str = "",
                 sbatch: dict[str, str] | None = None):
        """``cluster``: ``slurm``, or ``local`` (submitit's local executor, on this machine); ``folder``: submitit's
        job files and logs (default BENCH/slurm); ``partition``, ``timeout_min`` (the time limit), ``gpus_per_node``,
        ``cpus_per_task``, ``mem_gb``, ``account``, ``qos``, ``constraint``, ``exclude`` as in sbatch (0 or empty:
        the cluster's default); ``setup``: a shell line run before each job (``module load ...; source
        venv/bin/activate``); ``sbatch``: more sbatch options, ``KEY=VALUE,...``."""
        for name, value in (("timeout_min", timeout_min), ("gpus_per_node", gpus_per_node),
                            ("cpus_per_task", cpus_per_task), ("mem_gb", mem_gb)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (got {value})")
        if timeout_min == 0:
            raise ValueError("timeout_min must be > 0 (the job's time limit in minutes)")
        self.submitit = self.require("submitit", launcher="slurm")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise MtlError("launcher 'slurm': sbatch not found (not on a SLURM login node); "
                           "--set slurm.cluster=local runs the jobs through submitit on this machine")
        self.cluster, self.folder = cluster, folder
        generic = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_node or None,
                   "cpus_per_task": cpus_per_task or None, "mem_gb": mem_gb or None, "nodes": 1, "tasks_per_node": 1}
        specific = {"partition": partition, "account": account, "qos": qos, "constraint": constraint,
                    "exclude": exclude, "setup": [setup] if setup else None,
                    "additional_parameters": dict(sbatch) if sbatch else None}
        self.parameters = {k: v for k, v in generic.items() if v is not None}
        self.parameters.update({f"slurm_{k}": v for k, v in specific.items() if v})
        self.cpus_per_task = cpus_per_task
        self.executors: dict[Path, object] = {}

    def environment(self, slot, jobs):
        if self.cluster == "local":  # the jobs share this machine
            return self.share(slot, jobs)
        return {"OMP_NUM_THREADS": str(self.cpus_per_task)} if self.cpus_per_task else {}

    def _executor(self, bench: Path):
        folder = Path(self.folder) if self.folder else bench / "slurm"
        if folder not in self.executors:
            executor = self.submitit.AutoExecutor(folder=str(folder), cluster=self.cluster)
            executor.update_parameters(**self.parameters)
            self.executors[folder] = executor
        return self.executors[folder]

    def start(self, job):
        executor = self._executor(job.bench)
        executor.update_parameters(name=f"mtl {job.name}")
        try:
            submitted = executor.submit(run_command, list(job.command), str(job.log), dict(job.env), os.getcwd())
        except Exception as exc:  # noqa: BLE001 -- sbatch refused the job (a wrong partition, account, time limit)
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise MtlError(f"launcher 'slurm': could not submit {job.name}: {first}") from None
        return SlurmRun(submitted, job.log, self.cluster == "local")


@hookimpl
def register_launchers(register):
    register("slurm", Slurm, description="each run a SLURM job through submitit (pip install submitit)")
