# A growable open-addressing table from 64-bit key hashes (never 0) to int32
# values: the index of S3-FIFO's ghost queues (hash -> ring position) and of the
# adaptive order's miniature caches (hash -> slot). Linear probing from a home
# bucket of (h ^ h >> 29); deletion shifts entries back, so every probe sequence
# stays unbroken without tombstones. A table starts empty (no memory) and is
# resized by hs_reserve before entries are added, keeping the load at most 1/2;
# the layout changes on a resize, the contents never do.

from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.stdint cimport int32_t, uint64_t

from memstrata._native.order cimport _pow2_at_least


cdef struct HashSlots:
    uint64_t* keys                      # 0 = empty; NULL until the first reserve
    int32_t* values
    uint64_t mask                       # buckets - 1
    Py_ssize_t count                    # live entries


cdef inline void hs_init(HashSlots* t) noexcept nogil:
    t.keys = NULL
    t.values = NULL
    t.mask = 0
    t.count = 0


cdef inline void hs_free(HashSlots* t) noexcept:
    PyMem_RawFree(t.keys)
    PyMem_RawFree(t.values)
    hs_init(t)


cdef inline Py_ssize_t hs_buckets(HashSlots* t) noexcept nogil:
    return <Py_ssize_t>(t.mask + 1) if t.keys != NULL else 0


cdef inline Py_ssize_t hs_nbytes(HashSlots* t) noexcept nogil:
    return hs_buckets(t) * <Py_ssize_t>(sizeof(uint64_t) + sizeof(int32_t))


cdef inline Py_ssize_t hs_home(HashSlots* t, uint64_t h) noexcept nogil:
    return <Py_ssize_t>((h ^ (h >> 29)) & t.mask)


cdef inline Py_ssize_t hs_find(HashSlots* t, uint64_t h) noexcept nogil:
    # the bucket holding h, or -1
    cdef Py_ssize_t i
    if t.keys == NULL:
        return -1
    i = hs_home(t, h)
    while t.keys[i] != 0:
        if t.keys[i] == h:
            return i
        i = (i + 1) & t.mask
    return -1


cdef inline void hs_put(HashSlots* t, uint64_t h, int32_t value) noexcept nogil:
    # h -> value (a new entry, or h's existing one); room was reserved
    cdef Py_ssize_t i = hs_home(t, h)
    while t.keys[i] != 0 and t.keys[i] != h:
        i = (i + 1) & t.mask
    if t.keys[i] == 0:
        t.count += 1
    t.keys[i] = h
    t.values[i] = value


cdef inline void hs_delete_at(HashSlots* t, Py_ssize_t i) noexcept nogil:
    # remove the entry in bucket i, shifting later entries of its run back
    cdef Py_ssize_t j = i
    cdef Py_ssize_t k
    while True:
        j = (j + 1) & t.mask
        if t.keys[j] == 0:
            break
        k = hs_home(t, t.keys[j])
        if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
            continue
        t.keys[i] = t.keys[j]
        t.values[i] = t.values[j]
        i = j
    t.keys[i] = 0
    t.count -= 1


cdef inline int hs_reserve(HashSlots* t, Py_ssize_t entries) except -1:
    # room for `entries` live entries at load <= 1/2 (2 * entries + 2 buckets, a power
    # of two); on MemoryError the table is unchanged
    cdef uint64_t size = _pow2_at_least(<uint64_t>(2 * entries + 2))
    cdef uint64_t old_size = <uint64_t>hs_buckets(t)
    cdef uint64_t i
    cdef HashSlots old = t[0]
    if size <= old_size:
        return 0
    t.keys = <uint64_t*>PyMem_RawCalloc(size, sizeof(uint64_t))
    t.values = <int32_t*>PyMem_RawCalloc(size, sizeof(int32_t))
    if t.keys == NULL or t.values == NULL:
        PyMem_RawFree(t.keys)
        PyMem_RawFree(t.values)
        t[0] = old
        raise MemoryError()
    t.mask = size - 1
    t.count = 0
    for i in range(old_size):
        if old.keys[i] != 0:
            hs_put(t, old.keys[i], old.values[i])
    PyMem_RawFree(old.keys)
    PyMem_RawFree(old.values)
    return 0
