"""The contract of an eviction order, as a state machine any order's tests subclass.

Every :class:`memstrata.EvictionOrder` is driven in lock-step with its
plain-Python model (``tests/_order_model.py`` and one module a family): the same inserts, touches,
removals, pins and victim pops, and every answer (the victim, membership,
pinning) must agree. ``test_eviction_orders.py`` runs the contract for every
order; ``tests/test_eviction.py`` adds each family's own state to compare.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _cache_models import LRUModel
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from memstrata import EvictionOrder

__all__ = ["KEY_HASHES", "MACHINE_SETTINGS", "OrderMachine", "check_pop"]

# A small pool of key hashes, so that S3-FIFO's ghost queue gets hits.
KEY_HASHES = st.integers(min_value=-3, max_value=6) | st.integers(min_value=0, max_value=2**64 - 1)


def check_pop(pop: Callable[[], object], expected: object, nothing_left: str) -> None:
    """``pop()`` returns the model's ``expected`` victim, or, when the model has none
    (``expected is None``), raises ``KeyError`` with a message starting ``nothing_left``."""
    if expected is None:
        with pytest.raises(KeyError, match=nothing_left):
            pop()
    else:
        assert pop() == expected


class OrderMachine(RuleBasedStateMachine):
    """Drive an order and its model with the same calls; every answer must agree.

    A subclass pairs an order with its model in ``_make`` and adds the rules
    and invariants of its family (queues, frequencies, segments).
    """

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
        check_pop(self.order.pop_victim, expected, "pop_victim: no evictable slot")
        if expected is not None:
            self.evicted_hashes.append(self.hash_of[expected])

    def compare(self, order: EvictionOrder, model: LRUModel) -> None:
        """The family's own state to compare after every step (a subclass overrides it)."""

    @invariant()
    def same_family_state(self) -> None:
        if hasattr(self, "order"):
            self.compare(self.order, self.model)

    @invariant()
    def same_membership(self) -> None:
        if not hasattr(self, "order"):
            return
        assert len(self.order) == len(self.model)
        assert self.order.n_pinned == len(self.model.pinned)
        assert self.order.allocated_slots == self.model.allocated  # grown by doubling, on demand
        for slot in range(self.n_slots):
            assert (slot in self.order) == (slot in self.model)
            if slot in self.model:
                assert self.order.is_pinned(slot) == (slot in self.model.pinned)


MACHINE_SETTINGS = settings(stateful_step_count=40)
