"""Models of the orders kept as plain lists: LRU, FIFO and LFU (``native/recency.pyx``, ``native/lfu.pyx``)."""

from __future__ import annotations

from collections import OrderedDict

from _order_model import OrderModel


class LRUModel(OrderModel):
    """Victim: the unpinned slot touched (or inserted, or unpinned) longest ago."""

    def __init__(self, n_slots: int) -> None:
        super().__init__(n_slots)
        self.queue: OrderedDict[int, None] = OrderedDict()

    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        self.queue[slot] = None

    def _leave(self, slot: int) -> None:
        self.queue.pop(slot, None)

    def _release(self, slot: int) -> None:
        self.queue[slot] = None

    def touch(self, slot: int) -> None:
        if slot in self.queue:
            self.queue.move_to_end(slot)

    def victim(self) -> int | None:
        return next(iter(self.queue), None)


class FIFOModel(LRUModel):
    """Victim: the unpinned slot inserted (or unpinned) longest ago."""

    def touch(self, slot: int) -> None:
        pass


class LFUModel(OrderModel):
    """Victim: lowest access count; among equals, the one that reached it first."""

    def __init__(self, n_slots: int) -> None:
        super().__init__(n_slots)
        self.freq: dict[int, int] = {}
        self.since: dict[int, int] = {}
        self.clock = 0

    def _stamp(self, slot: int) -> None:
        self.clock += 1
        self.since[slot] = self.clock

    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        self.freq[slot] = 1
        self._stamp(slot)

    def _leave(self, slot: int) -> None:
        pass

    def _release(self, slot: int) -> None:
        self._stamp(slot)

    def touch(self, slot: int) -> None:
        self.freq[slot] += 1
        self._stamp(slot)

    def victim(self) -> int | None:
        candidates = [s for s in self.resident if s not in self.pinned]
        if not candidates:
            return None
        return min(candidates, key=lambda s: (self.freq[s], self.since[s]))
