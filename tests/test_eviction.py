"""Eviction orders: lock-step state machines against the plain-Python models, and bad input."""

from __future__ import annotations

import json

import pytest
from _cache_models import (
    AdaptiveModel,
    FIFOModel,
    LFUModel,
    LRUModel,
    S3FIFOModel,
    WTinyLFUModel,
    mix64,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from memstrata import AdaptiveOrder, EvictionOrder, FIFOOrder, LFUOrder, LRUOrder, S3FIFOOrder, WTinyLFUOrder
from memstrata._native.eviction import ORDERS as ORDERS_BY_ID

ORDERS = [LRUOrder, LFUOrder, FIFOOrder, S3FIFOOrder, WTinyLFUOrder, AdaptiveOrder]

# A small pool of key hashes, so that S3-FIFO's ghost queue gets hits.
KEY_HASHES = st.integers(min_value=-3, max_value=6) | st.integers(min_value=0, max_value=2**64 - 1)


class _OrderMachine(RuleBasedStateMachine):
    """Drive an order and its model with the same calls; every answer must agree."""

    order: EvictionOrder
    model: LRUModel

    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        raise NotImplementedError

    @initialize(n_slots=st.integers(min_value=1, max_value=8), data=st.data())
    def setup(self, n_slots: int, data: st.DataObject) -> None:
        self.order, self.model = self._make(n_slots, data)
        self.n_slots = n_slots
        self.hash_of: dict[int, int] = {}
        self.evicted_hashes: list[int] = []

    @rule(data=st.data(), key_hash=KEY_HASHES, weight=st.integers(min_value=0, max_value=3))
    def insert(self, data: st.DataObject, key_hash: int, weight: int) -> None:
        free = [s for s in range(self.n_slots) if s not in self.model]
        if not free:
            return
        slot = data.draw(st.sampled_from(free))
        self.order.insert(slot, key_hash, weight)
        self.model.insert(slot, key_hash, weight)
        self.hash_of[slot] = key_hash

    @precondition(lambda self: bool(self.evicted_hashes))
    @rule(data=st.data(), weight=st.integers(min_value=0, max_value=3))
    def reinsert_evicted(self, data: st.DataObject, weight: int) -> None:
        # a key evicted a moment ago comes back: the ghost queues' business
        key_hash = data.draw(st.sampled_from(self.evicted_hashes[-4:]))
        self.insert(data, key_hash, weight)

    def _resident(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.model.resident)))

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data(), op=st.sampled_from(["touch", "remove", "pin", "unpin"]))
    def on_resident(self, data: st.DataObject, op: str) -> None:
        """The same call on a resident slot, to the order and to the model."""
        slot = self._resident(data)
        getattr(self.order, op)(slot)
        getattr(self.model, op)(slot)

    @rule()
    def victim(self) -> None:
        assert self.order.victim() == self.model.victim()

    @rule()
    def pop_victim(self) -> None:
        expected = self.model.pop_victim()
        if expected is None:
            with pytest.raises(KeyError, match="pop_victim: no evictable slot"):
                self.order.pop_victim()
        else:
            assert self.order.pop_victim() == expected
            self.evicted_hashes.append(self.hash_of[expected])

    @invariant()
    def same_membership(self) -> None:
        if not hasattr(self, "order"):
            return
        assert len(self.order) == len(self.model)
        assert self.order.n_pinned == len(self.model.pinned)
        for slot in range(self.n_slots):
            assert (slot in self.order) == (slot in self.model)
            if slot in self.model:
                assert self.order.is_pinned(slot) == (slot in self.model.pinned)


