"""Type ``ranking``: MT-DNN's pairwise ranking (Liu et al., ACL 2019, §3.2; QNLI as MT-DNN trains it).

Rows are (query, candidate, label) pairs (``text_columns`` = (query, candidate); the label is one of ``labels``,
``positive_label`` the relevant one). The pairs of one query (rows with the same query text, in the order the query
first appears) form one instance; a Linear(H, 1) scores each pair's pooled feature and the loss is
−log P(c⁺ | q) = −log softmax over the query's candidates of the positive one (the mean over them where a query has
several). A query without a positive candidate has nothing to learn from: its pairs are dropped from the training
split (a warning counts them) and kept for evaluation.

Metrics: ``accuracy`` as MT-DNN reports QNLI (a pair is predicted positive iff it is its query's top candidate,
scored against the pair labels) and ``p_at_1`` (per query: is the top candidate a positive one).
"""

from __future__ import annotations

import warnings
from typing import Any

from mtl.contract.types import grouped
from mtl.contract.types.base import TaskType, encoder_inputs


class Ranking(TaskType):
    name = "ranking"
    export_class = "AutoModelForSequenceClassification"  # one logit per (query, candidate) pair
    default_metrics = ("accuracy", "p_at_1")
    metric_names = ("accuracy", "p_at_1")
    groups_rows = True  # encode_batch groups rows by query: it must see a whole split at once

    def check(self, task) -> None:
        if len(task.text_columns) != 2:
            raise ValueError(f"task {task.name!r} (ranking): two text columns, the query and the candidate "
                             f"(got {len(task.text_columns)})")
        if not task.labels or task.positive_label not in task.labels:
            raise ValueError(f"task {task.name!r} (ranking): positive_label {task.positive_label!r} must be one of "
                             f"its labels ({', '.join(task.labels or ())})")
        super().check(task)

    def outputs(self, task) -> int:
        return 1

    # ------------------------------------------------------------------------------------------ data
    def select(self, task, split: str, examples):
        """The training split without the queries that have no positive candidate (a warning counts them)."""
        if split != task.train_split or not examples.labels:
            return examples
        positive = task.labels.index(task.positive_label)
        has_positive: dict[str, bool] = {}
        for (query, _), label in zip(examples.texts, examples.labels, strict=True):
            has_positive[query] = has_positive.get(query, False) or label == positive
        keep = [i for i, (query, _) in enumerate(examples.texts) if has_positive[query]]
        if len(keep) == len(examples.texts):
            return examples
        dropped = sum(1 for ok in has_positive.values() if not ok)
        warnings.warn(f"task {task.name!r}: {dropped} of {len(has_positive)} queries in {examples.source} have no "
                      f"positive candidate ({task.positive_label!r}); their {len(examples.texts) - len(keep)} pairs "
                      "are left out of training", stacklevel=2)
        return type(examples)([examples.texts[i] for i in keep], [examples.labels[i] for i in keep], examples.source)

    def encode_batch(self, task, rows: dict[str, list], tokenizer, max_length: int) -> dict[str, list]:
        queries, candidates = (rows[c] for c in task.text_columns)
        order: dict[str, list[int]] = {}
        for i, query in enumerate(queries):
            order.setdefault(str(query), []).append(i)
        members = list(order.values())
        groups = [[(str(queries[i]), str(candidates[i])) for i in group] for group in members]
        out = grouped.encode_groups(tokenizer, groups, max_length)
        out["example"] = [rows["__index__"][group[0]] for group in members]
        out["members"] = [[rows["__index__"][i] for i in group] for group in members]
        if "label" in rows:
            positive = task.labels.index(task.positive_label)
            out["labels"] = [[int(rows["label"][i] == positive) for i in group] for group in members]
        return out

    def collate(self, task, rows: dict[str, list], pad_id: int) -> dict[str, Any]:
        import torch

        batch = grouped.pad_groups(rows, pad_id)
        if "labels" in rows:
            labels = torch.zeros(batch["choice_mask"].shape, dtype=torch.float32)
            for b, flags in enumerate(rows["labels"]):
                labels[b, : len(flags)] = torch.tensor(flags, dtype=torch.float32)
            batch["labels"] = labels
        return batch

    def label_dtype(self, task):
        import torch

        return torch.float32

    # ------------------------------------------------------------------------------------------ model
    def backbone_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return grouped.flatten(batch, real_only=True)  # the padded places of small groups are not encoded

    def logits(self, task, output, batch: dict[str, Any]):
        return grouped.regroup(output.view(-1), batch, grouped.FILL)

    def loss(self, task, logits, labels):
        """−log softmax of the positive candidates, their mean per query (0 for a query without one)."""
        log_p = logits.float().log_softmax(dim=-1)
        positives = labels.float()
        return -(log_p * positives).sum(dim=-1) / positives.sum(dim=-1).clamp_min(1.0)

    def features(self, task, features, batch: dict[str, Any]):
        """The mean pooled [CLS] feature of each query's candidates (one vector per instance)."""
        mask = batch["choice_mask"].to(features.dtype)
        full = grouped.regroup(features, batch, 0.0)
        return full.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1.0)

    def predict(self, task, logits):
        return logits.argmax(dim=-1)  # the top candidate of each query

    # ------------------------------------------------------------------------------------------ evaluation
    def score(self, task, data, predictions: list) -> tuple[Any, Any]:
        """Per query (a row of the split's widest group, -1 past its candidates): 1 for the top candidate, 0 for
        the others; and the pair labels (1 positive)."""
        import torch

        labels = data.table["labels"]
        width = max(len(flags) for flags in labels)
        predicted = torch.full((len(labels), width), -1, dtype=torch.long)
        references = torch.full((len(labels), width), -1, dtype=torch.long)
        for row, (top, flags) in enumerate(zip(predictions, labels, strict=True)):
            predicted[row, : len(flags)] = 0
            predicted[row, int(top)] = 1
            references[row, : len(flags)] = torch.tensor(flags, dtype=torch.long)
        return predicted, references

    def compute_metrics(self, task, predictions, references) -> dict[str, float]:
        """``accuracy``: the share of pairs whose predicted flag (top of its query or not) is their label;
        ``p_at_1``: the share of queries whose top candidate is positive."""
        import numpy as np

        pred, ref = np.asarray(predictions), np.asarray(references)
        if pred.shape != ref.shape or pred.ndim != 2 or len(pred) == 0:
            raise ValueError(f"ranking scores are [queries, candidates] rows (got {pred.shape} and {ref.shape})")
        real = ref >= 0
        values = {"accuracy": float((pred[real] == ref[real]).mean()),
                  "p_at_1": float((ref[np.arange(len(ref)), pred.argmax(axis=1)] == 1).mean())}
        return {name: values[name] for name in task.metrics}

    # ------------------------------------------------------------------------------------------ output
    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """One entry per query: its candidates ranked by score, with the softmax over them."""
        query_column, candidate_column = task.text_columns
        out = []
        for members, row_logits in zip(data.table["members"], logits, strict=True):
            scores = row_logits.float()[: len(members)]
            probabilities = scores.softmax(dim=-1)
            ranked = sorted(range(len(members)), key=lambda j: -float(scores[j]))
            out.append({"query": rows[query_column][members[0]],
                        "ranking": [{"candidate": rows[candidate_column][members[j]], "rank": r + 1,
                                     "score": float(scores[j]), "probability": float(probabilities[j])}
                                    for r, j in enumerate(ranked)]})
        return out

    def sample_rows(self, task) -> dict[str, list]:
        query, candidate = task.text_columns  # two queries, of two candidates and of one: a padded group
        return {query: ["Where is the station?", "Where is the station?", "Who won?"],
                candidate: ["It is next to the old market, two streets from here.", "The sun was out.", "Short."]}

    def export_labels(self, task) -> list[str]:
        return ["score"]

    def problem_type(self, task) -> str | None:
        return None  # one score per pair, ranked per query: no transformers loss fits

    def exported_logits(self, task, exported, batch: dict[str, Any]):
        flat = grouped.flatten(batch, real_only=True)
        return grouped.regroup(exported(**encoder_inputs(flat)).logits.view(-1), batch, grouped.FILL)
