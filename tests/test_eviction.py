"""Each eviction order's own state in lock-step with its model, exact sequences, and S3-FIFO's parameters.

What every order must do (the lock-step contract, config round trips, bad
input) is in ``tests/conformance/``.
"""

from __future__ import annotations

import pytest
from _cache_models import (
    AdaptiveModel,
    LFUModel,
    LRUModel,
    S3FIFOModel,
    WTinyLFUModel,
    mix64,
)
from _s3fifo_model import S3FIFO_DEFAULTS
from _wtinylfu_model import WTINYLFU_DEFAULTS
from conformance.eviction import MACHINE_SETTINGS, OrderMachine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from memstrata import AdaptiveOrder, EvictionOrder, LFUOrder, LRUOrder, S3FIFOOrder, WTinyLFUOrder


class LFUMachine(OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return LFUOrder(n_slots), LFUModel(n_slots)  # type: ignore[return-value]

    def compare(self, order: LFUOrder, model: LFUModel) -> None:  # type: ignore[override]
        for slot in model.resident:
            assert order.frequency(slot) == model.freq[slot]


class S3FIFOMachine(OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        max_freq = data.draw(st.integers(min_value=1, max_value=7), label="max_freq")
        kwargs = {
            "capacity": data.draw(st.integers(min_value=1, max_value=3 * n_slots), label="capacity"),
            "small_ratio": data.draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]), label="small_ratio"),
            "ghost_ratio": data.draw(st.sampled_from([0.0, 0.5, 0.9, 2.0]), label="ghost_ratio"),
            "max_freq": max_freq,
            "move_threshold": data.draw(st.integers(min_value=1, max_value=max_freq), label="move_threshold"),
            "adaptive": data.draw(st.booleans(), label="adaptive"),
        }
        return S3FIFOOrder(n_slots, **kwargs), S3FIFOModel(n_slots, **kwargs)  # type: ignore[return-value]

    def compare(self, order: S3FIFOOrder, model: S3FIFOModel) -> None:  # type: ignore[override]
        for slot in model.resident:
            assert order.queue_of(slot) == model.queue_of[slot]
            assert order.frequency(slot) == model.freq[slot]
        for key_hash in range(-3, 7):
            assert order.in_ghost(key_hash) == model.in_ghost(key_hash)
            assert order.in_main_ghost(key_hash) == model.in_main_ghost(key_hash)
        assert order.small_capacity == model.small_capacity


class HitRunsMachine(OrderMachine):
    """Orders that count hits: runs of them saturate counters, trigger aging and
    move the adaptive parts (WTinyLFU's window, the adaptive order's choice)."""

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data(), times=st.integers(min_value=1, max_value=12))
    def touch_often(self, data: st.DataObject, times: int) -> None:
        slot = self._resident(data)
        for _ in range(times):
            self.order.touch(slot)
            self.model.touch(slot)


