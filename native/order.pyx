"""The base of the eviction orders: O(1) structures over integer slots ``0 .. n_slots - 1``.

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

Memory grows with use: an order allocates its per-slot arrays for a few slots
and doubles them (up to ``n_slots``) when a slot beyond them is inserted, so
``n_slots`` can be large at little cost; ``allocated_slots`` and ``nbytes``
report what is held. Parameters that are shares of the capacity (S3-FIFO's
queues and ghosts, W-TinyLFU's window and hill-climbing period) stay shares of
``n_slots`` (or ``capacity``), so growth never changes a decision; W-TinyLFU's
frequency sketch is the one structure sized from the allocated slots (see
``WTinyLFUOrder``).

Every order has a JSON-safe ``get_config()`` (with its ``id``), and
``EvictionOrder.from_config(config)`` builds an empty order of the right type from
it; ``memstrata._native.eviction.ORDERS`` maps ids to classes. Each policy
family lives in its own module (``recency``, ``lfu``, ``s3fifo``, ``wtinylfu``),
built on the list mechanics of ``order.pxd``.

Errors: a slot that is not an ``int`` raises ``TypeError``; a slot outside
``[0, n_slots)`` or a negative weight raises ``ValueError``; inserting a resident
slot raises ``ValueError``; touching, removing, pinning or unpinning a slot that is
not resident raises ``KeyError``; ``pop_victim()`` with nothing evictable raises
``KeyError``. Every message names the argument.
"""
from cpython.long cimport PyLong_AsUnsignedLongLongMask
from cpython.mem cimport PyMem_RawFree
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

import operator
from collections.abc import Mapping

__all__ = ["EvictionOrder"]


# ---------------------------------------------------------------- argument checks

cdef Py_ssize_t _as_slot(EvictionOrder order, object slot) except -1:
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


cdef Py_ssize_t _resident_slot(EvictionOrder order, object slot) except -1:
    cdef Py_ssize_t s = _as_slot(order, slot)
    if s >= order._cap or not (order._flags[s] & RESIDENT):
        raise KeyError(f"slot: {s} is not in the order")
    return s


cdef object _capacity_arg(object capacity, Py_ssize_t n_slots):
    # the `capacity` parameter of the orders that weigh entries (default: n_slots)
    if capacity is None:
        return n_slots
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity: expected a positive int, got {type(capacity).__name__}")
    if capacity <= 0 or capacity >= 2**62:
        raise ValueError(f"capacity: expected a positive int below 2**62, got {capacity}")
    return capacity


# ---------------------------------------------------------------- the base class

cdef class EvictionOrder:
    """Base class of the eviction orders (abstract; instantiate a subclass).

    Parameters
    ----------
    n_slots : int
        Number of slots, ``> 0``; slots are the integers ``0 .. n_slots - 1``.
        Memory is allocated on demand, O(highest slot inserted), never O(n_slots)
        up front.
    """

    order_id = ""
    _parameters = ()

    def __cinit__(self, n_slots, *args, **kwargs):
        if isinstance(n_slots, bool) or not isinstance(n_slots, int):
            raise TypeError(f"n_slots: expected a positive int, got {type(n_slots).__name__}")
        if n_slots <= 0 or n_slots >= 2**31 - 1:
            raise ValueError(f"n_slots: expected an int in [1, 2**31 - 1), got {n_slots}")
        self.n_slots = n_slots
        self._cap = 0
        self._n_resident = 0
        self._n_pinned = 0
        self._flags = NULL
        self._prev = NULL
        self._next = NULL

    def __init__(self, n_slots, *args, **kwargs):
        if type(self) is EvictionOrder:
            raise TypeError(
                "EvictionOrder is abstract: use LRUOrder, LFUOrder, FIFOOrder, S3FIFOOrder or WTinyLFUOrder"
            )

    def __dealloc__(self):
        PyMem_RawFree(self._flags)
        PyMem_RawFree(self._prev)
        PyMem_RawFree(self._next)

    # -- C interface (no checks) -------------------------------------------------

    cdef int c_reserve(self, Py_ssize_t n) except -1:
        # allocate slots [0, n) (n <= n_slots); called before anything changes, so a
        # MemoryError leaves the order as it was
        cdef Py_ssize_t cap
        if n <= self._cap:
            return 0
        cap = _grown_capacity(self._cap if self._cap else INITIAL_SLOTS, n, self.n_slots)
        _grow_array(<void**>&self._flags, self._cap, cap, sizeof(uint8_t))
        _grow_array(<void**>&self._prev, self._cap, cap, sizeof(int32_t))
        _grow_array(<void**>&self._next, self._cap, cap, sizeof(int32_t))
        self._grow(cap)
        self._cap = cap
        return 0

    cdef Py_ssize_t c_nbytes(self) noexcept:
        # bytes of the slot arrays and every structure the order allocated
        return self._cap * (sizeof(uint8_t) + 2 * sizeof(int32_t)) + self._nbytes()

    cdef int c_insert(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        # growth first and the flags last: a MemoryError leaves the order unchanged
        if slot >= self._cap:
            self.c_reserve(slot + 1)
        self._enter(slot, key_hash, weight)
        self._flags[slot] = RESIDENT
        self._n_resident += 1
        return 0

    cdef int c_touch(self, Py_ssize_t slot) except -1:
        return self._hit(slot)

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

    cdef int _grow(self, Py_ssize_t cap) except -1:
        return 0

    cdef Py_ssize_t _nbytes(self) noexcept:
        return 0

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        pass

    cdef int _hit(self, Py_ssize_t slot) except -1:
        return 0

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
        if s < self._cap and self._flags[s] & RESIDENT:
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

    @property
    def allocated_slots(self):
        """Slots whose arrays are allocated so far (grows on demand up to ``n_slots``)."""
        return self._cap

    @property
    def nbytes(self):
        """Bytes the order has allocated (slot arrays, queues, ghosts, sketch)."""
        return self.c_nbytes()

    def __len__(self):
        return self._n_resident

    def __contains__(self, slot):
        if isinstance(slot, bool) or not isinstance(slot, int):
            return False
        return 0 <= slot < self._cap and bool(self._flags[<Py_ssize_t>slot] & RESIDENT)

    def get_config(self):
        """The order's type (``id``) and parameters as a JSON-safe dict.

        ``EvictionOrder.from_config(order.get_config())`` builds an empty order of
        the same kind; resident slots are state, not configuration.
        """
        config = {"id": self.order_id, "n_slots": self.n_slots}
        for name in self._parameters:     # each order's parameters are attributes of the same name
            config[name] = getattr(self, name)
        return config

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
        from memstrata._native.eviction import ORDERS  # the registry imports every order module

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
