"""The base of the plain-Python eviction-order models, and what they share.

A model is written for clarity, not speed (victims are found by scanning), and
follows the documented semantics exactly, so that the Cython orders can be
checked against it step by step, victim for victim (``tests/conformance/eviction.py``).
One module per policy family holds the models: ``_list_models`` (LRU, FIFO,
LFU), ``_s3fifo_model``, ``_wtinylfu_model`` and ``_adaptive_model``;
``_cache_models`` models ``Cache`` over them.
"""

from __future__ import annotations

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


def mix64(x: int) -> int:
    """The splitmix64 finalizer the native orders spread key hashes with (never 0)."""
    x &= MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    x ^= x >> 31
    return x or 1


def with_defaults(defaults: dict[str, Any], options: dict[str, Any], model: str) -> dict[str, Any]:
    """``defaults`` (a model's table of its order's documented keyword options) updated by ``options``.

    An option the table does not name raises ``TypeError``, as the order's constructor does.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"{model}: unexpected keyword option(s) {unknown}")
    return {**defaults, **options}


class OrderModel:
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
