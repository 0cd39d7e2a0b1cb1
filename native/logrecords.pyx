"""Segment-log records in one call each: a whole batch's bytes, written (the reads are ``logreads``).

The per-write hot paths of :class:`memstrata.tiers.LogBackend`,
byte-for-byte twins of ``memstrata.tiers._segments`` (``encode_record`` and
``value_at``), which stays the readable reference of the format::

    magic "MR" | flags u8 | reserved u8 | key length u16 | value length u32 | seq u64
    key | value | crc32 of everything before it (zlib's CRC-32, started from the seed)

``crc32(data, seed)`` equals ``zlib.crc32(data, seed)``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

from memstrata.errors import CorruptDataError

from libc.errno cimport errno
from posix.unistd cimport pread, pwrite, write

from _log_record cimport (
    CRC_SIZE, END_FLAG, HEADER_SIZE, MAX_KEY, READ_AHEAD, _put_record, _read_checked, _record_size, get32, ms_crc32,
    ms_crc32_init, put32, put64, put_double,
)

ms_crc32_init()

#: Bytes of a record header; a record is ``HEADER_SIZE + len(key) + len(value) + 4`` bytes.
RECORD_HEADER_SIZE = HEADER_SIZE


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
        _put_record(base + pos, flags, seq, PyBytes_AS_STRING(key), klen, PyBytes_AS_STRING(value), vlen, NULL, 0, seed)
        pos += HEADER_SIZE + klen + vlen + CRC_SIZE
    return out, offsets


cdef ssize_t _write_once(int fd, bytes data) noexcept:
    """One ``write`` of ``data`` to ``fd`` with the GIL released: what it returned, or ``-errno``."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef size_t n = PyBytes_GET_SIZE(data)
    cdef ssize_t done
    with nogil:
        done = write(fd, p, n)
        if done < 0:
            done = -errno
    return done


def rewrite_batch(int src_fd, int64_t src_offset, bytes key not None, Py_ssize_t at, bytes expect not None,
                  bytes head not None, bytes tags not None, bytes key2 not None, bytes value2 not None,
                  uint64_t seq, uint32_t seed, int dst_fd, int64_t room):
    """Read ``key``'s record at ``src_offset`` and append its rewrite, and one more record, with one ``write``.

    The write path of a key writing again the content it holds. The record
    at ``src_offset`` of file ``src_fd`` is read and checked in full (header,
    checksum, key: as :func:`read_value`). When its value ``v`` holds
    ``expect`` at ``at`` and, after ``len(head)`` bytes, either ends or goes
    on with a byte of ``tags``, the batch of two records (sequence number
    ``seq``) -- ``key`` with the value ``head + v[len(head):]``, then
    ``key2`` with ``value2`` and the ``END`` flag -- is written to ``dst_fd``
    at its end with one ``write`` (GIL released). Returns
    ``(data, second record's offset, what write() returned or -errno)``;
    the caller undoes a failed or short write.

    Returns None, writing nothing, when the record is not there intact, is
    another key's, does not match, or the batch is longer than ``room``
    bytes (the caller then takes its general path, which names any damage).

    >>> import os, tempfile
    >>> from memstrata.tiers._segments import encode_record
    >>> fd, name = tempfile.mkstemp()
    >>> _ = os.write(fd, encode_record(0, 1, b"k", b"HHxyz", 5))
    >>> data, second, done = rewrite_batch(fd, 0, b"k", 0, b"HH", b"NN", b"x", b"m", b"2", 2, 5, fd, 1 << 20)
    >>> data == encode_record(0, 2, b"k", b"NNxyz", 5) + encode_record(2, 2, b"m", b"2", 5), done == len(data)
    (True, True)
    >>> rewrite_batch(fd, 0, b"k", 0, b"ZZ", b"NN", b"x", b"m", b"2", 2, 5, fd, 1 << 20) is None
    True
    >>> os.close(fd); os.unlink(name)
    """
    if src_offset < 0 or at < 0:
        raise ValueError(f"src_offset, at: expected non-negative integers, got {src_offset}, {at}")
    cdef uint8_t stack[READ_AHEAD]
    cdef uint8_t* buf = stack
    cdef size_t klen, vlen, hlen = PyBytes_GET_SIZE(head), elen = PyBytes_GET_SIZE(expect)
    cdef size_t k2len = PyBytes_GET_SIZE(key2), v2len = PyBytes_GET_SIZE(value2), first, total
    cdef const uint8_t* value
    cdef uint8_t* p
    if k2len > MAX_KEY:
        raise ValueError(f"key2: at most {MAX_KEY} bytes, got {k2len}")
    try:
        try:
            _read_checked(src_fd, src_offset, seed, stack, &buf, &klen, &vlen)
        except (OSError, CorruptDataError):
            return None  # the general path reads it again and names the damage
        value = buf + HEADER_SIZE + klen
        if (klen != <size_t>PyBytes_GET_SIZE(key) or memcmp(buf + HEADER_SIZE, PyBytes_AS_STRING(key), klen) != 0
                or <size_t>at + elen > vlen or memcmp(value + at, PyBytes_AS_STRING(expect), elen) != 0
                or hlen > vlen or (hlen < vlen and memchr(PyBytes_AS_STRING(tags), value[hlen], PyBytes_GET_SIZE(tags)) == NULL)):
            return None
        first = HEADER_SIZE + klen + vlen + CRC_SIZE
        total = first + HEADER_SIZE + k2len + v2len + CRC_SIZE
        if <int64_t>total > room:
            return None
        out = PyBytes_FromStringAndSize(NULL, total)
        p = <uint8_t*>PyBytes_AS_STRING(out)
        p = _put_record(p, 0, seq, PyBytes_AS_STRING(key), klen, PyBytes_AS_STRING(head), hlen, value + hlen,
                        vlen - hlen, seed)
        _put_record(p, END_FLAG, seq, PyBytes_AS_STRING(key2), k2len, PyBytes_AS_STRING(value2), v2len, NULL, 0, seed)
        return out, first, _write_once(dst_fd, out)
    finally:
        if buf != stack:
            free(buf)


