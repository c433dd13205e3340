"""Tracker ``wandb``: a Weights & Biases run with the run's options as its config and every scalar at its step.

``wandb`` reads its own settings from the environment: ``WANDB_MODE`` (``offline`` writes the run under
``RUN/wandb/`` for a later ``wandb sync``; ``disabled``), ``WANDB_API_KEY``, ``WANDB_ENTITY``, ``WANDB_DIR`` (default
here: the run folder). The project is ``project``, else ``WANDB_PROJECT``, else ``mtl``. The console is not
captured (mtl's progress bar stays as it is).
"""

from __future__ import annotations

import os
from pathlib import Path

from mtl import Tracker, hookimpl

EXIT_CODES = {"finished": 0, "failed": 1, "interrupted": 130}


class WandB(Tracker):
    def __init__(self, project: str = "", entity: str = "", group: str = "", tags: str = ""):
        """``project`` (default: WANDB_PROJECT, else mtl), ``entity`` (default: WANDB_ENTITY or your default),
        ``group`` (e.g. a bench's name), ``tags`` (comma-separated)."""
        self.wandb = self.require("wandb", tracker="wandb")
        self.project, self.entity, self.group = project, entity, group
        self.tags = [t.strip() for t in tags.split(",") if t.strip()]
        self.run = None

    def start(self, run_name, config, output_dir):
        settings = self.wandb.Settings(console="off", disable_git=True)
        self.run = self.wandb.init(
            project=self.project or os.environ.get("WANDB_PROJECT") or "mtl", entity=self.entity or None,
            group=self.group or None, tags=self.tags or None, name=run_name, config=config,
            dir=os.environ.get("WANDB_DIR") or str(Path(output_dir)), settings=settings, reinit="create_new")

    def log(self, step, scalars):
        self.run.log(dict(scalars), step=step)

    def finish(self, status):
        if self.run is not None:
            self.run.finish(exit_code=EXIT_CODES.get(status, 1))
            self.run = None


@hookimpl
def register_trackers(register):
    register("wandb", WandB, description="a Weights & Biases run (WANDB_MODE=offline writes RUN/wandb/)")
