"""Growable slot arrays: a cache or order costs memory for the entries it holds, not for ``maxsize``.

The lock-step machines (``tests/test_cache.py``, ``tests/test_eviction.py``,
``tests/conformance/eviction.py``) start every order and cache at 4 slots, so
their runs grow across doublings; here: huge ``maxsize`` at construction, filling
to thousands, and the allocation figures against the doubling rule.
"""

from __future__ import annotations

import time

import pytest
from _allocations import traced_bytes
from _cache_models import INITIAL_SLOTS, grown_capacity

from memstrata import Cache
from memstrata._native.eviction import POLICIES, make_order

HUGE = 2**31 - 2
#: Bytes a new cache of any policy may allocate, whatever its maxsize: a constant. The most is
#: W-TinyLFU's frequency sketch for its first 4,096 slots (``sketch_slots``, ~40 KiB, so a
#: cache of up to 4,096 entries counts exactly as one sized from its maxsize), held by the
#: "wtinylfu" policy and twice by the adaptive one (its live order and a miniature); the
#: other policies allocate ~1-3 KiB.
CONSTRUCTION_BOUND = 128 << 10
FILL = 5_000


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("weighted", [False, True], ids=["count", "bytes"])
def test_huge_maxsize_costs_little_and_grows(policy: str, weighted: bool) -> None:
    kwargs = {"max_bytes": 2**40, "weigher": len} if weighted else {}
    cache, allocated = traced_bytes(lambda: Cache(HUGE, policy, clock=time.monotonic, **kwargs))
    assert allocated < CONSTRUCTION_BOUND, f"{policy}: {allocated} bytes at construction"
    assert cache.nbytes < CONSTRUCTION_BOUND
    assert cache.allocated_slots == INITIAL_SLOTS
    expected = {}
    for i in range(FILL):
        cache[f"k{i}"] = f"v{i}"
        expected[f"k{i}"] = f"v{i}"
        if i % 7 == 0:
            assert cache[f"k{i // 2}"] == f"v{i // 2}"
    for i in range(0, FILL, 3):  # freed slots are reused before fresh ones
        del cache[f"k{i}"], expected[f"k{i}"]
    for i in range(FILL, FILL + FILL // 3):
        cache[f"k{i}"] = f"v{i}"
        expected[f"k{i}"] = f"v{i}"
    assert dict(cache.items()) == expected
    assert cache.info()["evictions"] == 0
    assert cache.allocated_slots == grown_capacity(0, FILL, HUGE) == 8192
    # the slot arrays and the order: proportional to the slots, ~100-200 bytes each
    assert cache.nbytes < 8192 * 200 + (1 << 20), f"{policy}: {cache.nbytes} bytes for {FILL} entries"


@pytest.mark.parametrize("policy", POLICIES)
def test_order_of_huge_capacity_costs_little(policy: str) -> None:
    order, allocated = traced_bytes(lambda: make_order(policy, HUGE))
    assert allocated < CONSTRUCTION_BOUND and order.nbytes < CONSTRUCTION_BOUND
    assert order.allocated_slots == 0
    for slot in range(1000):
        order.insert(slot, key_hash=slot * 0x9E3779B97F4A7C15)
    assert order.allocated_slots == 1024 and len(order) == 1000
    victims = {order.pop_victim() for _ in range(1000)}
    assert victims == set(range(1000)) and len(order) == 0


def test_cache_allocation_doubles_up_to_maxsize() -> None:
    cache = Cache(100, "lru")
    seen = [cache.allocated_slots]
    for i in range(150):
        cache[i] = i
        seen.append(cache.allocated_slots)
    assert sorted(set(seen)) == [4, 8, 16, 32, 64, 100]
    assert len(cache) == 100 and cache.info()["evictions"] == 50
    assert sorted(cache) == list(range(50, 150))


def test_order_reports_its_bytes() -> None:
    order = make_order("lru", HUGE)
    order.insert(0)
    small = order.nbytes
    for slot in range(1, 64):
        order.insert(slot)
    assert order.allocated_slots == 64 and order.nbytes == small * 16  # 4 -> 64 slots of 9 bytes


def test_access_times_by_slot() -> None:
    now = [10.0]
    cache = Cache(HUGE, "lru", clock=lambda: now[0])
    cache["a"] = 1
    now[0] = 20.0
    cache["b"] = 2
    assert cache.access_time("a") == 10.0 and cache.access_time("b") == 20.0
    assert cache.idle(15.0) == ["a"]
    now[0] = 30.0
    assert cache.get("a") == 1 and cache.peek("b") == 2  # a hit stamps, a peek does not
    assert cache.access_time("a") == 30.0 and cache.idle(25.0) == ["b"]
    cache["b"] = 3  # a set stamps too
    assert cache.idle(25.0) == []
    del cache["a"]
    with pytest.raises(KeyError):
        cache.access_time("a")
    cache["c"] = 4  # reuses a's slot with its own time
    assert cache.access_time("c") == 30.0
    plain = Cache(4)
    with pytest.raises(TypeError, match="access_time: the cache keeps no access times"):
        plain.access_time("a")
    with pytest.raises(TypeError, match="idle: the cache keeps no access times"):
        plain.idle(0.0)
    with pytest.raises(TypeError, match="clock: expected a callable or None, got int"):
        Cache(4, clock=3)  # type: ignore[arg-type]
