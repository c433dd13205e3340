"""Tag sequences of the ``token-classification`` type: their entities, their metrics and where their words are in
a text. Entities and metrics are seqeval's (Nakayama 2018; its default mode follows the CoNLL shared task's
conlleval script: an entity starts at a B- tag, or at an I- tag after another type or after O, and is counted as
found when its type, first and last word all match a gold entity). seqeval is imported only when it is used."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

from mtl.errors import unknown

METRICS = ("f1", "precision", "recall", "accuracy")


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(type, first word, last word)`` of each entity in ``tags`` (seqeval's reading of BIO tags)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, int(start), int(end)) for kind, start, end in get_entities(list(tags))]


def sequences(labels: Sequence[str], predictions, references, ignore: int) -> tuple[list, list]:
    """Per-row tag names of predictions and references [N, W] (tag indices), dropping the positions where the
    reference is ``ignore`` (padding, and the words past ``max_length``)."""
    import numpy as np

    pred, ref = np.asarray(predictions), np.asarray(references)
    if pred.shape != ref.shape:
        raise ValueError(f"predictions {pred.shape} and references {ref.shape} differ in shape")
    if pred.ndim == 1:  # one sentence
        pred, ref = pred[None, :], ref[None, :]
    y_pred, y_true = [], []
    for p_row, r_row in zip(pred, ref, strict=True):
        keep = r_row != ignore
        y_true.append([labels[int(i)] for i in r_row[keep]])
        y_pred.append([labels[int(i)] for i in p_row[keep]])
    return y_pred, y_true


def metrics(names: Iterable[str], labels: Sequence[str], predictions, references, ignore: int) -> dict[str, float]:
    """``{name: value}``: entity-level micro ``precision``/``recall``/``f1`` and word-level ``accuracy`` (seqeval,
    default mode) of word-level tag indices [N, W] (``ignore`` where a sentence has no word)."""
    names = list(names)
    for name in names:
        if name not in METRICS:
            raise ValueError(unknown("metric", name, METRICS))
    y_pred, y_true = sequences(labels, predictions, references, ignore)
    if not any(y_true):
        raise ValueError("no tagged words to score")
    from seqeval import metrics as sq

    functions = {"f1": sq.f1_score, "precision": sq.precision_score, "recall": sq.recall_score}
    out = {}
    with warnings.catch_warnings():  # no predicted (or no gold) entity: seqeval warns and gives 0
        warnings.simplefilter("ignore")
        for name in names:
            if name == "accuracy":
                out[name] = float(sq.accuracy_score(y_true, y_pred))
            else:
                out[name] = float(functions[name](y_true, y_pred, zero_division=0))
    return out


def offsets(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """The ``[start, end)`` character span of each word in ``text``, in order (``words`` are ``text.split()``, or
    the words that ``" ".join`` made ``text`` of)."""
    spans, position = [], 0
    for word in words:
        start = text.find(word, position)
        if start < 0:
            raise ValueError(f"word {word!r} is not in the text after character {position}")
        spans.append((start, start + len(word)))
        position = start + len(word)
    return spans
