"""The CoNLL text format of word tagging (CoNLL-2003, Tjong Kim Sang & De Meulder 2003): one word per line with its
columns separated by whitespace (the word first, its tag last: ``EU NNP B-NP B-ORG``), a blank line between
sentences, ``-DOCSTART-`` lines (and the blank line after them) skipped.

Each sentence becomes one record ``{words_column: [...], tags_column: [...], "__where__": [...]}`` (``__where__``:
the file and line of each word, so that a bad tag is named by its own line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mtl.errors import DataError

SUFFIXES = (".conll", ".txt", ".train", ".testa", ".testb")  # the shared task's own files: eng.train, eng.testa


def read(path: Path, words_column: str, tags_column: str) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` per sentence of ``path``; ``where`` is the file and the line of its first word."""
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    words: list[str] = []
    tags: list[str] = []
    lines: list[str] = []
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields or fields[0] == "-DOCSTART-":
                    if words:
                        yield lines[0], {words_column: words, tags_column: tags, "__where__": lines}
                        words, tags, lines = [], [], []
                    continue
                if len(fields) < 2:
                    raise DataError(f"{path}:{number}: expected a word and its tag separated by whitespace, "
                                    f"found {line.strip()!r}")
                words.append(fields[0])
                tags.append(fields[-1])
                lines.append(f"{path}:{number}")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if words:
        yield lines[0], {words_column: words, tags_column: tags, "__where__": lines}
