# W-TinyLFU: the C-level layout (see wtinylfu.pyx).

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from memstrata._native.order cimport EvictionOrder, SlotList


cdef struct Sketch:
    uint8_t* counters                   # 4 rows of `width` 4-bit counters, two per byte
    uint64_t width                      # counters per row, a power of two
    uint64_t* door                      # doorkeeper Bloom filter bits
    uint64_t door_bits                  # a power of two
    int64_t additions                   # recorded accesses since the last halving
    int64_t sample_size                 # halve every counter after this many
    Py_ssize_t slots                    # the slot count the sketch is sized for


cdef class WTinyLFUOrder(EvictionOrder):
    cdef readonly double window_ratio
    cdef readonly double protected_ratio
    cdef readonly bint adaptive
    cdef readonly bint doorkeeper
    cdef readonly Py_ssize_t sketch_slots
    cdef readonly int64_t window_capacity
    cdef readonly int64_t protected_capacity
    cdef double _window_target          # hill climbing works in fractions of a slot
    cdef double _step
    cdef double _last_hit_rate
    cdef int64_t _sample_hits
    cdef int64_t _sample_misses
    cdef int64_t _climb_period
    cdef uint8_t* _segment              # 0 window, 1 probation, 2 protected
    cdef uint64_t* _hash
    cdef SlotList _window
    cdef SlotList _probation
    cdef SlotList _protected
    cdef Sketch _sketch
    @cython.final
    cdef SlotList* _list_of(self, Py_ssize_t slot) noexcept
    @cython.final
    cdef int _record(self, uint64_t h) except -1
    @cython.final
    cdef int _estimate(self, uint64_t h) noexcept
    @cython.final
    cdef void _move(self, Py_ssize_t slot, int segment) noexcept
    @cython.final
    cdef void _rebalance(self) noexcept
    @cython.final
    cdef void _set_window(self, double target) noexcept
    @cython.final
    cdef void _climb(self) noexcept
