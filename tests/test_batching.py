"""Token-budget batching: every item once, budgets respected, longest first."""

from __future__ import annotations

import random

import pytest

from embedhub.models.batching import plan_batches


def test_every_index_once_and_budget_respected():
    rng = random.Random(1)
    lengths = [rng.randint(1, 500) for _ in range(200)]
    batches = plan_batches(lengths, max_batch_tokens=2048, max_batch_size=16)
    assert sorted(i for batch in batches for i in batch) == list(range(200))
    for batch in batches:
        assert len(batch) <= 16
        assert max(lengths[i] for i in batch) * len(batch) <= 2048


def test_long_input_runs_alone_and_sorted_descending():
    lengths = [10, 32768, 12, 11]
    batches = plan_batches(lengths, max_batch_tokens=4096, max_batch_size=64)
    assert batches[0] == [1]
    assert batches[1] == [2, 3, 0]


def test_rejects_zero_budget():
    with pytest.raises(ValueError):
        plan_batches([1], 0, 1)
