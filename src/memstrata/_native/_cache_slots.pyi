"""The storage half of ``Cache``: slot arrays, key table, lock, eviction loop (native/_cache_slots.pyx)."""

from typing_extensions import disjoint_base

__all__ = ["CacheSlots", "unhashable"]

def unhashable(key: object) -> TypeError: ...
@disjoint_base
class CacheSlots:
    @property
    def maxsize(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def allocated_slots(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
