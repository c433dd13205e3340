"""Write the built-in demo suite: core/data/demo/{paraphrase,similarity,sentiment}_{train,dev}.tsv.

Three small related tasks over one everyday vocabulary, made from templates with a fixed seed (standard
library only, so the files are reproducible byte for byte):

- paraphrase (target): is sentence 2 a paraphrase of sentence 1? Both describe an event with five slots
  (who, did what, to whom, where, when); a paraphrase keeps every slot's meaning but is written with another
  template (e.g. the passive voice) and sometimes synonyms; a non-paraphrase changes one to three slots.
  Its training set is small on purpose (64 rows): alone, the target is starved of data.
- similarity: a 0-1 score, the share of the five slots the two sentences have in common (synonyms count as
  shared; 1.0 is a paraphrase); eight times the target's rows, most of them near the paraphrase boundary, so
  it teaches the comparison the target needs.
- sentiment: is a one-sentence review positive or negative? Negation ("was not good") and contrast
  ("..., but ...", the second clause wins) keep it from being a bag-of-words task. Unrelated to the target.

The sizes are chosen for the quick start (mtl.data.suite.DEMO_DEFAULTS: 2 epochs of batches of 8), which
must finish in a minute on two CPU cores; core/data/demo/README.md says what a run reaches.

Usage: ``python tools/make_demo.py [OUT_DIR]`` (default: core/data/demo next to this script's parent).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20240601
SIZES = {
    "paraphrase": {"train": 64, "dev": 200},
    "similarity": {"train": 480, "dev": 100},
    "sentiment": {"train": 96, "dev": 100},
}
SYNONYMS = 0.3  # the chance that a slot is written with one of its synonyms rather than its first wording
SHARED_SLOTS = (0, 1, 2, 3, 3, 4, 4, 4, 5, 5, 5)  # similarity rows cycle through these: most near the boundary

# --- the event vocabulary: each group is one meaning, its entries are interchangeable surface forms

PEOPLE = [
    ["the doctor", "the physician"],
    ["the teacher", "the instructor"],
    ["the lawyer", "the attorney"],
    ["the cook", "the chef"],
    ["the kid", "the child"],
    ["the man", "the guy", "the gentleman"],
    ["the woman", "the lady"],
    ["the police officer", "the cop"],
    ["the student", "the pupil"],
    ["the boss", "the manager"],
    ["the shop owner", "the shopkeeper"],
    ["the taxi driver", "the cab driver"],
]
VERBS = [  # (past tense, past participle)
    [("helped", "helped"), ("assisted", "assisted")],
    [("called", "called"), ("phoned", "phoned"), ("rang", "rung")],
    [("saw", "seen"), ("noticed", "noticed"), ("spotted", "spotted")],
    [("picked", "picked"), ("chose", "chosen"), ("selected", "selected")],
    [("hired", "hired"), ("employed", "employed")],
    [("annoyed", "annoyed"), ("bothered", "bothered"), ("irritated", "irritated")],
    [("hugged", "hugged"), ("embraced", "embraced")],
    [("warned", "warned"), ("cautioned", "cautioned")],
    [("praised", "praised"), ("complimented", "complimented")],
    [("followed", "followed"), ("trailed", "trailed")],
    [("ignored", "ignored"), ("disregarded", "disregarded")],
]
PLACES = [
    ["at the shop", "at the store"],
    ["in the park", "at the park"],
    ["near the river", "by the river"],
    ["at the station", "at the train station"],
    ["on the beach", "at the beach"],
    ["at the office", "at work"],
    ["in the garden", "in the yard"],
    ["in the hospital", "at the hospital"],
    ["in the library", "at the library"],
    ["downtown", "in the city center"],
    ["at the cafe", "at the coffee shop"],
]
TIMES = [
    ["last night", "yesterday evening"],
    ["this morning", "earlier today"],
    ["last week", "a week ago"],
    ["at noon", "at midday"],
    ["after lunch", "following lunch"],
    ["before dinner", "prior to dinner"],
    ["at dawn", "at sunrise"],
    ["in the afternoon", "during the afternoon"],
    ["on the weekend", "over the weekend"],
]
SLOTS = ("subject", "verb", "object", "place", "time")
ACTIVE = ["{S} {V} {O} {P} {T}.", "{T}, {S} {V} {O} {P}."]
PASSIVE = ["{O} was {VPP} by {S} {P} {T}."]

# --- the review vocabulary (shares places and people with the events)

THINGS = ["the food", "the movie", "the hotel", "the service", "the music", "the weather", "the trip",
          "the party", "the class", "the game", "the book", "the coffee", "the room", "the show"]
POSITIVE = ["great", "wonderful", "lovely", "excellent", "nice", "fun", "amazing", "pleasant", "fantastic", "good"]
NEGATIVE = ["awful", "terrible", "boring", "bad", "horrible", "dull", "disappointing", "poor", "unpleasant",
            "annoying"]
LIKE = {1: ["loved", "enjoyed", "liked", "adored"], 0: ["hated", "disliked", "could not stand"]}
LIKE_BASE = {1: ["love", "enjoy", "like"], 0: ["hate", "dislike", "mind"]}
INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly "]


def sentence(rng: random.Random, event: tuple[int, int, int, int, int]) -> str:
    """One surface form of an event: a random template (active or passive) and random synonyms."""
    s, v, o, p, t = event
    past, participle = wording(rng, VERBS[v])
    template = rng.choice(ACTIVE + PASSIVE)
    text = template.format(S=wording(rng, PEOPLE[s]), V=past, VPP=participle, O=wording(rng, PEOPLE[o]),
                           P=wording(rng, PLACES[p]), T=wording(rng, TIMES[t]))
    return text[0].upper() + text[1:]


def wording(rng: random.Random, forms: list):
    """A slot's first wording, or with probability SYNONYMS any of its wordings."""
    return rng.choice(forms) if rng.random() < SYNONYMS else forms[0]


