"""Segment-log records in one call each: a whole batch's bytes, and one record's checked read.

The per-write and per-read hot paths of :class:`memstrata.tiers.LogBackend`,
byte-for-byte twins of ``memstrata.tiers._segments`` (``encode_record`` and
``value_at``), which stays the readable reference of the format::

    magic "MR" | flags u8 | reserved u8 | key length u16 | value length u32 | seq u64
    key | value | crc32 of everything before it (zlib's CRC-32, started from the seed)

``crc32(data, seed)`` equals ``zlib.crc32(data, seed)``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

from memstrata.errors import CorruptDataError

from libc.errno cimport errno
from posix.unistd cimport pread

cdef extern from "ms_crc32.h" nogil:
    void ms_crc32_init()
    uint32_t ms_crc32(uint32_t crc, const uint8_t* p, size_t n)

ms_crc32_init()

cdef enum:
    HEADER_SIZE = 18
    CRC_SIZE = 4
    MAX_KEY = 0xFFFF
    READ_AHEAD = 4096

#: Bytes of a record header; a record is ``HEADER_SIZE + len(key) + len(value) + 4`` bytes.
RECORD_HEADER_SIZE = HEADER_SIZE
#: Bytes :func:`read_value` reads at once; a longer record costs one more read.
READ_AHEAD_BYTES = READ_AHEAD


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


def crc32(const unsigned char[::1] data, uint32_t seed=0) -> int:
    """zlib's CRC-32 of ``data``, continuing from ``seed`` (``zlib.crc32(data, seed)``).

    >>> import zlib
    >>> crc32(b"memstrata", 7) == zlib.crc32(b"memstrata", 7)
    True
    """
    if data.shape[0] == 0:
        return seed
    return ms_crc32(seed, &data[0], <size_t>data.shape[0])


def encode_batch(list records not None, uint64_t seq, uint32_t seed):
    """``(bytes, offsets)``: the records ``(flags, key, value)`` of one batch, laid end to end.

    Each record gets sequence number ``seq`` and its checksum (seeded with
    ``seed``); ``offsets[i]`` is where record ``i`` starts. The caller sets the
    ``END`` flag on the last record.

    >>> from memstrata.tiers._segments import encode_record
    >>> data, offsets = encode_batch([(0, b"k1", b"v1"), (2, b"k2", b"")], 9, 5)
    >>> data == encode_record(0, 9, b"k1", b"v1", 5) + encode_record(2, 9, b"k2", b"", 5), offsets
    (True, [0, 26])
    """
    cdef Py_ssize_t i, n = len(records), total = 0, klen, vlen, pos = 0
    cdef object item, key, value
    for i in range(n):
        item = records[i]
        key = item[1]
        value = item[2]
        if type(key) is not bytes or type(value) is not bytes:
            raise TypeError(f"records[{i}]: expected (flags, bytes key, bytes value), got {item!r:.80}")
        klen = PyBytes_GET_SIZE(key)
        vlen = PyBytes_GET_SIZE(value)
        if klen > MAX_KEY:
            raise ValueError(f"key: at most {MAX_KEY} bytes, got {klen}")
        if vlen > 0xFFFFFFFF:
            raise ValueError(f"value: at most {0xFFFFFFFF} bytes, got {vlen}")
        total += HEADER_SIZE + klen + vlen + CRC_SIZE
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef uint8_t* base = <uint8_t*>PyBytes_AS_STRING(out)
    cdef uint8_t* p
    cdef int flags
    offsets = [0] * n
    for i in range(n):
        item = records[i]
        flags = item[0]
        if not 0 <= flags <= 0xFF:
            raise ValueError(f"records[{i}]: flags must fit a byte, got {flags}")
        key = item[1]
        value = item[2]
        klen = PyBytes_GET_SIZE(key)
        vlen = PyBytes_GET_SIZE(value)
        offsets[i] = pos
        p = base + pos
        p[0] = 0x4D  # "M"
        p[1] = 0x52  # "R"
        p[2] = <uint8_t>flags
        p[3] = 0
        put16(p + 4, <uint16_t>klen)
        put32(p + 6, <uint32_t>vlen)
        put64(p + 10, seq)
        memcpy(p + HEADER_SIZE, PyBytes_AS_STRING(key), klen)
        memcpy(p + HEADER_SIZE + klen, PyBytes_AS_STRING(value), vlen)
        put32(p + HEADER_SIZE + klen + vlen, ms_crc32(seed, p, HEADER_SIZE + klen + vlen))
        pos += HEADER_SIZE + klen + vlen + CRC_SIZE
    return out, offsets


def read_value(int fd, int64_t offset, bytes key not None, uint32_t seed):
    """The value of ``key``'s record at ``offset`` of file ``fd``, checked in full.

    Returns None when an intact record of another key is there (the caller
    names it with ``memstrata.tiers._segments.record_at``). Raises
    ``CorruptDataError`` when the record is truncated, has a bad header or
    fails its checksum (the message starts with ``:``, for the caller to
    prefix the file), ``OSError`` when the file cannot be read.

    >>> import os, tempfile
    >>> from memstrata.tiers._segments import encode_record
    >>> fd, name = tempfile.mkstemp()
    >>> _ = os.write(fd, b"xx" + encode_record(0, 1, b"k1", b"v1", 5))
    >>> read_value(fd, 2, b"k1", 5), read_value(fd, 2, b"k2", 5)
    (b'v1', None)
    >>> read_value(fd, 2, b"k1", 6)
    Traceback (most recent call last):
    ...
    memstrata.errors.CorruptDataError: : record at offset 2 fails its checksum
    >>> os.close(fd); os.unlink(name)
    """
    if offset < 0:
        raise ValueError(f"offset: expected a non-negative integer, got {offset}")
    cdef uint8_t stack[READ_AHEAD]
    cdef uint8_t* buf = stack
    cdef uint8_t* big = NULL
    cdef ssize_t got, more
    cdef size_t klen, vlen, end
    cdef int err = 0
    with nogil:
        got = pread(fd, stack, READ_AHEAD, offset)
        if got < 0:
            err = errno
    if got < 0:
        raise OSError(err, f"cannot read at offset {offset}")
    if got < HEADER_SIZE + CRC_SIZE:
        raise CorruptDataError(f": record at offset {offset} is truncated")
    if stack[0] != 0x4D or stack[1] != 0x52:
        raise CorruptDataError(f": bad record header at offset {offset}")
    klen = <size_t>stack[4] | (<size_t>stack[5] << 8)
    vlen = <size_t>get32(stack + 6)
    end = HEADER_SIZE + klen + vlen
    try:
        if end + CRC_SIZE > <size_t>got:
            big = <uint8_t*>malloc(end + CRC_SIZE)
            if big == NULL:
                raise MemoryError(f"cannot hold a record of {end + CRC_SIZE} bytes")
            memcpy(big, stack, got)
            with nogil:
                more = pread(fd, big + got, end + CRC_SIZE - got, offset + got)
                if more < 0:
                    err = errno
            if more < 0:
                raise OSError(err, f"cannot read at offset {offset + got}")
            if <size_t>(got + more) != end + CRC_SIZE:
                raise CorruptDataError(f": record at offset {offset} is truncated")
            buf = big
        if ms_crc32(seed, buf, end) != get32(buf + end):
            raise CorruptDataError(f": record at offset {offset} fails its checksum")
        if klen != <size_t>PyBytes_GET_SIZE(key) or memcmp(buf + HEADER_SIZE, PyBytes_AS_STRING(key), klen) != 0:
            return None
        return PyBytes_FromStringAndSize(<char*>buf + HEADER_SIZE + klen, vlen)
    finally:
        free(big)
