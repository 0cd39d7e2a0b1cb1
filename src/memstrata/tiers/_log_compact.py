"""Compaction and the integrity check of a segment log: the maintenance half of ``LogBackend``.

:meth:`LogCompaction.vacuum` copies the live records into new segments,
checkpoints them, then deletes the old segments (commit, then delete); a
failure before the checkpoint (a full disk) is undone, so the log goes on as
if no compaction had started. :meth:`LogCompaction.integrity_check` replays
every segment from scratch and compares the result with the index.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from memstrata._native.keyindex import KeyIndex
from memstrata.tiers._backend import StorageFullError
from memstrata.tiers._log_index import NAMED_FIRST, SEED
from memstrata.tiers._log_open import HEAD_BYTES, LogOpening
from memstrata.tiers._reserve import ensure_reserve
from memstrata.tiers._segments import F_END, KIND_COMPACTED, KIND_LOG, encode_record, fsync_dir, write_all

__all__ = ["LogCompaction"]

log = logging.getLogger("memstrata.store")


class LogCompaction(LogOpening):
    """Compaction and the integrity check of a :class:`~memstrata.tiers._log.LogBackend`."""

    path: str
    segment_max_bytes: int

    if TYPE_CHECKING:  # defined by LogBackend

        def _check_writable(self) -> None: ...

        def _checkpoint(self, index: tuple[KeyIndex, dict[bytes, int]] | None = None) -> None: ...

        def disk_bytes(self) -> int: ...

    def vacuum(self) -> None:
        """Compaction: copy live records into new segments, checkpoint them, then delete the old segments.

        A failure before the checkpoint (a full disk) undoes everything: the new
        segments are removed and the old tail loses its seal, so the log goes on
        as if no compaction had started.
        """
        with self._lock:
            self._check_writable()
            old = list(self._segments)
            before = (self._tail, self._pos, dict(self._sizes))
            try:
                new_index = self._copy_live()
                self._checkpoint(new_index)  # commit ...
            except StorageFullError as exc:
                self._undo_vacuum(old, before)
                raise StorageFullError(
                    exc.errno,
                    f"memstrata: compacting {self.path} needs free space for a copy of its live records (at most "
                    f"{self.disk_bytes()} bytes, the log's size) and found none ({os.strerror(exc.errno or errno.ENOSPC)}); nothing was changed "
                    "and the store is readable and writable; free space on the disk and compact again",
                ) from exc
            except BaseException:
                self._undo_vacuum(old, before)
                raise
            self._table, self._named = new_index
            self._proven.clear()  # the old locations are gone with their segments
            for seg in old:  # ... then delete
                self._sizes.pop(seg, None)
                os.close(self._fds.pop(seg))
                self._kinds.pop(seg, None)
                self._seg_path(seg).unlink(missing_ok=True)
            fsync_dir(self.directory)
            ensure_reserve(self.directory)

    def _copy_live(self) -> tuple[KeyIndex, dict[bytes, int]]:
        """Write the live records into new compacted segments and roll to a new log segment; the new index."""
        old = set(self._segments)
        live = self._live()  # location order: each old segment is read once
        self._roll(KIND_COMPACTED)
        named: dict[bytes, int] = {}
        keys_fps: list[int] = []
        keys_locs: list[int] = []
        fingerprint = self._table.fingerprint
        fd = self._fds[self._tail]
        buf: list[bytes] = []
        for key, _loc, value in live:
            rec = encode_record(F_END, self._seq, key, value, SEED)
            if self._pos + len(rec) > self.segment_max_bytes and self._pos > HEAD_BYTES:
                write_all(fd, b"".join(buf), self._pos - sum(map(len, buf)), self._seg_path(self._tail))
                buf = []
                self._roll(KIND_COMPACTED)
                fd = self._fds[self._tail]
            loc = (self._tail << 32) + self._pos
            if key and key[0] in NAMED_FIRST:
                named[key] = loc
            else:
                keys_fps.append(fingerprint(key))
                keys_locs.append(loc)
            buf.append(rec)
            self._pos += len(rec)
        write_all(fd, b"".join(buf), self._pos - sum(map(len, buf)), self._seg_path(self._tail))
        self._roll(KIND_LOG)
        if self.durability != "none":
            for seg in self._segments:
                if seg not in old:
                    os.fsync(self._fds[seg])
        self._segments = [s for s in self._segments if s not in old]
        fps = np.array(keys_fps, dtype=np.uint32)
        order = np.argsort(fps, kind="stable")  # ascending fingerprints load in one pass
        table = KeyIndex.from_arrays(fps[order], np.array(keys_locs, dtype=np.int64)[order], self._table.mask)
        return table, named

    def _undo_vacuum(self, old: list[int], before: tuple[int, int, dict[int, int]]) -> None:
        """Remove what a failed compaction wrote and cut the seal off the old tail (truncating needs no space)."""
        tail, pos, sizes = before
        for seg in [s for s in self._fds if s not in old]:
            os.close(self._fds.pop(seg))
            self._kinds.pop(seg, None)
            self._seg_path(seg).unlink(missing_ok=True)
        os.ftruncate(self._fds[tail], pos)
        self._segments, self._tail, self._pos, self._sizes = old, tail, pos, sizes
        log.warning("memstrata: compaction of %s failed and was undone; the log is as it was", self.path)

    def integrity_check(self) -> list[str]:
        """Replay every segment from scratch and compare with the index; returns the problems found."""
        from memstrata.tiers._repair import scan_log

        with self._lock:
            problems: list[str] = []
            rebuilt, seq, damaged = scan_log(self.directory, SEED)
            problems += [f"segment file {p}: damaged record at offset {o}" for p, o in damaged]
            if seq != self._seq:
                problems.append(f"{self.path}: the log's highest sequence number is {seq}, the index's {self._seq}")
            table, named = self._table, self._named
            extra = 0
            for key, (seg, off) in rebuilt.items():
                loc = (seg << 32) + off
                if not (named.get(key) == loc if key and key[0] in NAMED_FIRST else loc in table.find(table.fingerprint(key))):
                    extra += 1
            missing = len(self) - (len(rebuilt) - extra)  # index entries no record of the segments matched
            if missing:
                problems.append(f"{self.path}: {missing} keys of the index have no record in the segments")
            if extra:
                problems.append(f"{self.path}: {extra} keys have records in the segments but not in the index")
            return problems
