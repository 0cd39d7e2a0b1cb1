"""W-TinyLFU (compiled from native/wtinylfu.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["WTinyLFUOrder"]

# deliberate twin of the other eviction-order stubs' headers: each .pyi mirrors its module (stubtest)
@disjoint_base
class WTinyLFUOrder(EvictionOrder):
    @property
    def window_ratio(self) -> float: ...
    @property
    def protected_ratio(self) -> float: ...
    @property
    def adaptive(self) -> bool: ...
    @property
    def doorkeeper(self) -> bool: ...
    @property
    def sketch_slots(self) -> int: ...
    @property
    def window_capacity(self) -> int: ...
    @property
    def protected_capacity(self) -> int: ...
    def __init__(
        self,
        n_slots: int,
        *,
        window_ratio: float = 0.01,
        protected_ratio: float = 0.9,
        adaptive: bool = True,
        doorkeeper: bool = True,
        sketch_slots: int = 4096,
    ) -> None: ...
    def segment_of(self, slot: int) -> str: ...
    def frequency(self, key_hash: int) -> int: ...
