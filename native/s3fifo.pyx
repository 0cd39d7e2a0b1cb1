"""S3-FIFO: a small FIFO, a main FIFO with CLOCK and ghost FIFOs of evicted keys."""

from cpython.long cimport PyLong_AsUnsignedLongLongMask
from cpython.mem cimport PyMem_RawFree
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from _hash_slots cimport hs_buckets, hs_delete_at, hs_find, hs_free, hs_init, hs_nbytes, hs_put, hs_reserve

from memstrata._native.order cimport (
    INITIAL_SLOTS, PINNED, EvictionOrder, SlotList, _capacity_arg, _grow_array, _grown_capacity,
    _list_init, _mix64, _push, _resident_slot, _unlink,
)

__all__ = ["S3FIFOOrder"]


# ---------------------------------------------------------------- ghost FIFO
# A FIFO of the hashes of recently evicted keys: a ring of hashes plus a table
# hash -> ring position (_hash_slots.pxd), so membership and removal are O(1). A
# ring entry whose hash was taken out (or re-added later) is stale; it is
# recognised because the table no longer points back at its position.
#
# The ring and the table grow on demand. Only an eviction adds to a ghost, and
# only a resident slot can be evicted, so each insert reserves room for every
# slot then resident (_ghost_reserve): evictions never allocate, and a ghost holds
# memory for at most the keys it remembers plus those the cache holds.

cdef void _ghost_init(Ghost* g, Py_ssize_t ring_size) noexcept:
    g.ring = NULL
    g.ring_size = ring_size if ring_size > 0 else 0
    g.ring_alloc = 0
    g.ring_pos = 0
    hs_init(&g.table)


cdef void _ghost_free(Ghost* g) noexcept:
    PyMem_RawFree(g.ring)
    hs_free(&g.table)
    _ghost_init(g, 0)


cdef inline Py_ssize_t _ghost_nbytes(Ghost* g) noexcept:
    return g.ring_alloc * sizeof(uint64_t) + hs_nbytes(&g.table)


cdef int _ghost_reserve(Ghost* g, Py_ssize_t extra) except -1:
    # room for `extra` more additions without allocating: ring positions up to
    # ring_pos + extra, table entries up to count + extra (both at most ring_size)
    cdef Py_ssize_t ring = g.ring_pos + extra
    cdef Py_ssize_t live = g.table.count + extra
    if g.ring_size == 0:
        return 0
    # once the ring is whole (ring_alloc == ring_size) ring_pos + extra may pass it:
    # the ring wraps, nothing to grow
    if ring > g.ring_alloc and g.ring_alloc < g.ring_size:
        ring = _grown_capacity(g.ring_alloc if g.ring_alloc else INITIAL_SLOTS, ring, g.ring_size)
        _grow_array(<void**>&g.ring, g.ring_alloc, ring, sizeof(uint64_t))
        g.ring_alloc = ring
    if live > g.ring_size:
        live = g.ring_size
    if 2 * live + 2 <= hs_buckets(&g.table):
        return 0                    # the common case: the table has room (load <= 1/2)
    return hs_reserve(&g.table, live)


cdef void _ghost_add(Ghost* g, uint64_t h) noexcept nogil:
    # the room was reserved (see _ghost_reserve)
    cdef Py_ssize_t pos, i
    cdef uint64_t old
    if g.ring_size == 0:
        return
    pos = g.ring_pos
    old = g.ring[pos]
    if old != 0:
        i = hs_find(&g.table, old)
        if i >= 0 and g.table.values[i] == pos:
            hs_delete_at(&g.table, i)
    g.ring[pos] = h
    hs_put(&g.table, h, <int32_t>pos)
    pos += 1
    g.ring_pos = 0 if pos == g.ring_size else pos


cdef bint _ghost_take(Ghost* g, uint64_t h) noexcept nogil:
    cdef Py_ssize_t i = hs_find(&g.table, h)
    if i < 0:
        return False
    hs_delete_at(&g.table, i)
    return True



