"""Plain-Python reference models of the eviction orders and of ``Cache``.

Each model is written for clarity, not speed (victims are found by scanning), and
follows the documented semantics exactly, so that the Cython structures can be
checked against it step by step, victim for victim.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

MASK64 = (1 << 64) - 1
#: Slots a native order or cache allocates first; it doubles them on demand.
INITIAL_SLOTS = 4


def grown_capacity(allocated: int, needed: int, limit: int) -> int:
    """The allocation after doubling ``allocated`` (or ``INITIAL_SLOTS``) until it holds ``needed``, at most ``limit``."""
    cap = allocated or INITIAL_SLOTS
    while cap < needed:
        cap *= 2
    return min(cap, limit)


class _OrderModel:
    """Shared bookkeeping: resident slots, the pinned set and the allocated slots."""

    def __init__(self, n_slots: int) -> None:
        self.n_slots = n_slots
        self.resident: set[int] = set()
        self.pinned: set[int] = set()
        self.allocated = 0

    def reserve(self, n: int) -> None:
        """Allocate slots ``[0, n)`` the way the native orders do (doubling)."""
        if n > self.allocated:
            cap = grown_capacity(self.allocated, n, self.n_slots)
            self._grow(cap)
            self.allocated = cap

    def _grow(self, cap: int) -> None:
        """Hook: the order's state that depends on the allocated slots (the W-TinyLFU sketch)."""

    def __len__(self) -> int:
        return len(self.resident)

    def __contains__(self, slot: int) -> bool:
        return slot in self.resident

    def insert(self, slot: int, key_hash: int = 0, weight: int = 1) -> None:
        assert slot not in self.resident
        self.reserve(slot + 1)
        self.resident.add(slot)
        self._enter(slot, key_hash & MASK64, weight)

    def remove(self, slot: int) -> None:
        self._leave(slot)
        self.resident.discard(slot)
        self.pinned.discard(slot)

    def pin(self, slot: int) -> None:
        if slot not in self.pinned:
            self._leave(slot)
            self.pinned.add(slot)

    def unpin(self, slot: int) -> None:
        if slot in self.pinned:
            self.pinned.discard(slot)
            self._release(slot)

    def pop_victim(self) -> int | None:
        v = self.victim()
        if v is not None:
            self._evicted(v)
            self.remove(v)
        return v

    # hooks
    def _enter(self, slot: int, key_hash: int, weight: int) -> None:
        raise NotImplementedError

    def _leave(self, slot: int) -> None:
        """Take an unpinned slot out of the queues (no-op for pinned slots)."""
        raise NotImplementedError

    def _release(self, slot: int) -> None:
        raise NotImplementedError

    def _evicted(self, slot: int) -> None:
        pass

    def touch(self, slot: int) -> None:
        raise NotImplementedError

    def victim(self) -> int | None:
        raise NotImplementedError


class LRUModel(_OrderModel):
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


class LFUModel(_OrderModel):
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


# The models' constructors repeat the orders' signatures (and the .pyi stubs) on
# purpose: a model is an independent statement of the documented behaviour.
class S3FIFOModel(_OrderModel):
    """S3-FIFO as documented in ``memstrata.S3FIFOOrder``."""

    def __init__(
        self,
        n_slots: int,
        *,
        capacity: int | None = None,
        small_ratio: float = 0.1,
        ghost_ratio: float = 0.9,
        move_threshold: int = 2,
        max_freq: int = 3,
        adaptive: bool = False,
    ) -> None:
        super().__init__(n_slots)
        capacity = n_slots if capacity is None else capacity
        self.capacity = capacity
        self.adaptive = adaptive
        self.small_capacity = int(capacity * small_ratio)
        self.main_capacity = capacity - self.small_capacity
        self.ghost_size = int(ghost_ratio * n_slots)
        self.move_threshold = move_threshold
        self.max_freq = max_freq
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


def mix64(x: int) -> int:
    """The splitmix64 finalizer the native orders spread key hashes with (never 0)."""
    x &= MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    x ^= x >> 31
    return x or 1


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


class WTinyLFUModel(_OrderModel):
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


class _ShadowModel:
    """A miniature cache of unit-size entries over sampled key hashes (``AdaptiveOrder``)."""

    def __init__(self, order: _OrderModel, n_slots: int) -> None:
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


class AdaptiveModel(_OrderModel):
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
    def _new(family: str, n_slots: int, capacity: int) -> _OrderModel:
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


