"""The promotion sketch's counter: the compiled ``count_hit`` against its readable twin."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata._native.hashing import count_hit as count_hit_compiled
from memstrata._native.hashing import hash_key
from memstrata.tiers._reads import HIT_MASK, HIT_SLOTS, count_hit

NAMES = st.lists(st.binary(max_size=40), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(names=NAMES, reads=st.lists(st.integers(0, 7), max_size=300), start=st.integers(0, 255))
def test_compiled_count_equals_twin(names: list[bytes], reads: list[int], start: int) -> None:
    slots = {s for n in names for s in (hash_key(n) & HIT_MASK, (hash_key(n) >> 16) & HIT_MASK)}
    twin = bytearray(HIT_SLOTS)
    for s in slots:  # counters near saturation too
        twin[s] = start
    compiled = bytearray(twin)
    for r in reads:
        name = names[r % len(names)]
        assert count_hit_compiled(compiled, name) == count_hit(twin, name)
        assert compiled == twin


def test_counts_and_saturates() -> None:
    counts = bytearray(HIT_SLOTS)
    got = [count_hit_compiled(counts, b"key") for _ in range(300)]
    assert got[:3] == [1, 2, 3] and got[-1] == 256 and max(counts) == 255  # saturated counters report 255 + 1
    assert sum(counts) == 2 * 255 or sum(counts) == 255  # two slots, or one when both halves of the hash agree


def test_wrong_sketch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="counts"):
        count_hit_compiled(bytearray(10), b"key")
