"""Eviction orders: O(1) structures over integer slots ``0 .. n_slots - 1``.

An eviction order tracks which slots are resident and which one should leave
next. It knows nothing of keys or values: a cache maps its keys to slots and asks
the order for victims. Every order has the same interface:

* ``insert(slot, key_hash=0, weight=1)`` makes a slot resident;
* ``touch(slot)`` records an access;
* ``remove(slot)`` drops a slot (an explicit delete, not an eviction);
* ``victim()`` names the slot that would leave next, ``pop_victim()`` evicts it;
* ``pin(slot)`` / ``unpin(slot)`` hold a slot aside so it is never a victim;
* ``len(order)`` counts resident slots (pinned ones included), ``slot in order``.

Pinning is O(1) for every order: a pinned slot leaves the order's queues (it
stays resident and keeps counting accesses) and re-enters on ``unpin`` as the
newest entry of its queue (LFU: the newest entry of its frequency). ``pin`` of a
pinned slot and ``unpin`` of an unpinned slot do nothing.

Every order has a JSON-safe ``get_config()`` (with its ``id``), and
``EvictionOrder.from_config(config)`` builds an empty order of the right type from
it; ``ORDERS`` maps ids to classes.

Errors: a slot that is not an ``int`` raises ``TypeError``; a slot outside
``[0, n_slots)`` or a negative weight raises ``ValueError``; inserting a resident
slot raises ``ValueError``; touching, removing, pinning or unpinning a slot that is
not resident raises ``KeyError``; ``pop_victim()`` with nothing evictable raises
``KeyError``. Every message names the argument.
"""

from cpython.long cimport PyLong_AsUnsignedLongLongMask
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

import operator
from collections.abc import Mapping

__all__ = ["ORDERS", "EvictionOrder", "FIFOOrder", "LFUOrder", "LRUOrder", "S3FIFOOrder"]

cdef enum:
    RESIDENT = 1
    PINNED = 2


# ---------------------------------------------------------------- list helpers

cdef inline void _list_init(SlotList* lst) noexcept nogil:
    lst.head = -1
    lst.tail = -1
    lst.count = 0
    lst.weight = 0


cdef inline void _push(int32_t* prev, int32_t* nxt, SlotList* lst, Py_ssize_t slot,
                       int64_t weight) noexcept nogil:
    cdef int32_t s = <int32_t>slot
    prev[s] = lst.tail
    nxt[s] = -1
    if lst.tail >= 0:
        nxt[lst.tail] = s
    else:
        lst.head = s
    lst.tail = s
    lst.count += 1
    lst.weight += weight


cdef inline void _unlink(int32_t* prev, int32_t* nxt, SlotList* lst, Py_ssize_t slot,
                         int64_t weight) noexcept nogil:
    cdef int32_t p = prev[slot]
    cdef int32_t n = nxt[slot]
    if p >= 0:
        nxt[p] = n
    else:
        lst.head = n
    if n >= 0:
        prev[n] = p
    else:
        lst.tail = p
    lst.count -= 1
    lst.weight -= weight


cdef inline uint64_t _mix64(uint64_t x) noexcept nogil:
    # splitmix64 finalizer: spreads any 64-bit key hash over all bits
    x ^= x >> 30
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 27
    x *= 0x94D049BB133111EBULL
    x ^= x >> 31
    return x if x != 0 else 1


cdef inline uint64_t _pow2_at_least(uint64_t n) noexcept nogil:
    cdef uint64_t p = 1
    while p < n:
        p <<= 1
    return p


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


# ---------------------------------------------------------------- argument checks

cdef inline Py_ssize_t _as_slot(EvictionOrder order, object slot) except -1:
    cdef Py_ssize_t s
    if isinstance(slot, bool) or not isinstance(slot, int):
        try:
            s = operator.index(slot)
        except TypeError:
            raise TypeError(
                f"slot: expected an int in [0, {order.n_slots}), got {type(slot).__name__}"
            ) from None
        if isinstance(slot, bool):
            raise TypeError(f"slot: expected an int in [0, {order.n_slots}), got bool")
        slot = s
    if slot < 0 or slot >= order.n_slots:
        raise ValueError(f"slot: expected an int in [0, {order.n_slots}), got {slot}")
    return <Py_ssize_t>slot