cdef enum:
    ENTRY_SIZE = 8 + 1 + 16  # an entry record's fields: seq u64, flags u8, digest (memstrata.tiers._tiers.ENTRY)
    BLOB_SIZE = 4 + 4 + 1 + 4 + 4 + 8  # a blob record's fields: refs, pins, location, stored, raw, access time
    WARM_LOCATION = 1
    PIN_FLAG = 2


cdef int _check_new_content(size_t klen, size_t alen, size_t lklen, bytes digest, int flags) except -1:
    """The argument checks :func:`new_content_batch` and :func:`superseding_batch` share."""
    if klen > MAX_KEY or alen > MAX_KEY or lklen > MAX_KEY:
        raise ValueError(f"entry_key, blob_key, last key: at most {MAX_KEY} bytes, got {klen}, {alen}, {lklen}")
    if PyBytes_GET_SIZE(digest) != 16:
        raise ValueError(f"digest: expected 16 bytes, got {PyBytes_GET_SIZE(digest)}")
    if not 0 <= flags <= 0xFF:
        raise ValueError(f"flags: must fit a byte, got {flags}")
    return 0


cdef inline uint8_t* _put_new_content(uint8_t* p, uint64_t seq, uint32_t seed, bytes blob_key, bytes owner,
                                      bytes entry_key, uint64_t entry_seq, int flags, bytes digest, bytes frame,
                                      uint32_t raw_length, double access_time, size_t* entry_at) noexcept:
    """Lay new content's blob record, then the entry of its owner holding its frame, at ``p``.

    ``*entry_at`` gets the entry's offset from ``p``; returns the byte after the entry.
    """
    cdef uint8_t fields[ENTRY_SIZE + 1 + BLOB_SIZE]
    cdef uint8_t* start = p
    cdef size_t flen = PyBytes_GET_SIZE(frame)
    put32(fields, 1)  # refs
    put32(fields + 4, 1 if flags & PIN_FLAG else 0)  # pins
    fields[8] = WARM_LOCATION
    put32(fields + 9, <uint32_t>flen)
    put32(fields + 13, raw_length)
    put_double(fields + 17, access_time)
    p = _put_record(p, 0, seq, PyBytes_AS_STRING(blob_key), PyBytes_GET_SIZE(blob_key), <char*>fields, BLOB_SIZE,
                    <uint8_t*>PyBytes_AS_STRING(owner), PyBytes_GET_SIZE(owner), seed)
    entry_at[0] = p - start
    put64(fields, entry_seq)
    fields[8] = <uint8_t>flags
    memcpy(fields + 9, PyBytes_AS_STRING(digest), 16)
    fields[ENTRY_SIZE] = 0x57  # "W": the frame follows inside the entry
    return _put_record(p, 0, seq, PyBytes_AS_STRING(entry_key), PyBytes_GET_SIZE(entry_key), <char*>fields,
                       ENTRY_SIZE + 1, <uint8_t*>PyBytes_AS_STRING(frame), flen, seed)


