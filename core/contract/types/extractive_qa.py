"""Type ``extractive-qa``: a question and a context in, the answer as a span of the context out (SQuAD v1.1,
Rajpurkar et al., EMNLP 2016; BERT's span head, Devlin et al. 2019).

A row is a question, a context and (when labelled) SQuAD's answers ``{"text": [...], "answer_start": [...]}``
(:attr:`mtl.Task.question_column`, ``context_column``, ``answers_column``); SQuAD's own nested JSON files are read
too (:mod:`mtl.data.squad_format`). An **instance is a window** of the context (:mod:`.qa_windows`): a long
context gives several, sharing :attr:`mtl.Task.stride` tokens. The head is a Linear(H, 2) on every token
(``reads = "sequence"``): logits [B, L, 2], the start and end logit of each token, padding at ``PAD_LOGIT``. The
per-instance loss is (CE(start) + CE(end)) / 2 over the window's tokens; the window's label is (start, end) of the
first answer, or the [CLS] token twice when the answer is not inside the window. A window's feature (MAMT's memory,
MMoE's input) is its [CLS] vector; its categorical rows are its start and its end distribution.

Evaluation picks each example's best span over its windows (:mod:`.qa_spans`) and scores it with SQuAD's exact
match and F1 (:mod:`mtl.data.squad_metrics`), as fractions 0–1 (the official script prints percentages). The
export is ``AutoModelForQuestionAnswering`` (``qa_outputs`` = the head's Linear).
"""

from __future__ import annotations

from typing import Any

from mtl.contract.types import qa_spans, qa_windows
from mtl.contract.types.base import TaskType, encoder_inputs, pad_sequences
from mtl.data import squad_metrics
from mtl.errors import DataError

PAD_LOGIT = -1e4  # padding's start and end logit: no probability, yet finite (a KL of two softmaxes stays finite)
COLUMNS = {"exact_match": 0, "f1": 1}  # the columns of the per-example score arrays