cdef inline Py_ssize_t _resident_slot(EvictionOrder order, object slot) except -1:
    cdef Py_ssize_t s = _as_slot(order, slot)
    if not (order._flags[s] & RESIDENT):
        raise KeyError(f"slot: {s} is not in the order")
    return s


# ---------------------------------------------------------------- the base class

cdef class EvictionOrder:
    """Base class of the eviction orders (abstract; instantiate a subclass).

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``; slots are the integers ``0 .. n_slots - 1``.
        Memory is allocated once, O(n_slots).
    """

    order_id = ""
    _parameters = ()

    def __cinit__(self, n_slots, *args, **kwargs):
        if isinstance(n_slots, bool) or not isinstance(n_slots, int):
            raise TypeError(f"n_slots: expected a positive int, got {type(n_slots).__name__}")
        if n_slots <= 0 or n_slots >= 2**31 - 1:
            raise ValueError(f"n_slots: expected an int in [1, 2**31 - 1), got {n_slots}")
        self.n_slots = n_slots
        self._n_resident = 0
        self._n_pinned = 0
        self._flags = <uint8_t*>calloc(n_slots, sizeof(uint8_t))
        self._prev = <int32_t*>calloc(n_slots, sizeof(int32_t))
        self._next = <int32_t*>calloc(n_slots, sizeof(int32_t))
        if self._flags == NULL or self._prev == NULL or self._next == NULL:
            raise MemoryError()

    def __init__(self, n_slots, *args, **kwargs):
        if type(self) is EvictionOrder:
            raise TypeError(
                "EvictionOrder is abstract: use LRUOrder, LFUOrder, FIFOOrder or S3FIFOOrder"
            )

    def __dealloc__(self):
        free(self._flags)
        free(self._prev)
        free(self._next)

    # -- C interface (no checks) -------------------------------------------------

    cdef void c_insert(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        self._flags[slot] = RESIDENT
        self._n_resident += 1
        self._enter(slot, key_hash, weight)

    cdef void c_touch(self, Py_ssize_t slot) noexcept:
        self._hit(slot)

    cdef void c_remove(self, Py_ssize_t slot) noexcept:
        if self._flags[slot] & PINNED:
            self._n_pinned -= 1
        self._leave(slot)
        self._flags[slot] = 0
        self._n_resident -= 1

    cdef Py_ssize_t c_victim(self) noexcept:
        return -1

    cdef Py_ssize_t c_pop_victim(self) noexcept:
        cdef Py_ssize_t v = self.c_victim()
        if v >= 0:
            self._evicted(v)
            self.c_remove(v)
        return v

    cdef void c_pin(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            self._hold(slot)
            self._flags[slot] |= PINNED
            self._n_pinned += 1

    cdef void c_unpin(self, Py_ssize_t slot) noexcept:
        if self._flags[slot] & PINNED:
            self._flags[slot] &= ~PINNED
            self._n_pinned -= 1
            self._release(slot)

    cdef void c_reweigh(self, Py_ssize_t slot, int64_t weight) noexcept:
        pass

    # -- hooks ------------------------------------------------------------------
    # _leave is called with the pinned flag still set, so an order knows whether the
    # slot is linked into its queues.

    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        pass

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        pass

    cdef void _hit(self, Py_ssize_t slot) noexcept:
        pass

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        pass

    cdef void _release(self, Py_ssize_t slot) noexcept:
        pass

    cdef void _evicted(self, Py_ssize_t slot) noexcept:
        pass

    # -- Python interface ---------------------------------------------------------

    def insert(self, slot, key_hash=0, weight=1):
        """Make ``slot`` resident.

        Parameters
        ----------
        slot : int
            A slot in ``[0, n_slots)`` that is not resident.
        key_hash : int
            64-bit hash of the slot's key (any int, taken modulo ``2**64``). Orders
            that remember evicted keys (S3-FIFO's ghost queue) use it; others ignore it.
        weight : int
            Size of the entry, ``>= 0``; S3-FIFO balances its queues by weight,
            the other orders ignore it.

        Raises
        ------
        TypeError, ValueError
            Bad ``slot`` / ``weight``; ``ValueError`` also if ``slot`` is resident.
        """
        cdef Py_ssize_t s = _as_slot(self, slot)
        if isinstance(key_hash, bool) or not isinstance(key_hash, int):
            raise TypeError(f"key_hash: expected an int, got {type(key_hash).__name__}")
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise TypeError(f"weight: expected a non-negative int, got {type(weight).__name__}")
        if weight < 0 or weight >= 2**62:
            raise ValueError(f"weight: expected a non-negative int below 2**62, got {weight}")
        if self._flags[s] & RESIDENT:
            raise ValueError(f"slot: {s} is already in the order")
        self.c_insert(s, PyLong_AsUnsignedLongLongMask(key_hash), <int64_t>weight)

    def touch(self, slot):
        """Record an access to the resident ``slot`` (``KeyError`` if absent)."""
        self.c_touch(_resident_slot(self, slot))

    def remove(self, slot):
        """Drop the resident ``slot`` (pinned or not) without counting an eviction."""
        self.c_remove(_resident_slot(self, slot))

    def victim(self):
        """Return the slot that would be evicted next, or ``None`` if none can be.

        Does not change which slots are resident; S3-FIFO may move entries between
        its queues (the promotions it does lazily at eviction time), after which
        repeated calls return the same slot until the next change.
        """
        cdef Py_ssize_t v = self.c_victim()
        return None if v < 0 else v

    def pop_victim(self):
        """Evict and return the next victim; ``KeyError`` if every slot is pinned or none is resident."""
        cdef Py_ssize_t v = self.c_pop_victim()
        if v < 0:
            raise KeyError("pop_victim: no evictable slot (the order is empty or every slot is pinned)")
        return v

    def pin(self, slot):
        """Hold the resident ``slot`` aside: it is never a victim until ``unpin``."""
        self.c_pin(_resident_slot(self, slot))

    def unpin(self, slot):
        """Let the resident ``slot`` be evicted again; it re-enters as the newest entry."""
        self.c_unpin(_resident_slot(self, slot))

    def is_pinned(self, slot):
        """Whether the resident ``slot`` is pinned."""
        return bool(self._flags[_resident_slot(self, slot)] & PINNED)

    @property
    def n_pinned(self):
        """Number of pinned slots."""
        return self._n_pinned

    def __len__(self):
        return self._n_resident

    def __contains__(self, slot):
        if isinstance(slot, bool) or not isinstance(slot, int):
            return False
        return 0 <= slot < self.n_slots and bool(self._flags[<Py_ssize_t>slot] & RESIDENT)

    def get_config(self):
        """The order's type (``id``) and parameters as a JSON-safe dict.

        ``EvictionOrder.from_config(order.get_config())`` builds an empty order of
        the same kind; resident slots are state, not configuration.
        """
        return {"id": self.order_id, "n_slots": self.n_slots}

    @staticmethod
    def from_config(config):
        """Build an empty eviction order from a ``get_config()`` dict.

        Raises
        ------
        TypeError
            ``config`` is not a mapping, or holds a parameter of the wrong type.
        ValueError
            Unknown ``id`` (the message lists the known ones), a missing or
            unexpected key, or a bad parameter value.

        Examples
        --------
        >>> order = EvictionOrder.from_config({"id": "s3fifo", "n_slots": 8, "adaptive": True})
        >>> type(order).__name__, order.adaptive
        ('S3FIFOOrder', True)
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a mapping with an 'id', got {type(config).__name__}")
        params = dict(config)
        order_id = params.pop("id", None)
        cls = ORDERS.get(order_id) if isinstance(order_id, str) else None
        if cls is None:
            raise ValueError(
                f"config: unknown eviction order id {order_id!r}; known ids: {', '.join(sorted(ORDERS))}"
            )
        if "n_slots" not in params:
            raise ValueError(f"config: the {order_id!r} order needs 'n_slots'")
        n_slots = params.pop("n_slots")
        allowed = cls._parameters
        unexpected = sorted(set(params) - set(allowed))
        if unexpected:
            raise ValueError(
                f"config: unexpected keys {unexpected} for the {order_id!r} order; "
                f"expected id, n_slots{''.join(', ' + k for k in allowed)}"
            )
        return cls(n_slots, **params)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id")
        return f"{type(self).__name__}({params}) with {self._n_resident} resident"


# ---------------------------------------------------------------- LRU / FIFO

cdef class LRUOrder(EvictionOrder):
    """Least recently used: the victim is the slot whose last access is oldest.

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.

    Examples
    --------
    >>> order = LRUOrder(4)
    >>> for slot in (0, 1, 2):
    ...     order.insert(slot)
    >>> order.touch(0)
    >>> order.victim()
    1
    >>> order.pin(1)
    >>> order.pop_victim()
    2
    """

    order_id = "lru"
    _parameters = ()

    def __cinit__(self, n_slots, *args, **kwargs):
        _list_init(&self._list)

    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        _push(self._prev, self._next, &self._list, slot, 0)

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _hit(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED) and self._list.tail != slot:
            _unlink(self._prev, self._next, &self._list, slot, 0)
            _push(self._prev, self._next, &self._list, slot, 0)

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _release(self, Py_ssize_t slot) noexcept:
        _push(self._prev, self._next, &self._list, slot, 0)

    cdef Py_ssize_t c_victim(self) noexcept:
        return self._list.head


cdef class FIFOOrder(EvictionOrder):
    """First in, first out: the victim is the slot inserted (or unpinned) earliest.

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.

    Examples
    --------
    >>> order = FIFOOrder(4)
    >>> for slot in (3, 1, 2):
    ...     order.insert(slot)
    >>> order.touch(3)
    >>> order.pop_victim()
    3
    """

    order_id = "fifo"
    _parameters = ()

    def __cinit__(self, n_slots, *args, **kwargs):
        _list_init(&self._list)

    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        _push(self._prev, self._next, &self._list, slot, 0)

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _release(self, Py_ssize_t slot) noexcept:
        _push(self._prev, self._next, &self._list, slot, 0)

    cdef Py_ssize_t c_victim(self) noexcept:
        return self._list.head


# ---------------------------------------------------------------- LFU

cdef class LFUOrder(EvictionOrder):
    """Least frequently used, ties broken by least recent entry into the frequency.

    A slot's count starts at 1 on insert and grows by 1 per ``touch`` (pinned or
    not); it is forgotten when the slot leaves. Slots live in per-frequency buckets
    kept in a list sorted by frequency, so insert, touch and remove are O(1).
    ``victim`` is O(1) plus one step per bucket at the low end whose only members
    are pinned.

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``.

    Examples
    --------
    >>> order = LFUOrder(4)
    >>> for slot in (0, 1, 2):
    ...     order.insert(slot)
    >>> order.touch(0); order.touch(0); order.touch(1)
    >>> order.pop_victim(), order.pop_victim(), order.pop_victim()
    (2, 1, 0)
    """

    order_id = "lfu"
    _parameters = ()

    def __cinit__(self, n_slots, *args, **kwargs):
        cdef Py_ssize_t nb = n_slots + 1
        cdef Py_ssize_t i
        self._freq = <uint64_t*>calloc(n_slots, sizeof(uint64_t))
        self._bucket_of = <int32_t*>calloc(n_slots, sizeof(int32_t))
        self._b_freq = <uint64_t*>calloc(nb, sizeof(uint64_t))
        self._b_slots = <SlotList*>calloc(nb, sizeof(SlotList))
        self._b_prev = <int32_t*>calloc(nb, sizeof(int32_t))
        self._b_next = <int32_t*>calloc(nb, sizeof(int32_t))
        self._b_pinned = <int32_t*>calloc(nb, sizeof(int32_t))
        self._b_free = <int32_t*>calloc(nb, sizeof(int32_t))
        if (self._freq == NULL or self._bucket_of == NULL or self._b_freq == NULL
                or self._b_slots == NULL or self._b_prev == NULL or self._b_next == NULL
                or self._b_pinned == NULL or self._b_free == NULL):
            raise MemoryError()
        for i in range(nb):
            self._b_free[i] = <int32_t>(nb - 1 - i)
        self._n_free = nb
        self._b_lowest = -1

    def __dealloc__(self):
        free(self._freq)
        free(self._bucket_of)
        free(self._b_freq)
        free(self._b_slots)
        free(self._b_prev)
        free(self._b_next)
        free(self._b_pinned)
        free(self._b_free)

    cdef int32_t _new_bucket(self, uint64_t freq, int32_t after) noexcept:
        # a fresh bucket linked right after `after` (-1: at the low end)
        cdef int32_t b
        cdef int32_t n
        self._n_free -= 1
        b = self._b_free[self._n_free]
        self._b_freq[b] = freq
        _list_init(&self._b_slots[b])
        self._b_pinned[b] = 0
        n = self._b_next[after] if after >= 0 else self._b_lowest
        self._b_prev[b] = after
        self._b_next[b] = n
        if after >= 0:
            self._b_next[after] = b
        else:
            self._b_lowest = b
        if n >= 0:
            self._b_prev[n] = b
        return b

    cdef void _drop_bucket_if_empty(self, int32_t b) noexcept:
        cdef int32_t p, n
        if self._b_slots[b].count or self._b_pinned[b]:
            return
        p = self._b_prev[b]
        n = self._b_next[b]
        if p >= 0:
            self._b_next[p] = n
        else:
            self._b_lowest = n
        if n >= 0:
            self._b_prev[n] = p
        self._b_free[self._n_free] = b
        self._n_free += 1

    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept:
        cdef int32_t b = self._b_lowest
        if b < 0 or self._b_freq[b] != 1:
            b = self._new_bucket(1, -1)
        self._freq[slot] = 1
        self._bucket_of[slot] = b
        _push(self._prev, self._next, &self._b_slots[b], slot, 0)

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        cdef int32_t b = self._bucket_of[slot]
        if self._flags[slot] & PINNED:
            self._b_pinned[b] -= 1
        else:
            _unlink(self._prev, self._next, &self._b_slots[b], slot, 0)
        self._drop_bucket_if_empty(b)

    cdef void _hit(self, Py_ssize_t slot) noexcept:
        cdef int32_t b = self._bucket_of[slot]
        cdef uint64_t f = self._freq[slot] + 1
        cdef int32_t nb = self._b_next[b]
        if nb < 0 or self._b_freq[nb] != f:
            nb = self._new_bucket(f, b)
        if self._flags[slot] & PINNED:
            self._b_pinned[b] -= 1
            self._b_pinned[nb] += 1
        else:
            _unlink(self._prev, self._next, &self._b_slots[b], slot, 0)
            _push(self._prev, self._next, &self._b_slots[nb], slot, 0)
        self._freq[slot] = f
        self._bucket_of[slot] = nb
        self._drop_bucket_if_empty(b)

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        cdef int32_t b = self._bucket_of[slot]
        _unlink(self._prev, self._next, &self._b_slots[b], slot, 0)
        self._b_pinned[b] += 1

    cdef void _release(self, Py_ssize_t slot) noexcept:
        cdef int32_t b = self._bucket_of[slot]
        self._b_pinned[b] -= 1
        _push(self._prev, self._next, &self._b_slots[b], slot, 0)

    cdef Py_ssize_t c_victim(self) noexcept:
        cdef int32_t b = self._b_lowest
        while b >= 0 and self._b_slots[b].count == 0:
            b = self._b_next[b]
        return self._b_slots[b].head if b >= 0 else -1

    def frequency(self, slot):
        """Access count of the resident ``slot`` (1 after insert, +1 per touch)."""
        return self._freq[_resident_slot(self, slot)]


# ---------------------------------------------------------------- S3-FIFO

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


#: Eviction order classes by ``id`` (the ``id`` of ``get_config()``).
ORDERS = {cls.order_id: cls for cls in (LRUOrder, LFUOrder, FIFOOrder, S3FIFOOrder)}
