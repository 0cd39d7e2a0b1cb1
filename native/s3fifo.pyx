"""S3-FIFO: a small FIFO, a main FIFO with CLOCK and ghost FIFOs of evicted keys."""

from cpython.long cimport PyLong_AsUnsignedLongLongMask
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free

from memstrata._native.order cimport (
    PINNED, RESIDENT, EvictionOrder, SlotList, _list_init, _mix64, _pow2_at_least, _push,
    _resident_slot, _unlink,
)

__all__ = ["S3FIFOOrder"]


# ---------------------------------------------------------------- ghost FIFO
# A FIFO of the hashes of recently evicted keys: a ring of hashes plus a linear
# probing table hash -> ring position, so membership and removal are O(1). A ring
# entry whose hash was taken out (or re-added later) is stale; it is recognised
# because the table no longer points back at its position.

cdef int _ghost_init(Ghost* g, Py_ssize_t ring_size) except -1:
    cdef uint64_t size
    g.ring = NULL
    g.keys = NULL
    g.where = NULL
    g.ring_size = ring_size if ring_size > 0 else 0
    g.ring_pos = 0
    g.mask = 0
    if g.ring_size == 0:
        return 0
    size = _pow2_at_least(<uint64_t>(2 * g.ring_size + 2))
    g.mask = size - 1
    g.ring = <uint64_t*>calloc(g.ring_size, sizeof(uint64_t))
    g.keys = <uint64_t*>calloc(size, sizeof(uint64_t))
    g.where = <int32_t*>calloc(size, sizeof(int32_t))
    if g.ring == NULL or g.keys == NULL or g.where == NULL:
        raise MemoryError()
    return 0


cdef void _ghost_free(Ghost* g) noexcept:
    free(g.ring)
    free(g.keys)
    free(g.where)
    g.ring = NULL
    g.keys = NULL
    g.where = NULL
    g.ring_size = 0


cdef inline Py_ssize_t _ghost_home(Ghost* g, uint64_t h) noexcept nogil:
    return <Py_ssize_t>((h ^ (h >> 29)) & g.mask)


cdef inline Py_ssize_t _ghost_find(Ghost* g, uint64_t h) noexcept nogil:
    cdef Py_ssize_t i = _ghost_home(g, h)
    while g.keys[i] != 0:
        if g.keys[i] == h:
            return i
        i = (i + 1) & g.mask
    return -1


cdef void _ghost_delete_at(Ghost* g, Py_ssize_t i) noexcept nogil:
    # backward-shift deletion keeps every probe sequence unbroken
    cdef Py_ssize_t j = i
    cdef Py_ssize_t k
    while True:
        j = (j + 1) & g.mask
        if g.keys[j] == 0:
            break
        k = _ghost_home(g, g.keys[j])
        if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
            continue
        g.keys[i] = g.keys[j]
        g.where[i] = g.where[j]
        i = j
    g.keys[i] = 0


cdef void _ghost_add(Ghost* g, uint64_t h) noexcept nogil:
    cdef Py_ssize_t pos, i
    cdef uint64_t old
    if g.ring_size == 0:
        return
    pos = g.ring_pos
    old = g.ring[pos]
    if old != 0:
        i = _ghost_find(g, old)
        if i >= 0 and g.where[i] == pos:
            _ghost_delete_at(g, i)
    g.ring[pos] = h
    i = _ghost_home(g, h)
    while g.keys[i] != 0 and g.keys[i] != h:
        i = (i + 1) & g.mask
    g.keys[i] = h
    g.where[i] = <int32_t>pos
    pos += 1
    g.ring_pos = 0 if pos == g.ring_size else pos


cdef bint _ghost_take(Ghost* g, uint64_t h) noexcept nogil:
    cdef Py_ssize_t i
    if g.ring_size == 0:
        return False
    i = _ghost_find(g, h)
    if i < 0:
        return False
    _ghost_delete_at(g, i)
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
        default 0.9.
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
        self._freq = <uint8_t*>calloc(n_slots, sizeof(uint8_t))
        self._queue = <uint8_t*>calloc(n_slots, sizeof(uint8_t))
        self._weight = <int64_t*>calloc(n_slots, sizeof(int64_t))
        self._hash = <uint64_t*>calloc(n_slots, sizeof(uint64_t))
        if self._freq == NULL or self._queue == NULL or self._weight == NULL or self._hash == NULL:
            raise MemoryError()
        _list_init(&self._small)
        _list_init(&self._main)
        _ghost_init(&self._ghost, 0)
        _ghost_init(&self._main_ghost, 0)

    def __init__(self, n_slots, *, capacity=None, small_ratio=0.1, ghost_ratio=0.9,
                 move_threshold=2, max_freq=3, adaptive=False):
        cdef Py_ssize_t ghost_size
        if capacity is None:
            capacity = n_slots
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity: expected a positive int, got {type(capacity).__name__}")
        if capacity <= 0 or capacity >= 2**62:
            raise ValueError(f"capacity: expected a positive int below 2**62, got {capacity}")
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
        free(self._freq)
        free(self._queue)
        free(self._weight)
        free(self._hash)
        _ghost_free(&self._ghost)
        _ghost_free(&self._main_ghost)

    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept:
        return &self._main if self._queue[slot] else &self._small

    cdef void _resize_small(self, int64_t delta) noexcept:
        cdef int64_t small = self._small_capacity + delta
        if small < 0:
            small = 0
        elif small > self._max_small:
            small = self._max_small
        self._small_capacity = small
        self._main_capacity = self.capacity - small

    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        cdef uint64_t h = _mix64(key_hash)
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

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, self._list_of(slot), slot, self._weight[slot])

    cdef void _hit(self, Py_ssize_t slot) noexcept:
        if self._freq[slot] < self.max_freq:
            self._freq[slot] += 1

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

    cdef void _move_to_main(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, &self._small, slot, self._weight[slot])
        self._queue[slot] = 1
        self._freq[slot] = 0
        _push(self._prev, self._next, &self._main, slot, self._weight[slot])

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

    def get_config(self):
        """The order's ``id`` and parameters as a JSON-safe dict."""
        return {
            "id": self.order_id,
            "n_slots": self.n_slots,
            "capacity": self.capacity,
            "small_ratio": self.small_ratio,
            "ghost_ratio": self.ghost_ratio,
            "move_threshold": self.move_threshold,
            "max_freq": self.max_freq,
            "adaptive": bool(self.adaptive),
        }

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
    if g.ring_size == 0:
        return False
    return _ghost_find(g, _mix64(PyLong_AsUnsignedLongLongMask(key_hash))) >= 0
