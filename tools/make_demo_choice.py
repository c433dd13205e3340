"""Write the demo tasks of the pooled task types: core/data/demo/{choice,topics}_{train,dev}.jsonl and
ranking_{train,dev}.tsv.

Three small synthetic tasks over an everyday vocabulary, made from templates with a fixed seed (standard library
only, so the files are reproducible byte for byte), each learnable from a cue a tiny model can find:

- demo-choice (multiple choice, like SWAG): a context says how someone felt ("The doctor was hungry."), the
  prefix names them again ("After that, the doctor"), and four endings say what they did; the right one is the
  action that fits the feeling ("ate a sandwich."), the other three fit other feelings.
- demo-ranking (MT-DNN's pairwise ranking, like QNLI): a question ("Where did the cook leave the keys?") and two
  to five candidate sentences; one says where that thing was left by that person, the others are about another
  thing or another person.
- demo-topics (multi-label classification): a sentence of one to three clauses, each about one of five topics
  (food, sports, music, travel, weather); its labels are the topics it mentions.

Usage: ``python tools/make_demo_choice.py [OUT_DIR]`` (default: core/data/demo next to this script's parent).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261203
SIZES = {"choice": {"train": 300, "dev": 100}, "ranking": {"train": 100, "dev": 40},
         "topics": {"train": 300, "dev": 100}}  # ranking: queries (two to five pairs each)

PEOPLE = ["the doctor", "the teacher", "the lawyer", "the cook", "the kid", "the man", "the woman", "the student",
          "the boss", "the driver", "the nurse", "the farmer"]
FEELINGS = {  # a feeling and the actions that fit it
    "hungry": ["ate a sandwich.", "cooked some soup.", "ordered a pizza."],
    "thirsty": ["drank a glass of water.", "poured some juice.", "bought a cold drink."],
    "tired": ["went to bed early.", "took a long nap.", "lay down on the sofa."],
    "cold": ["put on a warm coat.", "lit the fireplace.", "closed the window."],
    "bored": ["turned on the television.", "started reading a novel.", "played a card game."],
    "dirty": ["took a hot shower.", "washed their hands.", "changed into clean clothes."],
    "lost": ["asked someone for directions.", "checked the map.", "called a friend for help."],
    "sick": ["went to see a doctor.", "took some medicine.", "stayed home from work."],
}
TIMES = ["yesterday", "last night", "this morning", "on Monday", "after lunch"]
CONNECTIVES = ["After that,", "So", "Then", "A minute later,"]

THINGS = ["the keys", "the phone", "the wallet", "the umbrella", "the book", "the bag", "the hat", "the laptop",
          "the glasses", "the ticket"]
PLACES = ["on the table", "in the car", "at the office", "under the bed", "in the kitchen", "by the door",
          "in the garden", "on the shelf", "at the station", "in the drawer"]

TOPICS = {
    "food": ["we cooked pasta for dinner", "the soup was too salty", "she baked fresh bread",
             "the restaurant served great noodles", "he ate an apple at lunch", "the cake had chocolate icing"],
    "sports": ["the team scored a late goal", "she ran a marathon", "he practised tennis all week",
               "the players trained at the stadium", "the match ended in a draw", "the coach praised the runners"],
    "music": ["the band played a new song", "he learned the guitar", "the choir sang at the concert",
              "she listened to jazz records", "the drummer kept the rhythm", "the orchestra tuned their violins"],
    "travel": ["we took a flight to Rome", "the train left the station late", "they booked a hotel by the sea",
               "he packed his suitcase for the trip", "the tourists visited the old castle",
               "she rented a car at the airport"],
    "weather": ["it rained all afternoon", "the wind was very strong", "a storm hit the coast",
                "the sun was shining brightly", "snow covered the hills", "the morning was foggy and cold"],
}
JOINERS = [", and ", "; ", ", while ", ". Also, "]


def choice(rng: random.Random) -> dict:
    person = rng.choice(PEOPLE)
    feeling = rng.choice(sorted(FEELINGS))
    others = rng.sample([f for f in sorted(FEELINGS) if f != feeling], 3)
    endings = [rng.choice(FEELINGS[f]) for f in others]
    label = rng.randrange(4)
    endings.insert(label, rng.choice(FEELINGS[feeling]))
    context = f"{person[0].upper()}{person[1:]} was {feeling}."
    return {"context": context, "prefix": f"{rng.choice(CONNECTIVES)} {person}",
            **{f"ending{i}": ending for i, ending in enumerate(endings)}, "label": label}


def ranking(rng: random.Random) -> list[tuple[str, str, str]]:
    person, thing, place = rng.choice(PEOPLE), rng.choice(THINGS), rng.choice(PLACES)
    query = f"Where did {person} leave {thing} {rng.choice(TIMES)}?"
    rows = [(query, f"{person[0].upper()}{person[1:]} left {thing} {place}.", "1")]
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:  # another thing of the same person
            other = (person, rng.choice([t for t in THINGS if t != thing]))
        else:  # the same thing, another person
            other = (rng.choice([p for p in PEOPLE if p != person]), thing)
        sentence = f"{other[0][0].upper()}{other[0][1:]} left {other[1]} {rng.choice(PLACES)}."
        rows.append((query, sentence, "0"))
    rng.shuffle(rows)
    return rows


def topics(rng: random.Random) -> dict:
    chosen = rng.sample(sorted(TOPICS), rng.choices((1, 2, 3), weights=(0.4, 0.4, 0.2))[0])
    clauses = [rng.choice(TOPICS[t]) for t in chosen]
    text = clauses[0]
    for clause in clauses[1:]:
        text += rng.choice(JOINERS) + clause
    return {"text": text[0].upper() + text[1:] + ".", "labels": [t for t in TOPICS if t in chosen]}


def unique(make, n: int, seen: set, key) -> list:
    out = []
    while len(out) < n:
        item = make()
        if key(item) not in seen:
            seen.add(key(item))
            out.append(item)
    return out


def main(out_dir: Path) -> None:
    rng = random.Random(SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, set] = {"choice": set(), "ranking": set(), "topics": set()}
    for split in ("train", "dev"):
        rows = unique(lambda: choice(rng), SIZES["choice"][split], seen["choice"], lambda r: json.dumps(r))
        write_jsonl(out_dir / f"choice_{split}.jsonl", rows)
        groups = unique(lambda: ranking(rng), SIZES["ranking"][split], seen["ranking"], lambda g: g[0][0])
        lines = ["query\tcandidate\tlabel"] + ["\t".join(pair) for group in groups for pair in group]
        (out_dir / f"ranking_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows = unique(lambda: topics(rng), SIZES["topics"][split], seen["topics"], lambda r: r["text"])
        write_jsonl(out_dir / f"topics_{split}.jsonl", rows)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "core" / "data" / "demo")
