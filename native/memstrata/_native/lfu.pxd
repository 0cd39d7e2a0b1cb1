# LFU: the C-level layout (see lfu.pyx).

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from memstrata._native.order cimport EvictionOrder, SlotList


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
