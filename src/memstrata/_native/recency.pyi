"""Recency orders: LRU and FIFO (compiled from native/recency.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["FIFOOrder", "LRUOrder"]

@disjoint_base
class _OneList(EvictionOrder):
    """The list mechanics LRU and FIFO share (not exported)."""

class LRUOrder(_OneList): ...
class FIFOOrder(_OneList): ...
