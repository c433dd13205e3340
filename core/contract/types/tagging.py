"""Type ``token-classification``: one tag per word (named entities in BIO tags, CoNLL-2003, Tjong Kim Sang & De
Meulder 2003; part-of-speech, chunks).

A row is a sentence: its words (``task.words_column``, a list of words; a string is split on whitespace) and their
tags (``task.tags_column``: tag names of ``task.labels`` or indices into them). One instance per sentence, tokenised
with ``is_split_into_words`` (a fast tokenizer) and labelled as transformers' token-classification example
(``run_ner.py``) does: the first sub-word of each word carries the word's tag, the other sub-words and the special
tokens -100 (no loss, not scored). The head is a Linear on every token's last hidden state (logits [B, L, C]); an
instance's loss is the mean cross-entropy over its labelled tokens; its feature is its [CLS] vector.

Scoring is at the word level, as ``run_ner.py`` scores: a split's predictions and gold tags are the tags of the
words whose first sub-word is within ``max_length`` (words cut off by truncation are in neither, so a gold entity
past ``max_length`` is not counted as missed). Metrics through seqeval (its default mode, conlleval's entity
rules): entity-level micro ``precision``, ``recall`` and ``f1`` (an entity counts when its type, first and last
word all match) and word-level ``accuracy``.
"""

from __future__ import annotations

from typing import Any

from mtl.contract.types.base import TaskType, pad_sequences
from mtl.contract.types.tags import entities, metrics, offsets
from mtl.data import conll
from mtl.errors import DataError

IGNORE = -100  # the label of a token that is not scored (torch's cross-entropy ignore_index)


