"""Tracker ``tensorboard``: TensorBoard event files under the run folder (``RUN/tensorboard/``).

Written with ``tensorboardX`` (a light package: numpy, protobuf), else with ``torch.utils.tensorboard`` when the
``tensorboard`` package is installed, as ``transformers``' ``TensorBoardCallback`` does. Every scalar of
``metrics.jsonl`` becomes a TensorBoard scalar at its step; the run's options are the run's hyper-parameters
(the HParams dashboard) and a ``config`` text. View with ``tensorboard --logdir RUN/tensorboard`` (or the parent
folder of several runs).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from mtl import Tracker, hookimpl


def _writer_class():
    """``tensorboardX.SummaryWriter``, else ``torch.utils.tensorboard.SummaryWriter``; their ``summary`` module."""
    for package in ("tensorboardX", "torch.utils.tensorboard"):
        try:
            module = importlib.import_module(package)
            return module.SummaryWriter, importlib.import_module(f"{package}.summary")
        except ImportError:
            continue
    Tracker.require("tensorboardX", tracker="tensorboard")  # raises the one-line error naming the package
    raise AssertionError("unreachable")


class TensorBoard(Tracker):
    def __init__(self, log_dir: str = "", flush_secs: int = 30):
        """``log_dir``: the event files' folder (default: RUN/tensorboard); ``flush_secs``: how often pending
        events are written."""
        if flush_secs < 1:
            raise ValueError(f"flush_secs must be >= 1 (got {flush_secs})")
        self.log_dir, self.flush_secs = log_dir, flush_secs
        self.writer_class, self.summary = _writer_class()
        self.writer = None

    def start(self, run_name, config, output_dir):
        log_dir = Path(self.log_dir) if self.log_dir else Path(output_dir) / "tensorboard"
        self.writer = self.writer_class(log_dir=str(log_dir), flush_secs=self.flush_secs)
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, default=str) + "\n```")
        hparams = {k: v for k, v in self.flatten(config).items() if k}
        experiment, session_start, session_end = self.summary.hparams(hparams, {})
        file_writer = self.writer._get_file_writer()
        for item in (experiment, session_start, session_end):
            file_writer.add_summary(item)

    def log(self, step, scalars):
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step=step)

    def finish(self, status):
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


@hookimpl
def register_trackers(register):
    register("tensorboard", TensorBoard, description="TensorBoard event files in RUN/tensorboard (tensorboardX)")