def new_content_batch(bytes entry_key not None, bytes owner not None, uint64_t entry_seq, int flags,
                      bytes digest not None, bytes frame not None, bytes blob_key not None, uint32_t raw_length,
                      double access_time, bytes key3 not None, bytes value3 not None, uint64_t seq, uint32_t seed,
                      int fd, int64_t room):
    """Append a new key's entry with new content, its blob record and one more record, with one ``write``.

    The write path of a key that is new writing content no key holds, on the
    warm tier (``memstrata.tiers``, record layout 3: the key owns its blob,
    whose frame lives inside the key's entry). The batch (sequence number
    ``seq``, checksums seeded with ``seed``) is the three records the
    Python plan makes, byte for byte:

    - ``blob_key``: the blob fields ``(1, pins, warm, len(frame),
      raw_length, access_time)`` packed as ``"<IIBIId"`` (``pins`` is 1 when
      ``flags`` holds the pin flag 2, ``F_PINNED``), then ``owner``;
    - ``entry_key``: the entry fields ``(entry_seq, flags, digest)`` packed
      as ``"<QB16s"``, then ``b"W"`` and ``frame``;
    - ``key3`` with ``value3`` and the ``END`` flag.

    They are written to ``fd`` at its end with one ``write`` (GIL
    released). Returns ``(data, entry's offset, third record's offset, what
    write() returned or -errno)``; the caller undoes a failed or short
    write. Returns None, writing nothing, when the batch is longer than
    ``room`` bytes or ``frame`` does not fit a ``u32``.

    >>> import os, struct, tempfile
    >>> from memstrata.tiers._segments import encode_record
    >>> fd, name = tempfile.mkstemp()
    >>> d = bytes(range(16))
    >>> data, second, third, done = new_content_batch(b"ksk", b"sk", 4, 0, d, b"F", b"a" + d, 9, 1.5, b"mseq",
    ...                                               b"12345678", 2, 5, fd, 1 << 20)
    >>> blob = encode_record(0, 2, b"a" + d, struct.pack("<IIBIId", 1, 0, 1, 1, 9, 1.5) + b"sk", 5)
    >>> entry = encode_record(0, 2, b"ksk", struct.pack("<QB16s", 4, 0, d) + b"WF", 5)
    >>> data == blob + entry + encode_record(2, 2, b"mseq", b"12345678", 5), done == len(data)
    (True, True)
    >>> (second, third) == (len(blob), len(blob) + len(entry))
    True
    >>> os.close(fd); os.unlink(name)
    """
    cdef size_t flen = PyBytes_GET_SIZE(frame), third, total, entry_at
    cdef uint8_t* p
    _check_new_content(PyBytes_GET_SIZE(entry_key), PyBytes_GET_SIZE(blob_key), PyBytes_GET_SIZE(key3), digest, flags)
    if flen > 0xFFFFFFFF - ENTRY_SIZE - 1:
        return None
    third = (_record_size(PyBytes_GET_SIZE(blob_key), BLOB_SIZE + PyBytes_GET_SIZE(owner))
              + _record_size(PyBytes_GET_SIZE(entry_key), ENTRY_SIZE + 1 + flen))
    total = third + _record_size(PyBytes_GET_SIZE(key3), PyBytes_GET_SIZE(value3))
    if <int64_t>total > room:
        return None
    out = PyBytes_FromStringAndSize(NULL, total)
    p = _put_new_content(<uint8_t*>PyBytes_AS_STRING(out), seq, seed, blob_key, owner, entry_key, entry_seq, flags,
                         digest, frame, raw_length, access_time, &entry_at)
    _put_record(p, END_FLAG, seq, PyBytes_AS_STRING(key3), PyBytes_GET_SIZE(key3), PyBytes_AS_STRING(value3),
                PyBytes_GET_SIZE(value3), NULL, 0, seed)
    return out, entry_at, third, _write_once(fd, out)


