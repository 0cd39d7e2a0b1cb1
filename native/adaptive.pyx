"""Adaptive eviction: S3-FIFO or W-TinyLFU, whichever miniature simulations say hits more."""

cimport cython
from cpython.mem cimport PyMem_RawFree
from libc.stdint cimport int32_t, int64_t, uint64_t

from _hash_slots cimport HashSlots, hs_delete_at, hs_find, hs_free, hs_init, hs_nbytes, hs_put, hs_reserve

from memstrata._native.order cimport PINNED, EvictionOrder, _capacity_arg, _grow_array, _mix64

from memstrata._native.s3fifo import S3FIFOOrder
from memstrata._native.wtinylfu import WTinyLFUOrder

__all__ = ["AdaptiveOrder"]

cdef enum:
    S3FIFO = 0
    WTINYLFU = 1

_FAMILIES = ("s3fifo-adaptive", "wtinylfu")   # by family number

# Measured on Zipf 0.99 and the Twitter trace at 1 / 5 / 10 % (benchmarks/bench_cache.py):
# smaller miniatures or faster decisions switched on noise; starting with W-TinyLFU
# spares stationary workloads the cold sketch a late switch to it would bring.
cdef Py_ssize_t SHADOW_SLOTS = 4096     # slots of each miniature cache (n_slots if fewer)
cdef double EPOCH_PER_SLOT = 0.5        # sampled accesses per shadow slot between decisions
cdef int MIN_EPOCHS = 4                 # epochs after a switch before the next decision
cdef double SWITCH_LEAD = 0.003         # switch when the other family hit this share more often
cdef int HALVE_EPOCHS = 64              # halve the tallies this often (old phases fade)


def _new_order(int family, n_slots, capacity):
    # the two families, configured as the "s3fifo-adaptive" and "wtinylfu" policies
    if family == S3FIFO:
        return S3FIFOOrder(n_slots, capacity=capacity, max_freq=7, adaptive=True)
    return WTinyLFUOrder(n_slots)


@cython.final
cdef class _Shadow:
    """A miniature cache of unit-size entries over sampled key hashes, counting its hits.

    Like ``Cache``, it hands out fresh slots in ascending order until all
    ``order.n_slots`` are used, then reuses each victim's slot; its arrays and
    table grow with the slots the order has allocated.
    """

    cdef EvictionOrder order
    cdef uint64_t* slot_hash            # slot -> key hash
    cdef Py_ssize_t n_used              # slots handed out so far (the next fresh one)
    cdef Py_ssize_t cap                 # slots of slot_hash
    cdef HashSlots table                # key hash -> slot
    cdef int64_t hits

    def __cinit__(self, EvictionOrder order):
        self.order = order
        self.slot_hash = NULL
        self.n_used = 0
        self.cap = 0
        self.hits = 0
        hs_init(&self.table)
        self._grow(1)

    def __dealloc__(self):
        PyMem_RawFree(self.slot_hash)
        hs_free(&self.table)

    cdef int _grow(self, Py_ssize_t needed) except -1:
        # room for slots [0, needed): the order's arrays, ours and the table's
        self.order.c_reserve(needed)
        _grow_array(<void**>&self.slot_hash, self.cap, self.order._cap, sizeof(uint64_t))
        hs_reserve(&self.table, self.order._cap)
        self.cap = self.order._cap
        return 0

    cdef Py_ssize_t nbytes(self) noexcept:
        return self.order.c_nbytes() + self.cap * sizeof(uint64_t) + hs_nbytes(&self.table)

    cdef int access(self, uint64_t h) except -1:
        cdef Py_ssize_t i = hs_find(&self.table, h)
        cdef Py_ssize_t slot
        if i >= 0:
            self.hits += 1
            return self.order.c_touch(self.table.values[i])
        if self.n_used < self.order.n_slots:
            slot = self.n_used
            if slot >= self.cap:
                self._grow(slot + 1)        # before any change: a MemoryError changes nothing
            self.n_used += 1
        else:                               # full: the victim's slot is reused at once
            slot = self.order.c_pop_victim()      # never -1: a shadow pins nothing
            hs_delete_at(&self.table, hs_find(&self.table, self.slot_hash[slot]))
        self.slot_hash[slot] = h
        self.order.c_insert(slot, h, 1)
        hs_put(&self.table, h, <int32_t>slot)
        return 0


