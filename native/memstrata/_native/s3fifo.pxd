# S3-FIFO: the C-level layout (see s3fifo.pyx).

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from _hash_slots cimport HashSlots

from memstrata._native.order cimport EvictionOrder, SlotList


cdef struct Ghost:
    uint64_t* ring
    Py_ssize_t ring_size                # length of the FIFO (a share of n_slots)
    Py_ssize_t ring_alloc               # ring entries allocated so far (grows to ring_size)
    Py_ssize_t ring_pos
    HashSlots table                     # hash -> ring position of its live entry


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
    @cython.final
    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept
    @cython.final
    cdef void _resize_small(self, int64_t delta) noexcept
    @cython.final
    cdef void _move_to_main(self, Py_ssize_t slot) noexcept
    @cython.final
    cdef Py_ssize_t _main_victim(self) noexcept
