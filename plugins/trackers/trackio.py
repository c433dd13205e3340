"""Tracker ``trackio``: a run of the local-first, wandb-compatible tracker trackio (Hugging Face).

Metrics go to trackio's local database (``TRACKIO_DIR``, default ``~/.cache/huggingface/trackio``), project
``project`` (default ``mtl``); ``trackio show --project mtl`` opens the dashboard. With ``space_id`` (or
``TRACKIO_SPACE_ID``) trackio logs to a Hugging Face Space instead. trackio's messages go to stderr, so that
``mtl run``'s standard output stays its results.
"""

from __future__ import annotations

import contextlib
import sys

from mtl import Tracker, hookimpl


class Trackio(Tracker):
    def __init__(self, project: str = "mtl", space_id: str = "", group: str = ""):
        """``project`` (default: mtl), ``space_id`` (a Hugging Face Space to log to; default: local), ``group``."""
        self.trackio = self.require("trackio", tracker="trackio")
        self.project, self.space_id, self.group = project, space_id, group
        self.run = None

    def start(self, run_name, config, output_dir):
        with contextlib.redirect_stdout(sys.stderr):
            self.run = self.trackio.init(project=self.project, name=run_name, config=config, group=self.group or None,
                                         space_id=self.space_id or None, embed=False, auto_log_cpu=False,
                                         auto_log_gpu=False)

    def log(self, step, scalars):
        self.run.log(dict(scalars), step=step)

    def finish(self, status):
        if self.run is not None:
            with contextlib.redirect_stdout(sys.stderr):
                try:  # trackio's own finish also forgets the run (else its exit handler finishes it again)
                    self.trackio.finish()
                except RuntimeError:  # no current run in this context
                    self.run.finish()
            self.run = None


@hookimpl
def register_trackers(register):
    register("trackio", Trackio, description="a trackio run (local database, trackio show; or a Space)")
