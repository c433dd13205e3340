"""SQuAD's own JSON file format (Rajpurkar et al., EMNLP 2016: ``train-v1.1.json``, ``dev-v1.1.json``): articles of
paragraphs, each a context with its questions,

    {"version": "1.1", "data": [{"title": ..., "paragraphs": [{"context": ...,
        "qas": [{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}, ...]}]}]}]}

read as one flat record per question: ``{"id", "title", "question", "context", "answers"}`` with the answers as the
Hub's ``squad`` dataset has them (``{"text": [...], "answer_start": [...]}``). A record names its place in the file
(``data[a].paragraphs[p].qas[q]``) for messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mtl.errors import DataError


def is_nested(data: Any) -> bool:
    """Whether a parsed JSON document is in SQuAD's format (``{"data": [{"paragraphs": [...]}, ...]}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list) or not data["data"]:
        return False
    first = data["data"][0]
    return isinstance(first, dict) and "paragraphs" in first


def records(path, data: dict, names: dict[str, str] | None = None) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` per question of a document in SQuAD's format; ``names`` renames the record's
    ``question``, ``context`` and ``answers`` (to the task's columns)."""
    names = names or {}
    question, context, answers = (names.get(k, k) for k in ("question", "context", "answers"))
    for a, article in enumerate(data["data"]):
        where = f"{path} data[{a}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{where}: expected an object with a list of \"paragraphs\"")
        for p, paragraph in enumerate(paragraphs):
            at = f"{where}.paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{at}: expected an object with \"context\" and a list of \"qas\"")
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    raise DataError(f"{at}.qas[{q}]: expected an object, found {type(qa).__name__}")
                record = {"id": qa.get("id", f"{a}.{p}.{q}"), "title": article.get("title", ""),
                          question: qa.get("question"), context: paragraph.get("context")}
                if "answers" in qa:
                    record[answers] = _answers(qa["answers"], f"{at}.qas[{q}]")
                yield f"{at}.qas[{q}]", record


def _answers(answers: Any, where: str) -> dict[str, list]:
    if not isinstance(answers, list) or not all(isinstance(x, dict) for x in answers):
        raise DataError(f"{where}: \"answers\" must be a list of {{\"text\", \"answer_start\"}} objects")
    return {"text": [x.get("text") for x in answers], "answer_start": [x.get("answer_start") for x in answers]}
