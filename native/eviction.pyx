"""Eviction orders and policies: the one registry of both.

An *order* is an O(1) structure over integer slots that names the next victim
(``memstrata._native.order.EvictionOrder`` and its subclasses, one module per
policy family: ``recency`` (LRU, FIFO), ``lfu``, ``s3fifo``, ``wtinylfu``, and
``adaptive``, which runs S3-FIFO or W-TinyLFU, whichever suits the workload).
``ORDERS`` maps each order's ``id`` to its class, for
``EvictionOrder.from_config``.

A *policy* is a name for a configured order, what ``Cache``, the hot tier, the
tiered storage and ``StoreConfig`` accept as ``policy`` / ``eviction_policy``;
``POLICIES`` lists them and ``DEFAULT_POLICY`` is the one they all default to.
``make_order(policy, n_slots, capacity)`` builds the order of a policy.
"""

from memstrata._native.adaptive import AdaptiveOrder
from memstrata._native.lfu import LFUOrder
from memstrata._native.order import EvictionOrder
from memstrata._native.recency import FIFOOrder, LRUOrder
from memstrata._native.s3fifo import S3FIFOOrder
from memstrata._native.wtinylfu import WTinyLFUOrder

__all__ = [
    "DEFAULT_POLICY", "ORDERS", "POLICIES", "AdaptiveOrder", "EvictionOrder", "FIFOOrder", "LFUOrder", "LRUOrder",
    "S3FIFOOrder", "WTinyLFUOrder", "check_policy", "make_order",
]

#: Eviction order classes by ``id`` (the ``id`` of ``get_config()``).
ORDERS = {
    cls.order_id: cls
    for cls in (LRUOrder, LFUOrder, FIFOOrder, S3FIFOOrder, WTinyLFUOrder, AdaptiveOrder)
}


def _s3fifo_adaptive(n_slots, capacity):
    return S3FIFOOrder(n_slots, capacity=capacity, max_freq=7, adaptive=True)


_FACTORIES = {
    "adaptive": lambda n_slots, capacity: AdaptiveOrder(n_slots, capacity=capacity),
    "s3fifo-adaptive": _s3fifo_adaptive,
    "s3fifo": lambda n_slots, capacity: S3FIFOOrder(n_slots, capacity=capacity),
    "wtinylfu": lambda n_slots, capacity: WTinyLFUOrder(n_slots),
    "lru": lambda n_slots, capacity: LRUOrder(n_slots),
    "lfu": lambda n_slots, capacity: LFUOrder(n_slots),
    "fifo": lambda n_slots, capacity: FIFOOrder(n_slots),
}

#: Policy names accepted by ``Cache(policy=...)``, ``HotTier``, ``TieredStorage``
#: and ``StoreConfig.eviction_policy``.
POLICIES = tuple(_FACTORIES)
#: The policy used when none is given.
DEFAULT_POLICY = "adaptive"


def check_policy(policy, name="policy"):
    """Return ``policy`` if it names a policy, else raise naming the argument ``name``.

    Raises
    ------
    ValueError
        ``policy`` is not one of ``POLICIES`` (the message lists them).

    Examples
    --------
    >>> check_policy("lru")
    'lru'
    >>> check_policy("s3-fifo", "eviction_policy")
    Traceback (most recent call last):
    ...
    ValueError: eviction_policy: expected one of adaptive, s3fifo-adaptive, ..., got 's3-fifo'
    """
    if not isinstance(policy, str) or policy not in _FACTORIES:
        raise ValueError(f"{name}: expected one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def make_order(policy, n_slots, capacity=None):
    """Build an empty order for ``policy`` over ``n_slots`` slots.

    ``capacity`` is the total weight its owner keeps resident (default
    ``n_slots``); S3-FIFO takes its queue shares of it, the other orders count
    slots.

    Examples
    --------
    >>> make_order("wtinylfu", 100)
    WTinyLFUOrder(n_slots=100, window_ratio=0.01, protected_ratio=0.9, adaptive=True, doorkeeper=True, sketch_slots=4096) with 0 resident
    """
    check_policy(policy)
    return _FACTORIES[policy](n_slots, n_slots if capacity is None else capacity)
