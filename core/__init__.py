"""mtl: multi-task learning for natural-language understanding.

Public API (the plugin contract of DESIGN.md; plugins import nothing else of mtl but ``mtl.errors`` and
``mtl.memory``)::

    from mtl import hookimpl, Weighting, Sampler, Task, Regularizer, Tracker, Launcher, Callback
    mtl.available("weighting")            # registered names of a kind
    mtl.create("weighting", "uniform")    # build one, exactly as the CLI does

Importing ``mtl`` does not import torch; plugins are loaded on first use, and the torch-based parts of the
API (``HFBackbone``, ``from_pretrained``, ``Run``, ``cls_features``) are imported when first named.
"""

from __future__ import annotations

import importlib
from typing import Any

from mtl.contract.callback import Callback, TrainerControl, TrainerState
from mtl.contract.gradient import GradientWeighting
from mtl.contract.hookspecs import hookimpl, hookspec
from mtl.contract.launcher import Launcher, Running
from mtl.contract.loader import available, create
from mtl.contract.regularizer import Regularizer
from mtl.contract.sampler import Sampler, normalise
from mtl.contract.task import Task
from mtl.contract.tracker import Tracker
from mtl.contract.weighting import Step, Weighting
from mtl.data.examples import Examples, GlueLayout
from mtl.errors import DataError, MtlError, OptionError, TrainingError, UnknownNameError
from mtl.version import __version__

_LAZY = {
    "Backbone": "mtl.model.backbone",
    "HFBackbone": "mtl.model.backbone",
    "from_pretrained": "mtl.model.backbone",
    "check_model_size": "mtl.model.size",
    "Run": "mtl.model.context",
    "cls_features": "mtl.model.context",
    "train": "mtl.api.train",
    "bench": "mtl.api.bench",
    "load": "mtl.api.load",
    "task": "mtl.api.task",
}

__all__ = [
    "Callback", "DataError", "Examples", "GlueLayout", "GradientWeighting", "Launcher", "MtlError", "OptionError",
    "Regularizer", "Running", "Sampler", "Step", "Task", "TrainerControl", "TrainerState", "TrainingError", "Tracker",
    "UnknownNameError", "Weighting", "available", "create", "hookimpl", "hookspec", "normalise", "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtl' has no attribute {name!r}")
