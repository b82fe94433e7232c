"""Token-budget batches sorted by length (the encoder layer cuts every forward pass this way).

Padding makes a batch cost (items x longest item) tokens of compute and activation memory, so
batches are cut by that padded size rather than by item count: one 32k-token input runs alone
instead of dragging 63 short ones up to its length, and short inputs pack densely. Sorting by
length keeps padding waste small.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Group item indices into batches, longest first, each within the padded-token budget.

    An item longer than the budget on its own gets a batch of its own (it must run somewhere);
    callers bound single-item length separately (the model's max_tokens).
    """
    if max_batch_tokens < 1 or max_batch_size < 1:
        raise ValueError("max_batch_tokens and max_batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda index: lengths[index], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(lengths[index], 1)
        width = max(longest, length)
        if current and (len(current) >= max_batch_size or width * (len(current) + 1) > max_batch_tokens):
            batches.append(current)
            current, longest = [], 0
            width = length
        current.append(index)
        longest = width
    if current:
        batches.append(current)
    return batches
