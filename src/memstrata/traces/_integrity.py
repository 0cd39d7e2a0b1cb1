"""Row checksums, the mark file and ``verify()``: damage to a trace database is named, never served.

* Every ``traces`` / ``trace_log`` row carries ``row_check``: 8 bytes of XXH3-128
  over its trace id, type, ratio, size, metadata, timestamp, priority, sequence
  number, dictionary version and the blob's own checksum (which covers the
  blob). A swapped blob, a flipped bit in any column or a row moved under
  another id fails the check. ``performance_deltas`` rows carry one over every
  column but ``id``.
* Sequence numbers are contiguous: every number up to ``meta.seq`` is a live
  row (trace, delta, dictionary), a tombstone (retention, a replaced trace, a
  queued row lost in a crash), or below ``meta.contiguous_from`` (written before
  schema 2 kept that promise). ``meta`` also records the number of traces.
* The mark file (``<db_path>-mark``) repeats the sequence numbers and the count
  outside the database after every acknowledged commit, so a lost or damaged
  WAL, or an older copy of the file, cannot roll the database back unnoticed.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import msgspec

from memstrata._native.hashing import digest
from memstrata.errors import CorruptDataError

__all__ = ["MARK_SUFFIX", "Mark", "delta_check", "trace_check"]

MARK_SUFFIX = "-mark"
_pack = msgspec.msgpack.Encoder().encode
_MARK = struct.Struct("<4sQQQ")  # magic, meta.seq, meta.n_traces, highest acknowledged seq
_MAGIC = b"MSTM"


def trace_check(row: Any) -> bytes:
    """``row_check`` of a trace row ``(id, type, blob, ratio, size, metadata, ts, priority, seq, dict version)``."""
    blob = row[2]
    return digest(_pack((row[0], row[1], row[3], row[4], row[5], row[6], row[7], row[8], row[9])) + blob[-8:])[:8]


def delta_check(row: Any) -> bytes:
    """``row_check`` of a delta row ``(metric, old, new, magnitude, direction, confidence, context, ts, seq, rule)``."""
    return digest(_pack(tuple(row)))[:8]


class Mark:
    """The mark file: ``(meta.seq, n_traces, highest acknowledged seq)`` outside the database."""

    def __init__(self, db_path: str, durable: bool) -> None:
        self.path = db_path + MARK_SUFFIX
        self.durable = durable
        self._fd: int | None = None

    def read(self) -> tuple[int, int, int] | None:
        """The recorded numbers, ``None`` when there is no mark file; damage raises ``CorruptDataError``."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read(64)
        except FileNotFoundError:
            return None
        size = _MARK.size
        if len(raw) != size + 8 or digest(raw[:size])[:8] != raw[size:]:
            raise CorruptDataError(f"{self.path}: the trace database's mark file is damaged")
        magic, seq, count, high = _MARK.unpack(raw[:size])
        if magic != _MAGIC:
            raise CorruptDataError(f"{self.path}: not a trace database mark file")
        return seq, count, high

    def write(self, seq: int, count: int, high: int) -> None:
        """Record the numbers after a commit (one 40-byte write in place; fsync when durable)."""
        body = _MARK.pack(_MAGIC, seq, count, high)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._fd, body + digest(body)[:8], 0)
        if self.durable:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_against_mark(path: str, mark: tuple[int, int, int] | None, seq: int, count: int, high: int) -> str | None:
    """Why the database is older than its mark (a lost WAL, an older copy), or ``None``."""
    if mark is None:
        return None
    m_seq, m_count, m_high = mark
    if seq < m_seq or high < m_high or (seq == m_seq and count != m_count):
        return (
            f"{path}: the trace database is older than its acknowledged writes (it holds seq {max(seq, high)} "
            f"and {count} traces; its mark file records seq {max(m_seq, m_high)} and {m_count} traces): its "
            "write-ahead log was lost or damaged, or an older copy replaced it"
        )
    return None
