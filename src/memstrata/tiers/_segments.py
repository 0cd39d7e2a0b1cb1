"""Segment files of the log: self-describing records, each proving its own key.

Record layout (little endian)::

    magic "MR" | flags u8 | reserved u8 | key length u16 | value length u32 | seq u64
    key | value | crc32 of everything before it (seeded with the file's store id)

``flags``: ``PUT`` (value for key), ``DEL`` (the key is gone), ``END`` (the
last record of one atomic batch: a batch counts only once its ``END`` record
is on disk), ``HEAD`` (first record of every segment: its id, kind and base
sequence number) and ``SEAL`` (last record of a full segment: the id of the
next one). The checksum binds key, sequence number, flags and value, so a
misdirected or swapped page makes the read raise instead of returning another
key's bytes.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from memstrata.errors import CorruptDataError
from memstrata.tiers._backend import StorageFullError

__all__ = [
    "F_DEL",
    "F_END",
    "F_HEAD",
    "F_PUT",
    "F_SEAL",
    "HEADER",
    "KIND_COMPACTED",
    "KIND_LOG",
    "OtherKeyError",
    "Record",
    "encode_record",
    "fsync_dir",
    "head_record",
    "next_valid_record",
    "read_record",
    "record_at",
    "record_parts",
    "scan_records",
    "seal_record",
    "segment_id_of",
    "segment_name",
    "value_at",
    "write_all",
]

MAGIC = b"MR"
HEADER = struct.Struct("<2sBBHIQ")
CRC = struct.Struct("<I")
F_PUT, F_DEL, F_END, F_HEAD, F_SEAL = 0, 1, 2, 4, 8
KIND_LOG, KIND_COMPACTED = 0, 1
HEAD_VALUE = struct.Struct("<IBQ")  # segment id, kind, base sequence number
SEAL_VALUE = struct.Struct("<IQ")  # next segment id, last sequence number
MAX_KEY = 0xFFFF


class Record(NamedTuple):
    """One record as read from a segment."""

    offset: int
    length: int  # of the whole record
    flags: int
    seq: int
    key: bytes
    value: bytes


_new_record = tuple.__new__  # Record's own __new__ is Python code: this skips it on the replay path


def segment_name(seg: int) -> str:
    return f"seg-{seg:08d}.log"


def segment_id_of(name: str) -> int | None:
    if name.startswith("seg-") and name.endswith(".log") and len(name) == 16 and name[4:12].isdigit():
        return int(name[4:12])
    return None


def record_parts(flags: int, seq: int, key: bytes, value: bytes, seed: int) -> tuple[bytes, bytes, bytes, bytes]:
    """One record as its four pieces (header, key, value, checksum): a batch is joined once, not per record."""
    if len(key) > MAX_KEY:
        raise ValueError(f"key: at most {MAX_KEY} bytes, got {len(key)}")
    head = HEADER.pack(MAGIC, flags, 0, len(key), len(value), seq)
    return head, key, value, CRC.pack(zlib.crc32(value, zlib.crc32(key, zlib.crc32(head, seed))))


def encode_record(flags: int, seq: int, key: bytes, value: bytes, seed: int) -> bytes:
    """One record's bytes (header, key, value, checksum)."""
    return b"".join(record_parts(flags, seq, key, value, seed))


def head_record(seg: int, kind: int, seq: int, seed: int) -> bytes:
    """The first record of segment ``seg``: its id, its kind and the log's sequence number when it began."""
    return encode_record(F_HEAD, seq, b"", HEAD_VALUE.pack(seg, kind, seq), seed)


def seal_record(next_seg: int, seq: int, seed: int) -> bytes:
    """The last record of a sealed segment: the segment that follows it, and the log's sequence number."""
    return encode_record(F_SEAL, seq, b"", SEAL_VALUE.pack(next_seg, seq), seed)


def read_record(fd: int, offset: int, length: int, key: bytes, seed: int, where: str) -> bytes:
    """The value of the record at ``offset``, proven to be ``key``'s; ``CorruptDataError`` otherwise."""
    try:
        buf = os.pread(fd, length, offset)
    except OSError as exc:
        raise CorruptDataError(f"{where}: cannot read {length} bytes at offset {offset} ({exc.strerror})") from exc
    return check_record(buf, key, seed, where, offset)


def check_record(buf: bytes, key: bytes | None, seed: int, where: str, offset: int) -> bytes:
    """The value of the record in ``buf``; ``CorruptDataError`` unless it is whole, intact and ``key``'s.

    ``where`` starts the message (empty: the caller prefixes the file's name).
    """
    where = where or ""
    n = len(buf)
    hs = HEADER.size
    if n < hs + CRC.size:
        raise CorruptDataError(f"{where}: record at offset {offset} is truncated")
    magic, _flags, _r, klen, vlen, _seq = HEADER.unpack_from(buf)
    if magic != MAGIC or hs + klen + vlen + CRC.size != n:
        raise CorruptDataError(f"{where}: bad record header at offset {offset}")
    (crc,) = CRC.unpack_from(buf, n - 4)
    if zlib.crc32(memoryview(buf)[: n - 4], seed) != crc:
        raise CorruptDataError(f"{where}: record at offset {offset} fails its checksum")
    if key is not None and buf[hs : hs + klen] != key:
        raise CorruptDataError(f"{where}: record at offset {offset} belongs to another key")
    return buf[hs + klen : n - 4]


