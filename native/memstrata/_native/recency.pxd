# LRU and FIFO: the C-level layout (see recency.pyx).

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from memstrata._native.order cimport EvictionOrder, SlotList


cdef class _OneList(EvictionOrder):
    cdef SlotList _list


cdef class LRUOrder(_OneList):
    pass


cdef class FIFOOrder(_OneList):
    pass
