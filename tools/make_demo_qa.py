"""Write the extractive-QA demo task: core/data/demo/qa_{train,dev}.jsonl (task ``demo-qa``).

Each context is a short synthetic profile of one person: one sentence per fact (where they live, their job, their
favourite colour, pet, sport, instrument, food, language, birth month), in a random order, with a few filler
sentences that hold no answer. A question asks for one fact; its answer is the fact's value, a span of the
context (one or two words). About a quarter of the contexts are long (seven facts and two fillers, 60 to 80
WordPiece tokens): at ``--max-length 64`` their questions need two windows, and some answers lie only in the
second.
Dev questions about a job also accept the value with its article ("a baker"), so that the SQuAD score's maximum
over gold answers matters.

Standard library only and a fixed seed: running it again rewrites the files byte for byte.

Usage: ``python tools/make_demo_qa.py [OUT_DIR]`` (default: core/data/demo next to this script's parent).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261203
SIZES = {"train": 300, "dev": 100}  # questions
QUESTIONS_PER_CONTEXT = 3
LONG = 0.25  # the share of long contexts

NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Ida", "Jonas", "Karen", "Leo", "Maria",
         "Nils", "Olga", "Paul", "Rosa", "Sam", "Tina", "Victor", "Wendy", "Yusuf", "Zoe", "Omar", "Lena", "Marco",
         "Nora", "Pedro", "Sofia", "Tom"]
# relation -> (question template, sentence template, values)
FACTS = {
    "city": ("Where does {name} live?", "{name} lives in {x}.",
             ["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Prague", "Oslo", "Dublin", "Athens",
              "Warsaw", "Zurich"]),
    "job": ("What is {name}'s job?", "{name} works as a {x}.",
            ["baker", "pilot", "nurse", "farmer", "teacher", "painter", "lawyer", "dentist", "plumber", "waiter"]),
    "colour": ("What is {name}'s favourite colour?", "The favourite colour of {name} is {x}.",
               ["red", "blue", "green", "yellow", "purple", "orange", "grey", "pink"]),
    "pet": ("What pet does {name} have?", "At home {name} keeps a pet {x}.",
            ["cat", "dog", "parrot", "rabbit", "hamster", "turtle", "goldfish"]),
    "sport": ("Which sport does {name} play?", "On weekends {name} plays {x} with friends.",
              ["tennis", "football", "golf", "hockey", "rugby", "cricket", "basketball", "volleyball"]),
    "instrument": ("Which instrument can {name} play?", "{name} has learned to play the {x}.",
                   ["piano", "violin", "guitar", "drums", "flute", "cello", "trumpet"]),
    "food": ("What does {name} like to eat?", "For dinner {name} likes to eat {x}.",
             ["pasta", "soup", "rice", "cheese", "fried fish", "green salad", "pancakes", "dumplings"]),
    "language": ("Which language does {name} speak?", "With the family {name} speaks {x}.",
                 ["French", "German", "Spanish", "Italian", "Dutch", "Greek", "Polish", "Swedish"]),
    "month": ("In which month was {name} born?", "{name} was born in {x}.",
              ["January", "March", "April", "June", "August", "October", "November", "December"]),
}
FILLERS = ["The weather there is often mild.", "{name} enjoys long walks in the evening.",
           "Friends say that {name} is very kind.", "Most mornings start with a cup of tea.",
           "The neighbours are quiet and friendly.", "{name} reads a few pages before sleeping.",
           "There is a small park close to the house.", "{name} rarely watches television."]


def context(rng: random.Random, name: str, long: bool) -> tuple[str, dict[str, tuple[str, int]]]:
    """A profile of ``name`` and, per fact it states, (value, character offset of the value)."""
    relations = rng.sample(list(FACTS), 7 if long else rng.randint(3, 4))
    fillers = rng.sample(FILLERS, 2 if long else rng.randint(0, 1))
    items = [("fact", r) for r in relations] + [("filler", f) for f in fillers]
    rng.shuffle(items)
    sentences, facts, position = [], {}, 0
    for kind, item in items:
        if kind == "filler":
            sentence = item.format(name=name)
        else:
            value = rng.choice(FACTS[item][2])
            template = FACTS[item][1]
            sentence = template.format(name=name, x=value)
            facts[item] = (value, position + template.format(name=name, x="\0").index("\0"))
        sentences.append(sentence)
        position += len(sentence) + 1
    return " ".join(sentences), facts


def split(rng: random.Random, size: int, name: str, seen: set[str]) -> list[dict]:
    rows: list[dict] = []
    while len(rows) < size:
        person = rng.choice(NAMES)
        text, facts = context(rng, person, rng.random() < LONG)
        if text in seen:
            continue
        seen.add(text)
        for relation in rng.sample(sorted(facts), min(QUESTIONS_PER_CONTEXT, len(facts))):
            if len(rows) == size:
                break
            value, start = facts[relation]
            assert text[start:start + len(value)] == value
            answers = {"text": [value], "answer_start": [start]}
            if name == "dev" and relation == "job":
                answers = {"text": [value, f"a {value}"], "answer_start": [start, start - 2]}
            rows.append({"id": f"{name}-{len(rows):04d}", "question": FACTS[relation][0].format(name=person),
                         "context": text, "answers": answers})
    return rows


def main(out: Path) -> None:
    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for name, size in SIZES.items():
        rows = split(rng, size, name, seen)
        with open(out / f"qa_{name}.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{out / f'qa_{name}.jsonl'}: {len(rows)} questions")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "core" / "data" / "demo")