class OtherKeyError(CorruptDataError):
    """An intact record of another key where ``key``'s was expected; ``other`` is the record's key.

    The segment log's index keeps key fingerprints, not keys: a record of a key
    sharing the fingerprint is probed past, any other is damage.
    """

    def __init__(self, message: str, other: bytes) -> None:
        super().__init__(message)
        self.other = other


def record_at(fd: int, buf: bytes, offset: int, seed: int) -> tuple[bytes, bytes]:
    """``(key, value)`` of the intact record whose first bytes ``buf`` holds (read at ``offset`` of ``fd``).

    Reads the rest of a record longer than ``buf``; the record is not
    copied. Messages start with ``:`` (the caller prefixes the file).
    """
    hs = HEADER.size
    have = len(buf)
    if have < hs + CRC.size:
        raise CorruptDataError(f": record at offset {offset} is truncated")
    magic, _flags, _r, klen, vlen, _seq = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise CorruptDataError(f": bad record header at offset {offset}")
    end = hs + klen + vlen
    if end + CRC.size > have:
        buf += os.pread(fd, end + CRC.size - have, offset + have)
        if end + CRC.size != len(buf):
            raise CorruptDataError(f": record at offset {offset} is truncated")
    if zlib.crc32(memoryview(buf)[:end], seed) != CRC.unpack_from(buf, end)[0]:
        raise CorruptDataError(f": record at offset {offset} fails its checksum")
    return buf[hs : hs + klen], buf[hs + klen : end]


def value_at(fd: int, buf: bytes, offset: int, key: bytes, seed: int) -> bytes:
    """The value of the record whose first bytes ``buf`` holds (read at ``offset`` of ``fd``), proven to be ``key``'s.

    The read path's twin of :func:`check_record` (see :func:`record_at`); an
    intact record of another key raises :class:`OtherKeyError`.
    """
    found, value = record_at(fd, buf, offset, seed)
    if found != key:
        raise OtherKeyError(f": record at offset {offset} belongs to another key", found)
    return value


def scan_records(data: bytes, start: int, seed: int) -> Iterator[Record | int]:
    """Records of ``data`` from ``start``; yields the offset (an ``int``) of the first bad or partial one, then stops."""
    pos = start
    n = len(data)
    hs = HEADER.size
    mv = memoryview(data)
    while pos < n:
        if n - pos < hs + CRC.size:
            yield pos
            return
        magic, flags, _r, klen, vlen, seq = HEADER.unpack_from(data, pos)
        end = pos + hs + klen + vlen + CRC.size
        if magic != MAGIC or end > n:
            yield pos
            return
        (crc,) = CRC.unpack_from(data, end - 4)
        if zlib.crc32(mv[pos : end - 4], seed) != crc:
            yield pos
            return
        yield _new_record(Record, (pos, end - pos, flags, seq, data[pos + hs : pos + hs + klen], data[pos + hs + klen : end - 4]))
        pos = end


def next_valid_record(data: bytes, start: int, seed: int) -> int | None:
    """The offset of the first well-formed record that starts after ``start``, or None."""
    pos = data.find(MAGIC, start + 1)
    while pos >= 0:
        for item in scan_records(data, pos, seed):
            if not isinstance(item, int):
                return pos
            break
        pos = data.find(MAGIC, pos + 1)
    return None


def any_valid_record_after(data: bytes, start: int, seed: int) -> bool:
    """True when a well-formed record starts anywhere after ``start`` (damage, not a torn tail)."""
    return next_valid_record(data, start, seed) is not None


def write_all(fd: int, data: bytes, offset: int, where: str | Path) -> None:
    """Write ``data`` at the end of ``fd`` (at ``offset``); on a full disk undo the partial write and raise."""
    view = memoryview(data)
    try:
        while view:
            k = os.write(fd, view)
            view = view[k:]
    except OSError as exc:
        try:
            os.ftruncate(fd, offset)
        except OSError:
            pass
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise StorageFullError(
                exc.errno,
                f"memstrata: the store is full writing {where} ({exc.strerror}); the write was not applied "
                "and the store is still readable",
            ) from exc
        raise StorageFullError(
            exc.errno or errno.EIO,
            f"memstrata: writing {where} failed ({exc.strerror}); the write was not applied and the store "
            "is still readable",
        ) from exc


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
