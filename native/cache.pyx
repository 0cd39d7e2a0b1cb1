"""``Cache``: a bounded, thread-safe mapping built on the eviction orders."""

from cpython.dict cimport PyDict_DelItem, PyDict_GetItemWithError, PyDict_SetItem
from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsSsize_t
from cpython.mem cimport PyMem_RawFree
from cpython.object cimport PyObject, PyObject_Hash
from libc.stdint cimport int32_t, int64_t, uint64_t

from memstrata._native.order cimport INITIAL_SLOTS, EvictionOrder, _grow_array, _grown_capacity


cdef extern from *:
    """
    #include <sched.h>
    /* A test-and-set lock. Uncontended, acquire + release is two atomic
       instructions; a thread that finds it taken gives up the GIL and yields
       until it is free, so a holder that needs the GIL (a key's __eq__, a
       value's __del__) can always finish its critical section. */
    static inline int ms_try_lock(int *flag) {
        return __atomic_exchange_n(flag, 1, __ATOMIC_ACQUIRE) == 0;
    }
    static inline void ms_unlock(int *flag) {
        __atomic_store_n(flag, 0, __ATOMIC_RELEASE);
    }
    static inline void ms_yield(void) { sched_yield(); }
    """
    bint ms_try_lock(int* flag) noexcept nogil
    void ms_unlock(int* flag) noexcept nogil
    void ms_yield() noexcept nogil

import sys
from collections.abc import Mapping, MutableMapping

from memstrata._native.eviction import DEFAULT_POLICY, POLICIES, check_policy, make_order

__all__ = ["Cache", "DEFAULT_POLICY", "POLICIES"]


cdef object _MISSING = object()
cdef Py_ssize_t _SLOT_INT_BYTES = sys.getsizeof(2**20)    # a slot number's int object in the key table


cdef inline object _unhashable(object key):
    # the TypeError for an unhashable key, naming the argument
    return TypeError(f"key: expected a hashable key, got unhashable {type(key).__name__}")


