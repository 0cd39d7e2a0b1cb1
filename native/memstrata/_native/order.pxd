# The base of the eviction orders: the C-level interface every order implements
# (cache.pyx and the policy modules cimport it) and the intrusive list mechanics
# the orders share.
#
# Every order keeps the resident slots of a structure of n_slots entries. The
# c_* methods trust their arguments (slot in range, present/absent as the method
# requires); the Python methods of the same name check them first.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

cdef enum:
    RESIDENT = 1
    PINNED = 2


cdef struct SlotList:
    int32_t head        # oldest slot (next to leave), -1 when empty
    int32_t tail        # newest slot, -1 when empty
    Py_ssize_t count
    int64_t weight


cdef class EvictionOrder:
    cdef readonly Py_ssize_t n_slots
    cdef Py_ssize_t _n_resident         # resident slots, pinned ones included
    cdef Py_ssize_t _n_pinned
    cdef uint8_t* _flags                # bit 0: resident, bit 1: pinned
    cdef int32_t* _prev                 # intrusive doubly linked lists over slots
    cdef int32_t* _next

    cdef void c_insert(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept
    cdef void c_touch(self, Py_ssize_t slot) noexcept
    cdef void c_remove(self, Py_ssize_t slot) noexcept
    cdef Py_ssize_t c_victim(self) noexcept
    cdef Py_ssize_t c_pop_victim(self) noexcept
    cdef void c_pin(self, Py_ssize_t slot) noexcept
    cdef void c_unpin(self, Py_ssize_t slot) noexcept
    cdef void c_reweigh(self, Py_ssize_t slot, int64_t weight) noexcept

    # hooks each order implements; the c_* methods above keep the shared flags
    cdef void _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) noexcept
    cdef void _leave(self, Py_ssize_t slot) noexcept
    cdef void _hit(self, Py_ssize_t slot) noexcept
    cdef void _hold(self, Py_ssize_t slot) noexcept
    cdef void _release(self, Py_ssize_t slot) noexcept
    cdef void _evicted(self, Py_ssize_t slot) noexcept


# argument checks of the Python methods (defined in order.pyx)
cdef Py_ssize_t _as_slot(EvictionOrder order, object slot) except -1
cdef Py_ssize_t _resident_slot(EvictionOrder order, object slot) except -1


# ---------------------------------------------------------------- list mechanics
# Doubly linked lists threaded through the order's _prev/_next arrays: a slot is in
# at most one list at a time; each list counts its slots and their total weight.

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
