# One segment-log record laid out in memory: the byte helpers, the record writer that
# logrecords.pyx builds every batch with, and the checked record read that logreads.pyx (and
# logrecords.pyx's rewrite) starts from. The layout is memstrata.tiers._segments' (its
# readable reference):
#     magic "MR" | flags u8 | reserved u8 | key length u16 | value length u32 | seq u64
#     key | value | crc32 of everything before it (zlib's CRC-32, started from the seed)
# Integers are little-endian.

from libc.errno cimport errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc
from libc.string cimport memcpy
from posix.unistd cimport pread


cdef extern from "ms_crc32.h" nogil:
    void ms_crc32_init()
    uint32_t ms_crc32(uint32_t crc, const uint8_t* p, size_t n)


cdef enum:
    END_FLAG = 2  # the last record of a batch
    HEADER_SIZE = 18
    CRC_SIZE = 4
    MAX_KEY = 0xFFFF
    READ_AHEAD = 4096  # bytes a record read takes at once (the most it may take); a longer record costs one more


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


cdef inline object _corrupt(str message):
    """``CorruptDataError(message)``, imported here: a .pxd cannot import at module level (error paths only)."""
    from memstrata.errors import CorruptDataError
    return CorruptDataError(message)


cdef inline int _read_within(int fd, int64_t offset, uint32_t seed, uint8_t* stack, size_t ahead, uint8_t** out,
                             size_t* key_len, size_t* value_len) except -1:
    """Read the whole record at ``offset`` and check its header and checksum.

    The first ``pread`` takes ``ahead`` bytes (at most ``READ_AHEAD``, what ``stack`` holds);
    a longer record is read into memory allocated here, which ``*out`` then points at and
    the caller frees. Raises ``CorruptDataError`` (its message starts with ``:``, for the
    caller to prefix the file) or ``OSError``.
    """
    cdef uint8_t* big = NULL
    cdef ssize_t got, more
    cdef size_t klen, vlen, end
    cdef int err = 0
    with nogil:
        got = pread(fd, stack, ahead, offset)
        if got < 0:
            err = errno
    if got < 0:
        raise OSError(err, f"cannot read at offset {offset}")
    if got < HEADER_SIZE + CRC_SIZE:
        raise _corrupt(f": record at offset {offset} is truncated")
    if stack[0] != 0x4D or stack[1] != 0x52:
        raise _corrupt(f": bad record header at offset {offset}")
    klen = <size_t>stack[4] | (<size_t>stack[5] << 8)
    vlen = <size_t>get32(stack + 6)
    end = HEADER_SIZE + klen + vlen
    out[0] = stack
    if end + CRC_SIZE > <size_t>got:
        big = <uint8_t*>malloc(end + CRC_SIZE)
        if big == NULL:
            raise MemoryError(f"cannot hold a record of {end + CRC_SIZE} bytes")
        out[0] = big
        memcpy(big, stack, got)
        with nogil:
            more = pread(fd, big + got, end + CRC_SIZE - got, offset + got)
            if more < 0:
                err = errno
        if more < 0:
            raise OSError(err, f"cannot read at offset {offset + got}")
        if <size_t>(got + more) != end + CRC_SIZE:
            raise _corrupt(f": record at offset {offset} is truncated")
    if ms_crc32(seed, out[0], end) != get32(out[0] + end):
        raise _corrupt(f": record at offset {offset} fails its checksum")
    key_len[0] = klen
    value_len[0] = vlen
    return 0


cdef inline int _read_checked(int fd, int64_t offset, uint32_t seed, uint8_t* stack, uint8_t** out,
                              size_t* key_len, size_t* value_len) except -1:
    """:func:`_read_within` taking ``READ_AHEAD`` bytes first."""
    return _read_within(fd, offset, seed, stack, READ_AHEAD, out, key_len, value_len)