class WTinyLFUMachine(HitRunsMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        kwargs = {
            "window_ratio": data.draw(st.sampled_from([0.01, 0.2, 0.5, 0.99]), label="window_ratio"),
            "protected_ratio": data.draw(st.sampled_from([0.0, 0.5, 0.8, 1.0]), label="protected_ratio"),
            "adaptive": data.draw(st.booleans(), label="adaptive"),
            "doorkeeper": data.draw(st.booleans(), label="doorkeeper"),
            # a sketch for a few slots at first, so the machine grows it (and the carry-over) too
            "sketch_slots": data.draw(st.sampled_from([1, 4, 4096]), label="sketch_slots"),
        }
        return WTinyLFUOrder(n_slots, **kwargs), WTinyLFUModel(n_slots, **kwargs)  # type: ignore[return-value]

    def compare(self, order: WTinyLFUOrder, model: WTinyLFUModel) -> None:  # type: ignore[override]
        for slot in model.resident:
            assert order.segment_of(slot) == model.segment[slot]
        for key_hash in [*range(-3, 7), *self.hash_of.values()]:
            assert order.frequency(key_hash) == model.sketch.estimate(mix64(key_hash))
        assert order.window_capacity == model.window_capacity
        assert order.protected_capacity == model.protected_capacity


class AdaptiveMachine(HitRunsMachine):
    """Small orders: the miniature caches see every key and decide every few accesses,
    so runs switch families (with pinned slots) many times."""

    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        capacity = data.draw(st.integers(min_value=1, max_value=3 * n_slots), label="capacity")
        return AdaptiveOrder(n_slots, capacity=capacity), AdaptiveModel(n_slots, capacity=capacity)  # type: ignore[return-value]

    @rule()
    def switch(self) -> None:
        self.order.switch()  # type: ignore[attr-defined]
        self.model.switch()  # type: ignore[attr-defined]

    def compare(self, order: AdaptiveOrder, model: AdaptiveModel) -> None:  # type: ignore[override]
        assert (order.family, order.switches) == (model.family, model.switches)


TestLFUOrder = LFUMachine.TestCase
TestS3FIFOOrder = S3FIFOMachine.TestCase
TestWTinyLFUOrder = WTinyLFUMachine.TestCase
TestAdaptiveOrder = AdaptiveMachine.TestCase
for _case in (TestLFUOrder, TestS3FIFOOrder, TestWTinyLFUOrder, TestAdaptiveOrder):
    _case.settings = MACHINE_SETTINGS


# ----------------------------------------------------------------- exact sequences


def test_lru_evicts_least_recently_touched() -> None:
    order = LRUOrder(3)
    for slot in (0, 1, 2):
        order.insert(slot)
    order.touch(0)
    assert [order.pop_victim() for _ in range(3)] == [1, 2, 0]


def test_lfu_breaks_ties_by_arrival_at_the_frequency() -> None:
    order = LFUOrder(4)
    for slot in (0, 1, 2, 3):
        order.insert(slot)
    order.touch(3)
    order.touch(1)  # 3 reached frequency 2 before 1 did
    assert [order.pop_victim() for _ in range(4)] == [0, 2, 3, 1]


def test_pinned_slot_is_never_the_victim_and_reenters_as_newest() -> None:
    order = LRUOrder(3)
    for slot in (0, 1, 2):
        order.insert(slot)
    order.pin(0)
    assert order.pop_victim() == 1
    assert order.pop_victim() == 2
    with pytest.raises(KeyError, match="no evictable slot"):
        order.pop_victim()
    assert order.victim() is None
    order.insert(1)
    order.unpin(0)
    assert [order.pop_victim(), order.pop_victim()] == [1, 0]


def test_lfu_pinned_slot_keeps_counting() -> None:
    order = LFUOrder(2)
    order.insert(0)
    order.insert(1)
    order.pin(0)
    order.touch(0)
    order.touch(0)
    order.touch(1)
    order.unpin(0)
    assert order.frequency(0) == 3
    assert order.pop_victim() == 1


def test_s3fifo_ghost_hit_goes_to_main() -> None:
    order = S3FIFOOrder(10)
    for slot in range(10):
        order.insert(slot, key_hash=100 + slot)
    assert order.queue_of(0) == "small"
    assert order.queue_of(1) == "main"  # the small queue (1 slot) was full: warm-up fills main
    victim = order.pop_victim()
    assert victim == 0 and order.in_ghost(100)
    order.insert(0, key_hash=100)
    assert order.queue_of(0) == "main" and not order.in_ghost(100)


def test_s3fifo_victim_is_stable_until_a_change() -> None:
    order = S3FIFOOrder(4, small_ratio=0.5)
    for slot in range(4):
        order.insert(slot, key_hash=slot)
    order.touch(0)
    order.touch(0)
    first = order.victim()
    assert all(order.victim() == first for _ in range(3))
    assert order.pop_victim() == first


# ----------------------------------------------------------------- configuration


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"capacity": 0}, ValueError, "capacity: expected a positive int"),
        ({"capacity": 1.5}, TypeError, "capacity: expected a positive int"),
        ({"small_ratio": 1.0}, ValueError, r"small_ratio: expected a float in \[0, 1\)"),
        ({"ghost_ratio": -0.1}, ValueError, "ghost_ratio: expected a float"),
        ({"move_threshold": 4}, ValueError, r"move_threshold: expected an int in \[1, max_freq=3\]"),
        ({"max_freq": 0}, ValueError, r"max_freq: expected an int in \[1, 15\]"),
        ({"max_freq": "3"}, TypeError, "max_freq: expected an int"),
    ],
)
def test_bad_s3fifo_parameters(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        S3FIFOOrder(8, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=200))
def test_s3fifo_ghost_remembers_the_last_evictions(hashes: list[int]) -> None:
    # one slot, no small-queue budget: every eviction comes from the small queue
    n_ghost = 5
    order = S3FIFOOrder(10, capacity=10, ghost_ratio=0.5)
    model = S3FIFOModel(10, capacity=10, ghost_ratio=0.5)
    assert model.ghost_size == n_ghost
    for i, h in enumerate(hashes):
        slot = i % 10
        if slot in order:
            order.remove(slot)
            model.remove(slot)
        order.insert(slot, key_hash=h)
        model.insert(slot, key_hash=h)
        if i % 3 == 0:
            assert order.pop_victim() == model.pop_victim()
    for h in hashes:
        assert order.in_ghost(h) == model.in_ghost(h)


@pytest.mark.parametrize(
    ("order_cls", "defaults"), [(S3FIFOOrder, S3FIFO_DEFAULTS), (WTinyLFUOrder, WTINYLFU_DEFAULTS)]
)
def test_model_defaults_are_the_orders(order_cls: type[EvictionOrder], defaults: dict[str, object]) -> None:
    # the models state the documented defaults on their own: a default changed in an order fails here
    config = order_cls(16).get_config()
    expected = {**defaults, "capacity": 16} if "capacity" in defaults else defaults
    assert {name: config[name] for name in defaults} == expected
    assert set(config) == {"id", "n_slots", *defaults}


def test_models_refuse_unknown_options() -> None:
    with pytest.raises(TypeError, match="small_ratio"):
        WTinyLFUModel(8, small_ratio=0.1)
    with pytest.raises(TypeError):
        S3FIFOOrder(8, window_ratio=0.1)  # type: ignore[call-arg]
