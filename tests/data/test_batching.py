"""Training batches: random by default (as a plain transformers fine-tune), grouped by length only on request.

Issue 10: mtl grouped every task's batches by length (windows of 50 batches sorted by length), which
transformers.Trainer leaves off by default; the target-only run then fell below a plain fine-tune. These tests pin
the default and what each choice produces.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from mtl.data.batching import Encoded, TaskStream, length_grouped_batches, random_batches, sorted_batches
from mtl.runs.config import RunConfig

# 640 examples whose lengths cycle 3..66: any batch of consecutive lengths would be visible
LENGTHS = [3 + (i * 37) % 64 for i in range(640)]


def data() -> Encoded:
    import mtl

    table = {"input_ids": [[1] * n for n in LENGTHS], "length": list(LENGTHS), "labels": [0] * len(LENGTHS),
             "example": list(range(len(LENGTHS)))}
    return Encoded(table, mtl.create("task", "demo-sentiment"), 0)


def spread(batches: list[list[int]]) -> float:
    """Mean over batches of (longest − shortest example) in the batch."""
    return statistics.mean(max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in batches)


def test_the_default_is_random_batches():
    assert RunConfig().group_by_length is False
    stream = TaskStream(data(), 32, torch.Generator().manual_seed(0))
    assert stream.group_by_length is False


def test_random_batches_are_one_permutation_in_order_of_the_generator():
    batches = random_batches(70, 32, torch.Generator().manual_seed(3))
    order = torch.randperm(70, generator=torch.Generator().manual_seed(3)).tolist()
    assert batches == [order[:32], order[32:64], order[64:]]  # RandomSampler + BatchSampler, last batch kept


def test_a_random_stream_mixes_lengths_and_a_grouped_one_does_not():
    random_stream = TaskStream(data(), 32, torch.Generator().manual_seed(0), group_by_length=False)
    grouped_stream = TaskStream(data(), 32, torch.Generator().manual_seed(0), group_by_length=True)
    random_epoch = [random_stream.next_indices() for _ in range(20)]
    grouped_epoch = [grouped_stream.next_indices() for _ in range(20)]
    for epoch in (random_epoch, grouped_epoch):  # both: every example exactly once per epoch
        assert sorted(i for b in epoch for i in b) == list(range(len(LENGTHS)))
    # 32 lengths drawn from 3..66 span about 60 tokens; a sorted window of 640 examples gives batches of ~3
    assert spread(random_epoch) > 45
    assert spread(grouped_epoch) < 6


def test_grouped_batches_are_sorted_within_windows():
    batches = length_grouped_batches(LENGTHS, 32, torch.Generator().manual_seed(1), window=5)
    for b in batches:
        lengths = [LENGTHS[i] for i in b]
        assert lengths == sorted(lengths, reverse=True)


@pytest.mark.parametrize("group", [False, True])
def test_a_stream_resumes_where_it_stopped(group):
    first = TaskStream(data(), 32, torch.Generator().manual_seed(5), group_by_length=group)
    for _ in range(7):
        first.next_indices()
    state = first.state_dict()
    expected = [first.next_indices() for _ in range(30)]  # into the next epoch
    second = TaskStream(data(), 32, torch.Generator().manual_seed(99), group_by_length=group)
    second.load_state_dict(state)
    assert [second.next_indices() for _ in range(30)] == expected


@pytest.mark.parametrize("size", [0, -4])
def test_evaluation_batches_of_size_below_one_are_refused(size):
    """A negative step gave no batch at all, so a prediction run printed nothing and exited 0."""
    with pytest.raises(ValueError, match=f"batch size must be >= 1 \\(got {size}\\)"):
        sorted_batches([3, 1, 2], size)
    assert sorted_batches([3, 1, 2], 2) == [[1, 2], [0]]
