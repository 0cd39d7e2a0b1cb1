# One segment-log record laid out in memory: the byte helpers and the record writer that
# logrecords.pyx builds every batch with. The layout is memstrata.tiers._segments' (its
# readable reference):
#     magic "MR" | flags u8 | reserved u8 | key length u16 | value length u32 | seq u64
#     key | value | crc32 of everything before it (zlib's CRC-32, started from the seed)
# Integers are little-endian.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef extern from "ms_crc32.h" nogil:
    void ms_crc32_init()
    uint32_t ms_crc32(uint32_t crc, const uint8_t* p, size_t n)


cdef enum:
    END_FLAG = 2  # the last record of a batch
    HEADER_SIZE = 18
    CRC_SIZE = 4
    MAX_KEY = 0xFFFF


cdef inline void put16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>v
    p[1] = <uint8_t>(v >> 8)


cdef inline void put32(uint8_t* p, uint32_t v) noexcept nogil:
    cdef int i
    for i in range(4):
        p[i] = <uint8_t>(v >> (8 * i))


cdef inline void put64(uint8_t* p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <uint8_t>(v >> (8 * i))


cdef inline uint32_t get32(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline void put_double(uint8_t* p, double v) noexcept nogil:
    cdef uint64_t bits
    memcpy(&bits, &v, 8)
    put64(p, bits)


cdef inline size_t _record_size(size_t klen, size_t vlen) noexcept nogil:
    return HEADER_SIZE + klen + vlen + CRC_SIZE


cdef inline uint8_t* _put_record(uint8_t* p, int flags, uint64_t seq, const char* key, size_t klen,
                                 const char* head, size_t hlen, const uint8_t* rest, size_t rlen,
                                 uint32_t seed) noexcept nogil:
    """Lay one record (its value ``head`` then ``rest``) at ``p``; returns the byte after it."""
    cdef size_t vlen = hlen + rlen
    p[0] = 0x4D  # "M"
    p[1] = 0x52  # "R"
    p[2] = <uint8_t>flags
    p[3] = 0
    put16(p + 4, <uint16_t>klen)
    put32(p + 6, <uint32_t>vlen)
    put64(p + 10, seq)
    memcpy(p + HEADER_SIZE, key, klen)
    memcpy(p + HEADER_SIZE + klen, head, hlen)
    if rlen:
        memcpy(p + HEADER_SIZE + klen + hlen, rest, rlen)
    put32(p + HEADER_SIZE + klen + vlen, ms_crc32(seed, p, HEADER_SIZE + klen + vlen))
    return p + HEADER_SIZE + klen + vlen + CRC_SIZE
