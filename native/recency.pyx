"""Recency orders: LRU and FIFO, one list each."""

from libc.stdint cimport int64_t, uint64_t

from memstrata._native.order cimport PINNED, EvictionOrder, _list_init, _push, _unlink

__all__ = ["FIFOOrder", "LRUOrder"]


cdef class _OneList(EvictionOrder):
    """One list of the unpinned resident slots, oldest at the head (the victim).

    Entering and unpinning append at the tail; pinning and leaving unlink. FIFO
    is exactly this; LRU also moves a hit slot to the tail.
    """

    def __cinit__(self, n_slots, *args, **kwargs):
        _list_init(&self._list)

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        _push(self._prev, self._next, &self._list, slot, 0)
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        if not (self._flags[slot] & PINNED):
            _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _hold(self, Py_ssize_t slot) noexcept:
        _unlink(self._prev, self._next, &self._list, slot, 0)

    cdef void _release(self, Py_ssize_t slot) noexcept:
        _push(self._prev, self._next, &self._list, slot, 0)

    cdef Py_ssize_t c_victim(self) noexcept:
        return self._list.head


cdef class LRUOrder(_OneList):
    """``LRUOrder(n_slots)``: least recently used, over ``n_slots > 0`` slots.

    The victim is the slot whose last access (insert or ``touch``) is oldest.

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

    cdef int _hit(self, Py_ssize_t slot) except -1:
        if not (self._flags[slot] & PINNED) and self._list.tail != slot:
            _unlink(self._prev, self._next, &self._list, slot, 0)
            _push(self._prev, self._next, &self._list, slot, 0)
        return 0


cdef class FIFOOrder(_OneList):
    """``FIFOOrder(n_slots)``: first in, first out, over ``n_slots > 0`` slots.

    The victim is the slot inserted (or unpinned) earliest; ``touch`` changes nothing.

    >>> order = FIFOOrder(4)
    >>> for slot in (3, 1, 2):
    ...     order.insert(slot)
    >>> order.touch(3)
    >>> order.pop_victim()
    3
    """

    order_id = "fifo"
    _parameters = ()