def make_order_model(policy: str, n_slots: int, **kwargs: Any) -> _OrderModel:
    """The model for a ``Cache`` policy name."""
    if policy == "lru":
        return LRUModel(n_slots)
    if policy == "fifo":
        return FIFOModel(n_slots)
    if policy == "lfu":
        return LFUModel(n_slots)
    if policy == "s3fifo":
        return S3FIFOModel(n_slots, **kwargs)
    if policy == "s3fifo-adaptive":
        return S3FIFOModel(n_slots, max_freq=7, adaptive=True, **kwargs)
    if policy == "wtinylfu":
        return WTinyLFUModel(n_slots)
    if policy == "adaptive":
        return AdaptiveModel(n_slots, **kwargs)
    raise ValueError(policy)


class CacheModel:
    """``memstrata.Cache`` semantics over a model order, with the same slot reuse."""

    def __init__(
        self,
        maxsize: int,
        policy: str,
        max_bytes: int | None = None,
        weigher: Callable[[Any], int] | None = None,
        order_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.weigher = weigher
        kwargs = dict(order_kwargs or {})
        if policy.startswith("s3fifo") or policy == "adaptive":
            kwargs.setdefault("capacity", maxsize if max_bytes is None else max_bytes)
        self.order = make_order_model(policy, maxsize, **kwargs)
        self.slots: dict[Hashable, int] = {}
        self.keys: dict[int, Hashable] = {}
        self.values: dict[int, Any] = {}
        self.weights: dict[int, int] = {}
        self.free = list(range(maxsize - 1, -1, -1))
        self.used = 0  # slots handed out so far (the native cache allocates them by doubling)
        self.hits = self.misses = self.evictions = 0
        self.evicted: list[tuple[Hashable, Any]] = []

    @property
    def allocated(self) -> int:
        """Slots the native cache has allocated: ``INITIAL_SLOTS`` at first, doubled as needed."""
        return grown_capacity(0, max(1, self.used), self.maxsize)

    @property
    def bytes(self) -> int:
        return sum(self.weights.values()) if self.weigher is not None else 0

    def _weigh(self, value: Any) -> int:
        return 1 if self.weigher is None else self.weigher(value)

    def _drop(self, slot: int) -> tuple[Hashable, Any]:
        key = self.keys.pop(slot)
        value = self.values.pop(slot)
        self.weights.pop(slot, None)
        del self.slots[key]
        self.free.append(slot)
        return key, value

    def _over(self, incoming: int) -> bool:
        return (incoming >= 0 and not self.free) or (
            self.max_bytes is not None and self.bytes + max(incoming, 0) > self.max_bytes
        )

    def _shrink(self, incoming: int) -> bool:
        while self._over(incoming):
            v = self.order.pop_victim()
            if v is None:
                return False
            self.evicted.append(self._drop(v))
            self.evictions += 1
        return True

    def get(self, key: Hashable, default: Any = None) -> Any:
        slot = self.slots.get(key)
        if slot is None:
            self.misses += 1
            return default
        self.order.touch(slot)
        self.hits += 1
        return self.values[slot]

    def peek(self, key: Hashable, default: Any = None) -> Any:
        slot = self.slots.get(key)
        return default if slot is None else self.values[slot]

    def set(self, key: Hashable, value: Any) -> None:
        w = self._weigh(value)
        slot = self.slots.get(key)
        if slot is not None:
            self.values[slot] = value
            if self.weigher is not None:
                self.weights[slot] = w
                if isinstance(self.order, AdaptiveModel):
                    self.order.reweigh(slot, w)
                elif hasattr(self.order, "weight"):
                    self.order.weight[slot] = w
            self.order.touch(slot)
            if self.max_bytes is not None and self.bytes > self.max_bytes:
                self._shrink(-1)
            return
        if self.max_bytes is not None and w > self.max_bytes:
            self.evicted.append((key, value))
            self.evictions += 1
            return
        if not self._shrink(w) or self._over(w):
            self.evicted.append((key, value))
            self.evictions += 1
            return
        slot = self.free.pop()
        self.used = max(self.used, slot + 1)
        self.slots[key] = slot
        self.keys[slot] = key
        self.values[slot] = value
        if self.weigher is not None:
            self.weights[slot] = w
        self.order.insert(slot, hash(key), w)

    def pop(self, key: Hashable) -> Any:
        slot = self.slots[key]
        self.order.remove(slot)
        return self._drop(slot)[1]

    def pin(self, key: Hashable) -> None:
        self.order.pin(self.slots[key])

    def unpin(self, key: Hashable) -> None:
        self.order.unpin(self.slots[key])
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            self._shrink(-1)

    def popitem(self) -> tuple[Hashable, Any] | None:
        v = self.order.pop_victim()
        return None if v is None else self._drop(v)

    def snapshot(self) -> dict[Hashable, Any]:
        return {key: self.values[slot] for key, slot in self.slots.items()}
