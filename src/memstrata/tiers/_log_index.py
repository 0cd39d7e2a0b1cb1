"""The in-RAM index of a segment log: key fingerprints in a compact table, a few keys by name.

:class:`LogIndex` is the part of :class:`~memstrata.tiers._log.LogBackend`
that maps keys to record locations (``segment id << 32 | offset``). Most keys
live in a :class:`~memstrata._native.keyindex.KeyIndex`: 12 bytes a slot, no
key bytes in RAM. Since keys may share a fingerprint, the record a location
names proves whose it is: a read tries each location stored under its key's
fingerprint and returns only a record holding its key; a write reads the key
of a record it may replace before replacing it. Keys starting with a byte of
``NAMED`` (the store's metadata ``m`` and dictionaries ``d``: few, rewritten by
every batch or scanned by prefix at open) stay in a ``dict`` by their bytes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memstrata._native.keyindex import KeyIndex, fingerprints, fingerprints_at
from memstrata._native.logreads import read_value
from memstrata.errors import CorruptDataError
from memstrata.tiers._checkpoint import Checkpoint
from memstrata.tiers._segments import HEADER, MAGIC, OtherKeyError, check_record, value_at

__all__ = ["FP_MASK", "NAMED", "NAMED_FIRST", "SEED", "LogIndex", "new_table"]

SEED = 0x4D535432  # checksum seed of every record ("MST2")
READ_AHEAD = 4096
#: First bytes of the keys kept by name (see the module docstring).
NAMED = b"md"
NAMED_FIRST = frozenset(NAMED)  # ``key[0] in`` a set of ints: ``key[:1] in NAMED`` costs ~10x more
#: Fingerprint bits a new log keeps (all); tests narrow it to force shared fingerprints. A log
#: keeps the mask its checkpoint records.
FP_MASK = 0xFFFFFFFF
#: RAM of one named key beyond its bytes: the dict slot and the bytes and int objects.
NAMED_ENTRY_BYTES = 33 + 32 + 28
#: Keys whose record location a read or write just proved, kept so that the write after a read
#: (a store's entry and refcount records) replaces its record without reading it again. A record
#: never changes at its location, so an entry stays true; the map is emptied when it reaches this size.
PROVEN_MAX = 1024


def new_table() -> KeyIndex:
    """An empty table for a new log (with the current ``FP_MASK``)."""
    return KeyIndex(FP_MASK)


class LogIndex:
    """Key → location of a segment log, with the reads that prove keys (see the module docstring)."""

    directory: Path
    _lock: threading.RLock
    _fds: dict[int, int]
    _table: KeyIndex
    _named: dict[bytes, int]
    _proven: dict[bytes, int]

    if TYPE_CHECKING:  # defined by LogBackend

        def _seg_path(self, seg: int) -> Path: ...

    def _index_from(self, ck: Checkpoint) -> None:
        """Take the index of a checkpoint (version 2 keys are fingerprinted here, once)."""
        named = ck.named
        fps, locs, mask = ck.fingerprints, ck.locations, ck.mask
        if ck.version < 3:
            mask = FP_MASK
            others = [k for k in named if not k or k[0] not in NAMED_FIRST]
            fps = fingerprints(others, mask)
            locs = np.fromiter((named.pop(k) for k in others), dtype=np.int64, count=len(others))
            order = np.argsort(fps, kind="stable")  # ascending fingerprints load in one pass
            fps, locs = fps[order], locs[order]
        try:
            self._table = KeyIndex.from_arrays(fps, locs, mask)
        except ValueError as exc:
            raise CorruptDataError(f"the index checkpoint in {self.directory} is damaged ({exc})") from None
        self._named = named
        self._proven = {}

    def _checkpoint_of(self, seq: int, tail: int, pos: int, sizes: list[tuple[int, int]],
                       index: tuple[KeyIndex, dict[bytes, int]] | None = None) -> Checkpoint:
        table, named = (self._table, self._named) if index is None else index
        fps, locs = table.dump()
        return Checkpoint(seq, tail, pos, sizes, named, fps, locs, table.mask)

    # --------------------------------------------------------------- reads --

    def _read_at(self, loc: int, key: bytes) -> bytes:
        """The value of ``key``'s record at ``loc``; :class:`OtherKeyError` for another key's intact record."""
        seg, off = loc >> 32, loc & 0xFFFFFFFF
        fd = self._fds.get(seg)
        try:
            if fd is None:
                raise CorruptDataError(": the index names a segment that is not part of the log")
            value = read_value(fd, off, key, SEED)  # one native call: pread, header, checksum, key
            if value is None:  # an intact record of another key: the slow path names it
                value_at(fd, os.pread(fd, READ_AHEAD, off), off, key, SEED)
                raise CorruptDataError(f": record at offset {off} changed while it was read")
            return value
        except OSError as exc:
            raise CorruptDataError(f"segment file {self._seg_path(seg)}: cannot read at offset {off} ({exc.strerror})") from exc
        except OtherKeyError as exc:
            raise OtherKeyError(f"segment file {self._seg_path(seg)}{exc}", exc.other) from None
        except CorruptDataError as exc:  # name the file only on this slow path
            raise CorruptDataError(f"segment file {self._seg_path(seg)}{exc}") from None

    def _value(self, key: bytes) -> bytes | None:
        """The value of ``key``, proven by its record; None when absent."""
        if key and key[0] in NAMED_FIRST:
            loc = self._named.get(key)
            return None if loc is None else self._read_at(loc, key)
        locs = self._table.lookup(key)
        if not locs:
            return None
        if len(locs) == 1:  # the usual case: one native read, no frame of _read_at
            loc = locs[0]
            fd = self._fds.get(loc >> 32)
            if fd is not None:
                try:
                    value = read_value(fd, loc & 0xFFFFFFFF, key, SEED)
                except (OSError, CorruptDataError):
                    value = None  # the loop below raises with the file's name
                if value is not None:
                    proven = self._proven
                    if len(proven) >= PROVEN_MAX:
                        proven.clear()
                    proven[key] = loc
                    return value
        error: CorruptDataError | None = None
        for loc in locs:
            try:
                value = self._read_at(loc, key)
                self._prove(key, loc)
                return value
            except OtherKeyError as exc:
                if self._table.fingerprint(exc.other) != self._table.fingerprint(key):
                    error = error or exc  # a record no fingerprint of this key leads to: misdirected
            except CorruptDataError as exc:
                error = error or exc  # another location may still hold the key's record
        if error is not None:
            raise error
        return None

    def _prove(self, key: bytes, loc: int) -> None:
        proven = self._proven
        if len(proven) >= PROVEN_MAX:
            proven.clear()
        proven[key] = loc

    def _holds(self, loc: int, key: bytes) -> bool:
        """True when the record at ``loc`` is ``key``'s (its header and key are read, not its value)."""
        if self._proven.get(key) == loc:
            return True
        seg, off = loc >> 32, loc & 0xFFFFFFFF
        fd = self._fds.get(seg)
        if fd is None:
            return False
        try:
            buf = os.pread(fd, HEADER.size + len(key), off)
        except OSError:
            return False
        return len(buf) == HEADER.size + len(key) and buf[:2] == MAGIC and buf[4:6] == len(key).to_bytes(2, "little") and buf[HEADER.size :] == key

    # -------------------------------------------------------------- writes --

    def _locate(self, key: bytes) -> int | None:
        """The location of ``key``'s record, or None."""
        if key and key[0] in NAMED_FIRST:
            return self._named.get(key)
        for loc in self._table.lookup(key):
            if self._holds(loc, key):
                return loc
        return None

    def _index_set(self, key: bytes, loc: int) -> None:
        if key and key[0] in NAMED_FIRST:
            self._named[key] = loc
            return
        table = self._table
        fp = table.fingerprint(key)
        proven = self._proven.get(key)  # the record a read or write just proved is key's: no header to read
        if proven is None or not table.replace(fp, proven, loc):
            for old in table.find(fp):
                if self._holds(old, key):
                    table.replace(fp, old, loc)
                    break
            else:
                table.insert(fp, loc)
        self._prove(key, loc)

    def _index_pop(self, key: bytes) -> None:
        if key and key[0] in NAMED_FIRST:
            self._named.pop(key, None)
            return
        table = self._table
        fp = table.fingerprint(key)
        for old in table.find(fp):
            if self._holds(old, key):
                table.remove(fp, old)
                self._proven.pop(key, None)
                return

    # ---------------------------------------------------------- whole index --

    def _live(
        self, prefix: bytes = b"", damaged: list[tuple[bytes, str]] | None = None
    ) -> Iterator[tuple[bytes, int, bytes]]:
        """``(key, location, value)`` of the live records whose key starts with ``prefix``, in location order.

        Every segment is read once. Each record's key must be the one the index
        names (its fingerprint, or its bytes for a named key); the records
        yielded are checked in full, the others only when their key is not the
        one named (then they are damage and raise :class:`CorruptDataError`).
        With ``damaged``, a record whose key is the one named but whose bytes
        fail their check is listed there as ``(key, error)`` and skipped.
        """
        table = self._table
        fps, locs = table.dump()
        named_locs = np.fromiter(self._named.values(), dtype=np.int64, count=len(self._named))
        all_locs = np.concatenate([locs, named_locs])
        all_fps = np.concatenate([fps, np.zeros(len(named_locs), dtype=np.uint32)])  # 0: check by name
        order = np.argsort(all_locs, kind="stable")
        all_locs, all_fps = all_locs[order], all_fps[order]
        segs = all_locs >> 32
        bounds = np.flatnonzero(np.diff(segs)) + 1
        for part in np.split(np.arange(len(all_locs)), bounds) if len(all_locs) else []:
            seg = int(segs[part[0]])
            fd = self._fds.get(seg)
            if fd is None:
                raise CorruptDataError(f"segment file {self._seg_path(seg)} is not part of the log, yet the index names it")
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            part = part[self._to_read(data, all_locs[part], all_fps[part], prefix)]
            for loc, fp in zip(all_locs[part].tolist(), all_fps[part].tolist()):
                off = loc & 0xFFFFFFFF
                key, named = b"", False
                try:
                    if len(data) < off + HEADER.size:
                        raise CorruptDataError(f": record at offset {off} is past the end of the file")
                    _m, _f, _r, klen, vlen, _s = HEADER.unpack_from(data, off)
                    key = data[off + HEADER.size : off + HEADER.size + klen]
                    named = (table.fingerprint(key) == fp) if fp else (self._named.get(key) == loc)
                    if named and not key.startswith(prefix):
                        continue
                    value = check_record(data[off : off + HEADER.size + klen + vlen + 4], None, SEED, "", off)
                    if not named:
                        raise CorruptDataError(f": record at offset {off} is not the record the index names")
                except CorruptDataError as exc:
                    error = CorruptDataError(f"segment file {self._seg_path(seg)}{exc}")
                    if damaged is not None and named:  # the index's own record, its bytes damaged
                        damaged.append((key, str(error)))
                        continue
                    raise error from None
                yield key, loc, value

    def _to_read(self, data: bytes, locs: np.ndarray, fps: np.ndarray, prefix: bytes) -> np.ndarray:
        """Positions of the records of one segment (``data``) that ``_live`` must look at one by one.

        Those whose key starts with ``prefix``, whose key does not have the
        fingerprint the index holds (damage), or that are named; the others are
        skipped, with their keys checked in one vectorised pass.
        """
        hs = HEADER.size
        size = len(data)
        if size < hs + len(prefix):
            return np.arange(len(locs))  # every record is past the end: the slow path names the damage
        raw = np.frombuffer(data, dtype=np.uint8)
        offs = locs & 0xFFFFFFFF
        inside = offs + hs + len(prefix) <= size
        o = np.where(inside, offs, 0)  # the others are suspects: their bytes are never used
        klens = raw[o + 4].astype(np.int64) | (raw[o + 5].astype(np.int64) << 8)
        wanted = inside & (klens >= len(prefix))
        for j, byte in enumerate(prefix):
            wanted &= raw[o + hs + j] == byte
        suspect = ~inside | (fps == 0) | (fingerprints_at(data, o + hs, klens, self._table.mask) != fps)
        return np.flatnonzero(wanted | suspect)

    def _scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of the live keys starting with ``prefix``, in key order."""
        if prefix and prefix[0] in NAMED_FIRST:  # named keys only: no segment is read in full
            keys = sorted(k for k in self._named if k.startswith(prefix))
            return [(k, self._read_at(self._named[k], k)) for k in keys]
        found = [(k, v) for k, _loc, v in self._live(prefix)]
        found.sort()
        return found

    def __len__(self) -> int:
        return len(self._table) + len(self._named)

    def ram_bytes(self) -> int:
        """RAM held by the index: the table's slots plus each named and recently proven key (bytes, dict slot, objects)."""
        named, proven = self._named, self._proven
        keys = sum(map(len, named)) + sum(map(len, proven)) + (len(named) + len(proven)) * NAMED_ENTRY_BYTES
        return self._table.nbytes + sys.getsizeof(named) + sys.getsizeof(proven) + keys