class LRUMachine(_OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return LRUOrder(n_slots), LRUModel(n_slots)


class FIFOMachine(_OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return FIFOOrder(n_slots), FIFOModel(n_slots)


class LFUMachine(_OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return LFUOrder(n_slots), LFUModel(n_slots)  # type: ignore[return-value]

    @invariant()
    def same_frequencies(self) -> None:
        if not hasattr(self, "order"):
            return
        for slot in self.model.resident:
            assert self.order.frequency(slot) == self.model.freq[slot]  # type: ignore[attr-defined]


class S3FIFOMachine(_OrderMachine):
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

    @invariant()
    def same_queues(self) -> None:
        if not hasattr(self, "order"):
            return
        order: S3FIFOOrder = self.order  # type: ignore[assignment]
        model: S3FIFOModel = self.model  # type: ignore[assignment]
        for slot in model.resident:
            assert order.queue_of(slot) == model.queue_of[slot]
            assert order.frequency(slot) == model.freq[slot]
        for key_hash in range(-3, 7):
            assert order.in_ghost(key_hash) == model.in_ghost(key_hash)
            assert order.in_main_ghost(key_hash) == model.in_main_ghost(key_hash)
        assert order.small_capacity == model.small_capacity


class WTinyLFUMachine(_OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        kwargs = {
            "window_ratio": data.draw(st.sampled_from([0.01, 0.2, 0.5, 0.99]), label="window_ratio"),
            "protected_ratio": data.draw(st.sampled_from([0.0, 0.5, 0.8, 1.0]), label="protected_ratio"),
            "adaptive": data.draw(st.booleans(), label="adaptive"),
            "doorkeeper": data.draw(st.booleans(), label="doorkeeper"),
        }
        return WTinyLFUOrder(n_slots, **kwargs), WTinyLFUModel(n_slots, **kwargs)  # type: ignore[return-value]

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data(), times=st.integers(min_value=1, max_value=12))
    def touch_often(self, data: st.DataObject, times: int) -> None:
        # runs of hits: counters saturate, aging halves them, the climber moves the window
        slot = self._resident(data)
        for _ in range(times):
            self.order.touch(slot)
            self.model.touch(slot)

    @invariant()
    def same_segments(self) -> None:
        if not hasattr(self, "order"):
            return
        order: WTinyLFUOrder = self.order  # type: ignore[assignment]
        model: WTinyLFUModel = self.model  # type: ignore[assignment]
        for slot in model.resident:
            assert order.segment_of(slot) == model.segment[slot]
        for key_hash in [*range(-3, 7), *self.hash_of.values()]:
            assert order.frequency(key_hash) == model.sketch.estimate(mix64(key_hash))
        assert order.window_capacity == model.window_capacity
        assert order.protected_capacity == model.protected_capacity


class AdaptiveMachine(_OrderMachine):
    """Small orders: the miniature caches see every key and decide every few accesses,
    so runs switch families (with pinned slots) many times."""

    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        capacity = data.draw(st.integers(min_value=1, max_value=3 * n_slots), label="capacity")
        return AdaptiveOrder(n_slots, capacity=capacity), AdaptiveModel(n_slots, capacity=capacity)  # type: ignore[return-value]

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data(), times=st.integers(min_value=1, max_value=12))
    def touch_often(self, data: st.DataObject, times: int) -> None:
        slot = self._resident(data)
        for _ in range(times):
            self.order.touch(slot)
            self.model.touch(slot)

    @rule()
    def switch(self) -> None:
        self.order.switch()  # type: ignore[attr-defined]
        self.model.switch()  # type: ignore[attr-defined]

    @invariant()
    def same_family(self) -> None:
        if not hasattr(self, "order"):
            return
        order: AdaptiveOrder = self.order  # type: ignore[assignment]
        model: AdaptiveModel = self.model  # type: ignore[assignment]
        assert (order.family, order.switches) == (model.family, model.switches)


_MACHINE_SETTINGS = settings(stateful_step_count=40)
TestLRUOrder = LRUMachine.TestCase
TestFIFOOrder = FIFOMachine.TestCase
TestLFUOrder = LFUMachine.TestCase
TestS3FIFOOrder = S3FIFOMachine.TestCase
TestWTinyLFUOrder = WTinyLFUMachine.TestCase
TestAdaptiveOrder = AdaptiveMachine.TestCase
for _case in (TestLRUOrder, TestFIFOOrder, TestLFUOrder, TestS3FIFOOrder, TestWTinyLFUOrder, TestAdaptiveOrder):
    _case.settings = _MACHINE_SETTINGS


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


@pytest.mark.parametrize(
    "order",
    [
        LRUOrder(5),
        LFUOrder(1),
        FIFOOrder(7),
        S3FIFOOrder(9),
        S3FIFOOrder(6, capacity=100, small_ratio=0.25, ghost_ratio=2.0, move_threshold=4, max_freq=7, adaptive=True),
    ],
    ids=repr,
)
def test_config_round_trips_through_json(order: EvictionOrder) -> None:
    config = order.get_config()
    assert config["id"] == order.order_id and ORDERS_BY_ID[config["id"]] is type(order)
    rebuilt = EvictionOrder.from_config(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(order)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(order)
    assert len(rebuilt) == 0


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ([("id", "lru")], TypeError, "config: expected a mapping with an 'id', got list"),
        ({"id": "arc", "n_slots": 4}, ValueError, "config: unknown eviction order id 'arc'; known ids: adaptive, fifo, lfu, lru, s3fifo, wtinylfu"),
        ({"n_slots": 4}, ValueError, "config: unknown eviction order id None"),
        ({"id": "lru"}, ValueError, "config: the 'lru' order needs 'n_slots'"),
        ({"id": "lru", "n_slots": 4, "capacity": 3}, ValueError, r"config: unexpected keys \['capacity'\]"),
        ({"id": "s3fifo", "n_slots": 4, "small_ratio": 2.0}, ValueError, "small_ratio: expected a float"),
        ({"id": "fifo", "n_slots": 0}, ValueError, "n_slots: expected an int"),
    ],
)
def test_bad_configs(config: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        EvictionOrder.from_config(config)  # type: ignore[arg-type]


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", ORDERS)
def test_bad_n_slots(cls: type[EvictionOrder]) -> None:
    with pytest.raises(ValueError, match=r"n_slots: expected an int in \[1, "):
        cls(0)
    with pytest.raises(TypeError, match="n_slots: expected a positive int, got float"):
        cls(2.0)  # type: ignore[arg-type]


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError, match="EvictionOrder is abstract"):
        EvictionOrder(4)


@pytest.mark.parametrize("cls", ORDERS)
def test_bad_slots(cls: type[EvictionOrder]) -> None:
    order = cls(4)
    with pytest.raises(ValueError, match=r"slot: expected an int in \[0, 4\), got 4"):
        order.insert(4)
    with pytest.raises(ValueError, match=r"slot: expected an int in \[0, 4\), got -1"):
        order.touch(-1)
    with pytest.raises(TypeError, match="slot: expected an int in .*, got str"):
        order.insert("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="slot: expected an int in .*, got bool"):
        order.insert(True)
    with pytest.raises(ValueError, match="weight: expected a non-negative int"):
        order.insert(0, weight=-1)
    with pytest.raises(TypeError, match="key_hash: expected an int, got float"):
        order.insert(0, key_hash=1.5)  # type: ignore[arg-type]
    order.insert(0)
    with pytest.raises(ValueError, match="slot: 0 is already in the order"):
        order.insert(0)
    for method in (order.touch, order.remove, order.pin, order.unpin, order.is_pinned):
        with pytest.raises(KeyError, match="slot: 1 is not in the order"):
            method(1)
    assert "x" not in order and 0 in order and 7 not in order
    assert len(order) == 1


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
