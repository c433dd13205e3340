"""SQuAD v1.1's exact match and F1 of one predicted answer against the gold answers (Rajpurkar et al., EMNLP 2016;
the official ``evaluate-v1.1.py``).

Both compare answers after SQuAD's normalisation: lowercase, punctuation removed, the articles *a*, *an*, *the*
removed, whitespace collapsed. Exact match is 1 when the normalised strings are equal; F1 is the harmonic mean of
the precision and recall of the normalised tokens (whitespace-separated, counted with multiplicity) the prediction
shares with an answer. Each is the maximum over the gold answers. Scores are fractions (0–1), not percentages.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's ``normalize_answer``: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised answers (0 when they share no token)."""
    predicted, truth = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(predicted) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, golds: list[str]) -> tuple[float, float]:
    """(exact match, F1) of ``prediction``: each the best over ``golds`` (0, 0 without a gold answer)."""
    if not golds:
        return 0.0, 0.0
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)
