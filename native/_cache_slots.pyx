"""The storage half of :class:`memstrata._native.cache.Cache`: slot arrays, key table, lock, eviction loop.

``CacheSlots`` holds what a cache stores and how it finds and drops entries;
``cache.pyx`` builds the mapping API on it. A slot is an index into the
arrays: ``_keys``/``_values`` (lists), weights and access times (C arrays,
allocated only when a weigher or a clock asks for them) and the eviction
order's own arrays; all start small and grow by doubling up to ``maxsize``.
"""

cimport cython
from cpython.dict cimport PyDict_DelItem
from cpython.list cimport PyList_GET_SIZE
from cpython.mem cimport PyMem_RawFree
from libc.stdint cimport int32_t, int64_t

from memstrata._native.order cimport INITIAL_SLOTS, _grow_array, _grown_capacity

import sys

from memstrata._native.eviction import check_policy, make_order

__all__ = ["CacheSlots", "unhashable"]

cdef Py_ssize_t _SLOT_INT_BYTES = sys.getsizeof(2**20)    # a slot number's int object in the key table


def unhashable(key):
    """The ``TypeError`` for an unhashable key, naming the argument.

    >>> unhashable([1])
    TypeError('key: expected a hashable key, got unhashable list')
    """
    return TypeError(f"key: expected a hashable key, got unhashable {type(key).__name__}")


cdef int _raised() except -1:
    # "the exception already set": -1 makes Cython's caller treat it as raised here
    return -1


cdef Py_ssize_t _lookup_failed(object key) except -2:
    # the key lookup raised (the exception is set): an unhashable key's TypeError
    # becomes one naming the argument, anything else (a key's __eq__ raising) passes
    try:
        _raised()
    except TypeError:
        try:
            hash(key)
        except TypeError:
            raise unhashable(key) from None
        raise
    return -2


