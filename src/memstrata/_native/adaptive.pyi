"""Adaptive eviction: S3-FIFO or W-TinyLFU by miniature simulations (compiled from native/adaptive.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["AdaptiveOrder"]

# deliberate twin of the other eviction-order stubs' headers: each .pyi mirrors its module (stubtest)
@disjoint_base
class AdaptiveOrder(EvictionOrder):
    @property
    def capacity(self) -> int: ...
    @property
    def switches(self) -> int: ...
    @property
    def family(self) -> str: ...
    def __init__(self, n_slots: int, *, capacity: int | None = None) -> None: ...
    def switch(self) -> None: ...
