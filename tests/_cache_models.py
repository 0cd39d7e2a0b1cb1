"""The plain-Python model of ``Cache``, over the models of its eviction orders.

``make_order_model(policy, ...)`` builds the order model of a policy name; the
models themselves live one policy family a module (see ``_order_model``) and are
re-exported here for the tests that take them with the cache's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from _adaptive_model import AdaptiveModel
from _list_models import FIFOModel, LFUModel, LRUModel
from _order_model import INITIAL_SLOTS, OrderModel, grown_capacity, mix64
from _s3fifo_model import S3FIFOModel
from _wtinylfu_model import WTinyLFUModel

__all__ = [
    "INITIAL_SLOTS", "AdaptiveModel", "CacheModel", "FIFOModel", "LFUModel", "LRUModel", "S3FIFOModel",
    "WTinyLFUModel", "grown_capacity", "make_order_model", "mix64",
]


def make_order_model(policy: str, n_slots: int, **kwargs: Any) -> OrderModel:
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