cdef class S3FIFOOrder(EvictionOrder):
    """S3-FIFO: a small probationary FIFO, a main FIFO with CLOCK, a ghost FIFO.

    New slots enter the small queue, unless their key hash is in the ghost queue
    (keys recently evicted from the small queue), in which case they enter the main
    queue. A touch raises the slot's counter (at most ``max_freq``). Asked for a
    victim, the order evicts from the main queue if it holds more than its share of
    ``capacity`` or the small queue is empty, else from the small queue: the small
    queue's oldest slot moves to the main queue (counter reset) if its counter
    reached ``move_threshold``, and otherwise leaves, its hash joining the ghost
    queue. The main queue reinserts its oldest slot with counter - 1 while the
    counter is positive (CLOCK). Until the first eviction, new slots go to the main
    queue once the small queue is full. Amortized O(1) per operation.

    With ``adaptive=True`` the small queue's share adapts to the workload, the way
    ARC sizes its lists: keys evicted from the main queue are remembered in a second
    ghost queue of the same length. A hit in the small queue's ghost (a key that
    left probation too early) grows the small share by the key's weight; a hit in the
    main queue's ghost (a key the main queue was too small to keep) shrinks it by the
    key's weight and readmits the key to the main queue. The share stays within
    ``[0, capacity // 2]``. On the Twitter trace the share settles near S3-FIFO's
    10 %; on Zipf streams (no one-hit wonders to filter) it shrinks towards 0.

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.
    capacity : int, optional
        Total weight the owner keeps resident (default ``n_slots``); the queue
        shares are taken of it.
    small_ratio : float
        (Initial) share of ``capacity`` for the small queue, in ``[0, 1)``; default 0.1.
    ghost_ratio : float
        Length of each ghost queue as a share of ``n_slots``, in ``[0, 16]``;
        default 0.9. The ghosts allocate as they fill, never the full length up front.
    move_threshold : int
        Touches in the small queue that earn a move to the main queue, in
        ``[1, max_freq]``; default 2.
    max_freq : int
        Saturation of the access counter, in ``[1, 15]``; default 3 (2 bits).
    adaptive : bool
        Adapt the small queue's share (see above); default ``False``.

    Examples
    --------
    >>> order = S3FIFOOrder(10)
    >>> for slot in range(10):
    ...     order.insert(slot, key_hash=slot)
    >>> order.queue_of(0), order.queue_of(1)   # warm-up: small queue full, then main
    ('small', 'main')
    >>> order.pop_victim()   # never touched in the small queue: out, into the ghost
    0
    >>> order.in_ghost(0)
    True
    >>> order.insert(0, key_hash=0)   # back soon: straight to the main queue
    >>> order.queue_of(0)
    'main'
    """

    order_id = "s3fifo"
    _parameters = ("capacity", "small_ratio", "ghost_ratio", "move_threshold", "max_freq", "adaptive")

    def __cinit__(self, n_slots, *args, **kwargs):
        _list_init(&self._small)
        _list_init(&self._main)
        _ghost_init(&self._ghost, 0)
        _ghost_init(&self._main_ghost, 0)

    def __init__(self, n_slots, *, capacity=None, small_ratio=0.1, ghost_ratio=0.9,
                 move_threshold=2, max_freq=3, adaptive=False):
        cdef Py_ssize_t ghost_size
        capacity = _capacity_arg(capacity, n_slots)
        small_ratio = float(small_ratio)
        ghost_ratio = float(ghost_ratio)
        if not 0.0 <= small_ratio < 1.0:
            raise ValueError(f"small_ratio: expected a float in [0, 1), got {small_ratio}")
        if not 0.0 <= ghost_ratio <= 16.0:
            raise ValueError(f"ghost_ratio: expected a float in [0, 16], got {ghost_ratio}")
        if isinstance(max_freq, bool) or not isinstance(max_freq, int):
            raise TypeError(f"max_freq: expected an int in [1, 15], got {type(max_freq).__name__}")
        if not 1 <= max_freq <= 15:
            raise ValueError(f"max_freq: expected an int in [1, 15], got {max_freq}")
        if isinstance(move_threshold, bool) or not isinstance(move_threshold, int):
            raise TypeError(f"move_threshold: expected an int in [1, max_freq], got {type(move_threshold).__name__}")
        if not 1 <= move_threshold <= max_freq:
            raise ValueError(f"move_threshold: expected an int in [1, max_freq={max_freq}], got {move_threshold}")
        if self._n_resident:
            raise ValueError("S3FIFOOrder: __init__ called on an order that is in use")
        # the checked parameters become the order's read-only attributes (alike in shape only to
        # other constructors' runs of assignments, e.g. tiers/_storage.py's)
        self.capacity = capacity
        self.small_ratio = small_ratio
        self.ghost_ratio = ghost_ratio
        self.move_threshold = move_threshold
        self.max_freq = max_freq
        self.adaptive = bool(adaptive)
        self._small_capacity = <int64_t>(capacity * small_ratio)
        self._main_capacity = capacity - self._small_capacity
        self._max_small = capacity // 2
        self._has_evicted = False
        ghost_size = int(ghost_ratio * self.n_slots)
        _ghost_free(&self._ghost)
        _ghost_free(&self._main_ghost)
        _ghost_init(&self._ghost, ghost_size)
        _ghost_init(&self._main_ghost, ghost_size if self.adaptive else 0)

    def __dealloc__(self):
        PyMem_RawFree(self._freq)
        PyMem_RawFree(self._queue)
        PyMem_RawFree(self._weight)
        PyMem_RawFree(self._hash)
        _ghost_free(&self._ghost)
        _ghost_free(&self._main_ghost)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        _grow_array(<void**>&self._freq, self._cap, cap, sizeof(uint8_t))
        _grow_array(<void**>&self._queue, self._cap, cap, sizeof(uint8_t))
        _grow_array(<void**>&self._weight, self._cap, cap, sizeof(int64_t))
        _grow_array(<void**>&self._hash, self._cap, cap, sizeof(uint64_t))
        return 0

    cdef Py_ssize_t _nbytes(self) noexcept:
        return (self._cap * (2 * sizeof(uint8_t) + sizeof(int64_t) + sizeof(uint64_t))
                + _ghost_nbytes(&self._ghost) + _ghost_nbytes(&self._main_ghost))

    @cython.final
    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept:
        return &self._main if self._queue[slot] else &self._small

    @cython.final
    cdef void _resize_small(self, int64_t delta) noexcept:
        cdef int64_t small = self._small_capacity + delta
        if small < 0:
            small = 0
        elif small > self._max_small:
            small = self._max_small
        self._small_capacity = small
        self._main_capacity = self.capacity - small

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        cdef uint64_t h = _mix64(key_hash)
        # every slot resident after this insert may be evicted into a ghost
        _ghost_reserve(&self._ghost, self._n_resident + 1)
        if self.adaptive:
            _ghost_reserve(&self._main_ghost, self._n_resident + 1)
        self._hash[slot] = h
        self._weight[slot] = weight
        self._freq[slot] = 0
        if _ghost_take(&self._ghost, h):
            self._queue[slot] = 1
            if self.adaptive:
                self._resize_small(weight if weight > 0 else 1)
        elif self.adaptive and _ghost_take(&self._main_ghost, h):
            self._queue[slot] = 1
            self._resize_small(-weight if weight > 0 else -1)
        elif not self._has_evicted and self._small.weight >= self._small_capacity:
            self._queue[slot] = 1
        else:
            self._queue[slot] = 0
        _push(self._prev, self._next, self._list_of(slot), slot, weight)
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, self._list_of(slot), slot, self._weight[slot])

    cdef int _hit(self, Py_ssize_t slot) except -1:
        if self._freq[slot] < self.max_freq:
            self._freq[slot] += 1
        return 0

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, self._list_of(slot), slot, self._weight[slot])

    cdef void _release(self, Py_ssize_t slot) noexcept:
        _push(self._prev, self._next, self._list_of(slot), slot, self._weight[slot])

    cdef void _evicted(self, Py_ssize_t slot) noexcept:
        self._has_evicted = True
        if self._queue[slot] == 0:
            _ghost_add(&self._ghost, self._hash[slot])
        elif self.adaptive:
            _ghost_add(&self._main_ghost, self._hash[slot])

    cdef void c_reweigh(self, Py_ssize_t slot, int64_t weight) noexcept:
        cdef SlotList* lst
        if not (self._flags[slot] & PINNED):
            lst = self._list_of(slot)
            lst.weight += weight - self._weight[slot]
        self._weight[slot] = weight

    @cython.final
    cdef void _move_to_main(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, &self._small, slot, self._weight[slot])
        self._queue[slot] = 1
        self._freq[slot] = 0
        _push(self._prev, self._next, &self._main, slot, self._weight[slot])

    @cython.final
    cdef Py_ssize_t _main_victim(self) noexcept:
        # CLOCK over the main queue: a slot with a positive counter goes round again
        cdef int32_t t
        while self._main.count:
            t = self._main.head
            if self._freq[t] == 0:
                return t
            self._freq[t] -= 1
            _unlink(self._prev, self._next, &self._main, t, self._weight[t])
            _push(self._prev, self._next, &self._main, t, self._weight[t])
        return -1

    cdef Py_ssize_t c_victim(self) noexcept:
        cdef int32_t t
        cdef Py_ssize_t v
        while True:
            if self._small.count == 0 or self._main.weight > self._main_capacity:
                v = self._main_victim()
                if v >= 0 or self._small.count == 0:
                    return v
            t = self._small.head
            if self._freq[t] >= self.move_threshold:
                self._move_to_main(t)
                continue
            return t

    @property
    def small_capacity(self):
        """The small queue's current share of ``capacity`` (fixed unless ``adaptive``)."""
        return self._small_capacity

    def queue_of(self, slot):
        """``"small"`` or ``"main"``: the queue the resident ``slot`` belongs to."""
        return "main" if self._queue[_resident_slot(self, slot)] else "small"

    def frequency(self, slot):
        """The resident ``slot``'s access counter (0 to ``max_freq``)."""
        return self._freq[_resident_slot(self, slot)]

    def in_ghost(self, key_hash):
        """Whether ``key_hash`` is in the ghost of keys evicted from the small queue."""
        return _ghost_contains(&self._ghost, key_hash)

    def in_main_ghost(self, key_hash):
        """Whether ``key_hash`` is in the ghost of keys evicted from the main queue (``adaptive`` only)."""
        return _ghost_contains(&self._main_ghost, key_hash)


cdef bint _ghost_contains(Ghost* g, object key_hash) except -1:
    if isinstance(key_hash, bool) or not isinstance(key_hash, int):
        raise TypeError(f"key_hash: expected an int, got {type(key_hash).__name__}")
    return hs_find(&g.table, _mix64(PyLong_AsUnsignedLongLongMask(key_hash))) >= 0
