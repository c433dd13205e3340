"""Import paths of mtl 0.1's flat layout (``mtl.trainer``, ``mtl.export``, ...), still importable.

Each old path names the same module object as its new home, so ``from mtl.restore import load_run`` keeps
working for code written before the layers.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "mtl.hookspecs": "mtl.contract.hookspecs", "mtl.registry": "mtl.contract.registry",
    "mtl.loader": "mtl.contract.loader", "mtl.options": "mtl.contract.options",
    "mtl.weighting": "mtl.contract.weighting", "mtl.sampler": "mtl.contract.sampler", "mtl.task": "mtl.contract.task",
    "mtl.suggest": "mtl.errors", "mtl.hub": "mtl.data.hub", "mtl.batching": "mtl.data.batching",
    "mtl.metrics": "mtl.data.metrics", "mtl.backbone": "mtl.model.backbone",
    "mtl.task_embedding": "mtl.model.task_embedding", "mtl.run": "mtl.model.context",
    "mtl.config": "mtl.runs.config", "mtl.rundir": "mtl.runs.folder", "mtl.checkpoint": "mtl.runs.checkpoint",
    "mtl.restore": "mtl.runs.restore", "mtl.export": "mtl.runs.export", "mtl.trainer": "mtl.training.trainer",
    "mtl.distributed": "mtl.training.distributed", "mtl.rng": "mtl.training.rng", "mtl.bench": "mtl.study.bench",
    "mtl.plot": "mtl.study.figures",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
