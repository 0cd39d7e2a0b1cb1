"""Frequency order: LFU over per-frequency buckets."""

from cpython.mem cimport PyMem_RawFree
from libc.stdint cimport int32_t, int64_t, uint64_t

from memstrata._native.order cimport (
    PINNED, EvictionOrder, SlotList, _grow_array, _list_init, _push, _resident_slot, _unlink,
)

__all__ = ["LFUOrder"]


cdef inline void _b_join(LFUOrder order, int32_t p, int32_t n) noexcept:
    # make bucket `n` follow bucket `p` in the frequency list (p = -1: `n` is the
    # lowest; n = -1: `p` is the highest); a function, not a method, so it inlines
    if p >= 0:
        order._b_next[p] = n
    else:
        order._b_lowest = n
    if n >= 0:
        order._b_prev[n] = p


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
        # per-slot arrays and n + 1 buckets (every resident frequency, plus the one a
        # touch opens before the old one empties) grow with the order's slots
        self._n_free = 0
        self._b_lowest = -1

    def __dealloc__(self):
        PyMem_RawFree(self._freq)
        PyMem_RawFree(self._bucket_of)
        PyMem_RawFree(self._b_freq)
        PyMem_RawFree(self._b_slots)
        PyMem_RawFree(self._b_prev)
        PyMem_RawFree(self._b_next)
        PyMem_RawFree(self._b_pinned)
        PyMem_RawFree(self._b_free)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        cdef Py_ssize_t old = self._cap
        cdef Py_ssize_t old_nb = old + 1 if old else 0
        cdef Py_ssize_t nb = cap + 1
        cdef Py_ssize_t i
        _grow_array(<void**>&self._freq, old, cap, sizeof(uint64_t))
        _grow_array(<void**>&self._bucket_of, old, cap, sizeof(int32_t))
        _grow_array(<void**>&self._b_freq, old_nb, nb, sizeof(uint64_t))
        _grow_array(<void**>&self._b_slots, old_nb, nb, sizeof(SlotList))
        _grow_array(<void**>&self._b_prev, old_nb, nb, sizeof(int32_t))
        _grow_array(<void**>&self._b_next, old_nb, nb, sizeof(int32_t))
        _grow_array(<void**>&self._b_pinned, old_nb, nb, sizeof(int32_t))
        _grow_array(<void**>&self._b_free, old_nb, nb, sizeof(int32_t))
        for i in range(nb - 1, old_nb - 1, -1):     # the new buckets join the free stack
            self._b_free[self._n_free] = <int32_t>i
            self._n_free += 1
        return 0

    cdef Py_ssize_t _nbytes(self) noexcept:
        cdef Py_ssize_t nb = self._cap + 1 if self._cap else 0
        return (self._cap * (sizeof(uint64_t) + sizeof(int32_t))
                + nb * (sizeof(uint64_t) + sizeof(SlotList) + 4 * sizeof(int32_t)))

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
        _b_join(self, after, b)
        _b_join(self, b, n)
        return b

    cdef void _drop_bucket_if_empty(self, int32_t b) noexcept:
        if self._b_slots[b].count or self._b_pinned[b]:
            return
        _b_join(self, self._b_prev[b], self._b_next[b])
        self._b_free[self._n_free] = b
        self._n_free += 1

    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1:
        cdef int32_t b = self._b_lowest
        if b < 0 or self._b_freq[b] != 1:
            b = self._new_bucket(1, -1)
        self._freq[slot] = 1
        self._bucket_of[slot] = b
        _push(self._prev, self._next, &self._b_slots[b], slot, 0)
        return 0

    cdef void _leave(self, Py_ssize_t slot) noexcept:
        cdef int32_t b = self._bucket_of[slot]
        if self._flags[slot] & PINNED:
            self._b_pinned[b] -= 1
        else:
            _unlink(self._prev, self._next, &self._b_slots[b], slot, 0)
        self._drop_bucket_if_empty(b)

    cdef int _hit(self, Py_ssize_t slot) except -1:
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
        return 0

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
