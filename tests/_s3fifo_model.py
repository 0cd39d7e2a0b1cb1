"""The model of S3-FIFO (``native/s3fifo.pyx``): small, main and ghost queues."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from _order_model import MASK64, OrderModel, with_defaults

#: S3FIFOOrder's keyword options and their documented defaults, stated independently of the
#: order; test_eviction.py holds them equal to a default order's ``get_config()``.
S3FIFO_DEFAULTS: dict[str, Any] = {
    "capacity": None, "small_ratio": 0.1, "ghost_ratio": 0.9, "move_threshold": 2, "max_freq": 3, "adaptive": False,
}


class S3FIFOModel(OrderModel):
    """S3-FIFO as documented in ``memstrata.S3FIFOOrder``; ``options`` as in :data:`S3FIFO_DEFAULTS`."""

    def __init__(self, n_slots: int, **options: Any) -> None:
        o = with_defaults(S3FIFO_DEFAULTS, options, "S3FIFOModel")
        super().__init__(n_slots)
        capacity = n_slots if o["capacity"] is None else o["capacity"]
        self.capacity = capacity
        self.adaptive = o["adaptive"]
        self.small_capacity = int(capacity * o["small_ratio"])
        self.main_capacity = capacity - self.small_capacity
        self.ghost_size = int(o["ghost_ratio"] * n_slots)
        self.move_threshold = o["move_threshold"]
        self.max_freq = o["max_freq"]
        self.small: OrderedDict[int, None] = OrderedDict()
        self.main: OrderedDict[int, None] = OrderedDict()
        self.queue_of: dict[int, str] = {}
        self.freq: dict[int, int] = {}
        self.weight: dict[int, int] = {}
        self.hash: dict[int, int] = {}
        self.ghost: dict[int, int] = {}  # key hash -> number of the add that put it there
        self.n_ghost_adds = 0
        self.main_ghost: dict[int, int] = {}
        self.n_main_ghost_adds = 0
        self.has_evicted = False

    def _weight_of(self, queue: OrderedDict[int, None]) -> int:
        return sum(self.weight[s] for s in queue)

    def _queue(self, slot: int) -> OrderedDict[int, None]:
        return self.main if self.queue_of[slot] == "main" else self.small

    def in_ghost(self, key_hash: int) -> bool:
        n = self.ghost.get(key_hash & MASK64)
        return n is not None and self.n_ghost_adds - n <= self.ghost_size

    def in_main_ghost(self, key_hash: int) -> bool:
        n = self.main_ghost.get(key_hash & MASK64)
        return self.adaptive and n is not None and self.n_main_ghost_adds - n <= self.ghost_size

    def _resize_small(self, delta: int) -> None:
        self.small_capacity = min(max(self.small_capacity + delta, 0), self.capacity // 2)
        self.main_capacity = self.capacity - self.small_capacity

    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        self.hash[slot] = key_hash
        self.weight[slot] = weight
        self.freq[slot] = 0
        if self.in_ghost(key_hash):
            del self.ghost[key_hash]
            self.queue_of[slot] = "main"
            if self.adaptive:
                self._resize_small(max(weight, 1))
        elif self.in_main_ghost(key_hash):
            del self.main_ghost[key_hash]
            self.queue_of[slot] = "main"
            self._resize_small(-max(weight, 1))
        elif not self.has_evicted and self._weight_of(self.small) >= self.small_capacity:
            self.queue_of[slot] = "main"
        else:
            self.queue_of[slot] = "small"
        self._queue(slot)[slot] = None

    def _leave(self, slot: int) -> None:
        self._queue(slot).pop(slot, None)

    def _release(self, slot: int) -> None:
        self._queue(slot)[slot] = None

    def _evicted(self, slot: int) -> None:
        self.has_evicted = True
        if self.ghost_size == 0:
            return
        if self.queue_of[slot] == "small":
            self.ghost[self.hash[slot]] = self.n_ghost_adds
            self.n_ghost_adds += 1
        elif self.adaptive:
            self.main_ghost[self.hash[slot]] = self.n_main_ghost_adds
            self.n_main_ghost_adds += 1

    def touch(self, slot: int) -> None:
        self.freq[slot] = min(self.freq[slot] + 1, self.max_freq)

    def _main_victim(self) -> int | None:
        while self.main:
            head = next(iter(self.main))
            if self.freq[head] == 0:
                return head
            self.freq[head] -= 1
            self.main.move_to_end(head)
        return None

    def victim(self) -> int | None:
        while True:
            if not self.small or self._weight_of(self.main) > self.main_capacity:
                v = self._main_victim()
                if v is not None or not self.small:
                    return v
            head = next(iter(self.small))
            if self.freq[head] >= self.move_threshold:
                del self.small[head]
                self.queue_of[head] = "main"
                self.freq[head] = 0
                self.main[head] = None
                continue
            return head
