"""Task types (:class:`TaskType`): what a task's instances, head, loss and evaluation look like. ``TYPES`` maps each
type's name to its class; :func:`get` gives the type of a name with a one-line error for an unknown one."""

from __future__ import annotations

from mtl.contract.types.base import TaskType, encoder_inputs, pad_sequences
from mtl.contract.types.choice import MultipleChoice
from mtl.contract.types.classification import Classification
from mtl.contract.types.extractive_qa import ExtractiveQA
from mtl.contract.types.multilabel import MultiLabelClassification
from mtl.contract.types.ranking import Ranking
from mtl.contract.types.regression import Regression
from mtl.contract.types.tagging import TokenClassification
from mtl.errors import UnknownNameError, unknown

__all__ = ["TYPES", "TaskType", "encoder_inputs", "get", "pad_sequences"]

TYPES: dict[str, type[TaskType]] = {
    "classification": Classification,
    "regression": Regression,
    "token-classification": TokenClassification,
    "multiple-choice": MultipleChoice,
    "ranking": Ranking,
    "multi-label-classification": MultiLabelClassification,  # what `classification` with multi_label=True is
    "extractive-qa": ExtractiveQA,
}

_instances: dict[str, TaskType] = {}


def get(name: str) -> TaskType:
    """The task type ``name``; an unknown name is a one-line :class:`UnknownNameError` naming the valid ones."""
    if name not in TYPES:
        raise UnknownNameError(unknown("task type", str(name), list(TYPES)))
    if name not in _instances:
        _instances[name] = TYPES[name]()
    return _instances[name]
