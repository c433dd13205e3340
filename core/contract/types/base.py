"""What a task *type* is: the shape of its data, of its head's output, of its loss and of its evaluation.

A :class:`mtl.Task` names its columns, labels and metrics; its ``type`` (one of :data:`mtl.contract.types.TYPES`)
says how instances are read, tokenised and batched, what the head computes from the backbone's output, how the
per-instance loss and the one feature vector per instance (MAMT's memory, MMoE's input) are formed, and how a split
is scored. Every weighting, sampler and regularizer sees only per-instance losses, features and logits, so they work
with every type. Torch is imported by the methods that need it (``import mtl`` does not import torch).

The methods and what they take:

- ``select(task, split, examples)``: the examples of a split that a run uses (all of them but for ranking's
  training split).
- ``encode_batch(task, rows, tokenizer, max_length)``: a batch of raw rows (column -> list, as
  ``datasets.Dataset.map(batched=True)`` passes them) to a batch of *instances* (column -> list): ``input_ids``,
  ``token_type_ids`` (when the tokenizer makes them), ``labels`` (in the type's form), ``length`` (the padded length
  the instance needs, for length-grouped batching) and ``example`` (the row it comes from: a long QA context gives
  several instances of one example). One row may give zero, one or several instances.
- ``collate(task, rows, pad_id)``: instances (column -> list) to the padded tensors of one batch.
- ``backbone_batch(batch)``: the batch the backbone encodes (multiple choice flattens [B, k, L] to [B·k, L]).
- ``logits(task, output, batch)``: the head's output ([N, outputs], N sequences, or [N, L, outputs]) in the type's
  shape ([B, C]; [B, k] for multiple choice and ranking; [B, L, C] for tags; [B, L, 2] for QA spans).
- ``loss(task, logits, labels)``: one loss per instance [B] (unreduced).
- ``features(task, features, batch)``: one feature vector per instance [B, H] from one per sequence [N, H].
- ``categorical(task, logits)``: the logits as rows of categorical distributions [M, C] (SMART's symmetric KL,
  distillation), or None for a regression (compared by squared error).
- ``predict(task, logits)``: one prediction per instance (class, choice, tags, span).
- ``score(task, data, predictions)``: per *example* ``(predictions, references)`` arrays for ``compute_metrics``,
  row-aligned so that a bootstrap over rows resamples examples.
"""

from __future__ import annotations

from typing import Any


