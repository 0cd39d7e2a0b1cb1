"""``LogBackend``: the backend protocol on append-only segment files and an in-RAM index.

Every batch (``apply``) is appended as records ending with an ``END`` record,
in one ``write``: the batch is committed when that record is in the OS's page
cache (``durability="normal"``), on stable storage (``"full"``: fdatasync
before returning) or later (``"none"``: never fsynced). Reads look the key's
location up in RAM and read one record, whose checksum binds the key: a read
returns the bytes written under that key or raises ``CorruptDataError``. The
index in RAM holds 32-bit key fingerprints and locations, not keys (12-byte
slots, see :mod:`memstrata.tiers._log_index`): a key whose fingerprint another
key shares is told apart by the key stored in each record.

On open the index comes from the checkpoint (``CHECKPOINT``) plus the records
appended after it (the log tail). Full segments are sealed and never written
again; :meth:`vacuum` (compaction) copies the live records into new segments,
writes a checkpoint naming only those, then deletes the old segments.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from memstrata._native.keyindex import KeyIndex
from memstrata._native.logrecords import encode_batch
from memstrata._tail import TailMarker
from memstrata.errors import CorruptDataError
from memstrata.tiers._backend import DURABILITY_LEVELS, StorageFullError
from memstrata.tiers._checkpoint import write_checkpoint
from memstrata.tiers._log_index import NAMED_FIRST, SEED, new_table
from memstrata.tiers._log_open import HEAD_BYTES
from memstrata.tiers._log_writes import LogShortcuts
from memstrata.tiers._reserve import ensure_reserve, release_reserve
from memstrata.tiers._segments import (
    F_DEL,
    F_END,
    KIND_LOG,
    fsync_dir,
    head_record,
    seal_record,
    segment_name,
    write_all,
)

__all__ = ["SEED", "LogBackend"]

log = logging.getLogger("memstrata.store")

CHECKPOINT_EVERY = 32 << 20  # log bytes after which a segment roll also writes a checkpoint


class LogBackend(LogShortcuts):
    """Bytes by key on segment files in ``directory`` (see the module docstring).

    Parameters
    ----------
    directory : str or Path
        Holds ``seg-NNNNNNNN.log`` files and ``CHECKPOINT``; created when missing
        (unless ``read_only``).
    durability : {"none", "normal", "full"}
    max_disk_bytes : int, optional
        Cap on the bytes of the segment files; a batch past it raises
        :class:`StorageFullError` and changes nothing (batches marked
        ``freeing`` may use a reserve above it, so deletes always work).
    read_only : bool
        Never write; follow the writer's new records on every call.
    segment_max_bytes : int
        Size at which a segment is sealed.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> b = LogBackend(d + "/log")
    >>> b.apply({b"k1": b"v1", b"k2": b"v2"})  # the batch's sequence number
    1
    >>> b.get(b"k1")
    b'v1'
    >>> b.close(); LogBackend(d + "/log").get(b"k2")
    b'v2'
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        durability: str = "normal",
        *,
        max_disk_bytes: int | None = None,
        read_only: bool = False,
        segment_max_bytes: int = 64 << 20,
    ) -> None:
        if durability not in DURABILITY_LEVELS:
            raise ValueError(f"durability: expected one of {sorted(DURABILITY_LEVELS)}, got {durability!r}")
        self.directory = Path(directory)
        self.path = str(self.directory)
        self.durability = durability
        self.read_only = read_only
        self.max_disk_bytes = max_disk_bytes
        self.segment_max_bytes = int(segment_max_bytes)
        self.reserve_bytes = 256 * 1024
        self._lock = threading.RLock()
        self._sync = threading.Condition(threading.Lock())  # group commit: one fdatasync for every waiting writer
        self._syncing = False
        self._table = new_table()
        self._named: dict[bytes, int] = {}
        self._proven: dict[bytes, int] = {}
        self._fds: dict[int, int] = {}
        self._paths: dict[int, Path] = {}
        self._kinds: dict[int, int] = {}
        self._sizes: dict[int, int] = {}  # sealed segments' sizes
        self._segments: list[int] = []
        self._seq = 0
        self._tail = 0
        self._pos = 0
        self._ck_pos = (0, 0)
        self._closed = False
        self.torn_records_dropped = 0
        if not read_only:
            from memstrata.tiers._repair import finish_swap

            finish_swap(self.directory)
        for attempt in range(3):
            try:
                self._open()
                break
            except CorruptDataError:
                self._close_fds()
                if not read_only or attempt == 2:
                    raise
                time.sleep(0.05)  # a reader may have met a compaction in progress: look again
                self._reset()
            except BaseException:
                self._close_fds()
                raise
        self._marker: TailMarker | None = None
        self._synced_seq = self._seq
        if not read_only:
            ensure_reserve(self.directory)
            seen = self._tail_seen
            synced = seen.synced if seen is not None else 0
            self._marker = TailMarker(self.directory, self._seq, synced, sync=durability != "none")

    def _reset(self) -> None:
        self._table, self._named, self._proven = new_table(), {}, {}
        self._kinds, self._sizes, self._segments, self._seq = {}, {}, [], 0
        self._read_last = None

    # ------------------------------------------------------------- opening --

    def _seg_path(self, seg: int) -> Path:
        path = self._paths.get(seg)  # cached: every write names its file for the error path
        if path is None:
            path = self._paths[seg] = self.directory / segment_name(seg)
        return path

    # -------------------------------------------------------------- writing --

    def _create_segment(self, seg: int, kind: int) -> int:
        path = self._seg_path(seg)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        head = head_record(seg, kind, self._seq, SEED)
        try:
            write_all(fd, head, 0, str(path))
            if self.durability != "none":
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        if self.durability != "none":
            fsync_dir(self.directory)
        self._fds[seg] = fd
        self._kinds[seg] = kind
        self._sizes[seg] = len(head)
        return len(head)

    def _roll(self, kind: int = KIND_LOG) -> None:
        """Seal the tail segment and continue in a new one (created before the seal names it)."""
        nxt = max(self._fds) + 1
        head_len = self._create_segment(nxt, kind)
        self._sizes.pop(nxt)
        fd = self._fds[self._tail]
        seal = seal_record(nxt, self._seq, SEED)
        write_all(fd, seal, self._pos, self._seg_path(self._tail))
        if self.durability != "none":
            os.fsync(fd)
        self._sizes[self._tail] = self._pos + len(seal)
        self._segments.append(nxt)
        self._tail, self._pos = nxt, head_len

    def _check_writable(self) -> None:
        if self._closed:
            raise ValueError(f"LogBackend: {self.path} is closed")
        if self.read_only:
            raise PermissionError(f"the store log {self.path} is open read-only")

    def disk_bytes(self) -> int:
        return sum(self._sizes.values()) + self._pos

    def apply(
        self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = (), *, freeing: bool = False, wait: bool = True
    ) -> int:
        """Commit ``puts`` and ``deletes`` as one batch; returns its sequence number.

        ``freeing``: may use the reserve above ``max_disk_bytes``. ``wait=False``
        (``durability="full"``): return once the batch is written, before it is
        synced; the caller then calls :meth:`sync_through` with the returned
        number (after releasing its own locks, so concurrent writers share one
        fdatasync: group commit).
        """
        ops = [(0, k if type(k) is bytes else bytes(k), v if type(v) is bytes else bytes(v)) for k, v in puts.items()]
        if not deletes:
            return self.append(ops, freeing=freeing, wait=wait)
        with self._lock:  # the deletes of keys present, looked up under the same lock hold as their write
            return self.append([(F_DEL, k, b"") for k in deletes if self._locate(k) is not None] + ops, freeing=freeing, wait=wait)

    def append(self, ops: list[tuple[int, bytes, bytes]], *, freeing: bool = False, wait: bool = True) -> int:
        """Commit ``ops``, ``(flags, key, value)`` records (flags ``0`` or ``F_DEL``, keys and values ``bytes``), as one batch.

        :meth:`apply` without its mapping: the write path of ``TieredStorage``
        builds the records itself. The last record gets the ``END`` flag; the
        list is taken over by the call. Returns the batch's sequence number.
        """
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            if not ops:
                return self._seq
            seq = self._seq + 1
            flags, k, v = ops[-1]
            ops[-1] = (flags | F_END, k, v)
            data, offsets = encode_batch(ops, seq, SEED)  # every record's header and checksum in one native call
            total = len(data)
            if self.max_disk_bytes is not None:
                limit = self.max_disk_bytes + (self.reserve_bytes if freeing else 0)
                if self.disk_bytes() + total > limit:
                    raise StorageFullError(
                        errno.ENOSPC,
                        f"memstrata: the store {self.directory.parent} is full (max_disk_bytes={self.max_disk_bytes}); "
                        "the write was not applied and the store is still readable; delete keys and compact(), or "
                        "raise max_disk_bytes",
                    )
            if self._pos + total > self.segment_max_bytes and self._pos > HEAD_BYTES:
                self._roll()
                if self.disk_bytes() - self._ck_bytes() > CHECKPOINT_EVERY:
                    self._checkpoint()
            fd = self._fds[self._tail]
            try:
                if os.write(fd, data) != total:  # one write() takes a batch whole but on odd files and full disks
                    raise OSError(errno.EIO, "short write")
            except OSError:
                try:
                    os.ftruncate(fd, self._pos)  # no partial batch stays: write it again, with the error path's care
                except OSError:
                    pass
                self._write_again(fd, data, freeing)
            self._committed(seq, fd, wait)
            base = (self._tail << 32) + self._pos
            table, proven, named = self._table, self._proven, self._named
            for (flags, k, _v), off in zip(ops, offsets):
                if flags & F_DEL:
                    self._index_pop(k)
                elif k and k[0] in NAMED_FIRST:
                    named[k] = base + off
                else:
                    old = proven.get(k)  # _index_set's fast path inline: the record this key's last read or write proved
                    if old is not None and table.replace(table.fingerprint(k), old, base + off):  # (named keys are never proven)
                        proven[k] = base + off
                    else:
                        self._index_set(k, base + off)
            self._seq = seq
            self._pos += total
            return seq

    def _committed(self, seq: int, fd: int, wait: bool) -> None:
        """After batch ``seq`` is written to ``fd``: fdatasync (``durability="full"``, when ``wait``), then the marker."""
        synced = self.durability == "full" and wait
        if synced:
            os.fdatasync(fd)
            self._synced_seq = seq
        if self._marker is not None:
            self._marker.record(seq, synced=synced)

    def _write_again(self, fd: int, data: bytes, freeing: bool) -> None:
        """The slow path of a batch's write: in parts, a full disk undone, ``freeing`` batches using the reserve."""
        try:
            write_all(fd, data, self._pos, self._seg_path(self._tail))
        except StorageFullError as exc:
            if not (freeing and exc.errno == errno.ENOSPC and release_reserve(self.directory)):
                raise
            log.warning("memstrata: %s: the disk is full; its reserved space was given up for this delete", self.path)
            write_all(fd, data, self._pos, self._seg_path(self._tail))

    def sync_through(self, seq: int) -> None:
        """Return once batch ``seq`` is on stable storage (``durability="full"``; otherwise at once).

        One writer at a time runs fdatasync on the tail segment, covering every
        batch written before it started (sealed segments were synced when
        sealed); the others wait for it and return when it covered theirs.
        """
        if self.durability != "full":
            return
        with self._sync:
            while self._synced_seq < seq:
                if self._syncing:
                    self._sync.wait()
                    continue
                self._syncing = True
                try:
                    with self._lock:
                        target = self._seq
                        fd = os.dup(self._fds[self._tail])  # a compaction may close the tail's own descriptor
                    self._sync.release()
                    try:
                        os.fdatasync(fd)
                    finally:
                        os.close(fd)
                        self._sync.acquire()
                    self._synced_seq = max(self._synced_seq, target)
                    with self._lock:
                        if self._marker is not None:
                            self._marker.record(self._seq, synced_through=target)
                finally:
                    self._syncing = False
                    self._sync.notify_all()

    def put(self, key: bytes, value: bytes) -> None:
        self.apply({key: value})

    def delete(self, key: bytes) -> None:
        self.apply({}, (key,), freeing=True)

    @property
    def seq(self) -> int:
        """Sequence number of the last committed batch."""
        return self._seq

    # ---------------------------------------------------------- maintenance --

    def _ck_bytes(self) -> int:
        seg, pos = self._ck_pos
        return sum(n for s, n in self._sizes.items() if s < seg) + pos

    def _checkpoint(self, index: tuple[KeyIndex, dict[bytes, int]] | None = None) -> None:
        sizes = [(s, self._sizes[s]) for s in self._segments if s != self._tail] + [(self._tail, self._pos)]
        ck = self._checkpoint_of(self._seq, self._tail, self._pos, sizes, index)
        write_checkpoint(self.directory, ck, self.durability != "none")
        self._ck_pos = (self._tail, self._pos)

    def flush(self) -> None:
        """Make every committed batch durable and write a checkpoint (shortens the next open)."""
        with self._lock:
            if self.read_only or self._closed:
                return
            if self.durability != "none":
                os.fsync(self._fds[self._tail])
                self._synced_seq = self._seq
                if self._marker is not None:
                    self._marker.record(self._seq, synced=True)
            if self._ck_pos != (self._tail, self._pos):
                self._checkpoint()

    def size_bytes(self) -> int:
        """Bytes of the segment files and the checkpoint."""
        total = 0
        for p in self.directory.iterdir():
            if p.name.startswith("."):  # the reserve and temporary files are not the store's data
                continue
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    # alike in shape only to traces/_memory.py's _close (lock, return if closed, flush, release): the
    # usual idempotent close; this one checkpoints and releases segment files, that one a database
    def close(self) -> None:
        """Checkpoint (when the disk has room: the log alone is complete) and release the files."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            except (StorageFullError, OSError) as exc:
                log.warning("memstrata: no checkpoint written at close (%s); the next open replays the log", exc)
            finally:
                self._closed = True
                self._close_fds()
                if self._marker is not None:
                    self._marker.close()
                if not self.read_only:
                    ensure_reserve(self.directory)
