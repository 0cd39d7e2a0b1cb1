"""Eviction orders and policies: the one registry of both (compiled from native/eviction.pyx)."""

from memstrata._native.adaptive import AdaptiveOrder as AdaptiveOrder
from memstrata._native.lfu import LFUOrder as LFUOrder
from memstrata._native.order import EvictionOrder as EvictionOrder
from memstrata._native.recency import FIFOOrder as FIFOOrder
from memstrata._native.recency import LRUOrder as LRUOrder
from memstrata._native.s3fifo import S3FIFOOrder as S3FIFOOrder
from memstrata._native.wtinylfu import WTinyLFUOrder as WTinyLFUOrder

__all__ = [
    "DEFAULT_POLICY",
    "ORDERS",
    "POLICIES",
    "AdaptiveOrder",
    "EvictionOrder",
    "FIFOOrder",
    "LFUOrder",
    "LRUOrder",
    "S3FIFOOrder",
    "WTinyLFUOrder",
    "check_policy",
    "make_order",
]

ORDERS: dict[str, type[EvictionOrder]]
POLICIES: tuple[str, ...]
DEFAULT_POLICY: str

def check_policy(policy: object, name: str = "policy") -> str: ...
def make_order(policy: str, n_slots: int, capacity: int | None = None) -> EvictionOrder: ...
