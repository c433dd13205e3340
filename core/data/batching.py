"""Tokenised task data, length-aware batching and dynamic padding.

Each task's split is tokenised once. Training batches group examples of similar length (shuffle, then
sort within windows of ``window`` batches, then shuffle the batches) and are padded only to their
own longest example, which is what makes small-batch CPU training fast.
"""

from __future__ import annotations

import torch

from mtl.data.examples import Examples
from mtl.errors import warn


class Encoded:
    """A tokenised split: its instances as columns (``input_ids``, ``labels``, ``length``, ``example``, and what the
    task's type adds), batched by the type's ``collate``. ``table``: column -> list, or a (memory-mapped)
    ``datasets.Dataset`` from the cache (:mod:`mtl.data.cache`). ``examples``: how many examples (rows) they come
    from."""

    def __init__(self, table, task, pad_id: int, examples: int | None = None) -> None:
        self.table, self.task, self.pad_id = table, task, pad_id
        self.kind = task.kind
        self.examples = len(self) if examples is None else examples

    @property
    def arrow(self) -> bool:
        return not isinstance(self.table, dict)

    def __len__(self) -> int:
        return len(self.table) if self.arrow else len(self.table["input_ids"])

    def column(self, name: str) -> list:
        """One column of every instance, as a list."""
        if self.arrow:
            return self.table.data.column(name).to_pylist()
        return list(self.table[name])

    @property
    def lengths(self) -> list[int]:
        return self.column("length")

    @property
    def labelled(self) -> bool:
        return "labels" in (self.table.column_names if self.arrow else self.table)

    @property
    def labels(self) -> torch.Tensor | None:
        """The labels of every instance as one tensor (one label per instance), None when unlabelled."""
        if not self.labelled:
            return None
        return torch.tensor(self.column("labels"), dtype=self.kind.label_dtype(self.task))

    def rows(self, indices) -> dict[str, list]:
        if self.arrow:
            return self.table[[int(i) for i in indices]]
        return {k: [column[i] for i in indices] for k, column in self.table.items()}

    def collate(self, indices) -> dict[str, torch.Tensor]:
        """Pad the instances ``indices`` to their longest length (the type's batch)."""
        return self.kind.collate(self.task, self.rows(indices), self.pad_id)


def encode(examples: Examples, tokenizer, max_length: int, task, *, cache: bool = True) -> Encoded:
    """The instances of ``examples`` as ``task``'s type makes them (:meth:`TaskType.encode_batch`): from the data
    cache (made first if need be) when ``cache`` and the examples have a fingerprint (they came from a file or the
    hub), else tokenised in memory."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if cache and examples.fingerprint is not None and len(examples) > 0:
        import pyarrow as pa

        from mtl.data.cache import encoded_table

        try:
            table, _ = encoded_table(examples, task, tokenizer, max_length)
            return Encoded(table, task, pad_id, examples=len(examples))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            warn(f"task {task.name!r}: its instances do not fit an Arrow table ({reason}); tokenised in memory")
    rows = examples.columns(task)
    table = task.kind.encode_batch(task, rows, tokenizer, max_length)
    if "labels" in table and not examples.labelled:
        del table["labels"]
    return Encoded(table, task, pad_id, examples=len(examples))


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