cdef class AdaptiveOrder(EvictionOrder):
    """S3-FIFO or W-TinyLFU, chosen per workload by miniature simulations.

    The resident slots live in one *live* order: ``WTinyLFUOrder()`` (the
    ``"wtinylfu"`` policy) at first, or ``S3FIFOOrder(max_freq=7,
    adaptive=True)`` (``"s3fifo-adaptive"``). Beside it, two miniature caches
    of ``m = min(n_slots, 4096)`` unit-size entries, one of each family, replay
    the accesses of a fixed sample of the keys (those whose hash falls in the
    first ``m / n_slots`` of the hash space: every key if ``n_slots <= 4096``),
    the way Waldspurger et al. model a cache by spatially sampled miniature
    simulation. Every ``m / 2`` sampled accesses (an epoch) the difference of
    their hit counts is added to a *lead*, and the sampled accesses to a
    tally (both halved every 64 epochs, so old phases fade); from the 4th
    epoch after the last switch on, when the other family's miniature has hit
    more often by over 0.3 % of the tally, the live order is rebuilt as the
    other family: its slots move over oldest victim first, so their ranking is
    kept, and pinned slots stay pinned.

    Per access this costs the live order's work plus, for a sampled key, one
    hash-table lookup and one operation in each miniature cache: O(1). A
    switch is O(n_slots) and comes at most once per ``2 * m`` sampled
    accesses (in practice once per workload, or never).

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.
    capacity : int, optional
        Total weight the owner keeps resident (default ``n_slots``); the
        S3-FIFO family takes its queue shares of it. The miniature caches count
        entries, not weights.

    Examples
    --------
    >>> order = AdaptiveOrder(64)
    >>> order.family
    'wtinylfu'
    >>> for slot in range(64):
    ...     order.insert(slot, key_hash=slot)
    >>> order.pin(5)
    >>> order.pop_victim() != 5
    True
    >>> order.switch()                 # what a decision does, forced
    >>> order.family, order.switches, order.is_pinned(5), len(order)
    ('s3fifo-adaptive', 1, True, 63)
    """

    order_id = "adaptive"
    _parameters = ("capacity",)

    cdef EvictionOrder _live
    cdef readonly int64_t capacity
    cdef int _family
    cdef _Shadow _shadow_s3fifo
    cdef _Shadow _shadow_wtinylfu
    cdef uint64_t _sample_below         # a key is sampled if (hash >> 32) < this
    cdef int64_t _epoch_accesses
    cdef int64_t _epoch_length
    cdef int64_t _epochs                # since the last switch
    cdef double _lead                   # hits of the other family's shadow minus the live one's
    cdef double _sampled                # sampled accesses the lead was counted over
    cdef readonly int64_t switches
    cdef uint64_t* _key_hash
    cdef int64_t* _weight

    def __cinit__(self, n_slots, *args, **kwargs):
        self._key_hash = NULL
        self._weight = NULL

    def __init__(self, n_slots, *, capacity=None):
        cdef Py_ssize_t m = n_slots if n_slots < SHADOW_SLOTS else SHADOW_SLOTS
        capacity = _capacity_arg(capacity, n_slots)
        if self._n_resident:
            raise ValueError("AdaptiveOrder: __init__ called on an order that is in use")
        self.capacity = capacity
        self._family = WTINYLFU
        self._live = _new_order(WTINYLFU, n_slots, capacity)
        self._shadow_s3fifo = _Shadow(_new_order(S3FIFO, m, m))
        self._shadow_wtinylfu = _Shadow(_new_order(WTINYLFU, m, m))
        self._sample_below = (<uint64_t>m << 32) // <uint64_t>n_slots
        self._epoch_length = max(1, <int64_t>(EPOCH_PER_SLOT * m))
        self._epoch_accesses = 0
        self._epochs = 0
        self._lead = 0.0
        self._sampled = 0.0
        self.switches = 0

    def __dealloc__(self):
        PyMem_RawFree(self._key_hash)
        PyMem_RawFree(self._weight)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        # the live order grows with us, so inserting into it never allocates
        self._live.c_reserve(cap)
        _grow_array(<void**>&self._key_hash, self._cap, cap, sizeof(uint64_t))
        _grow_array(<void**>&self._weight, self._cap, cap, sizeof(int64_t))
        return 0

    cdef Py_ssize_t _nbytes(self) noexcept:
        return (self._cap * (sizeof(uint64_t) + sizeof(int64_t)) + self._live.c_nbytes()
                + self._shadow_s3fifo.nbytes() + self._shadow_wtinylfu.nbytes())

    # -- the choice ------------------------------------------------------------------

    cdef inline int _sample(self, uint64_t key_hash) except -1:
        cdef uint64_t h = _mix64(key_hash)
        if (h >> 32) >= self._sample_below:
            return 0
        self._shadow_s3fifo.access(h)
        self._shadow_wtinylfu.access(h)
        self._epoch_accesses += 1
        if self._epoch_accesses >= self._epoch_length:
            self._decide()
        return 0

    cdef int _decide(self) except -1:
        cdef int64_t ahead = self._shadow_wtinylfu.hits - self._shadow_s3fifo.hits
        if self._family == WTINYLFU:
            ahead = -ahead
        self._lead += <double>ahead
        self._sampled += <double>self._epoch_accesses
        self._shadow_s3fifo.hits = 0
        self._shadow_wtinylfu.hits = 0
        self._epoch_accesses = 0
        self._epochs += 1
        if self._epochs % HALVE_EPOCHS == 0:
            self._lead *= 0.5
            self._sampled *= 0.5
        if self._epochs >= MIN_EPOCHS and self._lead > SWITCH_LEAD * self._sampled:
            self._switch()
        return 0

    cdef int _switch(self) except -1:
        cdef EvictionOrder old = self._live
        cdef EvictionOrder new
        cdef Py_ssize_t v, s
        cdef list ranked = []
        cdef int family = WTINYLFU if self._family == S3FIFO else S3FIFO
        new = _new_order(family, self.n_slots, self.capacity)
        new.c_reserve(self._cap)       # all allocation before the old order is emptied
        while True:                    # the old order's ranking, next victim first
            v = old.c_pop_victim()
            if v < 0:
                break
            ranked.append(v)
        for v in ranked:
            new.c_insert(v, self._key_hash[v], self._weight[v])
        if self._n_pinned:
            for s in range(self._cap):
                if self._flags[s] & PINNED:
                    new.c_insert(s, self._key_hash[s], self._weight[s])
                    new.c_pin(s)
        self._live = new
        self._family = family
        self._lead = 0.0
        self._sampled = 0.0
        self._epochs = 0
        self.switches += 1
        return 0

    # -- hooks: the live order does the work ----------------------------------------------

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        self._key_hash[slot] = key_hash
        self._weight[slot] = weight
        self._live.c_insert(slot, key_hash, weight)
        try:
            self._sample(key_hash)
        except MemoryError:
            self._live.c_remove(slot)    # a miniature could not grow: the insert is undone
            raise
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        self._live.c_remove(slot)

    cdef int _hit(self, Py_ssize_t slot) except -1:
        self._live.c_touch(slot)
        return self._sample(self._key_hash[slot])

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        self._live.c_pin(slot)

    cdef void _release(self, Py_ssize_t slot) noexcept:
        self._live.c_unpin(slot)

    cdef void c_reweigh(self, Py_ssize_t slot, int64_t weight) noexcept:
        self._weight[slot] = weight
        self._live.c_reweigh(slot, weight)

    cdef Py_ssize_t c_victim(self) noexcept:
        return self._live.c_victim()

    cdef Py_ssize_t c_pop_victim(self) noexcept:
        # the live order evicts (its ghosts and sketch see an eviction, not a removal)
        cdef Py_ssize_t v = self._live.c_pop_victim()
        if v >= 0:
            self._flags[v] = 0
            self._n_resident -= 1
        return v

    # -- Python interface -----------------------------------------------------------------

    @property
    def family(self):
        """The live order's policy: ``"s3fifo-adaptive"`` or ``"wtinylfu"``."""
        return _FAMILIES[self._family]

    def switch(self):
        """Rebuild the live order as the other family now, as a decision would."""
        self._switch()
