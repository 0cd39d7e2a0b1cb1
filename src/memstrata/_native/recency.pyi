"""Recency orders: LRU and FIFO (compiled from native/recency.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["FIFOOrder", "LRUOrder"]

@disjoint_base
class LRUOrder(EvictionOrder): ...
@disjoint_base
class FIFOOrder(EvictionOrder): ...