cdef class Cache:
    """A bounded mapping that evicts by policy: the engine of the hot tier.

    ``Cache`` is a :class:`collections.abc.MutableMapping` holding at most
    ``maxsize`` entries (and, with ``max_bytes``, at most that total weight). A
    lookup through ``get`` or ``cache[key]`` counts a hit or a miss and records the
    access with the eviction order; ``peek``, ``in`` and iteration do neither.
    Inserting into a full cache evicts the order's victims first and hands each one
    to ``on_evict(key, value)``, which runs after the cache's lock is released (the
    hot tier demotes there instead of dropping). ``del``, ``pop``, ``popitem`` and
    ``clear`` remove entries without calling ``on_evict``.

    Pinned keys are never evicted. If every resident key is pinned and the cache
    is full, a new key is not stored: it goes straight to ``on_evict`` (and counts
    as an eviction). The same happens to a value heavier than ``max_bytes``. A
    pinned entry that grows can leave the cache over ``max_bytes``; it shrinks
    back when keys are unpinned.

    Memory follows the entries held, not ``maxsize``: the slot arrays (here and
    in the eviction order) start at a few slots and double when full, up to
    ``maxsize``; ``allocated_slots`` and ``nbytes`` report them. A large
    ``maxsize`` costs nothing until it is used.

    With ``clock`` (a callable returning a float, such as ``time.time``), the
    cache also keeps each entry's last access time in an array by slot: ``set``
    and every hit of ``get`` / ``cache[key]`` store ``clock()``; ``access_time``
    reads it and ``idle(before)`` lists the keys last accessed at or before a
    time (the hot tier demotes idle entries with it, with no dict per key).

    All operations are O(1) (amortized for growth, S3-FIFO and the adaptive policy) and serialized by one lock
    (a test-and-set lock: about 20 ns per call uncontended, ``test_lock_cost`` in
    ``benchmarks/bench_cache.py``); ``thread_safe=False`` drops it for
    single-threaded use. The lock is not re-entrant: a key's ``__hash__`` /
    ``__eq__`` or a value's ``__del__`` must not call back into the same cache
    (``on_evict`` and ``weigher`` may, they run outside the lock).

    Parameters
    ----------
    maxsize : int
        Maximum number of entries, ``> 0``. Slots are allocated as entries arrive.
    policy : str
        Eviction policy, one of ``memstrata._native.eviction.POLICIES`` (see
        ``memstrata.AdaptiveOrder``, ``WTinyLFUOrder``, ``S3FIFOOrder``, ...):

        * ``"adaptive"`` (default, ``DEFAULT_POLICY``): W-TinyLFU or adaptive
          S3-FIFO, whichever two miniature simulations of the sampled keys
          say hits more on this workload (``AdaptiveOrder``). Hit ratios at
          cache sizes of 1 / 5 / 10 % of the distinct keys are in
          ``benchmarks/bench_cache.py`` beside theine's W-TinyLFU and S3-FIFO;
        * ``"wtinylfu"``: W-TinyLFU with hill climbing of the window;
        * ``"s3fifo-adaptive"``: S3-FIFO with 3-bit counters (``max_freq=7``)
          and a small queue whose share adapts to the workload;
        * ``"s3fifo"``: S3-FIFO with its published defaults (10 % small queue,
          ghost of 90 %, move to main after 2 touches, 2-bit counters);
        * ``"lru"``, ``"lfu"``, ``"fifo"``.

        With ``max_bytes``, S3-FIFO's queue shares are shares of ``max_bytes``.
    max_bytes : int, optional
        Bound on the total weight of the values; requires ``weigher``.
    weigher : callable, optional
        ``weigher(value) -> int``: the weight (e.g. size in bytes) of a value,
        ``>= 0``. Called once per ``set``, outside the lock.
    on_evict : callable, optional
        ``on_evict(key, value)``, called for every evicted entry, outside the lock.
    clock : callable, optional
        ``clock() -> float``: keep each entry's last access time (see above).
        Called before the lock is taken, once per ``get`` / ``set``.
    thread_safe : bool
        Guard the structure with a lock (default ``True``).

    Raises
    ------
    TypeError, ValueError
        Bad arguments; the message names the argument.

    Examples
    --------
    >>> from memstrata import Cache
    >>> demoted = []
    >>> cache = Cache(2, policy="lru", on_evict=lambda k, v: demoted.append(k))
    >>> cache["a"] = 1
    >>> cache["b"] = 2
    >>> cache["a"]
    1
    >>> cache["c"] = 3          # evicts "b", the least recently used
    >>> demoted, sorted(cache)
    (['b'], ['a', 'c'])
    >>> cache.info()["hits"], cache.info()["evictions"]
    (1, 1)
    """

    cdef dict _slots                # key -> slot
    cdef list _keys                 # slot -> key
    cdef list _values               # slot -> value
    cdef EvictionOrder _order
    cdef Py_ssize_t _cap            # slots allocated in the arrays below (and _keys, _values)
    cdef Py_ssize_t _n_used         # slots handed out so far: the next fresh slot
    cdef int32_t* _free             # slots given back, reused last-in first-out
    cdef Py_ssize_t _n_free
    cdef int64_t* _weights          # slot -> weight (with a weigher)
    cdef double* _atime             # slot -> last access time (with a clock)
    cdef object _clock
    cdef readonly Py_ssize_t maxsize
    cdef int64_t _max_bytes         # -1: unbounded
    cdef int64_t _bytes
    cdef object _weigher
    cdef object _on_evict
    cdef readonly str policy
    cdef int64_t _hits
    cdef int64_t _misses
    cdef int64_t _evictions
    cdef bint _thread_safe
    cdef int _lock                  # 0 free, 1 held (see ms_try_lock)

    def __cinit__(self):
        self._free = NULL
        self._weights = NULL
        self._atime = NULL
        self._cap = 0
        self._lock = 0

    def __init__(self, maxsize, policy=DEFAULT_POLICY, max_bytes=None, weigher=None,
                 on_evict=None, *, clock=None, thread_safe=True):
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

    def __dealloc__(self):
        PyMem_RawFree(self._free)
        PyMem_RawFree(self._weights)
        PyMem_RawFree(self._atime)

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

    # -- locking ------------------------------------------------------------------

    cdef inline void _acquire(self) noexcept:
        if self._thread_safe and not ms_try_lock(&self._lock):
            with nogil:
                while not ms_try_lock(&self._lock):
                    ms_yield()

    cdef inline void _release(self) noexcept:
        if self._thread_safe:
            ms_unlock(&self._lock)

    # -- internals (called with the lock held) -------------------------------------

    cdef inline Py_ssize_t _find(self, object key) except -2:
        cdef PyObject* p
        try:
            p = PyDict_GetItemWithError(self._slots, key)
        except TypeError:
            try:
                hash(key)
            except TypeError:
                raise _unhashable(key) from None
            raise
        if p == NULL:
            return -1
        return PyLong_AsSsize_t(<object>p)

    cdef object _drop(self, Py_ssize_t slot):
        # unlink `slot` from the mapping (the order is updated by the caller);
        # returns (key, value) so that callbacks and decrefs happen after unlocking
        cdef object key = self._keys[slot]
        cdef object value = self._values[slot]
        PyDict_DelItem(self._slots, key)
        self._keys[slot] = None
        self._values[slot] = None
        if self._weights != NULL:
            self._bytes -= self._weights[slot]
            self._weights[slot] = 0
        self._free[self._n_free] = <int32_t>slot
        self._n_free += 1
        return (key, value)

    cdef inline bint _over(self, int64_t incoming) noexcept:
        # would one more entry of weight `incoming` overflow? (incoming < 0: no new entry)
        return (incoming >= 0 and self._n_free == 0 and self._n_used == self.maxsize) or (
            self._max_bytes >= 0 and self._bytes + (incoming if incoming > 0 else 0) > self._max_bytes)

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

    # -- lookups --------------------------------------------------------------------

    cdef object _lookup(self, object key, object missing):
        """The value for ``key`` (a hit: the order is touched) or ``missing`` (a miss)."""
        cdef Py_ssize_t slot
        cdef double now = self._clock() if self._clock is not None else 0.0
        self._acquire()
        try:
            slot = self._find(key)
            if slot < 0:
                self._misses += 1
                return missing
            self._order.c_touch(slot)
            self._hits += 1
            if self._atime != NULL:
                self._atime[slot] = now
            return self._values[slot]
        finally:
            self._release()

    def get(self, key, default=None):
        """Return the value for ``key`` (counting a hit) or ``default`` (counting a miss)."""
        return self._lookup(key, default)

    def __getitem__(self, key):
        value = self._lookup(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def peek(self, key, default=None):
        """Return the value for ``key`` or ``default``; no access is recorded, no counter moves."""
        cdef Py_ssize_t slot
        self._acquire()
        try:
            slot = self._find(key)
            return default if slot < 0 else self._values[slot]
        finally:
            self._release()

    def __contains__(self, key):
        self._acquire()
        try:
            return self._find(key) >= 0
        finally:
            self._release()

    def __len__(self):
        return len(self._slots)

    # -- updates --------------------------------------------------------------------

    def set(self, key, value):
        """Store ``value`` under ``key``, evicting victims if the cache is full.

        Setting an existing key replaces its value and counts as an access.
        Evicted entries go to ``on_evict`` after the lock is released.
        """
        cdef Py_ssize_t slot
        cdef Py_hash_t h
        cdef int64_t w
        cdef list evicted = None
        cdef object old = None
        cdef double now
        try:
            h = PyObject_Hash(key)
        except TypeError:
            raise _unhashable(key) from None
        w = self._weigh(value)
        now = self._clock() if self._clock is not None else 0.0
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                old = self._values[slot]
                self._values[slot] = value
                if self._weights != NULL:
                    self._bytes += w - self._weights[slot]
                    self._weights[slot] = w
                    self._order.c_reweigh(slot, w)
                if self._atime != NULL:
                    self._atime[slot] = now
                self._order.c_touch(slot)
                if self._over(-1):
                    evicted = []
                    self._shrink(-1, evicted)
            elif self._max_bytes >= 0 and w > self._max_bytes:
                evicted = [(key, value)]
                self._evictions += 1
            else:
                if self._over(w):
                    evicted = []
                    if not self._shrink(w, evicted):
                        # only pinned keys are left: the new entry is evicted on arrival
                        evicted.append((key, value))
                        self._evictions += 1
                        return
                # a freed slot (last in, first out), else the next fresh one; growth
                # and the order's insert come first, so a MemoryError stores nothing
                if self._n_free:
                    slot = self._free[self._n_free - 1]
                else:
                    slot = self._n_used
                    if slot >= self._cap:
                        self._grow(slot + 1)
                self._order.c_insert(slot, <uint64_t>h, w)
                try:
                    PyDict_SetItem(self._slots, key, slot)
                except BaseException:
                    self._order.c_remove(slot)
                    raise
                if self._n_free:
                    self._n_free -= 1
                else:
                    self._n_used += 1
                self._keys[slot] = key
                self._values[slot] = value
                if self._weights != NULL:
                    self._weights[slot] = w
                    self._bytes += w
                if self._atime != NULL:
                    self._atime[slot] = now
        finally:
            self._release()
            if evicted:
                self._notify(evicted)

    def __setitem__(self, key, value):
        self.set(key, value)

    def pop(self, key, default=_MISSING):
        """Remove ``key`` and return its value (``default``, or ``KeyError``, if absent).

        Not an eviction: ``on_evict`` is not called.
        """
        cdef Py_ssize_t slot
        cdef object pair
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                self._order.c_remove(slot)
                pair = self._drop(slot)
        finally:
            self._release()
        if slot >= 0:
            return pair[1]
        if default is _MISSING:
            raise KeyError(key)
        return default

    def __delitem__(self, key):
        self.pop(key)

    def popitem(self):
        """Remove and return the ``(key, value)`` pair the policy would evict next.

        Not counted as an eviction and ``on_evict`` is not called. ``KeyError`` if
        the cache is empty or every key is pinned.
        """
        cdef Py_ssize_t v
        self._acquire()
        try:
            v = self._order.c_pop_victim()
            if v >= 0:
                return self._drop(v)
        finally:
            self._release()
        raise KeyError("popitem: the cache is empty or every key is pinned")

    def clear(self):
        """Remove every entry (pinned ones too) without calling ``on_evict``; counters stay."""
        cdef Py_ssize_t slot
        cdef list pairs = []
        self._acquire()
        try:
            for slot in list(self._slots.values()):
                self._order.c_remove(slot)
                pairs.append(self._drop(slot))
        finally:
            self._release()

    def setdefault(self, key, default=None):
        """Return ``cache[key]`` if present (counting a hit), else store and return ``default``."""
        value = self._lookup(key, _MISSING)
        if value is not _MISSING:
            return value
        self.set(key, default)
        return default

    def update(self, other=(), /, **kwargs):
        """Store every pair of a mapping or iterable of pairs, then of ``kwargs``."""
        if isinstance(other, Mapping):
            for key in other.keys():
                self.set(key, other[key])
        elif hasattr(other, "keys"):
            for key in other.keys():
                self.set(key, other[key])
        else:
            for key, value in other:
                self.set(key, value)
        for key, value in kwargs.items():
            self.set(key, value)

    # -- pinning --------------------------------------------------------------------

    def pin(self, key):
        """Never evict ``key`` until ``unpin(key)``; ``KeyError`` if absent. Idempotent."""
        cdef Py_ssize_t slot
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                self._order.c_pin(slot)
        finally:
            self._release()
        if slot < 0:
            raise KeyError(key)

    def unpin(self, key):
        """Let ``key`` be evicted again; ``KeyError`` if absent. Idempotent.

        If pinned entries had left the cache over ``max_bytes``, victims are evicted
        (through ``on_evict``) until it fits again.
        """
        cdef Py_ssize_t slot
        cdef list evicted = None
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                self._order.c_unpin(slot)
                if self._over(-1):
                    evicted = []
                    self._shrink(-1, evicted)
        finally:
            self._release()
        if slot < 0:
            raise KeyError(key)
        if evicted:
            self._notify(evicted)

    def access_time(self, key):
        """The ``clock()`` of ``key``'s last ``set`` or hit; ``KeyError`` if absent.

        ``TypeError`` if the cache was built without a ``clock``.
        """
        cdef Py_ssize_t slot
        if self._clock is None:
            raise TypeError("access_time: the cache keeps no access times (built without a clock)")
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                return self._atime[slot]
        finally:
            self._release()
        raise KeyError(key)

    def idle(self, before):
        """The keys whose last access time is ``<= before`` (a snapshot list; pinned keys too).

        ``TypeError`` if the cache was built without a ``clock``.
        """
        cdef double limit = before
        cdef list out = []
        if self._clock is None:
            raise TypeError("idle: the cache keeps no access times (built without a clock)")
        self._acquire()
        try:
            for key, slot in self._slots.items():
                if self._atime[<Py_ssize_t>slot] <= limit:
                    out.append(key)
        finally:
            self._release()
        return out

    def is_pinned(self, key):
        """Whether ``key`` is pinned; ``KeyError`` if absent."""
        cdef Py_ssize_t slot
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                return self._order.is_pinned(slot)
        finally:
            self._release()
        raise KeyError(key)

    # -- views and statistics ----------------------------------------------------------

    cdef dict _snapshot(self):
        cdef dict out = {}
        self._acquire()
        try:
            for key, slot in self._slots.items():
                out[key] = self._values[slot]
        finally:
            self._release()
        return out

    def __iter__(self):
        """Iterate over a snapshot of the keys (no access recorded)."""
        self._acquire()
        try:
            keys = list(self._slots)
        finally:
            self._release()
        return iter(keys)

    def keys(self):
        """A view of a snapshot of the keys (no access recorded)."""
        return self._snapshot().keys()

    def values(self):
        """A view of a snapshot of the values (no access recorded)."""
        return self._snapshot().values()

    def items(self):
        """A view of a snapshot of the ``(key, value)`` pairs (no access recorded)."""
        return self._snapshot().items()

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._snapshot() == dict(other.items())

    def __ne__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._snapshot() != dict(other.items())

    __hash__ = None

    def info(self):
        """Counters and gauges: ``hits``, ``misses``, ``evictions``, ``size``,
        ``bytes`` (sum of weights; 0 without a weigher), ``maxsize``,
        ``max_bytes`` (or ``None``), ``pinned`` and ``policy``."""
        self._acquire()
        try:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
                "size": len(self._slots),
                "bytes": self._bytes,
                "maxsize": self.maxsize,
                "max_bytes": None if self._max_bytes < 0 else self._max_bytes,
                "pinned": self._order.n_pinned,
                "policy": self.policy,
            }
        finally:
            self._release()

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

    @property
    def max_bytes(self):
        """The weight bound, or ``None``."""
        return None if self._max_bytes < 0 else self._max_bytes

    def __repr__(self):
        return (f"Cache(maxsize={self.maxsize}, policy={self.policy!r}, "
                f"size={len(self._slots)})")


MutableMapping.register(Cache)
