"""The read methods of :class:`~memstrata.tiers._log.LogBackend`: values by key, pairs, scans (mixed in)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from memstrata._native.logreads import READ_AHEAD_BYTES, read_tagged
from memstrata.errors import CorruptDataError
from memstrata.tiers._log_compact import LogCompaction
from memstrata.tiers._log_index import NAMED_FIRST, PROVEN_MAX, SEED
from memstrata.tiers._segments import record_at

__all__ = ["LogReads", "tagged_at"]


def tagged_at(
    table: Any, fds: dict[int, int], key: bytes, seed: int, head: int, tag: int
) -> tuple[int, bytes, bytes | None] | None:
    """The readable twin of :func:`~memstrata._native.logreads.read_tagged`: the same result, in Python."""
    locs = table.lookup(key)
    fd = fds.get(locs[0] >> 32) if len(locs) == 1 else None  # one index entry, in an open segment
    if fd is None:
        return None
    loc = locs[0]
    offset = loc & 0xFFFFFFFF
    try:
        found, value = record_at(fd, os.pread(fd, READ_AHEAD_BYTES, offset), offset, seed)
    except (OSError, CorruptDataError):
        return None
    if found != key:
        return None
    if 0 <= head < len(value) and value[head] == tag:
        return loc, value[:head], value[head + 1 :]
    return loc, value, None


class LogReads(LogCompaction):
    """Reads of a segment log; a reader (``read_only``) first takes in what the writer appended since."""

    _closed: bool

    def _refresh(self) -> None:
        """A reader: take in what the writer appended since the last call."""
        fd = self._fds[self._tail]
        if os.fstat(fd).st_size > self._pos:
            self._replay(final=False)

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            if self._closed:
                raise ValueError(f"LogBackend: {self.path} is closed")
            if self.read_only:
                self._refresh()
            return self._value(key)

    def get_pair(
        self, key: bytes, prefix: bytes, start: int, length: int, inline_after: int | None = None
    ) -> tuple[bytes | None, bytes | None]:
        """``(value of key, value of prefix + value[start:start + length])`` under one lock (see ``Backend``)."""
        with self._lock:
            if self._closed:
                raise ValueError(f"LogBackend: {self.path} is closed")
            if self.read_only:
                self._refresh()
            first = self._value(key)
            if first is None:
                return None, None
            if inline_after is not None and len(first) > inline_after:
                return first, first[inline_after:]
            return first, self._value(prefix + first[start : start + length])

    def get_tagged(
        self, key: bytes, head: int, tag: int, prefix: bytes, start: int, length: int
    ) -> tuple[bytes | None, bytes | None]:
        """``(value of key, tagged data)`` under one lock; ``(None, None)`` when ``key`` is absent.

        The tagged data is what follows byte ``head`` of the value when that
        byte is ``tag``; for a value of only ``head`` bytes, what follows the
        first byte of the value of ``prefix + value[start:start + length]`` when
        that byte is ``tag``; else None. Each record is found, read and checked
        in one native call (:func:`~memstrata._native.logreads.read_tagged`);
        a read that call cannot prove takes the general path (``_value``),
        which raises the specific error.
        """
        with self._lock:
            if self._closed:
                raise ValueError(f"LogBackend: {self.path} is closed")
            if self.read_only:
                self._refresh()
            first, rest = self._tagged(key, head, tag)
            if first is None or rest is not None or len(first) != head:
                return first, rest
            return first, self._tagged(prefix + first[start : start + length], 0, tag)[1]

    def _tagged(self, key: bytes, head: int, tag: int) -> tuple[bytes | None, bytes | None]:
        """``key``'s record split at its tag (:meth:`get_tagged`); a proven record's location is kept for the writes."""
        got = read_tagged(self._table, self._fds, key, SEED, head, tag)
        if got is not None:
            proven = self._proven
            if len(proven) >= PROVEN_MAX:
                proven.clear()
            proven[key] = got[0]
            return got[1], got[2]
        value = self._value(key)
        if value is None:
            return None, None
        if len(value) > head and value[head] == tag:
            return value[:head], value[head + 1 :]
        return value, None

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            if self.read_only:
                self._refresh()
            return iter(self._scan(prefix))

    def scan_checked(self, prefix: bytes) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, str]]]:
        """``(intact (key, value) pairs, damaged (key, error) pairs)`` of the live keys starting with ``prefix``.

        For ``verify``: a record whose bytes are damaged is reported with its
        key (the index proves the key by its fingerprint) instead of ending the scan.
        """
        with self._lock:
            if self.read_only:
                self._refresh()
            damaged: list[tuple[bytes, str]] = []
            if prefix and prefix[0] in NAMED_FIRST:
                return self._scan(prefix), damaged
            found = sorted((k, v) for k, _loc, v in self._live(prefix, damaged))
            return found, damaged
