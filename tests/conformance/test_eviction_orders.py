"""The eviction-order contract, for every order: lock-step with its model, config round trips, bad input.

A new order joins by adding its class to ``ORDERS`` (and a config to the round
trip); its own state machine subclasses
:class:`conformance.eviction.OrderMachine` in its test file.
"""

from __future__ import annotations

import json

import pytest
from _cache_models import FIFOModel, LRUModel
from conformance.eviction import MACHINE_SETTINGS, OrderMachine
from hypothesis import strategies as st

from memstrata import AdaptiveOrder, EvictionOrder, FIFOOrder, LFUOrder, LRUOrder, S3FIFOOrder, WTinyLFUOrder
from memstrata._native.eviction import ORDERS as ORDERS_BY_ID

ORDERS = [LRUOrder, LFUOrder, FIFOOrder, S3FIFOOrder, WTinyLFUOrder, AdaptiveOrder]


def test_every_order_is_listed() -> None:
    assert set(ORDERS) == set(ORDERS_BY_ID.values())


# ------------------------------------------------- the orders with no state of their own

class LRUMachine(OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return LRUOrder(n_slots), LRUModel(n_slots)


class FIFOMachine(OrderMachine):
    def _make(self, n_slots: int, data: st.DataObject) -> tuple[EvictionOrder, LRUModel]:
        return FIFOOrder(n_slots), FIFOModel(n_slots)


TestLRUOrder = LRUMachine.TestCase
TestFIFOOrder = FIFOMachine.TestCase
TestLRUOrder.settings = TestFIFOOrder.settings = MACHINE_SETTINGS


# ----------------------------------------------------------------- configs

@pytest.mark.parametrize(
    "order",
    [
        LRUOrder(5),
        LFUOrder(1),
        FIFOOrder(7),
        S3FIFOOrder(9),
        S3FIFOOrder(6, capacity=100, small_ratio=0.25, ghost_ratio=2.0, move_threshold=4, max_freq=7, adaptive=True),
        WTinyLFUOrder(6, window_ratio=0.2, protected_ratio=0.5, adaptive=True, doorkeeper=False),
        AdaptiveOrder(8, capacity=12),
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
