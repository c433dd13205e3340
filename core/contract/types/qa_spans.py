"""An example's answer from its windows' start and end logits (``run_qa.py``'s ``postprocess_qa_predictions``,
SQuAD v1.1: no null answer).

A candidate is a span of context tokens of one window, start ≤ end, at most ``max_answer_length`` tokens; its
score is start logit + end logit. Every candidate of every window of the example is considered (run_qa.py looks at
the 20 best starts and ends only); the best one is mapped back to character offsets in the context. Its
probability is the softmax of the scores over all the example's candidates.
"""

from __future__ import annotations

import math
from typing import Any


def best_span(windows: list[tuple[Any, list[list[int]]]], context: str, max_answer_length: int) -> dict[str, Any]:
    """``{"answer", "start", "end", "score", "logit"}`` of an example from its windows' ``(logits [≥n, 2],
    offsets [n])`` (the logits of a window may be padded past its n tokens); an empty answer with score 0 when no
    window has a context token."""
    import torch

    best, best_value, total = None, -math.inf, []
    for logits, offsets in windows:
        n = len(offsets)
        if n == 0:
            continue
        logits = torch.as_tensor(logits, dtype=torch.float64)[:n]
        inside = torch.tensor([o[0] >= 0 for o in offsets])
        scores = logits[:, 0, None] + logits[None, :, 1]
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        valid = inside[:, None] & inside[None, :] & (j >= i) & (j - i < max_answer_length)
        if not bool(valid.any()):
            continue
        scores = scores.masked_fill(~valid, -math.inf)
        total.append(torch.logsumexp(scores.reshape(-1), dim=0))
        flat = int(scores.reshape(-1).argmax())
        value = float(scores.reshape(-1)[flat])
        if value > best_value:  # the first window wins a tie
            best_value, best = value, (offsets[flat // n][0], offsets[flat % n][1])
    if best is None:
        return {"answer": "", "start": 0, "end": 0, "score": 0.0, "logit": None}
    probability = math.exp(best_value - float(torch.logsumexp(torch.stack(total), dim=0)))
    return {"answer": context[best[0]:best[1]], "start": int(best[0]), "end": int(best[1]),
            "score": probability, "logit": best_value}


def by_example(examples: list[int]) -> dict[int, list[int]]:
    """The instance positions of each example, in order."""
    out: dict[int, list[int]] = {}
    for position, example in enumerate(examples):
        out.setdefault(int(example), []).append(position)
    return out
