"""Launcher ``local``: each run of the bench a process on this machine (the default).

The run is started in its own session, so a terminal's Ctrl-C reaches only the bench, which then stops the run with
the same signal (``mtl run`` keeps its checkpoints and exits 130/143). With ``mtl bench --jobs N`` the machine is
shared (:meth:`mtl.Launcher.share`): each run gets ``cores // N`` threads and, on a GPU machine, a GPU of its own.
"""

from __future__ import annotations

import os
import subprocess

from mtl import Launcher, Running, hookimpl


class LocalRun(Running):
    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def poll(self):
        return self.process.poll()

    def stop(self, signum):
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()


class Local(Launcher):
    """Runs each job as a child process of the bench."""

    def environment(self, slot, jobs):
        return self.share(slot, jobs)

    def start(self, job):
        env = {**os.environ, **job.env} if job.env else None
        with open(job.log, "w", encoding="utf-8") as log:
            process = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env=env)
        return LocalRun(process)


@hookimpl
def register_launchers(register):
    register("local", Local, description="each run a process on this machine (--jobs N: threads and GPUs shared)")
