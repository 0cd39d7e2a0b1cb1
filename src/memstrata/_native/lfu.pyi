"""Frequency order: LFU (compiled from native/lfu.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["LFUOrder"]

@disjoint_base
class LFUOrder(EvictionOrder):
    def frequency(self, slot: int) -> int: ...
