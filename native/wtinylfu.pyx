"""W-TinyLFU: a window LRU in front of a segmented main LRU, admission by frequency."""

from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.math cimport fabs
cimport cython
from libc.stdint cimport int64_t, uint8_t, uint64_t

from memstrata._native.order cimport (
    INITIAL_SLOTS, PINNED, RESIDENT, EvictionOrder, SlotList, _grow_array, _list_init, _mix64,
    _pow2_at_least, _push, _resident_slot, _unlink,
)

__all__ = ["WTinyLFUOrder"]

cdef enum:
    WINDOW = 0
    PROBATION = 1
    PROTECTED = 2

cdef uint64_t _GOLDEN = 0x9E3779B97F4A7C15ULL
cdef double _RESTART_THRESHOLD = 0.05   # a hit-rate change this large restarts the climb
cdef double _STEP_SHARE = 0.0625        # restart step: this share of the slots
cdef double _STEP_DECAY = 0.98          # each step in the same regime is this much shorter


# ---------------------------------------------------------------- the sketch
# A count-min sketch of 4 rows of 4-bit counters (TinyLFU): row r of key hash h
# uses counter (h + r * (h >> 32 | 1)) mod width. Every `sample_size` counted
# accesses all counters are halved (aging), so old popularity fades; an access
# counts if it set doorkeeper bits or raised a counter. 20 * n (Caffeine
# uses 10 * n, counting the same way) measured better on Zipf 0.99 here:
# 72.0 vs 71.1 % at 5 %, 77.6 vs 76.7 % at 10 % (benchmarks/bench_cache.py). In front of
# it a doorkeeper Bloom filter (2 bits per key, cleared at each halving) absorbs
# the first access of each key, so one-hit wonders never reach the counters.
#
# n is the order's allocated slots, not n_slots: a sketch sized from n_slots must
# keep up to 4 counters for every distinct key seen within 20 * n_slots accesses,
# so its memory follows n_slots (or the stream), not the entries held, and no
# sparse layout avoids that. So the sketch grows with the slots: at each doubling
# a sketch of the new size is built, and every resident key carries over its
# estimate (its counters and doorkeeper bits are raised to it); the aging period
# becomes 20 * the new slot count. What is lost is the history of keys no longer
# resident (a cache that holds no more than it ever held before evicts nothing:
# its keys are all resident) and the smaller sketch's collisions. On the Zipf and
# Twitter streams of benchmarks/bench_cache.py, without hill climbing, hit ratios
# stay within 0.03 points of a sketch sized from n_slots; hill climbing follows
# its own path from a different warm-up and lands up to ~1 point either way.
# Once every slot is allocated the sketch has the size and aging period of
# n_slots slots.

cdef void _sketch_free(Sketch* s) noexcept:
    PyMem_RawFree(s.counters)
    PyMem_RawFree(s.door)
    s.counters = NULL
    s.door = NULL


