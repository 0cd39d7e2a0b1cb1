# Eviction orders over integer slots: the C-level interface that cache.pyx cimports.
#
# Every order keeps the resident slots of a structure of n_slots entries. The
# c_* methods trust their arguments (slot in range, present/absent as the method
# requires); the Python methods of the same name check them first.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t


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


cdef class LRUOrder(EvictionOrder):
    cdef SlotList _list


cdef class FIFOOrder(EvictionOrder):
    cdef SlotList _list


cdef class LFUOrder(EvictionOrder):
    cdef uint64_t* _freq
    cdef int32_t* _bucket_of            # slot -> bucket
    cdef uint64_t* _b_freq
    cdef SlotList* _b_slots
    cdef int32_t* _b_prev
    cdef int32_t* _b_next
    cdef int32_t* _b_pinned             # pinned members still attached to the bucket
    cdef int32_t* _b_free
    cdef Py_ssize_t _n_free
    cdef int32_t _b_lowest
    cdef int32_t _new_bucket(self, uint64_t freq, int32_t after) noexcept
    cdef void _drop_bucket_if_empty(self, int32_t b) noexcept


cdef struct Ghost:
    uint64_t* ring
    Py_ssize_t ring_size
    Py_ssize_t ring_pos
    uint64_t* keys                      # open addressing, 0 = empty
    int32_t* where                      # ring position of the live entry
    uint64_t mask


cdef class S3FIFOOrder(EvictionOrder):
    cdef readonly int64_t capacity
    cdef readonly double small_ratio
    cdef readonly double ghost_ratio
    cdef readonly int move_threshold
    cdef readonly int max_freq
    cdef readonly bint adaptive
    cdef int64_t _small_capacity
    cdef int64_t _main_capacity
    cdef int64_t _max_small
    cdef bint _has_evicted
    cdef uint8_t* _freq
    cdef uint8_t* _queue                # 0 small, 1 main
    cdef int64_t* _weight
    cdef uint64_t* _hash
    cdef SlotList _small
    cdef SlotList _main
    cdef Ghost _ghost                   # keys evicted from the small queue
    cdef Ghost _main_ghost              # keys evicted from the main queue (adaptive only)
    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept
    cdef void _resize_small(self, int64_t delta) noexcept
    cdef void _move_to_main(self, Py_ssize_t slot) noexcept
    cdef Py_ssize_t _main_victim(self) noexcept
