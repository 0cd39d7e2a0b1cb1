# The base of the eviction orders: the C-level interface every order implements
# (cache.pyx and the policy modules cimport it) and the intrusive list mechanics
# the orders share.
#
# Every order keeps the resident slots of a structure of n_slots entries. Its
# per-slot arrays are allocated on demand: _cap slots at first (INITIAL_SLOTS, or
# n_slots if fewer), doubled (at most to n_slots) when a slot at or beyond _cap is
# inserted, so an order costs memory for the slots in use, not for n_slots. The
# c_* methods trust their arguments (slot in [0, n_slots), present/absent as the
# method requires); the Python methods of the same name check them first.

from cpython.mem cimport PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memset

cdef enum:
    RESIDENT = 1
    PINNED = 2
    # slots allocated by a new order (or cache): small, so a cache of a few entries
    # costs a few slots; doubling keeps growth amortized O(1) per insert
    INITIAL_SLOTS = 4


cdef struct SlotList:
    int32_t head        # oldest slot (next to leave), -1 when empty
    int32_t tail        # newest slot, -1 when empty
    Py_ssize_t count
    int64_t weight


cdef class EvictionOrder:
    cdef readonly Py_ssize_t n_slots
    cdef Py_ssize_t _cap                # slots allocated: [0, _cap) (grows to n_slots)
    cdef Py_ssize_t _n_resident         # resident slots, pinned ones included
    cdef Py_ssize_t _n_pinned
    cdef uint8_t* _flags                # bit 0: resident, bit 1: pinned
    cdef int32_t* _prev                 # intrusive doubly linked lists over slots
    cdef int32_t* _next

    cdef int c_insert(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1
    cdef int c_touch(self, Py_ssize_t slot) except -1
    cdef int c_reserve(self, Py_ssize_t n) except -1
    cdef Py_ssize_t c_nbytes(self) noexcept
    cdef void c_remove(self, Py_ssize_t slot) noexcept
    cdef Py_ssize_t c_victim(self) noexcept
    cdef Py_ssize_t c_pop_victim(self) noexcept
    cdef void c_pin(self, Py_ssize_t slot) noexcept
    cdef void c_unpin(self, Py_ssize_t slot) noexcept
    cdef void c_reweigh(self, Py_ssize_t slot, int64_t weight) noexcept

    # hooks each order implements; the c_* methods above keep the shared flags.
    # _grow(cap) grows the order's own per-slot arrays from _cap to cap slots
    # (_cap is updated after every _grow succeeded); _nbytes counts them.
    cdef int _grow(self, Py_ssize_t cap) except -1
    cdef Py_ssize_t _nbytes(self) noexcept
    cdef int _enter(self, Py_ssize_t slot, uint64_t key_hash, int64_t weight) except -1
    cdef void _leave(self, Py_ssize_t slot) noexcept
    cdef int _hit(self, Py_ssize_t slot) except -1
    cdef void _hold(self, Py_ssize_t slot) noexcept
    cdef void _release(self, Py_ssize_t slot) noexcept
    cdef void _evicted(self, Py_ssize_t slot) noexcept


# argument checks of the Python methods (defined in order.pyx)
cdef Py_ssize_t _as_slot(EvictionOrder order, object slot) except -1
cdef Py_ssize_t _resident_slot(EvictionOrder order, object slot) except -1
cdef object _capacity_arg(object capacity, Py_ssize_t n_slots)


# ---------------------------------------------------------------- growth

cdef inline Py_ssize_t _grown_capacity(Py_ssize_t cap, Py_ssize_t needed, Py_ssize_t limit) noexcept nogil:
    # the capacity after doubling `cap` until it holds `needed` entries, at most `limit`
    while cap < needed:
        cap *= 2
    return cap if cap < limit else limit


cdef inline int _grow_array(void** array, Py_ssize_t old_n, Py_ssize_t new_n, size_t item) except -1:
    # reallocate *array from old_n to new_n items of `item` bytes, the new ones zeroed.
    # Raw-domain allocations: tracemalloc sees them. On failure *array is untouched.
    cdef void* p = PyMem_RawRealloc(array[0], <size_t>new_n * item)
    if p == NULL:
        raise MemoryError()
    memset(<char*>p + <size_t>old_n * item, 0, <size_t>(new_n - old_n) * item)
    array[0] = p
    return 0


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
