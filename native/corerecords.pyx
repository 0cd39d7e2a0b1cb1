"""The records MemoryCore's layers hold, encoded in C (one call instead of ``struct``, ``join`` and a slice).

A record is ``be64 seq | u8 kind | check | payload`` where ``check`` is the
first 16 bytes of ``SHA256(be32 len(key) || key || be64 seq || u8 kind ||
payload)`` (see ``memstrata.core._layers``, whose Python ``encode_record_py``
is the twin a hypothesis property compares this with).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef extern from "ms_sha256.h" nogil:
    int MS_SHA_PORTABLE
    int MS_SHA_SHANI
    int ms_sha256_supported(int path)
    void ms_sha256(int path, const uint8_t* data, size_t length, uint8_t* out)


cdef enum:
    HEAD_ = 9  # seq, kind
    CHECK_ = 16
    STACK_ = 512  # hashed input up to this size is built on the stack

cdef int _path = MS_SHA_SHANI if ms_sha256_supported(MS_SHA_SHANI) else MS_SHA_PORTABLE


cdef inline void _put_be32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


def encode_record(bytes key not None, int64_t seq, int kind, bytes payload not None):
    """The record of ``payload`` under ``key`` at sequence ``seq`` with ``kind`` (0–255).

    Examples
    --------
    >>> import hashlib, struct
    >>> rec = encode_record(b"k", 7, 0, b"v")
    >>> head = struct.pack(">QB", 7, 0)
    >>> rec == head + hashlib.sha256(struct.pack(">I", 1) + b"k" + head + b"v").digest()[:16] + b"v"
    True
    """
    if seq < 0:
        raise ValueError(f"seq: expected a sequence number >= 0, got {seq}")
    if not 0 <= kind <= 255:
        raise ValueError(f"kind: expected a byte (0-255), got {kind}")
    cdef Py_ssize_t nk = PyBytes_GET_SIZE(key), npay = PyBytes_GET_SIZE(payload)
    if nk > 0xFFFFFFFF:
        raise ValueError(f"key: {nk} bytes do not fit a record")
    cdef Py_ssize_t nin = 4 + nk + HEAD_ + npay
    cdef uint8_t stack[STACK_]
    cdef uint8_t* buf = &stack[0] if nin <= STACK_ else <uint8_t*>malloc(nin)
    if buf == NULL:
        raise MemoryError()
    out = PyBytes_FromStringAndSize(NULL, HEAD_ + CHECK_ + npay)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    cdef uint8_t digest[32]
    _put_be32(o, <uint32_t>(<uint64_t>seq >> 32))
    _put_be32(o + 4, <uint32_t>seq)
    o[8] = <uint8_t>kind
    _put_be32(buf, <uint32_t>nk)
    memcpy(buf + 4, PyBytes_AS_STRING(key), nk)
    memcpy(buf + 4 + nk, o, HEAD_)
    memcpy(buf + 4 + nk + HEAD_, PyBytes_AS_STRING(payload), npay)
    ms_sha256(_path, buf, <size_t>nin, digest)
    if buf != &stack[0]:
        free(buf)
    memcpy(o + HEAD_, digest, CHECK_)
    memcpy(o + HEAD_ + CHECK_, PyBytes_AS_STRING(payload), npay)
    return out
