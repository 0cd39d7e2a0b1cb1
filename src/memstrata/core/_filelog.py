"""The embedded audit log: an append-only binary file of hash-chained records.

A log at ``audit.log`` is three files:

``audit.log``
    A 32-byte header (``MSAUDIT\\0``, format version) then one record per
    entry: ``u32 n | previous hash | n canonical bytes | hash`` with
    ``hash = SHA256(previous hash || canonical bytes)`` and the canonical
    bytes of :func:`memstrata.core.encode_entry` (the chain is the same as in
    the SQLite and PostgreSQL logs). Records are encoded, hashed and checked
    in C (:mod:`memstrata._native.auditchain`; a single entry is encoded,
    hashed and written with its intent record in one call of
    :mod:`memstrata._native.corewrite`). The record offsets and chain
    hashes are kept in RAM (40 bytes per entry), so any entry's hash (a Merkle
    leaf) is found in O(1).
``audit.log.intents``
    Intent payloads (``u32 n | u64 seq | payload | crc32``) until
    :meth:`FileLogStore.drop_payloads`; emptied when every one is dropped.
``audit.log.state``
    JSON, replaced atomically: the named state values (replay positions, the
    trust ledger) and the **seal**: size, end offset and last hash of the log
    when the state was saved, and whether the log was closed cleanly.

**Durability** (as for :class:`memstrata.MemoryStore`): an append is handed
to the OS before it returns (``"none"``, ``"normal"``: survives a killed
process), and with ``"full"`` it is fdatasynced first (survives power loss).
Saving the state fdatasyncs the log before the seal is written (except with
``"none"``), so the sealed part is always on disk.

**Opening** walks the records. A damaged record past the seal that ends the
file (cut short, or the file's last record, or zeros to the end) is a write
that was never acknowledged: its bytes are copied to ``audit.log.torn-<offset>``
and the log is truncated before it. Anything else that does not match — a bad
record inside the sealed part, fewer entries than the seal, entries after a
clean close — is left as it is, reported by ``verify`` with its first bad
sequence, and appends are refused.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
import threading
import zlib
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from memstrata._native import auditchain
from memstrata._native.corewrite import INTENT_OVERHEAD as _INTENT_OVERHEAD
from memstrata._native.corewrite import append_entry as _append_entry
from memstrata.errors import CorruptDataError, MemstrataError

__all__ = ["HEADER", "FileLogStore"]

GENESIS = b"\x00" * 32
MAGIC = b"MSAUDIT\x00"
FORMAT = 1
HEADER = MAGIC + struct.pack("<I", FORMAT) + bytes(20)
_HEAD, _TAIL = auditchain.RECORD_HEAD, auditchain.RECORD_TAIL
_ENTRY = struct.Struct(">Qd")
_LEN = struct.Struct(">I")
_INTENT = struct.Struct("<IQ")
_CHUNK = 50_000


def parse_record(buf: bytes | memoryview, off: int) -> tuple[Any, ...]:
    """The entry ``(seq, time, actor, operation, key, digest, result, hash)`` of the record at ``off``."""
    n = int.from_bytes(buf[off : off + 4], "little")
    c = off + _HEAD
    seq, when = _ENTRY.unpack_from(buf, c)
    at = c + 16
    fields = []
    for _ in range(5):
        (m,) = _LEN.unpack_from(buf, at)
        fields.append(bytes(buf[at + 4 : at + 4 + m]))
        at += 4 + m
    actor, op, key, digest, result = fields
    h = bytes(buf[c + n : c + n + 32])
    return (seq, when, actor.decode(), op.decode(), key.decode(), digest, result.decode(), h)


class FileLogStore:
    """The audit log in one append-only binary file (``path``), or in RAM when ``path`` is None.

    One process writes a log at a time (an exclusive lock on the file).
    """

    def __init__(self, path: str | os.PathLike[str] | None, durability: str = "normal") -> None:
        from memstrata.tiers import DURABILITY_LEVELS

        if durability not in DURABILITY_LEVELS:
            raise ValueError(f"durability: expected one of {sorted(DURABILITY_LEVELS)}, got {durability!r}")
        self.path = None if path is None else Path(path)
        self.durability = durability
        self._lock = threading.RLock()
        self._starts = array("Q")  # each entry's record offset
        self._hashes = bytearray()
        self._size, self._hash = 0, GENESIS
        self._end = len(HEADER)
        self._values: dict[str, bytes] = {}
        self._intents: dict[int, tuple[int, int] | bytes] = {}
        self._intents_end = 0
        self._refused: tuple[int, str] | None = None
        self._seal: dict[str, Any] = {}
        self.torn_bytes = 0
        self._fd = self._ifd = -1
        if self.path is None:
            self._ram = bytearray(HEADER)
            return
        self._ram = bytearray()
        try:
            self._open_files()
        except BaseException:
            self._close_fds()
            raise

    # --------------------------------------------------------------- open --

    def _open_files(self) -> None:
        assert self.path is not None
        path = self.path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MemstrataError(f"audit log {path}: open in another process (one writer at a time)") from None
        size = os.fstat(self._fd).st_size
        if size == 0:
            os.write(self._fd, HEADER)
            size = len(HEADER)
        head = os.pread(self._fd, len(HEADER), 0)
        if head[:8] != MAGIC:
            raise CorruptDataError(f"audit log {path}: not a memstrata audit log (its first bytes are {head[:8]!r})")
        version = struct.unpack_from("<I", head, 8)[0] if len(head) >= 12 else -1
        if version != FORMAT:
            raise CorruptDataError(
                f"audit log {path}: format {version} is not one this memstrata reads (it reads {FORMAT})"
            )
        seal = self._seal = self._read_state()
        self._scan_at_open(size, seal)
        self._open_intents()
        if self._refused is None:
            self._save_state(closed=False)  # from now on, entries past the seal are a live (unsealed) tail

    def _read_state(self) -> dict[str, Any]:
        state_path = self._sidecar("state")
        try:
            raw = state_path.read_bytes()
        except FileNotFoundError:
            return {"size": 0, "end": len(HEADER), "hash": GENESIS.hex(), "closed": False}
        try:
            doc = json.loads(raw)
            self._values = {k: bytes.fromhex(v) for k, v in doc["state"].items()}
            seal: dict[str, Any] = doc["seal"]
            int(seal["size"]), int(seal["end"]), bytes.fromhex(seal["hash"]), bool(seal["closed"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptDataError(f"audit log state {state_path}: unreadable ({exc})") from exc
        return seal

    def _scan_at_open(self, size: int, seal: dict[str, Any]) -> None:
        sealed_end = min(int(seal["end"]), size)
        with open(self._fd, "rb", closefd=False) as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:  # the sealed part was hashed when it was written and is on disk: its structure is checked;
                # the tail after it may hold a write cut short by a crash: its hashes are checked too
                count, end, status, _f, last, starts, hashes = auditchain.scan_records(
                    view[:sealed_end], len(HEADER), 0, GENESIS, False, True
                )
                if status == auditchain.OK:
                    more = auditchain.scan_records(view, end, count, last, True, True)
                    count, end, status, last = count + more[0], more[1], more[2], more[4]
                    starts, hashes = starts + more[5], hashes + more[6]
            finally:
                view.release()
            if status != auditchain.OK and end >= sealed_end and not seal["closed"] and _torn_shaped(mm, end, size):
                tail = bytes(mm[end:size])
            else:
                tail = b""
        if tail:  # a write cut short by a crash: never acknowledged, so never part of the log
            self._sidecar(f"torn-{end}").write_bytes(tail)
            os.ftruncate(self._fd, end)
            self.torn_bytes = len(tail)
            status, size = auditchain.OK, end
        self._starts.frombytes(starts)
        self._hashes += hashes
        self._size, self._hash, self._end = count, last, end
        sealed, sealed_hash = int(seal["size"]), bytes.fromhex(seal["hash"])
        if status != auditchain.OK:
            self._refuse(count, "a damaged record (verify names it)")
        elif count < sealed:
            self._refuse(count, f"the log was sealed with {sealed} entries but holds {count}")
        elif sealed and self.entry_hash(sealed - 1) != sealed_hash:
            self._refuse(sealed - 1, "the sealed head hash does not match the entry")
        elif seal["closed"] and count > sealed:
            self._refuse(sealed, f"the log was closed with {sealed} entries but holds {count}")
        if self._refused is not None and (seal["closed"] or count < sealed):
            self._size, self._hash = sealed, sealed_hash  # what the log recorded: verify compares against it

    def _refuse(self, seq: int, reason: str) -> None:
        self._refused = (seq, reason)

    def _open_intents(self) -> None:
        path = self._sidecar("intents")
        self._ifd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        data = os.pread(self._ifd, os.fstat(self._ifd).st_size, 0)
        off = 0
        while off + _INTENT.size + 4 <= len(data):
            n, seq = _INTENT.unpack_from(data, off)
            stop = off + _INTENT.size + n
            if stop + 4 > len(data) or zlib.crc32(data[off + 4 : stop]) != int.from_bytes(
                data[stop : stop + 4], "little"
            ):
                break
            if seq < self._size:  # later records of a seq win; seqs past the log were never logged
                self._intents[seq] = (off + _INTENT.size, n)
            off = stop + 4
        if off != len(data):  # a torn last intent: its entry was never written
            os.ftruncate(self._ifd, off)
        self._intents_end = off

    def _sidecar(self, suffix: str) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.name}.{suffix}")

    # ------------------------------------------------------------- append --

    def _check_refused(self) -> None:
        if self._refused is not None:
            from memstrata.core._audit import AuditChainError

            seq, reason = self._refused
            raise AuditChainError(seq, f"{reason}; appends are refused until the log is repaired")

    #: append single entries with :func:`memstrata._native.corewrite.append_entry` (one C call that writes
    #: the bytes :meth:`_append_one_py`, its twin, writes); False: the Python path (tests, crash hooks)
    native_append = True

    def append_one(self, item: tuple[Any, ...], clock: Any) -> Any:
        """Append one ``(actor, operation, key, digest, result, payload)`` item; returns its row.

        What :meth:`append` does for a batch of one, without building a batch
        (the embedded write's path: its audit step is mostly overhead around C).
        """
        if self._fd < 0 or not self.native_append:
            return self._append_one_py(item, clock)
        with self._lock:
            if self._refused is not None:
                self._check_refused()
            seq = self._size
            when = clock()
            try:
                h, size = _append_entry(self._fd, self._ifd, item, seq, self._hash, when, self.durability == "full")
            except OSError as exc:
                if exc.filename == "intents":
                    self._undo_intent(exc)
                if item[5] is not None:  # its intent record was written (as the Python path leaves it)
                    self._intents_end += _INTENT_OVERHEAD + len(item[5])
                self._undo_log(exc)
            payload = item[5]
            if payload is not None:
                off = self._intents_end
                self._intents[seq] = (off + _INTENT.size, len(payload))
                self._intents_end = off + _INTENT_OVERHEAD + len(payload)
            self._starts.append(self._end)
            self._hashes += h
            self._end += size
            self._size = seq + 1
            self._hash = h
            return (seq, when, item[0], item[1], item[2], item[3], item[4], h)

    def _append_one_py(self, item: tuple[Any, ...], clock: Any) -> Any:
        """:meth:`append_one` in Python (and C encoding): the reference of the native path, and the RAM log's."""
        with self._lock:
            self._check_refused()
            seq = self._size
            records, rows, _, h = auditchain.encode_records([item], seq, self._hash, [clock()])
            payload = item[5]
            if payload is not None:
                self._write_intent(seq, payload)
            try:
                self._write_log(records)
            except BaseException:
                self._intents.pop(seq, None)  # its entry was never logged
                raise
            self._starts.append(self._end)
            self._hashes += h
            self._end += len(records)
            self._size = seq + 1
            self._hash = h
            return rows[0]

    def append(self, build: Any) -> list[Any]:
        with self._lock:
            self._check_refused()
            batch = build(self._size, self._hash)
            if not batch.rows:
                return []
            if batch.payloads:
                self._write_intents(batch.payloads)
            try:
                self._write_log(batch.records)
            except BaseException:
                for seq, _ in batch.payloads:  # their entries were never logged
                    self._intents.pop(seq, None)
                raise
            end = self._end
            if len(batch.rows) == 1:
                self._starts.append(end)
            else:
                self._starts.extend([end + s for s in memoryview(batch.starts).cast("Q")])
            self._hashes += batch.hashes
            self._end += len(batch.records)
            self._size += len(batch.rows)
            self._hash = batch.rows[-1][7]
        rows: list[Any] = batch.rows
        return rows

    def _write_log(self, records: bytes) -> None:
        if self._fd < 0:
            self._ram += records
            return
        try:
            _write_all(self._fd, records)
            if self.durability == "full":
                os.fdatasync(self._fd)
        except OSError as exc:
            self._undo_log(exc)

    def _undo_log(self, exc: OSError) -> NoReturn:
        """A log write failed: cut what it wrote (or refuse appends when that fails too), and say so."""
        try:  # leave no partial record behind
            os.ftruncate(self._fd, self._end)
        except OSError:
            self._refuse(self._size, f"a failed append could not be undone ({exc})")
        raise MemstrataError(f"audit log {self.path}: append failed ({exc}); nothing was logged") from exc

    def _undo_intent(self, exc: OSError) -> NoReturn:
        """An intent write failed: cut what it wrote, and say so (the entry was not written)."""
        try:
            os.ftruncate(self._ifd, self._intents_end)
        except OSError:
            self._refuse(self._size, f"a failed intent write could not be undone ({exc})")
        raise MemstrataError(f"audit log {self.path}: intent write failed ({exc}); nothing was logged") from exc

    def _write_intent(self, seq: int, payload: bytes) -> None:
        """One intent record: :meth:`_write_intents` of one payload, without its lists (the single write's path)."""
        if self._ifd < 0:
            self._intents[seq] = payload
            return
        n = len(payload)
        head = _INTENT.pack(n, seq)
        record = b"".join((head, payload, zlib.crc32(payload, zlib.crc32(head[4:])).to_bytes(4, "little")))
        try:
            _write_all(self._ifd, record)
        except OSError as exc:
            self._undo_intent(exc)
        off = self._intents_end
        self._intents[seq] = (off + _INTENT.size, n)
        self._intents_end = off + len(record)

    def _write_intents(self, payloads: list[tuple[int, bytes]]) -> None:
        if self._ifd < 0:
            for seq, payload in payloads:
                self._intents[seq] = payload
            return
        parts: list[bytes] = []
        where: list[tuple[int, tuple[int, int]]] = []
        off = self._intents_end
        for seq, payload in payloads:
            head = _INTENT.pack(len(payload), seq)
            parts += (head, payload, zlib.crc32(payload, zlib.crc32(head[4:])).to_bytes(4, "little"))
            where.append((seq, (off + _INTENT.size, len(payload))))
            off += _INTENT.size + len(payload) + 4
        try:
            _write_all(self._ifd, b"".join(parts))
        except OSError as exc:
            self._undo_intent(exc)
        self._intents.update(where)
        self._intents_end = off

    # -------------------------------------------------------------- reads --

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            return self._size, self._hash

    def _read(self, start: int, stop: int) -> bytes:
        if self._fd < 0:
            return bytes(self._ram[start:stop])
        return os.pread(self._fd, stop - start, start)

    def rows(self, start: int, stop: int | None) -> Iterator[Any]:
        lo = start
        while True:
            with self._lock:
                n = len(self._hashes) // 32
                hi = min(n, lo + _CHUNK) if stop is None else min(n, stop, lo + _CHUNK)
                if lo >= hi:
                    return
                base = self._starts[lo]
                stop_off = self._end if hi == n else self._starts[hi]
                starts = self._starts[lo:hi]
                buf = self._read(base, stop_off)
            for off in starts:
                yield parse_record(buf, off - base)
            lo = hi

    def entry_hash(self, seq: int) -> bytes:
        with self._lock:
            if not 0 <= seq < len(self._hashes) // 32:
                raise IndexError(f"seq: no entry {seq}")
            return bytes(self._hashes[32 * seq : 32 * seq + 32])

    def hashes(self, start: int, stop: int) -> list[bytes]:
        """The chain hashes of entries ``start <= seq < stop`` (the Merkle leaves), from RAM."""
        with self._lock:
            blob = bytes(self._hashes[32 * start : 32 * stop])
        return [blob[i : i + 32] for i in range(0, len(blob), 32)]

    def scan_chain(self, with_hashes: bool = False) -> tuple[int, int, int, bytes, bytes]:
        """Recompute every record's hash from the bytes on disk.

        Returns ``(count, status, found_seq, last_hash, hashes)`` (see
        ``auditchain.scan_records``; ``hashes``, the good records' hashes as
        stored, only ``with_hashes``).
        """
        with self._lock:
            if self._fd < 0:
                data: Any = bytes(self._ram)
            else:
                size = os.fstat(self._fd).st_size
                if size <= len(HEADER):
                    return 0, auditchain.OK if size == len(HEADER) else auditchain.TORN, -1, GENESIS, b""
                with open(self._fd, "rb", closefd=False) as f:
                    data = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        try:
            count, _end, status, found, last, _s, hashes = auditchain.scan_records(
                data, len(HEADER), 0, GENESIS, True, with_hashes
            )
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
        return count, status, found, last, hashes

    def payload(self, seq: int) -> bytes | None:
        with self._lock:
            where = self._intents.get(seq)
            if where is None or isinstance(where, bytes):
                return where
            off, n = where
            return os.pread(self._ifd, n, off)

    def drop_payloads(self, upto: int) -> None:
        with self._lock:
            for seq in [s for s in self._intents if s < upto]:
                del self._intents[seq]
            if not self._intents and self._ifd >= 0 and self._intents_end:
                os.ftruncate(self._ifd, 0)  # every intent applied: the file starts over
                self._intents_end = 0

    # -------------------------------------------------------------- state --

    def get_state(self, name: str) -> bytes | None:
        with self._lock:
            return self._values.get(name)

    def states(self, prefix: str) -> dict[str, bytes]:
        """Every state value whose name starts with ``prefix``."""
        with self._lock:
            return {k: v for k, v in self._values.items() if k.startswith(prefix)}

    def set_state(self, values: Mapping[str, bytes]) -> None:
        """Save state values (atomically, with the seal of the log as it is now)."""
        with self._lock:
            merged = {**self._values, **values}
            self._save_state(closed=False, values=merged)
            self._values = merged

    def _save_state(self, closed: bool, values: Mapping[str, bytes] | None = None) -> None:
        if self._fd < 0:
            return
        sync = self.durability != "none"
        if sync:
            os.fdatasync(self._fd)  # the seal never claims bytes that are not on disk
        seal = {"size": self._size, "end": self._end, "hash": self._hash.hex(), "closed": closed}
        if self._refused is not None:  # a log that failed its checks keeps the seal it was opened with
            seal = self._seal
        doc = {
            "format": FORMAT,
            "seal": seal,
            "state": {k: v.hex() for k, v in (self._values if values is None else values).items()},
        }
        target = self._sidecar("state")
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(json.dumps(doc, sort_keys=True).encode())
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
        if sync:
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0 and self._refused is None:
                self._save_state(closed=True)
            self._close_fds()

    def _close_fds(self) -> None:
        for name in ("_fd", "_ifd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def _write_all(fd: int, data: bytes) -> None:
    n = os.write(fd, data)  # one call in the usual case; a short write goes on from where it stopped
    if n < len(data):
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view) :]


def _torn_shaped(mm: Any, end: int, size: int) -> bool:
    """The bytes from ``end`` on look like one interrupted write: a record cut short or reaching the end, or zeros."""
    if size - end < _HEAD:
        return True
    n = int.from_bytes(mm[end : end + 4], "little")
    return end + _HEAD + n + _TAIL >= size or not any(mm[end:size])
