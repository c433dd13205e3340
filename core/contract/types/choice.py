"""Type ``multiple-choice``: a context and k candidate endings, the index of the right one (SWAG, Zellers et al.,
EMNLP 2018; COPA, Roemmele et al. 2011). As BERT does it (Devlin et al. 2019, §4.4; transformers'
``BertForMultipleChoice``): each (context, ending) pair is encoded alone, a Linear(H, 1) scores its pooled
feature, the k scores of an example are its logits and the loss is the cross-entropy over them. Accuracy.

Declared by ``text_columns`` (the context, joined by a space), the endings (``choice_columns``, one column each, or
one list-valued ``choices_column``), optionally ``choice_prefix_column`` (a text put before every ending: SWAG's
``sent2``, rewritten by ``choice_prefixes``) and ``label_column`` (the right ending's index, 0-based). Every
example of a task has the same number of endings (``num_choices``, or the first row's).
"""

from __future__ import annotations

import json
from typing import Any

from mtl.contract.types import grouped
from mtl.contract.types.base import TaskType, encoder_inputs
from mtl.errors import DataError


class MultipleChoice(TaskType):
    name = "multiple-choice"
    structured = True
    export_class = "AutoModelForMultipleChoice"
    export_kind = "multiple-choice"
    default_metrics = ("accuracy",)
    metric_names = ("accuracy",)

    def check(self, task) -> None:
        if bool(task.choice_columns) == bool(task.choices_column):
            raise ValueError(f"task {task.name!r} (multiple-choice): name its endings by choice_columns or by "
                             "choices_column (one of them)")
        if task.choice_columns and len(task.choice_columns) < 2:
            raise ValueError(f"task {task.name!r} (multiple-choice): at least two choice_columns")
        super().check(task)

    def outputs(self, task) -> int:
        return 1

    # ------------------------------------------------------------------------------------------ data
    def convert_row(self, task, record: dict, where: str, labelled: bool) -> dict | None:
        context = " ".join(text(record, column, where, task) for column in task.text_columns)
        prefix = ""
        if task.choice_prefix_column:
            prefix = text(record, task.choice_prefix_column, where, task)
            prefix = task.choice_prefixes.get(prefix, prefix)
        if task.choices_column:
            choices = _listed(record, task.choices_column, where, task)
        else:
            choices = [text(record, column, where, task) for column in task.choice_columns]
        _same_count(task, len(choices), where)
        row: dict[str, Any] = {"context": context, "prefix": prefix, "choices": choices}
        if labelled:
            row["label"] = index(record, task, len(choices), where)
        return row

    def encode_batch(self, task, rows: dict[str, list], tokenizer, max_length: int) -> dict[str, list]:
        groups = [[(context, f"{prefix} {ending}" if prefix else ending) for ending in choices]
                  for context, prefix, choices in zip(rows["context"], rows["prefix"], rows["choices"], strict=True)]
        out = grouped.encode_groups(tokenizer, groups, max_length)
        out["example"] = list(rows["__index__"])
        if "label" in rows:
            out["labels"] = list(rows["label"])
        return out

    def collate(self, task, rows: dict[str, list], pad_id: int) -> dict[str, Any]:
        import torch

        sizes = {len(group) for group in rows["input_ids"]}
        if len(sizes) != 1:
            raise DataError(f"task {task.name!r}: examples with {' and '.join(map(str, sorted(sizes)))} choices in "
                            "one batch (a multiple-choice task's choice count is fixed)")
        batch = grouped.pad_groups(rows, pad_id)
        del batch["choice_mask"]  # every choice is real
        if "labels" in rows:
            batch["labels"] = torch.tensor(rows["labels"], dtype=torch.long)
        return batch

    # ------------------------------------------------------------------------------------------ model
    def backbone_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return grouped.flatten(batch, real_only=False)

    def logits(self, task, output, batch: dict[str, Any]):
        return output.view(batch["input_ids"].shape[0], -1)

    def features(self, task, features, batch: dict[str, Any]):
        """The mean of the k (context, ending) pairs' pooled [CLS] features of each example: one vector per
        instance for MAMT's memory and MMoE's input."""
        size = batch["input_ids"].shape[0]
        return features.view(size, -1, features.shape[-1]).mean(dim=1)

    # ------------------------------------------------------------------------------------------ output
    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """The chosen ending of each example: its index and text, and the softmax over the endings."""
        out = []
        for example, row_logits in zip(data.table["example"], logits, strict=True):
            scores = row_logits.float().softmax(dim=-1)
            choice = int(scores.argmax())
            out.append({"choice": choice, "ending": rows["choices"][example][choice],
                        "score": float(scores[choice]), "scores": [float(s) for s in scores]})
        return out

    def sample_rows(self, task) -> dict[str, list]:
        k = task.num_choices or max(len(task.choice_columns), 2)
        endings = ["the door opened.", "nothing happened at all, for a long while, until the evening came.",
                   "it rained.", "they left.", "a dog barked."]
        return {"context": ["A short sentence.", "Another, somewhat longer context to make the batch need padding."],
                "prefix": ["Then", ""], "choices": [[endings[(i + j) % 5] for j in range(k)] for i in range(2)]}

    def problem_type(self, task) -> str | None:
        return None

    def exported_logits(self, task, exported, batch: dict[str, Any]):
        return exported(**encoder_inputs(batch)).logits


def text(record: dict, column: str, where: str, task) -> str:
    """The string in ``column`` of ``record``; a one-line DataError naming the row when it is missing or not text."""
    if column not in record:
        raise DataError(f"{where}: missing column {column!r} of task {task.name!r}; the columns are: "
                        f"{', '.join(repr(k) for k in record)}")
    value = record[column]
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (dict, list, bool)):
        raise DataError(f"{where}: column {column!r} must be a string, found {type(value).__name__}")
    return str(value)


def _listed(record: dict, column: str, where: str, task) -> list[str]:
    if column not in record:
        text(record, column, where, task)  # the missing-column message
    value = record[column]
    if isinstance(value, str):  # a CSV/TSV cell: a JSON list
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if hasattr(value, "tolist"):  # numpy from Parquet
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: column {column!r} must be a list of strings (the choices)")
    return list(value)


def _same_count(task, count: int, where: str) -> None:
    """Every example of a task has the same number of choices: ``num_choices``, else the first row's."""
    if count < 2:
        raise DataError(f"{where}: {count} choice(s); a multiple-choice example has at least two")
    seen = getattr(task, "_choices_seen_at", None)
    if task.num_choices is None:
        task.num_choices, task._choices_seen_at = count, where
    elif count != task.num_choices:
        first = f" as at {seen}" if seen else f" (num_choices of task {task.name!r})"
        raise DataError(f"{where}: {count} choices, but the task's examples have {task.num_choices}{first}; a "
                        "multiple-choice task has the same number of choices in every example")


def index(record: dict, task, count: int, where: str) -> int:
    """The right ending's 0-based index in ``label_column``: an int, or its decimal string."""
    if task.label_column not in record:
        raise DataError(f"{where}: missing label column {task.label_column!r} of task {task.name!r}; the columns "
                        f"are: {', '.join(repr(k) for k in record)}")
    value = record[task.label_column]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar (Parquet)
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: label {value!r} of task {task.name!r} is not the index of a choice "
                        f"(0-{count - 1})")
    if not 0 <= value < count:
        raise DataError(f"{where}: label {value} is out of range for task {task.name!r} ({count} choices: "
                        f"0-{count - 1})")
    return value