def superseding_batch(bytes old_blob_key not None, bytes old_blob not None, bint unpin, bytes entry_key not None,
                      bytes owner not None, uint64_t entry_seq, int flags, bytes digest not None, bytes frame not None,
                      bytes blob_key not None, uint32_t raw_length, double access_time, bytes key4 not None,
                      bytes value4 not None, uint64_t seq, uint32_t seed, int fd, int64_t room):
    """Append a key's entry with new content in place of the content it owned, the two blob records and one more.

    The write path of a key that owns its blob (its entry holds the frame,
    the blob record names it) writing content no key holds, on the warm
    tier. The batch (sequence number ``seq``, checksums seeded with
    ``seed``) is the four records the Python plan makes, byte for byte:

    - ``old_blob_key``: the old blob record ``old_blob`` (fields packed as
      ``"<IIBIId"``, then its owner) with no reference left (refs 0) and,
      when ``unpin`` (the old entry was pinned), one pin less; its frame
      goes with the old entry;
    - ``blob_key`` and ``entry_key``: the new blob record and the entry
      holding ``frame``, as :func:`new_content_batch` makes them;
    - ``key4`` with ``value4`` and the ``END`` flag.

    They are written to ``fd`` at its end with one ``write`` (GIL
    released). Returns ``(data, new blob's offset, entry's offset, fourth
    record's offset, what write() returned or -errno)``; the caller undoes a
    failed or short write. Returns None, writing nothing, when the batch is
    longer than ``room`` bytes, ``frame`` does not fit a ``u32`` or
    ``unpin`` meets an old blob without pins.

    >>> import os, struct, tempfile
    >>> from memstrata.tiers._segments import encode_record
    >>> fd, name = tempfile.mkstemp()
    >>> d, old = bytes(range(16)), bytes(range(1, 17))
    >>> old_blob = struct.pack("<IIBIId", 1, 1, 1, 5, 20, 0.5) + b"sk"
    >>> data, second, third, fourth, done = superseding_batch(b"a" + old, old_blob, True, b"ksk", b"sk", 4, 0, d,
    ...                                                       b"F", b"a" + d, 9, 1.5, b"mseq", b"12345678", 2, 5,
    ...                                                       fd, 1 << 20)
    >>> released = encode_record(0, 2, b"a" + old, struct.pack("<IIBIId", 0, 0, 1, 5, 20, 0.5) + b"sk", 5)
    >>> blob = encode_record(0, 2, b"a" + d, struct.pack("<IIBIId", 1, 0, 1, 1, 9, 1.5) + b"sk", 5)
    >>> entry = encode_record(0, 2, b"ksk", struct.pack("<QB16s", 4, 0, d) + b"WF", 5)
    >>> data == released + blob + entry + encode_record(2, 2, b"mseq", b"12345678", 5), done == len(data)
    (True, True)
    >>> (second, third, fourth) == (len(released), len(released) + len(blob), len(data) - 34)
    True
    >>> os.close(fd); os.unlink(name)
    """
    cdef size_t flen = PyBytes_GET_SIZE(frame), blen = PyBytes_GET_SIZE(old_blob), second, fourth, total, entry_at
    cdef size_t oklen = PyBytes_GET_SIZE(old_blob_key)
    cdef const uint8_t* old = <const uint8_t*>PyBytes_AS_STRING(old_blob)
    cdef uint8_t counts[8]
    cdef uint32_t pins
    cdef uint8_t* p
    _check_new_content(PyBytes_GET_SIZE(entry_key), PyBytes_GET_SIZE(blob_key), PyBytes_GET_SIZE(key4), digest, flags)
    if oklen > MAX_KEY:
        raise ValueError(f"old_blob_key: at most {MAX_KEY} bytes, got {oklen}")
    if blen < BLOB_SIZE:
        raise ValueError(f"old_blob: expected a blob record of at least {BLOB_SIZE} bytes, got {blen}")
    pins = get32(old + 4)
    if flen > 0xFFFFFFFF - ENTRY_SIZE - 1 or (unpin and pins == 0):
        return None
    second = _record_size(oklen, blen)
    fourth = (second + _record_size(PyBytes_GET_SIZE(blob_key), BLOB_SIZE + PyBytes_GET_SIZE(owner))
              + _record_size(PyBytes_GET_SIZE(entry_key), ENTRY_SIZE + 1 + flen))
    total = fourth + _record_size(PyBytes_GET_SIZE(key4), PyBytes_GET_SIZE(value4))
    if <int64_t>total > room:
        return None
    out = PyBytes_FromStringAndSize(NULL, total)
    put32(counts, 0)  # refs: the old entry held the one reference
    put32(counts + 4, pins - 1 if unpin else pins)
    p = _put_record(<uint8_t*>PyBytes_AS_STRING(out), 0, seq, PyBytes_AS_STRING(old_blob_key), oklen, <char*>counts,
                    8, old + 8, blen - 8, seed)
    p = _put_new_content(p, seq, seed, blob_key, owner, entry_key, entry_seq, flags, digest, frame, raw_length,
                         access_time, &entry_at)
    _put_record(p, END_FLAG, seq, PyBytes_AS_STRING(key4), PyBytes_GET_SIZE(key4), PyBytes_AS_STRING(value4),
                PyBytes_GET_SIZE(value4), NULL, 0, seed)
    return out, second, second + entry_at, fourth, _write_once(fd, out)


