"""S3-FIFO (compiled from native/s3fifo.pyx)."""

from typing_extensions import disjoint_base

from memstrata._native.order import EvictionOrder

__all__ = ["S3FIFOOrder"]

# deliberate twin of the other eviction-order stubs' headers: each .pyi mirrors its module (stubtest)
@disjoint_base
class S3FIFOOrder(EvictionOrder):
    @property
    def capacity(self) -> int: ...
    @property
    def small_ratio(self) -> float: ...
    @property
    def ghost_ratio(self) -> float: ...
    @property
    def move_threshold(self) -> int: ...
    @property
    def max_freq(self) -> int: ...
    @property
    def adaptive(self) -> bool: ...
    @property
    def small_capacity(self) -> int: ...
    # (alike in shape only to codecs/_trainer.py's keyword parameters; the model in
    # tests/_s3fifo_model.py states these defaults in a table)
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
    ) -> None: ...
    def queue_of(self, slot: int) -> str: ...
    def frequency(self, slot: int) -> int: ...
    def in_ghost(self, key_hash: int) -> bool: ...
    def in_main_ghost(self, key_hash: int) -> bool: ...
