"""Tokenised task data, length-aware batching and dynamic padding.

Each task's split is tokenised once. Training batches group examples of similar length (shuffle, then
sort within windows of ``window`` batches, then shuffle the batches) and are padded only to their
own longest example, which is what makes small-batch CPU training fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtl.data.examples import Examples


@dataclass
class Encoded:
    """A tokenised split: token ids per example (unpadded) and labels."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: torch.Tensor | None
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    def collate(self, indices) -> dict[str, torch.Tensor]:
        """Pad the examples ``indices`` to their longest length."""
        rows = [self.input_ids[i] for i in indices]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if self.token_type_ids is not None else None
        for j, (i, row) in enumerate(zip(indices, rows, strict=True)):
            input_ids[j, : len(row)] = torch.tensor(row)
            attention[j, : len(row)] = 1
            if types is not None:
                types[j, : len(row)] = torch.tensor(self.token_type_ids[i])
        batch = {"input_ids": input_ids, "attention_mask": attention}
        if types is not None:
            batch["token_type_ids"] = types
        if self.labels is not None:
            batch["labels"] = self.labels[torch.as_tensor(list(indices))]
        return batch


def encode(examples: Examples, tokenizer, max_length: int, regression: bool) -> Encoded:
    columns = list(zip(*examples.texts, strict=True)) if examples.texts else [[]]
    first = list(columns[0])
    second = list(columns[1]) if len(columns) > 1 else None
    enc = tokenizer(first, second, truncation=True, max_length=max_length)
    labels = None
    if examples.labels:
        labels = torch.tensor(examples.labels, dtype=torch.float32 if regression else torch.long)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(enc["input_ids"], enc.get("token_type_ids"), labels, pad_id)


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                           window: int = 50) -> list[list[int]]:
    """One epoch of batches: shuffled, sorted by length within windows of ``window`` batches, reshuffled."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]


def sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: by length, so each is padded as little as possible; order restored by the caller."""
    if batch_size < 1:  # a negative step would give no batch at all: every prediction silently dropped
        raise ValueError(f"batch size must be >= 1 (got {batch_size})")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """One epoch of batches of a random permutation (PyTorch's RandomSampler + BatchSampler, drop_last=False)."""
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


class TaskStream:
    """Endless training batches of one task: a new shuffled epoch of its own data when one is exhausted.

    Batches are random (``group_by_length=False``) or grouped by length (:func:`length_grouped_batches`).
    """

    def __init__(self, data: Encoded, batch_size: int, generator: torch.Generator,
                 group_by_length: bool = False) -> None:
        self.data, self.batch_size, self.generator = data, batch_size, generator
        self.group_by_length = group_by_length
        self.lengths = data.lengths
        self.batches: list[list[int]] = []
        self.position = 0
        self.passes = 0

    def next_indices(self) -> list[int]:
        if self.position >= len(self.batches):
            if self.group_by_length:
                self.batches = length_grouped_batches(self.lengths, self.batch_size, self.generator)
            else:
                self.batches = random_batches(len(self.lengths), self.batch_size, self.generator)
            self.position = 0
            self.passes += 1
        indices = self.batches[self.position]
        self.position += 1
        return indices

    def __next__(self) -> dict[str, torch.Tensor]:
        return self.data.collate(self.next_indices())

    def state_dict(self) -> dict:
        """Where the stream is: this pass's batch order, the position in it, and the generator (for resume)."""
        flat = [i for batch in self.batches for i in batch]
        return {"order": torch.tensor(flat, dtype=torch.int64),
                "sizes": torch.tensor([len(b) for b in self.batches], dtype=torch.int64),
                "position": self.position, "passes": self.passes, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        order = state["order"].tolist()
        self.batches, start = [], 0
        for size in state["sizes"].tolist():
            self.batches.append(order[start : start + size])
            start += size
        self.position, self.passes = int(state["position"]), int(state["passes"])
        self.generator.set_state(state["rng"])
