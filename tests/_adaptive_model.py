"""The model of ``AdaptiveOrder`` (``native/adaptive.pyx``): S3-FIFO or W-TinyLFU by miniature caches."""

from __future__ import annotations

from _order_model import OrderModel, mix64
from _s3fifo_model import S3FIFOModel
from _wtinylfu_model import WTinyLFUModel


class _ShadowModel:
    """A miniature cache of unit-size entries over sampled key hashes (``AdaptiveOrder``)."""

    def __init__(self, order: OrderModel, n_slots: int) -> None:
        self.order = order
        self.slot_of: dict[int, int] = {}
        self.hash_of: dict[int, int] = {}
        self.free = list(range(n_slots - 1, -1, -1))
        self.hits = 0

    def access(self, h: int) -> None:
        slot = self.slot_of.get(h)
        if slot is not None:
            self.hits += 1
            self.order.touch(slot)
            return
        if not self.free:
            v = self.order.pop_victim()
            assert v is not None
            del self.slot_of[self.hash_of.pop(v)]
            self.free.append(v)
        slot = self.free.pop()
        self.slot_of[h] = slot
        self.hash_of[slot] = h
        self.order.insert(slot, h, 1)


class AdaptiveModel(OrderModel):
    """``memstrata.AdaptiveOrder`` as documented: a live W-TinyLFU or S3-FIFO model,
    two miniature caches over sampled keys, and the switching rule."""

    FAMILIES = ("s3fifo-adaptive", "wtinylfu")

    def __init__(self, n_slots: int, *, capacity: int | None = None) -> None:
        super().__init__(n_slots)
        self.capacity = n_slots if capacity is None else capacity
        m = min(n_slots, 4096)
        self.family = "wtinylfu"
        self.live = self._new(self.family, n_slots, self.capacity)
        self.shadows = {f: _ShadowModel(self._new(f, m, m), m) for f in self.FAMILIES}
        self.sample_below = (m << 32) // n_slots
        self.epoch_length = max(1, int(0.5 * m))
        self.epoch_accesses = self.epochs = self.switches = 0
        self.lead = self.sampled = 0.0
        self.key_hash: dict[int, int] = {}
        self.weight: dict[int, int] = {}

    @staticmethod
    def _new(family: str, n_slots: int, capacity: int) -> OrderModel:
        if family == "wtinylfu":
            return WTinyLFUModel(n_slots)
        return S3FIFOModel(n_slots, capacity=capacity, max_freq=7, adaptive=True)

    def _sample(self, key_hash: int) -> None:
        h = mix64(key_hash)
        if h >> 32 >= self.sample_below:
            return
        for shadow in self.shadows.values():
            shadow.access(h)
        self.epoch_accesses += 1
        if self.epoch_accesses >= self.epoch_length:
            self._decide()

    def _decide(self) -> None:
        other = self.FAMILIES[self.family == "s3fifo-adaptive"]
        self.lead += self.shadows[other].hits - self.shadows[self.family].hits
        self.sampled += self.epoch_accesses
        for shadow in self.shadows.values():
            shadow.hits = 0
        self.epoch_accesses = 0
        self.epochs += 1
        if self.epochs % 64 == 0:
            self.lead *= 0.5
            self.sampled *= 0.5
        if self.epochs >= 4 and self.lead > 0.003 * self.sampled:
            self.switch()

    def switch(self) -> None:
        family = self.FAMILIES[self.family == "s3fifo-adaptive"]
        new = self._new(family, self.n_slots, self.capacity)
        new.reserve(self.allocated)
        ranked = []
        while (v := self.live.pop_victim()) is not None:
            ranked.append(v)
        for v in ranked:
            new.insert(v, self.key_hash[v], self.weight[v])
        for s in sorted(self.pinned):
            new.insert(s, self.key_hash[s], self.weight[s])
            new.pin(s)
        self.live, self.family = new, family
        self.lead = self.sampled = 0.0
        self.epochs = 0
        self.switches += 1

    def _grow(self, cap: int) -> None:
        self.live.reserve(cap)

    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        self.key_hash[slot] = key_hash
        self.weight[slot] = weight
        self.live.insert(slot, key_hash, weight)
        self._sample(key_hash)

    def reweigh(self, slot: int, weight: int) -> None:
        self.weight[slot] = weight
        if isinstance(self.live, S3FIFOModel):
            self.live.weight[slot] = weight

    def remove(self, slot: int) -> None:
        self.live.remove(slot)
        self.resident.discard(slot)
        self.pinned.discard(slot)

    def pin(self, slot: int) -> None:
        if slot not in self.pinned:
            self.live.pin(slot)
            self.pinned.add(slot)

    def unpin(self, slot: int) -> None:
        if slot in self.pinned:
            self.pinned.discard(slot)
            self.live.unpin(slot)

    def touch(self, slot: int) -> None:
        self.live.touch(slot)
        self._sample(self.key_hash[slot])

    def victim(self) -> int | None:
        return self.live.victim()

    def pop_victim(self) -> int | None:
        v = self.live.pop_victim()
        if v is not None:
            self.resident.discard(v)
        return v