def random_event(rng: random.Random) -> tuple[int, int, int, int, int]:
    s, o = rng.sample(range(len(PEOPLE)), 2)
    return (s, rng.randrange(len(VERBS)), o, rng.randrange(len(PLACES)), rng.randrange(len(TIMES)))


def other(rng: random.Random, size: int, avoid: set[int]) -> int:
    return rng.choice([i for i in range(size) if i not in avoid])


def change(rng: random.Random, event: tuple[int, ...], slots: set[str]) -> tuple[int, ...]:
    """The event with every slot in ``slots`` replaced by a different meaning (subject != object kept)."""
    s, v, o, p, t = event
    if "subject" in slots:
        s = other(rng, len(PEOPLE), {event[0], o if "object" not in slots else -1})
    if "object" in slots:
        o = other(rng, len(PEOPLE), {event[2], s})
    if "verb" in slots:
        v = other(rng, len(VERBS), {v})
    if "place" in slots:
        p = other(rng, len(PLACES), {p})
    if "time" in slots:
        t = other(rng, len(TIMES), {t})
    return (s, v, o, p, t)


def paraphrase(rng: random.Random, label: int) -> tuple[str, str, str]:
    event = random_event(rng)
    first = sentence(rng, event)
    if label == 1:
        second_event = event
    else:  # one to three slots get another meaning
        changed = rng.choices((1, 2, 3), weights=(0.3, 0.4, 0.3))[0]
        second_event = change(rng, event, set(rng.sample(SLOTS, changed)))
    second = sentence(rng, second_event)
    for _ in range(10):  # a paraphrase is worded differently whenever possible
        if second != first:
            break
        second = sentence(rng, second_event)
    return first, second, str(label)


def similarity(rng: random.Random, shared: int) -> tuple[str, str, str]:
    event = random_event(rng)
    changed = set(SLOTS) - set(rng.sample(SLOTS, shared))
    return sentence(rng, event), sentence(rng, change(rng, event, changed)), f"{shared / len(SLOTS):.1f}"


def _adjective(rng: random.Random, polarity: int) -> str:
    return rng.choice(INTENSIFIERS) + rng.choice(POSITIVE if polarity else NEGATIVE)


def sentiment(rng: random.Random, label: int) -> tuple[str, str]:
    thing = rng.choice(THINGS)
    place = rng.choice(rng.choice(PLACES))
    person = rng.choice(rng.choice(PEOPLE))
    kind = rng.random()
    if kind < 0.4:  # plain
        text = rng.choice([
            f"{thing} {place} was {_adjective(rng, label)}.",
            f"{person} said {thing} was {_adjective(rng, label)}.",
            f"{person} {rng.choice(LIKE[label])} {thing} {place}.",
        ])
    elif kind < 0.7:  # negated: the words say the opposite of the label
        text = rng.choice([
            f"{thing} {place} was not {rng.choice(POSITIVE if not label else NEGATIVE)}.",
            f"{person} said {thing} was not {rng.choice(POSITIVE if not label else NEGATIVE)} at all.",
            f"{person} did not {rng.choice(LIKE_BASE[1 - label])} {thing} {place}.",
        ])
    else:  # contrast: the second clause decides
        thing2 = rng.choice([t for t in THINGS if t != thing])
        first = _adjective(rng, 1 - label)
        second = _adjective(rng, label)
        text = rng.choice([
            f"{thing} was {first}, but {thing2} was {second}.",
            f"although {thing} was {first}, {thing2} {place} was {second}.",
            f"{person} thought {thing} was {first}, but {thing2} was {second}.",
        ])
    return text[0].upper() + text[1:], str(label)


def generate(name: str, rng: random.Random) -> dict[str, list[tuple[str, ...]]]:
    """Rows of each split, no row repeated within or across splits; labels balanced by construction."""
    seen: set[tuple[str, ...]] = set()
    out: dict[str, list[tuple[str, ...]]] = {}
    for split, size in SIZES[name].items():
        rows: list[tuple[str, ...]] = []
        while len(rows) < size:
            i = len(rows)
            if name == "paraphrase":
                row = paraphrase(rng, i % 2)
            elif name == "similarity":
                row = similarity(rng, SHARED_SLOTS[i % len(SHARED_SLOTS)])
            else:
                row = sentiment(rng, i % 2)
            key = row[:-1]
            if key in seen:
                continue
            seen.add(key)
            rows.append(row)
        rng.shuffle(rows)
        out[split] = rows
    return out


HEADERS = {
    "paraphrase": ("sentence1", "sentence2", "label"),
    "similarity": ("sentence1", "sentence2", "score"),
    "sentiment": ("sentence", "label"),
}


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for offset, name in enumerate(HEADERS):
        rng = random.Random(SEED + offset)
        for split, rows in generate(name, rng).items():
            path = out_dir / f"{name}_{split}.tsv"
            lines = ["\t".join(HEADERS[name])] + ["\t".join(row) for row in rows]
            assert not any("\t" in field or "\n" in field for row in rows for field in row[:-1])
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "core" / "data" / "demo")
