"""The write shortcuts of :class:`~memstrata.tiers._log.LogBackend`, each one native call (mixed in).

A key writing again the content it holds (:meth:`LogShortcuts.rewrite`,
``logrecords.rewrite_batch``), a new key writing new content
(:meth:`LogShortcuts.insert_new`, ``logrecords.new_content_batch``) and a
key that owns its content writing new content in its place
(:meth:`LogShortcuts.supersede`, ``logrecords.superseding_batch``): the
batch is encoded, checksummed and appended with one ``write`` in one call,
and the index slots go in after it. Whatever the shortcut does not cover
(another key under the fingerprint, a segment roll, ``max_disk_bytes``)
takes :meth:`~memstrata.tiers._log.LogBackend.append`, the general path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from memstrata._native.logrecords import new_content_batch, rewrite_batch, superseding_batch
from memstrata.tiers._log_index import NAMED_FIRST, PROVEN_MAX, SEED
from memstrata.tiers._log_open import HEAD_BYTES
from memstrata.tiers._log_reads import LogReads

if TYPE_CHECKING:
    from memstrata._tail import TailMarker

__all__ = ["LogShortcuts"]

_BLOB_SIZE = 4 + 4 + 1 + 4 + 4 + 8  # a blob record's fields (memstrata.tiers._tiers.BLOB), then its owner


def _made(frame: bytes | Callable[[], bytes]) -> bytes:
    """The frame, made when it is a callable, as ``bytes`` exactly (the native calls take no subclass or buffer)."""
    if callable(frame):
        frame = frame()
    return frame if type(frame) is bytes else bytes(frame)


class LogShortcuts(LogReads):
    """The one-call write paths of a segment log (see the module docstring)."""

    max_disk_bytes: int | None
    read_only: bool
    #: ``(key, value, seq)`` of the value :meth:`rewrite` last read for a key through the index, with the log's seq then
    _read_last: tuple[bytes, bytes, int] | None = None

    if TYPE_CHECKING:  # defined by LogBackend
        durability: str
        _marker: TailMarker | None

        def append(self, ops: list[tuple[int, bytes, bytes]], *, freeing: bool = False, wait: bool = True) -> int: ...

        def _committed(self, seq: int, fd: int, wait: bool) -> None: ...

        def _write_again(self, fd: int, data: bytes, freeing: bool) -> None: ...

    def rewrite(
        self, key: bytes, at: int, expect: bytes, head: bytes, tags: bytes, extra: tuple[bytes, bytes], *,
        wait: bool = True,
    ) -> tuple[int | None, bytes | None]:
        """Rewrite ``key``'s value in place of its head, when it matches: ``(seq, None)``, or ``(None, old value)``.

        The write path of a key writing again the content it holds. The value
        ``v`` matches when it holds ``expect`` at ``at`` and, after
        ``len(head)`` bytes, ends or goes on with a byte of ``tags``. Then the
        batch is ``key`` with ``head + v[len(head):]`` and the record
        ``extra`` (a key and value), read and appended under one lock hold;
        else nothing is written and the old value (None: absent) is returned.
        The common case is one native call (``logrecords.rewrite_batch``).
        """
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            named = bool(key) and key[0] in NAMED_FIRST
            locs = () if named else self._table.lookup(key)
            if not locs and not named:
                return None, None  # absent: no location under its fingerprint
            fds = self._fds
            fd = fds.get(locs[0] >> 32) if len(locs) == 1 else None
            if fd is not None:
                seq = self._seq + 1
                tail = fds[self._tail]
                pos = self._pos  # _room inline: this is the hottest write
                room = self._room() if self.max_disk_bytes is not None else (
                    self.segment_max_bytes - pos if pos > HEAD_BYTES else 1 << 62)
                done = rewrite_batch(fd, locs[0] & 0xFFFFFFFF, key, at, expect, head, tags, extra[0], extra[1], seq,
                                     SEED, tail, room)
                if done is not None:
                    data, second, written = done
                    base = self._landed(seq, tail, data, written, wait)
                    table = self._table
                    if table.replace(table.fingerprint(key), locs[0], base):  # the record just read was key's
                        proven = self._proven  # _prove inline
                        if len(proven) >= PROVEN_MAX:
                            proven.clear()
                        proven[key] = base
                    else:
                        self._index_set(key, base)
                    self._finish(extra[0], base + second, seq, len(data))
                    return seq, None
            old = self._read_for_write(key)  # the general path: it names any damage
            if old is None or len(old) < at + len(expect) or old[at : at + len(expect)] != expect or not (
                len(old) == len(head) or (len(old) > len(head) and old[len(head)] in tags)
            ):
                return None, old
            return self.append([(0, key, head + old[len(head) :]), (0, *extra)], wait=wait), None

    def insert_new(
        self, key: bytes, owner: bytes, entry_seq: int, flags: int, digest: bytes, frame: bytes | Callable[[], bytes],
        blob_key: bytes, raw_length: int, access_time: float, extra: tuple[bytes, bytes], *, wait: bool = True,
    ) -> tuple[int | None, bytes | None]:
        """Append a new key's entry holding new content's frame, the content's blob record and ``extra``.

        The write path of a key that is new writing content no key holds (see
        ``logrecords.new_content_batch`` for the records, made in one native
        call and written with one ``write``). ``frame`` may be a callable that
        makes it, called only when neither ``key`` nor ``blob_key`` has a
        location under its fingerprint. Returns ``(seq, frame)``; ``(None,
        None)`` when either has one (nothing made); ``(None, frame)`` when the
        batch needs the general path (a segment roll, ``max_disk_bytes``).
        """
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            table = self._table
            fk, fa = table.fingerprint(key), table.fingerprint(blob_key)
            if table.find(fk) or table.find(fa) or key[0] in NAMED_FIRST or blob_key[0] in NAMED_FIRST:
                return None, None
            frame = _made(frame)
            seq = self._seq + 1
            tail = self._fds[self._tail]
            done = new_content_batch(key, owner, entry_seq, flags, digest, frame, blob_key, raw_length, access_time,
                                     extra[0], extra[1], seq, SEED, tail, self._room())
            if done is None:
                return None, frame
            data, second, third, written = done
            base = self._landed(seq, tail, data, written, wait)
            table.insert(fa, base)  # both fingerprints had no location: nothing to replace
            table.insert(fk, base + second)
            proven = self._proven  # _prove inline: both records are the keys' own
            if len(proven) >= PROVEN_MAX - 1:
                proven.clear()
            proven[blob_key] = base
            proven[key] = base + second
            self._finish(extra[0], base + third, seq, len(data))
            return seq, frame

    def supersede(
        self, key: bytes, expect: bytes, old_blob_key: bytes, owner: bytes, entry_seq: int, flags: int, digest: bytes,
        frame: bytes | Callable[[], bytes], blob_key: bytes, raw_length: int, access_time: float,
        extra: tuple[bytes, bytes], *, wait: bool = True,
    ) -> tuple[int | None, bytes | None, bytes | None]:
        """Append ``key``'s entry holding new content in place of the content it owns, both blob records and ``extra``.

        The write path of a key that owns its blob (``key``'s entry is
        ``expect``, holding the frame; the blob record ``old_blob_key`` has
        one reference and names ``owner``) writing content no key holds (see
        ``logrecords.superseding_batch``, one native call, one ``write``).
        Both records are read through the index, so damage raises
        ``CorruptDataError`` (``key``'s is not read again when ``expect`` is
        the value :meth:`rewrite` returned for it, with no batch written
        since: that read proved it). ``frame`` may be a callable that makes it,
        called only once the checks pass. Returns ``(seq, frame, the old blob
        record as it was)``; ``(None, None, None)`` when a check fails
        (nothing made); ``(None, frame, None)`` when the batch needs the
        general path (a segment roll, ``max_disk_bytes``).
        """
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            if key[0] in NAMED_FIRST or old_blob_key[0] in NAMED_FIRST or blob_key[0] in NAMED_FIRST:
                return None, None, None
            table = self._table
            fa = table.fingerprint(blob_key)
            if table.find(fa):
                return None, None, None
            proven = self._proven
            last = self._read_last
            # expect is the very value rewrite just read and proved for key, and no batch was written since: where
            # that read proved key's record still holds it (a compaction in between clears the proven locations)
            at_entry = proven.get(key) if last is not None and last[1] is expect and last[2] == self._seq and (
                last[0] == key) else None
            if at_entry is None:
                if self._value(key) != expect:
                    return None, None, None
                at_entry = proven.get(key)  # where the read just proved key's record (as _value leaves it)
            old = self._value(old_blob_key)
            at_old = proven.get(old_blob_key)
            if (
                old is None or at_entry is None or at_old is None or len(old) < _BLOB_SIZE
                or old[:4] != b"\x01\x00\x00\x00" or old[_BLOB_SIZE:] != owner  # one reference: key's own
            ):
                return None, None, None
            if callable(frame):  # _made inline
                frame = frame()
            if type(frame) is not bytes:
                frame = bytes(frame)
            seq = self._seq + 1
            tail = self._fds[self._tail]
            pos = self._pos  # _room inline, as in rewrite
            room = self._room() if self.max_disk_bytes is not None else (
                self.segment_max_bytes - pos if pos > HEAD_BYTES else 1 << 62)
            done = superseding_batch(old_blob_key, old, bool(expect[8] & 2), key, owner, entry_seq, flags, digest,
                                     frame, blob_key, raw_length, access_time, extra[0], extra[1], seq, SEED, tail,
                                     room)
            if done is None:
                return None, frame, None
            data, second, third, fourth, written = done
            size = len(data)
            if written == size and (not wait or self.durability != "full") and self._marker is not None:
                self._marker.wrote(seq)  # _landed's common case inline: all written, nothing to sync
                base = (self._tail << 32) + pos
            else:
                base = self._landed(seq, tail, data, written, wait)
            if not table.replace(table.fingerprint(old_blob_key), at_old, base):
                self._index_set(old_blob_key, base)
            table.insert(fa, base + second)  # its fingerprint had no location: nothing to replace
            if not table.replace(table.fingerprint(key), at_entry, base + third):
                self._index_set(key, base + third)
            if len(proven) >= PROVEN_MAX - 2:
                proven.clear()
            proven[old_blob_key] = base
            proven[blob_key] = base + second
            proven[key] = base + third
            if extra[0] and extra[0][0] in NAMED_FIRST:  # _finish inline: the store's seq record
                self._named[extra[0]] = base + fourth
                self._seq = seq
                self._pos += size
            else:
                self._finish(extra[0], base + fourth, seq, size)
            return seq, frame, old

    def entry_if_never_stored(self, blob_key: bytes, key: bytes) -> tuple[bool, bytes | None]:
        """Whether no record of ``blob_key`` can be in the log and, if so, :meth:`read_for_write` of ``key``.

        The first is a RAM check: no location under ``blob_key``'s
        fingerprint. ``(True, key's value or None)`` is sure, so a writer may
        skip a shortcut that needs ``blob_key``'s record; ``(False, None)``,
        nothing read, is no answer (a location may be another key's; a named
        key is never answered). Both under one lock hold.
        """
        with self._lock:
            table = self._table
            if not blob_key or blob_key[0] in NAMED_FIRST or table.find(table.fingerprint(blob_key)):
                return False, None
            if self._closed or self.read_only:
                self._check_writable()
            old = self._value(key)  # _read_for_write inline
            if old is not None:
                self._read_last = (key, old, self._seq)
            return True, old

    def read_for_write(self, key: bytes) -> bytes | None:
        """``key``'s value (None: absent), read for a write that follows: :meth:`supersede` builds on this read."""
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            return self._read_for_write(key)

    def _read_for_write(self, key: bytes) -> bytes | None:
        old = self._value(key)
        if old is not None:
            self._read_last = (key, old, self._seq)
        return old

    def _room(self) -> int:
        """Bytes a batch may take without a segment roll or passing ``max_disk_bytes``."""
        room = self.segment_max_bytes - self._pos if self._pos > HEAD_BYTES else 1 << 62
        if self.max_disk_bytes is not None:
            room = min(room, self.max_disk_bytes - self.disk_bytes())
        return room

    def _landed(self, seq: int, fd: int, data: bytes, written: int, wait: bool) -> int:
        """After a native call wrote batch ``seq`` (``data``) to the tail ``fd``: its location, committed.

        A failed or short ``write`` (``written``) is undone and done again in
        parts, as :meth:`append` does (a full disk raises ``StorageFullError``).
        """
        if written != len(data):
            try:
                os.ftruncate(fd, self._pos)  # no partial batch stays: write it again, as append does
            except OSError:
                pass
            self._write_again(fd, data, False)
        if wait and self.durability == "full":
            self._committed(seq, fd, wait)
        elif self._marker is not None:  # _committed inline, nothing to sync: only the marker
            self._marker.wrote(seq)
        return (self._tail << 32) + self._pos

    def _finish(self, last_key: bytes, loc: int, seq: int, size: int) -> None:
        """After a shortcut's batch of ``size`` bytes: index its last record at ``loc``, then the log's seq and end."""
        if last_key and last_key[0] in NAMED_FIRST:  # the store's seq record
            self._named[last_key] = loc
        else:
            self._index_set(last_key, loc)
        self._seq = seq
        self._pos += size