class ExtractiveQA(TaskType):
    name = "extractive-qa"
    structured = True
    reads = "sequence"
    export_class = "AutoModelForQuestionAnswering"
    export_kind = "question-answering"  # mtl.runs.families: qa_outputs = the head's Linear, the pooler left out
    default_metrics = ("f1", "exact_match")
    metric_names = ("f1", "exact_match")

    def check(self, task) -> None:
        for attribute in ("question_column", "context_column", "answers_column"):
            if not isinstance(getattr(task, attribute, None), str) or not getattr(task, attribute):
                raise ValueError(f"task {task.name!r} (extractive-qa): {attribute} must be a column name")
        if not isinstance(task.stride, int) or task.stride < 0:
            raise ValueError(f"task {task.name!r} (extractive-qa): stride must be an integer >= 0 "
                             f"(got {task.stride!r})")
        if not isinstance(task.max_answer_length, int) or task.max_answer_length < 1:
            raise ValueError(f"task {task.name!r} (extractive-qa): max_answer_length must be an integer >= 1 "
                             f"(got {task.max_answer_length!r})")
        super().check(task)

    def outputs(self, task) -> int:
        return 2

    # ------------------------------------------------------------------------------------------ data
    def convert_row(self, task, record: dict, where: str, labelled: bool) -> dict | None:
        """``{"id", "question", "context"}`` and, labelled, ``"label"``: the answers, each checked to be at its
        ``answer_start`` in the context."""
        row: dict[str, Any] = {"id": str(record.get("id", "") or "")}
        for key, column in (("question", task.question_column), ("context", task.context_column)):
            value = record.get(column)
            if value is None:
                raise DataError(f"{where}: no {column!r} (task {task.name!r} reads {task.question_column!r}, "
                                f"{task.context_column!r} and {task.answers_column!r}; found "
                                f"{', '.join(map(repr, record)) or 'nothing'})")
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: {column!r} must be a non-empty string (got {value!r:.60})")
            row[key] = value
        if labelled:
            if record.get(task.answers_column) is None:
                raise DataError(f"{where}: no {task.answers_column!r} (SQuAD's {{\"text\": [...], "
                                f"\"answer_start\": [...]}})")
            row["label"] = answers(record[task.answers_column], row["context"], task.answers_column, where)
        return row

    def encode_batch(self, task, rows: dict[str, list], tokenizer, max_length: int) -> dict[str, list]:
        out = qa_windows.windows(task, list(rows["question"]), list(rows["context"]), rows.get("label"),
                                 tokenizer, max_length)
        index = rows["__index__"]
        out["example"] = [index[e] for e in out["example"]]
        return out

    def collate(self, task, rows: dict[str, list], pad_id: int) -> dict[str, Any]:
        import torch

        batch = pad_sequences(rows, pad_id)
        if "labels" in rows:
            batch["labels"] = torch.tensor(rows["labels"], dtype=torch.long).view(-1, 2)
        return batch

    # ------------------------------------------------------------------------------------------ model
    def logits(self, task, output, batch: dict[str, Any]):
        """[B, L, 2]: every token's start and end logit, padding at ``PAD_LOGIT``."""
        return output.masked_fill(batch["attention_mask"][..., None] == 0, PAD_LOGIT)

    def loss(self, task, logits, labels):
        """(CE(start) + CE(end)) / 2 per window [B]."""
        import torch.nn.functional as F

        logits = logits.float()
        start = F.cross_entropy(logits[..., 0], labels[:, 0], reduction="none")
        end = F.cross_entropy(logits[..., 1], labels[:, 1], reduction="none")
        return (start + end) / 2

    def features(self, task, features, batch: dict[str, Any]):
        """A window's [CLS] vector (an instance is a window, not an example)."""
        return features

    def categorical(self, task, logits):
        """[2B, L]: each window's start distribution, then its end distribution."""
        return logits.transpose(1, 2).reshape(-1, logits.shape[1])

    def predict(self, task, logits):
        """The logits themselves: an answer is chosen per example, over its windows, by :meth:`score`."""
        return logits.detach()

    # ------------------------------------------------------------------------------------------ evaluation
    def answers_of(self, task, data, predictions: list) -> list[dict[str, Any]]:
        """Each example's best span (:func:`qa_spans.best_span`) from its windows' logits, in example order."""
        table = data.table
        groups = qa_spans.by_example(table["example"])
        return [qa_spans.best_span([(predictions[p], table["offsets"][p]) for p in groups[e]],
                                   table["context"][groups[e][0]], task.max_answer_length) for e in sorted(groups)]

    def score(self, task, data, predictions: list) -> tuple[Any, Any]:
        """Per example [N, 2]: SQuAD's (exact match, F1) of its answer, best over its gold answers; references
        [N, 2]: the example's index in both columns (predictions.safetensors keeps arrays of one shape)."""
        import torch

        groups = qa_spans.by_example(data.table["example"])
        spans = self.answers_of(task, data, predictions)
        scores = [squad_metrics.score(span["answer"], data.table["answers"][groups[e][0]])
                  for span, e in zip(spans, sorted(groups), strict=True)]
        return (torch.tensor(scores, dtype=torch.float64).view(-1, 2),
                torch.tensor(sorted(groups), dtype=torch.float64)[:, None].expand(-1, 2).contiguous())

    def compute_metrics(self, task, predictions, references) -> dict[str, float]:
        """The means of the per-example exact match and F1 (fractions 0–1), in ``task.metrics``' order."""
        import numpy as np

        scores = np.asarray(predictions, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != 2:
            raise ValueError(f"extractive-qa scores are [examples, 2] (exact match, F1); got {scores.shape}")
        if len(scores) == 0:
            raise ValueError("no predictions to score")
        return {m: float(scores[:, COLUMNS[m]].mean()) for m in task.metrics}

    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """Per example ``{"answer", "start", "end", "score"}``: the answer text, its character offsets in the
        context and its probability among the example's candidate spans."""
        spans = {e: span for e, span in zip(sorted(qa_spans.by_example(data.table["example"])),
                                             self.answers_of(task, data, logits), strict=True)}
        empty = {"answer": "", "start": 0, "end": 0, "score": 0.0}
        return [{k: spans.get(i, empty)[k] for k in empty} for i in range(len(rows["context"]))]

    def sample_rows(self, task) -> dict[str, list]:
        """Two unlabelled questions, one on a context long enough for several windows at a short max length."""
        long = " ".join(f"Fact {i}: the {i}th box holds a coin of year {1900 + i}." for i in range(12))
        return {"id": ["a", "b"], "question": ["Which box holds the coin of 1907?", "Who wrote it?"],
                "context": [long, "The letter was written by Ada in 1843."]}

    # ------------------------------------------------------------------------------------------ export
    def export_labels(self, task) -> list[str]:
        return ["start", "end"]

    def problem_type(self, task) -> str | None:
        return None

    def exported_logits(self, task, exported, batch: dict[str, Any]):
        """[B, L, 2] from the export's ``start_logits`` and ``end_logits``, padding at ``PAD_LOGIT`` as in the run."""
        import torch

        out = exported(**encoder_inputs(batch))
        return self.logits(task, torch.stack([out.start_logits, out.end_logits], dim=-1), batch)


def answers(value: Any, context: str, column: str, where: str) -> dict[str, list]:
    """SQuAD's ``{"text": [...], "answer_start": [...]}`` from that form or a list of ``{"text", "answer_start"}``;
    a one-line :class:`DataError` naming ``where`` for an answer that is not at its ``answer_start``."""
    if isinstance(value, list) and all(isinstance(x, dict) for x in value):
        value = {"text": [x.get("text") for x in value], "answer_start": [x.get("answer_start") for x in value]}
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        raise DataError(f"{where}: {column!r} must be {{\"text\": [...], \"answer_start\": [...]}} (got "
                        f"{value!r:.80})")
    texts, starts = value["text"], value["answer_start"]
    texts = [texts] if isinstance(texts, str) else list(texts)
    starts = [starts] if isinstance(starts, int) else list(starts)
    if not texts or len(texts) != len(starts):
        raise DataError(f"{where}: {column!r} needs one answer_start per text, at least one answer "
                        f"(got {len(texts)} texts, {len(starts)} starts)")
    for text, start in zip(texts, starts, strict=True):
        if not isinstance(text, str) or not text:
            raise DataError(f"{where}: an answer's text must be a non-empty string (got {text!r:.60})")
        if isinstance(start, bool) or not isinstance(start, int):
            raise DataError(f"{where}: answer_start must be an integer (got {start!r:.30})")
        found = context[start:start + len(text)] if start >= 0 else ""
        if found != text:
            raise DataError(f"{where}: answer {text!r:.60} is not at answer_start {start} of its context "
                            f"(found {found!r:.60})")
    return {"text": texts, "answer_start": [int(s) for s in starts]}
