"""Opening and following a segment log: checkpoint, segment headers, replay of the tail.

:class:`LogOpening` is the half of :class:`~memstrata.tiers._log.LogBackend`
that turns files into the in-RAM index: at open (checkpoint, then the records
appended after it, then removal of what a crash left) and for read-only
followers on every call (new records, seals, compaction output).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from memstrata._tail import TAIL_NAME, Tail, read_tail
from memstrata.errors import CorruptDataError
from memstrata.tiers._checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, write_checkpoint
from memstrata.tiers._log_index import SEED, LogIndex, new_table
from memstrata.tiers._segments import (
    F_DEL,
    F_END,
    F_HEAD,
    F_SEAL,
    HEAD_VALUE,
    HEADER,
    KIND_LOG,
    SEAL_VALUE,
    any_valid_record_after,
    check_record,
    scan_records,
    segment_id_of,
)

__all__ = ["HEAD_BYTES", "SEED", "LogOpening"]

log = logging.getLogger("memstrata.store")

HEAD_BYTES = HEADER.size + HEAD_VALUE.size + 4  # a segment's header record


def _hint(directory: Path) -> str:
    return f"run `memstrata repair {directory.parent}` (or MemoryStore.repair({str(directory.parent)!r}))"


class LogOpening(LogIndex):
    """Builds and follows the index of a :class:`LogBackend` from its files."""

    directory: Path
    read_only: bool
    durability: str
    torn_records_dropped: int
    _lock: threading.RLock
    _fds: dict[int, int]
    _kinds: dict[int, int]
    _sizes: dict[int, int]
    _segments: list[int]
    _seq: int
    _tail: int
    _tail_seen: Tail | None
    _pos: int
    _ck_pos: tuple[int, int]

    if TYPE_CHECKING:  # defined by LogBackend

        def _seg_path(self, seg: int) -> Path: ...

        def _create_segment(self, seg: int, kind: int) -> int: ...

        def _close_fds(self) -> None: ...

        def _roll(self, kind: int = KIND_LOG) -> None: ...

    def _existing(self) -> list[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(s for s in map(segment_id_of, names) if s is not None)

    def _open(self) -> None:
        d = self.directory
        ck_path = d / CHECKPOINT_NAME
        self._tail_seen = read_tail(d)  # before the log: a writer appends to the log first, then to the marker
        if not ck_path.exists():
            found = self._existing()
            if found and not self.read_only and self._only_heads(found):
                for seg in found:  # a creation cut short before its first checkpoint: no record was ever written
                    self._seg_path(seg).unlink()
                found = []
            if found:
                raise CorruptDataError(
                    f"the index checkpoint {ck_path} is missing while {len(found)} segment files are present; {_hint(d)}"
                )
            if self.read_only:
                raise CorruptDataError(f"{d} holds no memstrata log (no {CHECKPOINT_NAME})")
            d.mkdir(parents=True, exist_ok=True)
            self._tail_seen = None  # a new log: no marker of an earlier one applies
            head = self._create_segment(1, KIND_LOG)
            write_checkpoint(d, Checkpoint(0, 1, head, [(1, head)], mask=new_table().mask), self.durability != "none")
            self._close_fds()
            self._sizes.clear()
        ck = load_checkpoint(d)
        self._index_from(ck)
        self._seq = ck.seq
        listed = [s for s, _ in ck.segments]
        if ck.tail_segment not in listed:
            raise CorruptDataError(f"the index checkpoint {ck_path} names tail segment {ck.tail_segment}, not listed; {_hint(d)}")
        for seg, size in ck.segments:
            path = self._seg_path(seg)
            try:
                fd = os.open(path, os.O_RDONLY if self.read_only or seg != ck.tail_segment else os.O_RDWR | os.O_APPEND)
            except OSError as exc:
                raise CorruptDataError(f"segment file {path} is missing or unreadable ({exc.strerror}); {_hint(d)}") from exc
            self._fds[seg] = fd
            actual = os.fstat(fd).st_size
            if actual < size or (seg != ck.tail_segment and actual != size):
                raise CorruptDataError(
                    f"segment file {path} is {actual} bytes, the checkpoint recorded {size}: it was truncated or "
                    f"replaced by another copy; {_hint(d)}"
                )
            self._read_head(seg)
            if seg != ck.tail_segment:
                self._sizes[seg] = size
        self._segments = listed[: listed.index(ck.tail_segment) + 1]
        self._tail, self._pos = ck.tail_segment, ck.tail_offset
        # an older checkpoint format is rewritten at the next flush: its conversion is paid once
        self._ck_pos = (self._tail, self._pos) if ck.version >= 3 else (0, 0)
        self._replay(final=True)
        if not self.read_only:
            self._tidy(min(listed))
            if self._kinds[self._tail] != KIND_LOG:  # a compaction was cut short: new writes go to a log segment
                self._roll()

    def _only_heads(self, segments: list[int]) -> bool:
        """True when the first segment holds at most its header record and there is no other."""
        return segments == [1] and self._seg_path(1).stat().st_size <= HEAD_BYTES

    def _read_head(self, seg: int) -> None:
        path = self._seg_path(seg)
        fd = self._fds[seg]
        buf = os.pread(fd, HEAD_BYTES, 0)
        value = check_record(buf, b"", SEED, f"segment file {path}", 0)
        sid, kind, _base = HEAD_VALUE.unpack(value)
        if buf[2] != F_HEAD or sid != seg:
            raise CorruptDataError(f"segment file {path} has the header of segment {sid}: a file from elsewhere; {_hint(self.directory)}")
        self._kinds[seg] = kind

    def _replay(self, final: bool) -> None:
        """Apply the records after ``(self._tail, self._pos)``; ``final``: this is an open, not a reader's refresh."""
        d = self.directory
        while True:
            seg, fd = self._tail, self._fds[self._tail]
            size = os.fstat(fd).st_size
            data = os.pread(fd, size - self._pos, self._pos) if size > self._pos else b""
            pending: list = []
            batch_start = 0
            nxt = None
            bad = None
            for item in scan_records(data, 0, SEED):
                if isinstance(item, int):
                    bad = item
                    break
                if item.flags & F_HEAD:
                    raise CorruptDataError(f"segment file {self._seg_path(seg)}: a segment header at offset {self._pos + item.offset}; {_hint(d)}")
                if item.flags & F_SEAL:
                    if pending:
                        raise CorruptDataError(f"segment file {self._seg_path(seg)}: sealed inside a batch; {_hint(d)}")
                    nxt, last_seq = SEAL_VALUE.unpack(item.value)
                    batch_start = item.offset + item.length
                    break
                pending.append(item)
                if item.flags & F_END:
                    self._apply_batch(seg, pending)
                    pending = []
                    batch_start = item.offset + item.length
            if nxt is not None:
                if batch_start != len(data):
                    raise CorruptDataError(f"segment file {self._seg_path(seg)}: bytes after its seal record; {_hint(d)}")
                self._sizes[seg] = self._pos + batch_start
                self._follow(nxt)
                continue
            if bad is not None and any_valid_record_after(data, bad, SEED):
                raise CorruptDataError(
                    f"segment file {self._seg_path(seg)}: damaged record at offset {self._pos + bad} with valid records "
                    f"after it; {_hint(d)}"
                )
            end = self._pos + batch_start
            if final:
                self._check_tail()  # before a torn write is cut away: it may be the damage the marker proves
            if end < size and final:  # a torn final write (never acknowledged)
                self.torn_records_dropped += 1
                log.warning("memstrata: dropped a torn final write of %d bytes at the end of %s", size - end, self._seg_path(seg))
                if not self.read_only:
                    os.ftruncate(fd, end)
            self._pos = end
            return

    def _check_tail(self) -> None:
        """Raise when the log ends before the last batch the tail marker proves was written."""
        floor = self._tail_seen.floor() if self._tail_seen is not None else 0
        if self._seq < floor:
            raise CorruptDataError(
                f"the log {self.directory} ends at batch {self._seq}, but batch {floor} was committed (its tail marker "
                f"{self.directory / TAIL_NAME} says so): a segment file was cut short, removed or replaced by an older "
                f"copy; {_hint(self.directory)}"
            )

    def _follow(self, nxt: int) -> None:
        path = self._seg_path(nxt)
        if nxt in self._fds:
            raise CorruptDataError(f"segment chain loops at {path}; {_hint(self.directory)}")
        try:
            fd = os.open(path, os.O_RDONLY if self.read_only else os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise CorruptDataError(f"segment file {path} is missing (its predecessor names it); {_hint(self.directory)}") from exc
        self._fds[nxt] = fd
        self._read_head(nxt)
        self._segments.append(nxt)
        self._tail = nxt
        self._pos = HEAD_BYTES

    def _apply_batch(self, seg: int, records: list) -> None:
        seq = records[-1].seq
        if self._kinds[seg] == KIND_LOG:
            if seq != self._seq + 1 or any(r.seq != seq for r in records):
                raise CorruptDataError(
                    f"segment file {self._seg_path(seg)}: batch at offset {self._pos + records[0].offset} has sequence "
                    f"number {seq} after {self._seq} (a batch is missing); {_hint(self.directory)}"
                )
            self._seq = seq
        else:
            self._seq = max(self._seq, seq)
        base = (seg << 32) + self._pos
        for r in records:
            if r.flags & F_DEL:
                self._index_pop(r.key)
            else:
                self._index_set(r.key, base + r.offset)

    def _tidy(self, first_listed: int) -> None:
        """Remove what a crash left: segments compacted away, and empty segments after the tail."""
        for seg in self._existing():
            if seg in self._fds:
                continue
            path = self._seg_path(seg)
            if seg < first_listed:
                path.unlink(missing_ok=True)
            elif seg > self._tail and path.stat().st_size <= HEAD_BYTES:
                path.unlink(missing_ok=True)
            else:
                raise CorruptDataError(f"segment file {path} is not part of the log (no segment names it); {_hint(self.directory)}")
        (self.directory / (CHECKPOINT_NAME + ".tmp")).unlink(missing_ok=True)
