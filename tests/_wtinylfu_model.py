"""The model of W-TinyLFU (``native/wtinylfu.pyx``): window, segmented main, frequency sketch."""

from __future__ import annotations

from collections import OrderedDict

from _order_model import MASK64, OrderModel, mix64


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


class SketchModel:
    """TinyLFU's count-min sketch (4 rows of 4-bit counters, halved every
    ``20 * n`` counted accesses) behind a doorkeeper Bloom filter, sized for
    ``n`` slots: the order's allocated slots, so it is rebuilt as they grow."""

    def __init__(self, n_slots: int, doorkeeper: bool) -> None:
        self.slots = n_slots
        self.width = _pow2_at_least(4 * n_slots if n_slots >= 4 else 16)
        self.sample_size = 20 * n_slots
        self.additions = 0
        self.counters = [0] * (4 * self.width)
        self.doorkeeper = doorkeeper
        self.door_bits = _pow2_at_least(16 * n_slots if n_slots >= 4 else 64)
        self.door: set[int] = set()

    def carry(self, old: SketchModel, h: int) -> None:
        """Raise ``h``'s counters to its estimate in ``old`` (a smaller sketch), and set
        its doorkeeper bits if ``old`` has them: how a growing order keeps a resident key."""
        estimate = min(old.counters[i] for i in old._indices(h))
        for i in self._indices(h):
            self.counters[i] = max(self.counters[i], estimate)
        if old._door_has(h):
            self.door.update(self._door_bits(h))

    def _indices(self, h: int) -> list[int]:
        step = (h >> 32) | 1
        return [row * self.width + ((h + row * step) & MASK64 & (self.width - 1)) for row in range(4)]

    def _door_bits(self, h: int) -> tuple[int, int]:
        d = (h * 0x9E3779B97F4A7C15) & MASK64
        return (d >> 32) & (self.door_bits - 1), d & 0xFFFFFFFF & (self.door_bits - 1)

    def _door_has(self, h: int) -> bool:
        return self.doorkeeper and all(b in self.door for b in self._door_bits(h))

    def add(self, h: int) -> None:
        if self.doorkeeper and not self._door_has(h):
            self.door.update(self._door_bits(h))
        else:
            indices = [i for i in self._indices(h) if self.counters[i] < 15]
            if not indices:
                return  # saturated in every row: not counted towards aging
            for i in indices:
                self.counters[i] += 1
        self.additions += 1
        if self.additions >= self.sample_size:
            self.counters = [c >> 1 for c in self.counters]
            self.door.clear()
            self.additions //= 2

    def estimate(self, h: int) -> int:
        return min(self.counters[i] for i in self._indices(h)) + self._door_has(h)


# deliberate twin of WTinyLFUOrder's signature (native/wtinylfu.pyx, its .pyi stub): a model is an
# independent statement of the documented behaviour, defaults included.
class WTinyLFUModel(OrderModel):
    """W-TinyLFU as documented in ``memstrata.WTinyLFUOrder``."""

    def __init__(
        self,
        n_slots: int,
        *,
        window_ratio: float = 0.01,
        protected_ratio: float = 0.9,
        adaptive: bool = True,
        doorkeeper: bool = True,
        sketch_slots: int = 4096,
    ) -> None:
        super().__init__(n_slots)
        self.protected_ratio = protected_ratio
        self.adaptive = adaptive
        self.sketch = SketchModel(min(n_slots, sketch_slots), doorkeeper)
        self.segments: dict[str, OrderedDict[int, None]] = {
            "window": OrderedDict(), "probation": OrderedDict(), "protected": OrderedDict()}
        self.segment: dict[int, str] = {}
        self.hash: dict[int, int] = {}
        self.hits = self.misses = 0
        self.last_hit_rate = 0.0
        self.step = -0.0625 * n_slots
        self.window_capacity = self.protected_capacity = 0
        self.window_target = 0.0
        self._set_window(window_ratio * n_slots)

    def _grow(self, cap: int) -> None:
        # a sketch for `cap` slots; the resident keys carry their estimates over
        if cap > self.sketch.slots:
            old, self.sketch = self.sketch, SketchModel(cap, self.sketch.doorkeeper)
            for slot in self.resident:
                self.sketch.carry(old, self.hash[slot])
            self.sketch.additions = old.additions

    def _move(self, slot: int, segment: str) -> None:
        del self.segments[self.segment[slot]][slot]
        self.segment[slot] = segment
        self.segments[segment][slot] = None

    def _head(self, segment: str) -> int | None:
        return next(iter(self.segments[segment]), None)

    def _rebalance(self) -> None:
        while len(self.segments["window"]) > self.window_capacity:
            self._move(next(iter(self.segments["window"])), "probation")
        while len(self.segments["protected"]) > self.protected_capacity:
            self._move(next(iter(self.segments["protected"])), "probation")

    def _set_window(self, target: float) -> None:
        top = float(self.n_slots - 1) if self.n_slots > 1 else 1.0
        self.window_target = min(max(target, 1.0), top)
        self.window_capacity = int(self.window_target)
        self.protected_capacity = int((self.n_slots - self.window_capacity) * self.protected_ratio)
        self._rebalance()

    def _climb(self) -> None:
        n = self.hits + self.misses
        if n < 10 * self.n_slots:
            return
        rate = self.hits / n
        change = rate - self.last_hit_rate
        amount = self.step if change >= 0 else -self.step
        if abs(change) >= 0.05:
            self.step = 0.0625 * self.n_slots * (1.0 if amount >= 0 else -1.0)
        else:
            self.step = 0.98 * amount
        self.last_hit_rate = rate
        self.hits = self.misses = 0
        self._set_window(self.window_target + amount)

    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        h = mix64(key_hash)
        self.hash[slot] = h
        self.sketch.add(h)
        self.segment[slot] = "window"
        self.segments["window"][slot] = None
        self._rebalance()
        if self.adaptive:
            self.misses += 1
            self._climb()

    def _leave(self, slot: int) -> None:
        self.segments[self.segment[slot]].pop(slot, None)

    def _release(self, slot: int) -> None:
        self.segments[self.segment[slot]][slot] = None
        self._rebalance()

    def touch(self, slot: int) -> None:
        self.sketch.add(self.hash[slot])
        if slot not in self.pinned:
            if self.segment[slot] == "probation":
                self._move(slot, "protected")
                self._rebalance()
            else:
                self._move(slot, self.segment[slot])
        if self.adaptive:
            self.hits += 1
            self._climb()

    def victim(self) -> int | None:
        if not self.segments["probation"] and self.segments["protected"]:
            self._move(next(iter(self.segments["protected"])), "probation")
        incumbent = self._head("probation")
        window = self.segments["window"]
        if not window or len(window) < self.window_capacity:
            return incumbent if incumbent is not None else self._head("window")
        candidate = next(iter(window))
        if incumbent is None:
            return candidate
        if self.sketch.estimate(self.hash[candidate]) > self.sketch.estimate(self.hash[incumbent]):
            self._move(candidate, "probation")
            return incumbent
        return candidate
