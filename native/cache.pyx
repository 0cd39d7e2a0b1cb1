"""``Cache``: a bounded, thread-safe mapping built on the eviction orders."""

cimport cython
from cpython.dict cimport PyDict_SetItem
from cpython.object cimport PyObject_Hash
from libc.stdint cimport int64_t, uint64_t

from memstrata._native._cache_slots cimport CacheSlots, _put

from collections.abc import Mapping, MutableMapping

from memstrata._native._cache_slots import unhashable
from memstrata._native.eviction import DEFAULT_POLICY, POLICIES

__all__ = ["Cache", "DEFAULT_POLICY", "POLICIES"]


cdef object _MISSING = object()


cdef class Cache(CacheSlots):
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

    def __init__(self, maxsize, policy=DEFAULT_POLICY, max_bytes=None, weigher=None,
                 on_evict=None, *, clock=None, thread_safe=True):
        self._configure(maxsize, policy, max_bytes, weigher, on_evict, clock, thread_safe)

    # -- lookups --------------------------------------------------------------------

    @cython.final
    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef inline object _lookup(self, object key, object missing):
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
            return self._values[slot]   # slot < len(_values): no bounds check
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

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def set(self, key, value):
        """Store ``value`` under ``key``, evicting victims if the cache is full.

        Setting an existing key replaces its value and counts as an access.
        Evicted entries go to ``on_evict`` after the lock is released.
        """
        cdef Py_ssize_t slot, v
        cdef Py_hash_t h
        cdef int64_t w
        # the first victim is held in `gone_key`/`gone_value` (the usual single eviction
        # allocates no list or tuple), any further ones in `evicted`; all are handed
        # to on_evict, and dropped, after the lock is released
        cdef object gone_key = _MISSING
        cdef object gone_value = None
        cdef object k, val
        cdef list evicted = None
        cdef object old = None
        cdef double now
        try:
            h = PyObject_Hash(key)
        except TypeError:
            raise unhashable(key) from None
        w = self._weigh(value)
        now = self._clock() if self._clock is not None else 0.0
        self._acquire()
        try:
            slot = self._find(key)
            if slot >= 0:
                old = self._values[slot]
                _put(self._values, slot, value)
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
                    v = self._order.c_pop_victim()
                    if v >= 0:
                        k = self._keys[v]
                        val = self._values[v]
                        self._forget(v)
                        gone_key = k
                        gone_value = val
                        self._evictions += 1
                    if v < 0 or self._over(w):
                        evicted = []
                        if v < 0 or not self._shrink(w, evicted):
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
                _put(self._keys, slot, key)
                _put(self._values, slot, value)
                if self._weights != NULL:
                    self._weights[slot] = w
                    self._bytes += w
                if self._atime != NULL:
                    self._atime[slot] = now
        finally:
            self._release()
            if self._on_evict is not None:
                if gone_key is not _MISSING:
                    self._on_evict(gone_key, gone_value)
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
        cdef Py_ssize_t slot = self._acquire_slot(key)
        try:
            self._order.c_pin(slot)
        finally:
            self._release()

    def unpin(self, key):
        """Let ``key`` be evicted again; ``KeyError`` if absent. Idempotent.

        If pinned entries had left the cache over ``max_bytes``, victims are evicted
        (through ``on_evict``) until it fits again.
        """
        cdef list evicted = None
        cdef Py_ssize_t slot = self._acquire_slot(key)
        try:
            self._order.c_unpin(slot)
            if self._over(-1):
                evicted = []
                self._shrink(-1, evicted)
        finally:
            self._release()
        if evicted:
            self._notify(evicted)

    def access_time(self, key):
        """The ``clock()`` of ``key``'s last ``set`` or hit; ``KeyError`` if absent.

        ``TypeError`` if the cache was built without a ``clock``.
        """
        cdef Py_ssize_t slot
        if self._clock is None:
            raise TypeError("access_time: the cache keeps no access times (built without a clock)")
        slot = self._acquire_slot(key)
        try:
            return self._atime[slot]
        finally:
            self._release()

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
        cdef Py_ssize_t slot = self._acquire_slot(key)
        try:
            return self._order.is_pinned(slot)
        finally:
            self._release()

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
    def max_bytes(self):
        """The weight bound, or ``None``."""
        return None if self._max_bytes < 0 else self._max_bytes

    def __repr__(self):
        return (f"Cache(maxsize={self.maxsize}, policy={self.policy!r}, "
                f"size={len(self._slots)})")


MutableMapping.register(Cache)
