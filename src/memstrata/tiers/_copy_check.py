"""A light check of a copied log: what opening it checks, without building its index in RAM.

Opening a log (:class:`~memstrata.tiers.LogBackend`) turns the checkpoint into
its index in RAM (and replays into it); a copy only needs to be proven complete
and intact. :class:`CopyView` checks the same
things an open does (the checkpoint's digest and sizes, every listed segment's
size and header, every record after the checkpoint: checksums, seals, one
sequence number per batch without gaps) and answers ``get(key)`` for a few
keys: from the records after the checkpoint, else by a vectorised search of
the checkpoint's fingerprints (format 3) or key table (format 2). Every value
it returns is read from its record, which proves its key.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memstrata._native.keyindex import fingerprint
from memstrata.errors import CorruptDataError
from memstrata.tiers._checkpoint import HEAD, SEGMENT, Checkpoint, parse_checkpoint
from memstrata.tiers._log_open import HEAD_BYTES
from memstrata.tiers._segments import (
    F_DEL,
    F_END,
    F_HEAD,
    F_SEAL,
    HEAD_VALUE,
    KIND_LOG,
    SEAL_VALUE,
    OtherKeyError,
    Record,
    check_record,
    scan_records,
    segment_name,
    value_at,
)

__all__ = ["CopyView"]

READ_AHEAD = 4096


class CopyView:
    """A read-only, checked view of the copied log in ``directory`` as of ``checkpoint`` (its bytes).

    Raises ``CorruptDataError`` when the copy would not open. ``seq`` is the
    log's sequence number; ``get(key)`` the value of ``key`` or None.
    """

    def __init__(self, directory: Path, checkpoint: bytes, seed: int) -> None:
        self.directory = directory
        self._seed = seed
        self._data = checkpoint
        ck = parse_checkpoint(checkpoint, directory / "CHECKPOINT", with_index=False)
        self._hashed: Checkpoint | None = None  # format 3: fingerprint arrays (views of ``checkpoint``)
        if ck.version >= 3:
            self._hashed = parse_checkpoint(checkpoint, directory / "CHECKPOINT")
        else:
            self._n, self._keys_at = self._check_sizes(ck)
        self.seq = ck.seq
        self._kinds: dict[int, int] = {}
        self._after: dict[bytes, int | None] = {}  # key -> location of its record after the checkpoint (None: deleted)
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for seg, size in ck.segments:
            actual = self._path(seg).stat().st_size if self._path(seg).exists() else -1
            if actual < size or (seg != ck.tail_segment and actual != size):
                raise CorruptDataError(f"segment file {self._path(seg)} is {actual} bytes, the checkpoint recorded {size}")
            self._head(seg)
        self._replay(ck.tail_segment, ck.tail_offset)

    def _path(self, seg: int) -> Path:
        return self.directory / segment_name(seg)

    def _check_sizes(self, ck: Checkpoint) -> tuple[int, int]:
        """The key count and where the key lengths start; the key table must fill the file exactly."""
        n = HEAD.unpack_from(self._data)[4]
        pos = HEAD.size + len(ck.segments) * SEGMENT.size
        if pos + 10 * n + 16 > len(self._data):
            raise CorruptDataError(f"the index checkpoint of {self.directory} is damaged (its sizes do not add up)")
        total = int(np.frombuffer(self._data, dtype="<u2", count=n, offset=pos).sum(dtype=np.int64))
        if pos + 10 * n + total + 16 != len(self._data):
            raise CorruptDataError(f"the index checkpoint of {self.directory} is damaged (its sizes do not add up)")
        return n, pos

    def _head(self, seg: int) -> None:
        path = self._path(seg)
        with open(path, "rb") as f:
            buf = f.read(HEAD_BYTES)
        value = check_record(buf, b"", self._seed, f"segment file {path}", 0)
        sid, kind, _base = HEAD_VALUE.unpack(value)
        if buf[2] != F_HEAD or sid != seg:
            raise CorruptDataError(f"segment file {path} has the header of segment {sid}: a file from elsewhere")
        self._kinds[seg] = kind

    def _replay(self, seg: int, pos: int) -> None:
        """Check every record after ``(seg, pos)`` the way an open replays them; note where each key was left."""
        while True:
            path = self._path(seg)
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
            pending: list[Record] = []
            done, nxt = 0, None
            for item in scan_records(data, 0, self._seed):
                if isinstance(item, int):  # the copy ends after a complete batch: anything else is damage
                    raise CorruptDataError(f"segment file {path}: damaged or partial record at offset {pos + item}")
                if item.flags & F_HEAD:
                    raise CorruptDataError(f"segment file {path}: a segment header at offset {pos + item.offset}")
                if item.flags & F_SEAL:
                    if pending:
                        raise CorruptDataError(f"segment file {path}: sealed inside a batch")
                    nxt = SEAL_VALUE.unpack(item.value)[0]
                    done = item.offset + item.length
                    break
                pending.append(item)
                if item.flags & F_END:
                    self._apply(seg, pos, pending, path)
                    pending = []
                    done = item.offset + item.length
            if done != len(data):
                raise CorruptDataError(f"segment file {path}: {len(data) - done} bytes after its last complete batch")
            if nxt is None:
                return
            if nxt in self._kinds:
                raise CorruptDataError(f"segment chain loops at {self._path(nxt)}")
            seg, pos = nxt, HEAD_BYTES
            if not self._path(seg).exists():
                raise CorruptDataError(f"segment file {self._path(seg)} is missing (its predecessor names it)")
            self._head(seg)

    def _apply(self, seg: int, pos: int, records: list[Record], path: Path) -> None:
        seq = records[-1].seq
        if self._kinds[seg] == KIND_LOG:
            if seq != self.seq + 1 or any(r.seq != seq for r in records):
                raise CorruptDataError(f"segment file {path}: batch at offset {pos + records[0].offset} has sequence "
                                       f"number {seq} after {self.seq} (a batch is missing)")
            self.seq = seq
        else:
            self.seq = max(self.seq, seq)
        base = (seg << 32) + pos
        after = self._after
        for r in records:
            after[r.key] = None if r.flags & F_DEL else base + r.offset

    def _candidates(self, key: bytes) -> list[int]:
        """The checkpoint's locations that may hold ``key``'s record (format 3: those of its fingerprint)."""
        ck = self._hashed
        if ck is None:
            loc = self._lookup(key)
            return [] if loc is None else [loc]
        if key in ck.named:
            return [ck.named[key]]
        return ck.locations[ck.fingerprints == fingerprint(key, ck.mask)].tolist()

    def _lookup(self, key: bytes) -> int | None:
        """The format-2 checkpoint's location of ``key`` (a vectorised search of its key table), None when absent."""
        if self._table is None:
            n, pos = self._n, self._keys_at
            klens = np.frombuffer(self._data, dtype="<u2", count=n, offset=pos).astype(np.int64)
            locs = np.frombuffer(self._data, dtype="<i8", count=n, offset=pos + 2 * n)
            self._table = (klens, locs, np.cumsum(klens) + pos + 10 * n)
        klens, locs, ends = self._table
        cand = np.flatnonzero(klens == len(key))
        if not len(cand) or not key:
            return int(locs[cand[0]]) if len(cand) else None
        raw = np.frombuffer(self._data, dtype=np.uint8)
        for part in np.array_split(cand, max(1, len(cand) // (1 << 18))):  # bounded temporaries
            rows = raw[(ends[part] - len(key))[:, None] + np.arange(len(key))]
            hit = np.flatnonzero((rows == np.frombuffer(key, dtype=np.uint8)).all(axis=1))
            if len(hit):
                return int(locs[part[hit[0]]])
        return None

    def get(self, key: bytes) -> bytes | None:
        if key in self._after:
            loc = self._after[key]
            return None if loc is None else self._value(loc, key)
        mask = self._hashed.mask if self._hashed is not None else 0
        for loc in self._candidates(key):
            try:
                return self._value(loc, key)
            except OtherKeyError as exc:  # another key with the same fingerprint, or damage
                if self._hashed is None or fingerprint(exc.other, mask) != fingerprint(key, mask):
                    raise
        return None

    def _value(self, loc: int, key: bytes) -> bytes:
        seg, off = loc >> 32, loc & 0xFFFFFFFF
        path = self._path(seg)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise CorruptDataError(f"segment file {path} is missing, yet the index names it") from exc
        try:
            return value_at(fd, os.pread(fd, READ_AHEAD, off), off, key, self._seed)
        except OtherKeyError as exc:
            raise OtherKeyError(f"segment file {path}{exc}", exc.other) from None
        except CorruptDataError as exc:
            raise CorruptDataError(f"segment file {path}{exc}") from None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing to release (files are opened per read)."""