cdef enum:
    TAIL_BODY = 4 + 8 + 8 + 16  # magic "MSTL", written, synced, boot id
    TAIL_SLOT = TAIL_BODY + CRC_SIZE

#: Bytes of one tail-marker slot (``memstrata._tail``): its fields, then their CRC-32.
TAIL_SLOT_SIZE = TAIL_SLOT


def write_tail_slot(int fd, int64_t offset, uint64_t written, uint64_t synced, bytes boot not None):
    """Write one tail-marker slot at ``offset`` of file ``fd`` with one ``pwrite``.

    The slot is ``"MSTL" | written u64 | synced u64 | boot id (16 bytes) |
    crc32 of those 36 bytes``: the bytes ``memstrata._tail`` packs with
    ``struct`` and ``zlib.crc32``, made here without a Python object per
    field (the marker is written after every batch). Raises ``OSError`` when
    the write fails or is short.

    >>> import os, struct, tempfile, zlib
    >>> fd, name = tempfile.mkstemp()
    >>> write_tail_slot(fd, 64, 7, 5, bytes(range(16)))
    >>> body = struct.pack("<4sQQ16s", b"MSTL", 7, 5, bytes(range(16)))
    >>> os.pread(fd, 40, 64) == body + struct.pack("<I", zlib.crc32(body))
    True
    >>> os.close(fd); os.unlink(name)
    """
    if offset < 0:
        raise ValueError(f"offset: expected a non-negative integer, got {offset}")
    if PyBytes_GET_SIZE(boot) != 16:
        raise ValueError(f"boot: expected 16 bytes, got {PyBytes_GET_SIZE(boot)}")
    cdef uint8_t slot[TAIL_SLOT]
    cdef ssize_t done
    slot[0] = 0x4D  # "M"
    slot[1] = 0x53  # "S"
    slot[2] = 0x54  # "T"
    slot[3] = 0x4C  # "L"
    put64(slot + 4, written)
    put64(slot + 12, synced)
    memcpy(slot + 20, PyBytes_AS_STRING(boot), 16)
    put32(slot + TAIL_BODY, ms_crc32(0, slot, TAIL_BODY))
    done = pwrite(fd, slot, TAIL_SLOT, offset)  # 40 bytes into allocated space: too short to release the GIL for
    if done != TAIL_SLOT:  # errno, or EIO for a short write
        raise OSError(errno if done < 0 else 5, f"cannot write the tail marker at offset {offset}")