class TokenClassification(TaskType):
    name = "token-classification"
    structured = True
    reads = "sequence"
    export_class = "AutoModelForTokenClassification"
    export_kind = "token-classification"  # mtl.runs.families: `classifier`, Linear(H, C) on every token
    file_suffixes = conll.SUFFIXES  # files read as CoNLL text, beside JSONL, JSON and Parquet
    default_metrics = ("f1", "precision", "recall", "accuracy")
    metric_names = ("f1", "precision", "recall", "accuracy")

    def check(self, task) -> None:
        if not task.labels:
            raise ValueError(f"task {task.name!r} (token-classification): declare its tags as labels")
        if len(set(task.labels)) != len(task.labels):
            raise ValueError(f"task {task.name!r} (token-classification): a tag is declared twice in {task.labels!r}")
        super().check(task)

    # ------------------------------------------------------------------------------------------ data
    def file_reader(self, task, suffix: str):
        """A reader of ``(where, record)`` for a file of ``suffix`` beside JSONL/JSON/Parquet: CoNLL text."""
        if suffix in conll.SUFFIXES:
            return lambda path: conll.read(path, task.words_column, task.tags_column)
        return None

    def convert_row(self, task, record: dict, where: str, labelled: bool) -> dict | None:
        words_column, tags_column = task.words_column, task.tags_column
        if words_column not in record:
            raise DataError(f"{where}: no column {words_column!r} (the words of task {task.name!r}; "
                            f"found {', '.join(map(repr, record)) or 'none'})")
        words, text = record[words_column], None
        if isinstance(words, str):
            text, words = words, words.split()
        elif isinstance(words, (list, tuple)) and all(isinstance(w, str) for w in words):
            words = list(words)
        else:
            raise DataError(f"{where}: {words_column!r} must be a list of words (got {_kind(words)})")
        if not words:
            return None
        row: dict[str, Any] = {"words": words, "text": text}
        if not labelled:  # an unlabelled split (test): tags, where present, are not read
            return row
        if tags_column not in record:
            raise DataError(f"{where}: no column {tags_column!r} (the tags of task {task.name!r})")
        tags = record[tags_column]
        if not isinstance(tags, (list, tuple)):
            raise DataError(f"{where}: {tags_column!r} must be a list of tags (got {_kind(tags)})")
        if len(tags) != len(words):
            raise DataError(f"{where}: {len(words)} words but {len(tags)} tags")
        lines = record.get("__where__")
        row["label"] = [self._tag(task, tag, word, lines[j] if lines else f"{where} word {j + 1}")
                        for j, (word, tag) in enumerate(zip(words, tags, strict=True))]
        return row

    @staticmethod
    def _tag(task, tag, word: str, where: str) -> int:
        labels = task.labels
        if isinstance(tag, bool) or not isinstance(tag, (str, int)):
            raise DataError(f"{where}: tag of {word!r} must be a tag name or index (got {_kind(tag)})")
        if isinstance(tag, int):
            if not 0 <= tag < len(labels):
                raise DataError(f"{where}: tag index {tag} of {word!r} is outside 0..{len(labels) - 1}")
            return tag
        if tag not in labels:
            raise DataError(f"{where}: tag {tag!r} of {word!r} is not one of the task's tags ({', '.join(labels)})")
        return labels.index(tag)

    def encode_batch(self, task, rows: dict[str, list], tokenizer, max_length: int) -> dict[str, list]:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"task {task.name!r} (token-classification) needs a fast tokenizer (word_ids), not "
                             f"{type(tokenizer).__name__}")
        enc = tokenizer(rows["words"], is_split_into_words=True, truncation=True, max_length=max_length)
        first = [first_subwords(enc.word_ids(i)) for i in range(len(enc["input_ids"]))]
        out = {"input_ids": enc["input_ids"], "length": [len(ids) for ids in enc["input_ids"]],
               "example": list(rows["__index__"]), "word_ids": first}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        if "label" in rows:
            out["labels"] = [[tags[j] if j >= 0 else IGNORE for j in ids] for ids, tags in zip(first, rows["label"],
                                                                                                strict=True)]
        return out

    def collate(self, task, rows: dict[str, list], pad_id: int) -> dict[str, Any]:
        import torch

        batch = pad_sequences(rows, pad_id)
        if "labels" in rows:
            labels = torch.full(batch["input_ids"].shape, IGNORE, dtype=torch.long)
            for j, row in enumerate(rows["labels"]):
                labels[j, : len(row)] = torch.tensor(row, dtype=torch.long)
            batch["labels"] = labels
        return batch

    # ------------------------------------------------------------------------------------------ model
    def loss(self, task, logits, labels):
        """Per instance: the mean cross-entropy over its labelled tokens (0 for an instance with none)."""
        import torch.nn.functional as F

        per_token = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
        counts = (labels != IGNORE).sum(dim=1).clamp(min=1)
        return per_token.sum(dim=1) / counts

    def categorical(self, task, logits, labels=None):
        """Each token's logits as a row [B·L, C]; with ``labels``, only the labelled tokens'."""
        rows = logits.reshape(-1, logits.shape[-1])
        return rows if labels is None else rows[labels.reshape(-1) != IGNORE]

    # ------------------------------------------------------------------------------------------ evaluation
    def score(self, task, data, predictions: list) -> tuple[Any, Any]:
        """Word-level (predicted, gold) tag indices per sentence [N, W], -100 past each sentence's scored words."""
        import torch

        gold_rows = data.table["labels"]
        pred, gold = [], []
        for predicted, labels in zip(predictions, gold_rows, strict=True):
            keep = [p for p, tag in enumerate(labels) if tag != IGNORE]
            gold.append([labels[p] for p in keep])
            pred.append([int(predicted[p]) for p in keep])
        width = max((len(r) for r in gold), default=0)
        out_pred = torch.full((len(gold), width), IGNORE, dtype=torch.long)
        out_gold = torch.full((len(gold), width), IGNORE, dtype=torch.long)
        for i, (p, g) in enumerate(zip(pred, gold, strict=True)):
            out_pred[i, : len(p)] = torch.tensor(p, dtype=torch.long)
            out_gold[i, : len(g)] = torch.tensor(g, dtype=torch.long)
        return out_pred, out_gold

    def compute_metrics(self, task, predictions, references) -> dict[str, float]:
        return metrics(task.metrics, task.labels, predictions, references, IGNORE)

    # ------------------------------------------------------------------------------------------ predict
    def present(self, task, rows: dict[str, list], data, logits: list) -> list[dict]:
        """Per sentence: its text, each word's tag (None for a word past ``max_length``) and the entities (type,
        words, character offsets into the text: the input's, or the words joined by single spaces)."""
        out = []
        for k, scores in enumerate(logits):
            example = data.table["example"][k]
            words = rows["words"][example]
            text = rows["text"][example] if rows.get("text") and rows["text"][example] is not None else None
            text = " ".join(words) if text is None else text
            probabilities = scores.float().softmax(dim=-1)
            tags: list[str | None] = [None] * len(words)
            confidence = [0.0] * len(words)
            for position, word in enumerate(data.table["word_ids"][k]):
                if word >= 0:
                    index = int(probabilities[position].argmax())
                    tags[word] = task.labels[index]
                    confidence[word] = float(probabilities[position, index])
            spans = offsets(text, words)
            found = []
            for kind, start, end in entities([t or "O" for t in tags]):
                found.append({"type": kind, "text": text[spans[start][0]: spans[end][1]],
                              "words": words[start: end + 1], "start": spans[start][0], "end": spans[end][1],
                              "score": sum(confidence[start: end + 1]) / (end + 1 - start)})
            out.append({"text": text, "entities": found, "words": words, "tags": tags})
        return out

    def text_record(self, task, line: str) -> dict:
        """The record of a plain-text input line of ``mtl predict``: its words are the line split on whitespace
        (the entities' offsets are then into the line)."""
        return {task.words_column: line}

    def sample_rows(self, task) -> dict[str, list]:
        words = [["Anna", "Smith", "flew", "to", "Reykjavik", "with", "Wolfeschlegelsteinhausen", "."], ["Hello"]]
        return {"words": words, "text": [None, None]}

    # ------------------------------------------------------------------------------------------ export
    def problem_type(self, task) -> str | None:
        return None  # AutoModelForTokenClassification has one loss, per token


def first_subwords(word_ids: list) -> list[int]:
    """Per token: the index of the word it starts (its first sub-word), else -1 (a later sub-word, a special
    token), as ``run_ner.py`` aligns labels with ``label_all_tokens=False``."""
    out, previous = [], None
    for word in word_ids:
        out.append(word if word is not None and word != previous else -1)
        previous = word
    return out


def _kind(value) -> str:
    return type(value).__name__