cdef int _sketch_init(Sketch* s, Py_ssize_t n_slots, bint doorkeeper) except -1:
    s.slots = n_slots
    s.width = _pow2_at_least(<uint64_t>(4 * n_slots if n_slots >= 4 else 16))
    s.sample_size = 20 * <int64_t>n_slots
    s.additions = 0
    s.counters = <uint8_t*>PyMem_RawCalloc(2 * s.width, sizeof(uint8_t))   # 4 rows * width / 2
    s.door = NULL
    s.door_bits = 0
    if doorkeeper:
        s.door_bits = _pow2_at_least(<uint64_t>(16 * n_slots if n_slots >= 4 else 64))
        s.door = <uint64_t*>PyMem_RawCalloc(s.door_bits // 64, sizeof(uint64_t))
    if s.counters == NULL or (doorkeeper and s.door == NULL):
        _sketch_free(s)
        raise MemoryError()
    return 0


cdef inline Py_ssize_t _sketch_nbytes(Sketch* s) noexcept:
    return <Py_ssize_t>(2 * s.width + (s.door_bits // 8 if s.door != NULL else 0))


cdef inline uint64_t _counter_index(Sketch* s, uint64_t h, int row) noexcept nogil:
    return <uint64_t>row * s.width + ((h + <uint64_t>row * ((h >> 32) | 1)) & (s.width - 1))


cdef inline int _counter(Sketch* s, uint64_t i) noexcept nogil:
    return (s.counters[i >> 1] >> ((i & 1) * 4)) & 15


cdef inline void _door_bits(Sketch* s, uint64_t h, uint64_t* b1, uint64_t* b2) noexcept nogil:
    cdef uint64_t d = h * _GOLDEN
    b1[0] = (d >> 32) & (s.door_bits - 1)
    b2[0] = (d & 0xFFFFFFFFULL) & (s.door_bits - 1)


cdef inline bint _door_has(Sketch* s, uint64_t h) noexcept nogil:
    cdef uint64_t b1, b2
    if s.door == NULL:
        return False
    _door_bits(s, h, &b1, &b2)
    return ((s.door[b1 >> 6] >> (b1 & 63)) & 1) and ((s.door[b2 >> 6] >> (b2 & 63)) & 1)


cdef void _sketch_halve(Sketch* s) noexcept nogil:
    cdef uint64_t i
    for i in range(2 * s.width):
        s.counters[i] = (s.counters[i] >> 1) & 0x77
    if s.door != NULL:
        for i in range(s.door_bits // 64):
            s.door[i] = 0
    s.additions //= 2


cdef void _sketch_add(Sketch* s, uint64_t h) noexcept nogil:
    cdef uint64_t b1, b2, i
    cdef int row
    cdef bint counted = False
    if s.door != NULL and not _door_has(s, h):
        _door_bits(s, h, &b1, &b2)
        s.door[b1 >> 6] |= 1ULL << (b1 & 63)
        s.door[b2 >> 6] |= 1ULL << (b2 & 63)
        counted = True
    else:
        for row in range(4):
            i = _counter_index(s, h, row)
            if _counter(s, i) < 15:
                s.counters[i >> 1] += <uint8_t>(1 << ((i & 1) * 4))
                counted = True
    if counted:     # accesses of keys saturated in every row do not hasten aging
        s.additions += 1
        if s.additions >= s.sample_size:
            _sketch_halve(s)


cdef int _sketch_estimate(Sketch* s, uint64_t h) noexcept nogil:
    cdef int row, c
    cdef int best = 15
    for row in range(4):
        c = _counter(s, _counter_index(s, h, row))
        if c < best:
            best = c
    return best + (1 if _door_has(s, h) else 0)


cdef void _sketch_carry(Sketch* s, Sketch* old, uint64_t h) noexcept nogil:
    # raise h's counters in s to its estimate in old, and set its doorkeeper bits if old has them
    cdef int row, c, est = 15
    cdef uint64_t i, b1, b2
    for row in range(4):
        c = _counter(old, _counter_index(old, h, row))
        if c < est:
            est = c
    for row in range(4):
        i = _counter_index(s, h, row)
        if _counter(s, i) < est:
            s.counters[i >> 1] = <uint8_t>((s.counters[i >> 1] & ~(15 << ((i & 1) * 4))) | (est << ((i & 1) * 4)))
    if s.door != NULL and _door_has(old, h):
        _door_bits(s, h, &b1, &b2)
        s.door[b1 >> 6] |= 1ULL << (b1 & 63)
        s.door[b2 >> 6] |= 1ULL << (b2 & 63)


# ---------------------------------------------------------------- the order

cdef class WTinyLFUOrder(EvictionOrder):
    """W-TinyLFU: a window LRU, a segmented main LRU and a frequency sketch.

    New slots enter the *window*, a small LRU. When the window is at its share
    and a victim is wanted, the window's least recent slot (the candidate) meets
    the main area's least recent probationary slot: the one whose key the
    sketch has seen more often stays (the candidate joins probation as its newest
    entry), the other is the victim; a tie keeps the incumbent. A touch moves a
    window slot to the window's newest end, and a probationary slot into the
    *protected* segment (whose oldest slots drop back to probation beyond
    ``protected_ratio`` of the main area). If probation is empty the protected
    segment's oldest slot is demoted first, so ``victim()`` names the same slot
    until the next change.

    Every insert (a miss) and touch (a hit) is recorded in a count-min sketch of
    4-bit counters (4 rows, 4 counters per slot per row, halved every
    ``20 * n`` counted accesses: those that raised a counter or set a
    doorkeeper bit), behind a doorkeeper Bloom filter that absorbs each key's
    first access since the last halving. ``n`` is the slots allocated so far
    (``allocated_slots``, which doubles on demand up to ``n_slots``): the sketch
    grows with the entries held, and at each doubling the resident keys carry
    their estimates over to the larger sketch. With ``adaptive=True`` the
    window's share is tuned by hill climbing: every ``10 * n_slots`` accesses the
    hit rate of the period is compared with the last one's; the window keeps
    moving in the direction that helped (by 6.25 % of the slots after a change
    of 5 points or more, each later step 2 % shorter) and turns when the hit rate
    falls. Shares count slots; weights are ignored. Amortized O(1) per operation.

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.
    window_ratio : float
        (Initial) share of the slots for the window, in ``(0, 1)``; default 0.01
        (at least one slot).
    protected_ratio : float
        Share of the main area for the protected segment, in ``[0, 1]``; default 0.9
        (Caffeine uses 0.8; 0.9 hit more often here on Zipf 0.99 and the
        Twitter trace alike).
    adaptive : bool
        Tune the window's share by hill climbing (default ``True``).
    doorkeeper : bool
        Put a doorkeeper Bloom filter in front of the sketch (default ``True``).
    sketch_slots : int
        Slots the frequency sketch is sized for at first, at most ``n_slots``
        (default 4096, about 40 KiB with the doorkeeper). Past that it grows with
        the slots allocated, the resident keys carrying their estimates over: a
        sketch sized from ``n_slots`` would cost memory for entries never held,
        and one sized from a few slots would mix the frequencies of a small
        cache's first keys. An order of at most ``sketch_slots`` slots counts
        exactly as a sketch sized from ``n_slots``.

    Attributes
    ----------
    window_capacity : int
        The window's current share in slots (moves with hill climbing when
        ``adaptive``); read-only, like the parameters above.
    protected_capacity : int
        The protected segment's current share in slots; read-only.

    Examples
    --------
    >>> order = WTinyLFUOrder(4, window_ratio=0.25)
    >>> for slot in range(4):
    ...     order.insert(slot, key_hash=slot)
    >>> [order.segment_of(s) for s in range(4)]   # the window holds one slot
    ['probation', 'probation', 'probation', 'window']
    >>> order.touch(0)                 # a hit in probation: protected
    >>> order.segment_of(0)
    'protected'
    >>> order.victim()                 # slot 3 (window) meets slot 1 (probation)
    3
    >>> for _ in range(3):
    ...     order.touch(3)
    >>> order.victim()                 # now 3 is the more frequent: it displaces 1
    1
    >>> order.segment_of(3)
    'probation'
    """

    order_id = "wtinylfu"
    _parameters = ("window_ratio", "protected_ratio", "adaptive", "doorkeeper", "sketch_slots")

    def __cinit__(self, n_slots, *args, **kwargs):
        _list_init(&self._window)
        _list_init(&self._probation)
        _list_init(&self._protected)
        self._sketch.counters = NULL
        self._sketch.door = NULL

    def __init__(self, n_slots, *, window_ratio=0.01, protected_ratio=0.9, adaptive=True,
                 doorkeeper=True, sketch_slots=4096):
        window_ratio = float(window_ratio)
        protected_ratio = float(protected_ratio)
        if not 0.0 < window_ratio < 1.0:
            raise ValueError(f"window_ratio: expected a float in (0, 1), got {window_ratio}")
        if not 0.0 <= protected_ratio <= 1.0:
            raise ValueError(f"protected_ratio: expected a float in [0, 1], got {protected_ratio}")
        if isinstance(sketch_slots, bool) or not isinstance(sketch_slots, int) or sketch_slots < 1:
            raise ValueError(f"sketch_slots: expected a positive int, got {sketch_slots!r}")
        if self._n_resident:
            raise ValueError("WTinyLFUOrder: __init__ called on an order that is in use")
        self.window_ratio = window_ratio
        self.protected_ratio = protected_ratio
        self.adaptive = bool(adaptive)
        self.doorkeeper = bool(doorkeeper)
        self.sketch_slots = sketch_slots
        _sketch_free(&self._sketch)
        _sketch_init(&self._sketch, min(self.n_slots, sketch_slots), self.doorkeeper)
        self._climb_period = 10 * <int64_t>self.n_slots
        self._sample_hits = 0
        self._sample_misses = 0
        self._last_hit_rate = 0.0
        self._step = -_STEP_SHARE * self.n_slots   # the first move shrinks the window
        self._set_window(window_ratio * self.n_slots)

    def __dealloc__(self):
        PyMem_RawFree(self._segment)
        PyMem_RawFree(self._hash)
        _sketch_free(&self._sketch)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        # the slot arrays, and a sketch for `cap` slots carrying the resident keys' estimates
        cdef Sketch grown
        cdef Py_ssize_t slot
        if cap > self._sketch.slots:
            _sketch_init(&grown, cap, self.doorkeeper)
            for slot in range(self._cap):
                if self._flags[slot] & RESIDENT:
                    _sketch_carry(&grown, &self._sketch, self._hash[slot])
            grown.additions = self._sketch.additions
        try:
            _grow_array(<void**>&self._segment, self._cap, cap, sizeof(uint8_t))
            _grow_array(<void**>&self._hash, self._cap, cap, sizeof(uint64_t))
        except MemoryError:
            if cap > self._sketch.slots:
                _sketch_free(&grown)
            raise
        if cap > self._sketch.slots:
            _sketch_free(&self._sketch)
            self._sketch = grown
        return 0

    cdef Py_ssize_t _nbytes(self) noexcept:
        return self._cap * (sizeof(uint8_t) + sizeof(uint64_t)) + _sketch_nbytes(&self._sketch)

    # -- internals -------------------------------------------------------------------

    @cython.final
    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept:
        cdef uint8_t seg = self._segment[slot]
        if seg == WINDOW:
            return &self._window
        return &self._probation if seg == PROBATION else &self._protected

    @cython.final
    cdef int _record(self, uint64_t h) except -1:
        _sketch_add(&self._sketch, h)
        return 0

    @cython.final
    cdef int _estimate(self, uint64_t h) noexcept:
        return _sketch_estimate(&self._sketch, h)

    @cython.final
    cdef void _move(self, Py_ssize_t slot, int segment) noexcept:
        # an unpinned slot leaves its list and becomes the newest of `segment`
        _unlink(self._prev, self._next, self._list_of(slot), slot, 0)
        self._segment[slot] = <uint8_t>segment
        _push(self._prev, self._next, self._list_of(slot), slot, 0)

    @cython.final
    cdef void _rebalance(self) noexcept:
        # window overflow joins probation; protected overflow drops back to probation
        while self._window.count > self.window_capacity:
            self._move(self._window.head, PROBATION)
        while self._protected.count > self.protected_capacity:
            self._move(self._protected.head, PROBATION)

    @cython.final
    cdef void _set_window(self, double target) noexcept:
        cdef double top = <double>(self.n_slots - 1) if self.n_slots > 1 else 1.0
        if target < 1.0:
            target = 1.0
        elif target > top:
            target = top
        self._window_target = target
        self.window_capacity = <int64_t>target
        self.protected_capacity = <int64_t>((self.n_slots - self.window_capacity) * self.protected_ratio)
        self._rebalance()

    @cython.final
    cdef void _climb(self) noexcept:
        cdef int64_t n = self._sample_hits + self._sample_misses
        cdef double rate, change, amount
        if n < self._climb_period:
            return
        rate = <double>self._sample_hits / <double>n
        change = rate - self._last_hit_rate
        amount = self._step if change >= 0 else -self._step
        if fabs(change) >= _RESTART_THRESHOLD:
            self._step = _STEP_SHARE * self.n_slots * (1.0 if amount >= 0 else -1.0)
        else:
            self._step = _STEP_DECAY * amount
        self._last_hit_rate = rate
        self._sample_hits = 0
        self._sample_misses = 0
        self._set_window(self._window_target + amount)

    # -- hooks -------------------------------------------------------------------------

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        cdef uint64_t h = _mix64(key_hash)
        self._hash[slot] = h
        self._record(h)
        self._segment[slot] = WINDOW
        _push(self._prev, self._next, &self._window, slot, 0)
        self._rebalance()
        if self.adaptive:
            self._sample_misses += 1
            self._climb()
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, self._list_of(slot), slot, 0)

    cdef int _hit(self, Py_ssize_t slot) except -1:
        self._record(self._hash[slot])
        if not (self._flags[slot] & PINNED):
            if self._segment[slot] == PROBATION:
                self._move(slot, PROTECTED)
                self._rebalance()
            elif self._list_of(slot).tail != slot:
                self._move(slot, self._segment[slot])
        if self.adaptive:
            self._sample_hits += 1
            self._climb()
        return 0

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, self._list_of(slot), slot, 0)

    cdef void _release(self, Py_ssize_t slot) noexcept:
        _push(self._prev, self._next, self._list_of(slot), slot, 0)
        self._rebalance()

    cdef Py_ssize_t c_victim(self) noexcept:
        cdef Py_ssize_t candidate, incumbent
        if self._probation.count == 0 and self._protected.count > 0:
            self._move(self._protected.head, PROBATION)
        incumbent = self._probation.head
        if self._window.count == 0 or self._window.count < self.window_capacity:
            return incumbent if incumbent >= 0 else self._window.head
        candidate = self._window.head
        if incumbent < 0:
            return candidate
        if self._estimate(self._hash[candidate]) > self._estimate(self._hash[incumbent]):
            self._move(candidate, PROBATION)
            return incumbent
        return candidate

    # -- Python interface --------------------------------------------------------------

    def segment_of(self, slot):
        """``"window"``, ``"probation"`` or ``"protected"``: where the resident ``slot`` is."""
        return ("window", "probation", "protected")[self._segment[_resident_slot(self, slot)]]

    def frequency(self, key_hash):
        """The sketch's estimate of how often ``key_hash`` was seen (0 to 16)."""
        if isinstance(key_hash, bool) or not isinstance(key_hash, int):
            raise TypeError(f"key_hash: expected an int, got {type(key_hash).__name__}")
        return self._estimate(_mix64(<uint64_t>(key_hash & 0xFFFFFFFFFFFFFFFF)))