cdef class CacheSlots:
    """The entries of a cache by slot (use :class:`~memstrata._native.cache.Cache`).

    Examples
    --------
    >>> from memstrata import Cache
    >>> cache = Cache(1_000_000, policy="lru")
    >>> cache.allocated_slots            # a large maxsize allocates nothing up front
    4
    >>> cache.update((i, i) for i in range(5))
    >>> cache.allocated_slots            # doubled when the fifth entry came
    8
    """

    def __cinit__(self):
        self._free = NULL
        self._weights = NULL
        self._atime = NULL
        self._cap = 0
        self._lock = 0

    def __dealloc__(self):
        PyMem_RawFree(self._free)
        PyMem_RawFree(self._weights)
        PyMem_RawFree(self._atime)

    cdef int _configure(self, maxsize, policy, max_bytes, weigher, on_evict, clock, thread_safe) except -1:
        # the arguments of Cache(), checked (each error names its argument), and the first slots
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize: expected a positive int, got {type(maxsize).__name__}")
        if maxsize <= 0 or maxsize >= 2**31 - 1:
            raise ValueError(f"maxsize: expected an int in [1, 2**31 - 1), got {maxsize}")
        check_policy(policy)
        if max_bytes is not None:
            if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
                raise TypeError(f"max_bytes: expected a positive int or None, got {type(max_bytes).__name__}")
            if max_bytes <= 0 or max_bytes >= 2**62:
                raise ValueError(f"max_bytes: expected a positive int below 2**62, got {max_bytes}")
            if weigher is None:
                raise ValueError("max_bytes: needs a weigher(value) -> int to measure values")
        if weigher is not None and not callable(weigher):
            raise TypeError(f"weigher: expected a callable or None, got {type(weigher).__name__}")
        if on_evict is not None and not callable(on_evict):
            raise TypeError(f"on_evict: expected a callable or None, got {type(on_evict).__name__}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock: expected a callable or None, got {type(clock).__name__}")
        if self._cap:
            raise TypeError("Cache: __init__ called twice")

        self.maxsize = maxsize
        self.policy = policy
        self._max_bytes = -1 if max_bytes is None else max_bytes
        self._weigher = weigher
        self._on_evict = on_evict
        self._clock = clock
        self._order = make_order(policy, maxsize, maxsize if max_bytes is None else max_bytes)
        self._slots = {}
        self._keys = []
        self._values = []
        self._n_used = 0
        self._n_free = 0
        self._thread_safe = bool(thread_safe)
        self._grow(1)
        return 0

    cdef int _grow(self, Py_ssize_t needed) except -1:
        # room for slots [0, needed) here and in the order; nothing else changes, so a
        # MemoryError leaves the cache as it was
        cdef Py_ssize_t cap = _grown_capacity(self._cap if self._cap else INITIAL_SLOTS, needed, self.maxsize)
        cdef Py_ssize_t more = cap - PyList_GET_SIZE(self._keys)
        self._order.c_reserve(cap)
        _grow_array(<void**>&self._free, self._cap, cap, sizeof(int32_t))
        if self._weigher is not None:
            _grow_array(<void**>&self._weights, self._cap, cap, sizeof(int64_t))
        if self._clock is not None:
            _grow_array(<void**>&self._atime, self._cap, cap, sizeof(double))
        if more > 0:
            self._keys.extend([None] * more)
            self._values.extend([None] * more)
        self._cap = cap
        return 0

    @property
    def allocated_slots(self):
        """Slots allocated so far: they double on demand, up to ``maxsize``."""
        return self._cap

    @property
    def nbytes(self):
        """Bytes of the cache's own structures: the slot arrays (keys, values, free
        list, weights, access times), the key -> slot table with its slot numbers
        (an int object each) and the eviction order. The keys' and values'
        objects are not included."""
        cdef Py_ssize_t per_slot = sizeof(int32_t)
        self._acquire()
        try:
            if self._weights != NULL:
                per_slot += sizeof(int64_t)
            if self._atime != NULL:
                per_slot += sizeof(double)
            return (self._cap * per_slot + sys.getsizeof(self._slots) + sys.getsizeof(self._keys)
                    + sys.getsizeof(self._values) + len(self._slots) * _SLOT_INT_BYTES
                    + self._order.c_nbytes())
        finally:
            self._release()

    # -- called with the lock held --------------------------------------------------

    cdef Py_ssize_t _acquire_slot(self, object key) except -1:
        # take the lock and return `key`'s slot with the lock still held, for the
        # caller to release; an absent key (KeyError) or an unhashable one releases
        # it before raising. Runs WITHOUT the lock held.
        cdef Py_ssize_t slot
        self._acquire()
        try:
            slot = self._find(key)
        except BaseException:
            self._release()
            raise
        if slot < 0:
            self._release()
            raise KeyError(key)
        return slot

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef object _drop(self, Py_ssize_t slot):
        # unlink `slot` from the mapping (the order is updated by the caller);
        # returns (key, value) so that callbacks and decrefs happen after unlocking
        cdef object pair = (self._keys[slot], self._values[slot])
        self._forget(slot)
        return pair

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _forget(self, Py_ssize_t slot) except -1:
        # _drop without the pair: the caller holds the key and value until it unlocks
        PyDict_DelItem(self._slots, self._keys[slot])
        _put(self._keys, slot, None)
        _put(self._values, slot, None)
        if self._weights != NULL:
            self._bytes -= self._weights[slot]
            self._weights[slot] = 0
        self._free[self._n_free] = <int32_t>slot
        self._n_free += 1
        return 0

    cdef bint _shrink(self, int64_t incoming, list evicted) except -1:
        # evict victims into `evicted` until the entry fits; False if only pinned keys are left
        cdef Py_ssize_t v
        while self._over(incoming):
            v = self._order.c_pop_victim()
            if v < 0:
                return False
            evicted.append(self._drop(v))
            self._evictions += 1
        return True

    cdef int64_t _weigh(self, object value) except -1:
        cdef object w
        if self._weigher is None:
            return 1
        w = self._weigher(value)
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"weigher: expected it to return an int, got {type(w).__name__}")
        if w < 0 or w >= 2**62:
            raise ValueError(f"weigher: expected a non-negative weight below 2**62, got {w}")
        return w

    cdef _notify(self, list evicted):
        if evicted and self._on_evict is not None:
            for key, value in evicted:
                self._on_evict(key, value)
