# The body of one audit-log entry (format 1), written by both native writers of the
# audit log: auditchain.pyx's batch append and corewrite.pyx's single append. The
# body is the big-endian sequence number, the big-endian bits of the float64 time,
# then the five fields (actor, operation, key, digest, result), each as a big-endian
# 32-bit length and its bytes. The record around it (size, previous hash, the
# entry's own hash) is each writer's business.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline void put_be32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline uint8_t* put_entry_body(
    uint8_t* c, uint64_t seq, double when, const Py_ssize_t* lens, const char** ptrs
) noexcept nogil:
    """Write the body at ``c``; return the byte after it (where the entry's hash goes)."""
    cdef uint64_t bits
    cdef int j
    put_be32(c, <uint32_t>(seq >> 32))
    put_be32(c + 4, <uint32_t>seq)
    memcpy(&bits, &when, 8)
    put_be32(c + 8, <uint32_t>(bits >> 32))
    put_be32(c + 12, <uint32_t>bits)
    c += 16
    for j in range(5):
        put_be32(c, <uint32_t>lens[j])
        memcpy(c + 4, ptrs[j], lens[j])
        c += 4 + lens[j]
    return c