class TaskType:
    """Base class of a task type: a sentence(-pair) classification with one class per instance (the default)."""

    name: str = ""
    structured: bool = False  # rows are records the type converts (convert_row), not one or two texts and a label
    reads: str = "pooled"  # the head's input: "pooled" (one vector per sequence) or "sequence" (every token's)
    export_class: str = "AutoModelForSequenceClassification"  # the transformers class an export loads with
    export_kind: str = "sequence-classification"  # its kind in mtl.runs.families (the head each family maps to)
    default_metrics: tuple[str, ...] = ("accuracy",)
    metric_names: tuple[str, ...] = ("accuracy", "f1", "f1_macro", "mcc")  # the metrics this type can compute

    def __repr__(self) -> str:
        return f"<task type {self.name}>"

    # ------------------------------------------------------------------------------------------ declaration
    def check(self, task) -> None:
        """ValueError (one line) when ``task`` is not declared as this type needs (columns, labels, metrics)."""
        for metric in task.metrics:
            if metric not in self.metric_names:
                raise ValueError(f"task {task.name!r} ({self.name}): metric {metric!r} is not one of "
                                 f"{', '.join(self.metric_names)}")

    def outputs(self, task) -> int:
        """Width of the head's Linear."""
        return len(task.labels)

    # ------------------------------------------------------------------------------------------ data
    def convert_row(self, task, record: dict, where: str, labelled: bool) -> dict | None:
        """A structured type's row from one raw record (a JSON object, a Hub or Parquet row), checked: a
        :class:`mtl.errors.DataError` naming ``where`` (file and line, or dataset and row) when it does not fit;
        None to drop the row. Text types are read by :mod:`mtl.data.files` instead."""
        raise NotImplementedError(f"task type {self.name!r} reads one or two texts and a label")

    def select(self, task, split: str, examples):
        """The examples of ``split`` a run uses (ranking leaves queries without a positive out of training)."""
        return examples

    def encode_batch(self, task, rows: dict[str, list], tokenizer, max_length: int) -> dict[str, list]:
        columns = [rows[c] for c in task.text_columns]
        first = [str(x) for x in columns[0]]
        second = [str(x) for x in columns[1]] if len(columns) > 1 else None
        enc = tokenizer(first, second, truncation=True, max_length=max_length)
        out = {"input_ids": enc["input_ids"], "length": [len(ids) for ids in enc["input_ids"]],
               "example": list(rows["__index__"])}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        if "label" in rows:
            out["labels"] = list(rows["label"])
        return out

    def collate(self, task, rows: dict[str, list], pad_id: int) -> dict[str, Any]:
        import torch

        batch = pad_sequences(rows, pad_id)
        if "labels" in rows:
            batch["labels"] = torch.tensor(rows["labels"], dtype=self.label_dtype(task))
        return batch

    def label_dtype(self, task):
        import torch

        return torch.long

    # ------------------------------------------------------------------------------------------ model
    def backbone_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return batch

    def logits(self, task, output, batch: dict[str, Any]):
        return output

    def loss(self, task, logits, labels):
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), labels, reduction="none")

    def features(self, task, features, batch: dict[str, Any]):
        return features

    def categorical(self, task, logits):
        return logits

    def predict(self, task, logits):
        return logits.argmax(dim=-1)

    # ------------------------------------------------------------------------------------------ evaluation
    def score(self, task, data, predictions: list) -> tuple[Any, Any]:
        """Per-example (predictions, references) tensors from one prediction per instance (``data``: the split's
        :class:`mtl.data.batching.Encoded`); here one instance is one example."""
        import torch

        return torch.stack(list(predictions)), data.labels

    def compute_metrics(self, task, predictions, references) -> dict[str, float]:
        from mtl.data import metrics

        return metrics.compute(task.metrics, predictions, references)

    # ------------------------------------------------------------------------------------------ serving
    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """What ``mtl predict`` prints, one JSON-able dict per example (``rows``: the examples' columns; ``data``:
        their instances; ``logits``: one tensor per instance, in ``data``'s order): the label, its probability and
        the logits."""
        out = []
        for row in logits:
            probabilities = row.float().softmax(dim=-1)
            index = int(row.argmax())
            out.append({"label": task.labels[index], "score": float(probabilities[index]),
                        "logits": [float(v) for v in row]})
        return out

    def sample_rows(self, task) -> dict[str, list]:
        """Two unlabelled rows of this type (``convert_row``'s form for a structured type): the inputs on which an
        export is checked to give the run's logits."""
        texts = [["A short sentence.", "Another, somewhat longer example sentence to make the batch need padding."],
                 ["Something else entirely, for the second text.", "Short."]]
        return {column: texts[i] for i, column in enumerate(task.text_columns)}

    def export_labels(self, task) -> list[str]:
        """The names of the exported head's outputs (its config's ``id2label``)."""
        return list(task.labels) if task.labels is not None else ["score"]

    def problem_type(self, task) -> str | None:
        """The exported config's ``problem_type`` (transformers' loss for a sequence classification)."""
        return "single_label_classification"

    def exported_logits(self, task, exported, batch: dict[str, Any]):
        """The logits of an exported model (:meth:`export`) in this type's shape."""
        return exported(**encoder_inputs(batch)).logits


def encoder_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The inputs a transformers model takes of a padded batch."""
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}


def pad_sequences(rows: dict[str, list], pad_id: int, keys=("input_ids", "token_type_ids")) -> dict[str, Any]:
    """``input_ids`` (and ``token_type_ids``) of the instances padded to the longest, with ``attention_mask``."""
    import torch

    ids = rows["input_ids"]
    width = max(len(r) for r in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    types = torch.zeros((len(ids), width), dtype=torch.long) if rows.get("token_type_ids") is not None else None
    for j, row in enumerate(ids):
        input_ids[j, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[j, : len(row)] = 1
        if types is not None:
            types[j, : len(row)] = torch.tensor(rows["token_type_ids"][j], dtype=torch.long)
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if types is not None:
        batch["token_type_ids"] = types
    return batch
