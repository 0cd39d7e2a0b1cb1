"""Segment-log records read back in one call each: a value by its record's offset, a warm read by key.

The per-read hot paths of :class:`memstrata.tiers.LogBackend`; the readable twins are
``memstrata.tiers._segments.value_at`` and ``memstrata.tiers._log_reads.tagged_at``.
Every value returned is from a record whose header and checksum were checked and which
names the key asked for (the record layout is ``logrecords``').
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.stdlib cimport free
from libc.string cimport memcmp

from memstrata.errors import CorruptDataError

from _log_record cimport HEADER_SIZE, READ_AHEAD, _read_checked, _read_within, ms_crc32_init

ms_crc32_init()

#: Bytes :func:`read_value` reads at once; a longer record costs one more read.
READ_AHEAD_BYTES = READ_AHEAD

cdef enum:
    # read_tagged's first read: a warm record (entry, tag, small frame) mostly fits, and a
    # pread of 1 KiB costs less than one of READ_AHEAD; a longer record costs one more read
    TAGGED_FIRST = 1024


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
    cdef size_t klen, vlen
    try:
        _read_checked(fd, offset, seed, stack, &buf, &klen, &vlen)
        if klen != <size_t>PyBytes_GET_SIZE(key) or memcmp(buf + HEADER_SIZE, PyBytes_AS_STRING(key), klen) != 0:
            return None
        return PyBytes_FromStringAndSize(<char*>buf + HEADER_SIZE + klen, vlen)
    finally:
        if buf != stack:
            free(buf)


def read_tagged(table, dict fds not None, bytes key not None, uint32_t seed, Py_ssize_t head, int tag):
    """``(location, value[:head], value[head + 1:])`` of ``key``'s record, found and checked in one call.

    The warm read path: ``table`` (a ``KeyIndex``) gives the location, ``fds`` maps a
    segment number to its open file; the record is checked as by :func:`read_value`.
    The third item is None (and the second the whole value) unless byte ``head`` of
    the value is ``tag``. None whenever this path cannot prove the read (no or several
    index entries, a segment not open, a damaged record, another key's): the caller's
    general path tells these apart and names the file.

    >>> import os, tempfile
    >>> from memstrata._native.keyindex import KeyIndex
    >>> from memstrata.tiers._segments import encode_record
    >>> fd, name = tempfile.mkstemp()
    >>> _ = os.write(fd, encode_record(0, 1, b"k1", b"headWframe", 5))
    >>> table = KeyIndex()
    >>> table.insert(table.fingerprint(b"k1"), 3 << 32)
    >>> read_tagged(table, {3: fd}, b"k1", 5, 4, ord("W")), read_tagged(table, {3: fd}, b"k2", 5, 4, ord("W"))
    ((12884901888, b'head', b'frame'), None)
    >>> os.close(fd); os.unlink(name)
    """
    locs = table.lookup(key)
    if len(locs) != 1:
        return None
    loc = locs[0]
    fd_obj = fds.get(loc >> 32)
    if fd_obj is None:
        return None
    cdef int64_t offset = loc & 0xFFFFFFFF
    cdef uint8_t stack[TAGGED_FIRST]
    cdef uint8_t* buf = stack
    cdef const char* value
    cdef size_t klen, vlen
    try:
        try:
            _read_within(<int>fd_obj, offset, seed, stack, TAGGED_FIRST, &buf, &klen, &vlen)
        except (OSError, CorruptDataError):
            return None
        if klen != <size_t>PyBytes_GET_SIZE(key) or memcmp(buf + HEADER_SIZE, PyBytes_AS_STRING(key), klen) != 0:
            return None
        value = <const char*>buf + HEADER_SIZE + klen
        if head < 0 or vlen <= <size_t>head or <uint8_t>value[head] != tag:
            return loc, PyBytes_FromStringAndSize(value, vlen), None
        return loc, PyBytes_FromStringAndSize(value, head), PyBytes_FromStringAndSize(value + head + 1, vlen - head - 1)
    finally:
        if buf != stack:
            free(buf)
