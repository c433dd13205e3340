"""Write the demo task of the token-classification type: core/data/demo/entities_{train,dev}.jsonl.

``demo-entities`` tags people, places and organisations in simple sentences with BIO tags (as CoNLL-2003 does,
Tjong Kim Sang & De Meulder 2003; without its MISC type): ``O``, ``B-PER``, ``I-PER``, ``B-LOC``, ``I-LOC``,
``B-ORG``, ``I-ORG``. Each sentence is one of a few templates whose slots take a person (a first name, a last
name, or both), a place (one or two words) or an organisation (one to three words) from fixed lists; about one
sentence in ten has no entity. The lists are small and the contexts regular, so a tiny model learns the task in a
few hundred steps. Standard library only, fixed seed: the files are reproducible byte for byte.

One JSON object a line: ``{"tokens": [...], "ner_tags": [...]}`` (tag names). No sentence appears twice, within
or across splits.

Usage: ``python tools/make_demo_entities.py [OUT_DIR]`` (default: core/data/demo next to this script's parent).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261203
SIZES = {"train": 300, "dev": 100}

FIRST = ["Anna", "Omar", "Lena", "Kenji", "Maria", "Tom", "Priya", "Lucas", "Fatima", "Ivan", "Chloe", "Diego"]
LAST = ["Smith", "Tanaka", "Garcia", "Okafor", "Novak", "Larsen", "Kowalski", "Haddad", "Moreau", "Silva"]
PLACES = ["Paris", "Berlin", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Denver", "Madrid", "Nairobi",
          "New York", "San Francisco", "Buenos Aires", "Hong Kong", "Cape Town", "Rio de Janeiro"]
ORGS = ["Acme Corp", "Globex", "Initech", "Red Cross", "United Nations", "Northwind Traders", "Umbrella",
        "Blue River Bank", "Stark Industries", "Oceanic Airlines", "Wayne Enterprises", "Vandelay Imports"]

# a template's words; {PER}, {LOC}, {ORG} are slots
TEMPLATES = [
    "{PER} visited {LOC} last week .",
    "{PER} works for {ORG} in {LOC} .",
    "{ORG} opened a new office in {LOC} .",
    "{PER} met {PER} at the station .",
    "Yesterday {PER} said that {ORG} will hire more people .",
    "The weather in {LOC} was cold this morning .",
    "{PER} moved from {LOC} to {LOC} in the spring .",
    "She called {PER} about the meeting .",
    "{ORG} and {ORG} signed a deal on Monday .",
    "According to {ORG} , prices in {LOC} went up .",
    "{PER} joined {ORG} after school .",
    "They flew to {LOC} with {PER} .",
]
EMPTY = [
    "Nobody went to the party on Friday .",
    "The train was late again this morning .",
    "We had soup and bread for dinner .",
    "It rained all day and the streets were wet .",
    "The meeting was moved to next week .",
    "He bought a new bike at the shop .",
    "The children played in the park after lunch .",
    "Prices went up again last month .",
]


def person(rng: random.Random) -> list[str]:
    shape = rng.random()
    if shape < 0.5:
        return [rng.choice(FIRST), rng.choice(LAST)]
    return [rng.choice(FIRST)] if shape < 0.8 else [rng.choice(LAST)]


def fill(slot: str, rng: random.Random) -> list[str]:
    if slot == "PER":
        return person(rng)
    return (rng.choice(PLACES) if slot == "LOC" else rng.choice(ORGS)).split()


def sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    if rng.random() < 0.1:
        words = rng.choice(EMPTY).split()
        return words, ["O"] * len(words)
    words, tags = [], []
    for token in rng.choice(TEMPLATES).split():
        if token.startswith("{") and token.endswith("}"):
            slot = token[1:-1]
            entity = fill(slot, rng)
            words += entity
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(entity) - 1)
        else:
            words.append(token)
            tags.append("O")
    return words, tags


def make() -> dict[str, list[tuple[list[str], list[str]]]]:
    rng = random.Random(SEED)
    seen: set[tuple[str, ...]] = set()
    out: dict[str, list] = {}
    for split, size in SIZES.items():
        rows = []
        while len(rows) < size:
            words, tags = sentence(rng)
            if tuple(words) in seen:
                continue
            seen.add(tuple(words))
            rows.append((words, tags))
        out[split] = rows
    return out


def main(argv: list[str]) -> None:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "core" / "data" / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in make().items():
        lines = [json.dumps({"tokens": words, "ner_tags": tags}, ensure_ascii=False) for words, tags in rows]
        (out_dir / f"entities_{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {out_dir / f'entities_{split}.jsonl'} ({len(rows)} sentences)")


if __name__ == "__main__":
    main(sys.argv)
