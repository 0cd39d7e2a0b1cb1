"""The tail marker: where an append log last ended, kept apart from it, so a shortened log is caught.

Used by the store's segment log and by a durable VectorMemory's log. A
checkpoint records a log's end only when it is written (at a flush, a
compaction and at close). A writer that dies between two checkpoints leaves
records that only the log's last file knows of; if that file is then cut at a
record boundary or replaced by an older copy of itself, the log looks
complete and the lost batches would go unnoticed.

So after every batch the writer also records its sequence number in
``.tail`` (two 40-byte slots written in turn, each with its own checksum, so
a write torn by a crash leaves the other slot whole):

- ``written``: the last batch handed to the OS, with the id of the kernel boot
  that took it. While the machine has not restarted since, the page cache
  holds that batch whatever happened to the process, so a log ending before
  it is damage, not a crash.
- ``synced``: the last batch known to be on stable storage (after an fsync).
  A log ending before it is damage whatever happened since.

A log ending before the marker raises :class:`CorruptDataError` at open,
before anything is truncated. The marker is advisory in the other direction:
a missing, damaged, older or foreign marker only weakens the check (a
repaired or restored log starts without one). Its name starts with a dot,
so copies of the log skip it.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from memstrata._native.logrecords import TAIL_SLOT_SIZE, write_tail_slot
from memstrata.errors import CorruptDataError

__all__ = ["TAIL_NAME", "Tail", "TailMarker", "read_tail"]

TAIL_NAME = ".tail"
log = logging.getLogger("memstrata.store")

_MAGIC = b"MSTL"
_SLOT = struct.Struct("<4sQQ16s")  # magic, written, synced, boot id; then a crc32 of these
_CRC = struct.Struct("<I")
_SLOT_BYTES = _SLOT.size + _CRC.size
_STRIDE = 64  # slot offsets 0 and 64: each slot lies within one disk sector
assert _SLOT_BYTES == TAIL_SLOT_SIZE  # the native writer packs the same slot


def _read_boot_id() -> bytes:
    """The running kernel's boot id (16 bytes), or 16 zero bytes where the OS does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return bytes.fromhex(f.read().strip().decode("ascii").replace("-", ""))[:16].ljust(16, b"\0")
    except (OSError, ValueError):
        return bytes(16)


_BOOT_ID = _read_boot_id()  # all zero where unknown: then only ``synced`` is trusted


@dataclass(frozen=True)
class Tail:
    """What a marker slot says: the last batch written (in boot ``boot``) and the last one synced."""

    written: int
    synced: int
    boot: bytes

    def floor(self) -> int:
        """The sequence number the log must reach on this boot of this machine."""
        same_boot = self.boot == _BOOT_ID and any(self.boot)
        return max(self.written, self.synced) if same_boot else self.synced


def _decode(buf: bytes) -> Tail | None:
    if len(buf) < _SLOT_BYTES:
        return None
    body, (crc,) = buf[: _SLOT.size], _CRC.unpack_from(buf, _SLOT.size)
    if zlib.crc32(body) != crc:
        return None
    magic, written, synced, boot = _SLOT.unpack(body)
    return Tail(written, synced, boot) if magic == _MAGIC else None


def read_tail(directory: Path) -> Tail | None:
    """The newest whole slot of ``directory``'s marker; None when there is none.

    A crash tears at most one slot. A marker with no whole slot (damaged, or
    a new file a power cut left empty) is ignored with a warning: the log
    does not depend on it, and its own records are checked on every read.
    """
    path = directory / TAIL_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptDataError(f"the tail marker {path} cannot be read ({exc.strerror})") from exc
    slots = [t for t in (_decode(data[0:_SLOT_BYTES]), _decode(data[_STRIDE : _STRIDE + _SLOT_BYTES])) if t]
    if not slots:
        if any(data):
            log.warning("memstrata: the tail marker %s is damaged; opening without its check", path)
        return None
    return max(slots, key=lambda t: t.written)


class TailMarker:
    """The writer's handle on ``.tail``: :meth:`record` after every batch.

    A record is one ``pwrite`` of 40 bytes into space allocated when the
    marker was made (a mapped file would be a store instruction, but a copy-on-
    write file system that runs out of space answers a mapped store with
    SIGBUS, where ``pwrite`` returns ENOSPC).
    """

    def __init__(self, directory: Path, written: int, synced: int, *, sync: bool = True) -> None:
        self.path = directory / TAIL_NAME
        self._synced = synced
        self._slot = 0
        self._fd = -1
        try:  # both slots at once, so later records never need a new disk block
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(self._fd, self._slot_bytes(written).ljust(_STRIDE, b"\0") * 2, 0)
            if sync:  # later records overwrite these bytes in place, so a power cut leaves old or new slots
                os.fsync(self._fd)
        except OSError as exc:  # a full disk: the log is still whole, only this check is off until the next open
            self._give_up(exc)

    def _slot_bytes(self, written: int) -> bytes:
        body = _SLOT.pack(_MAGIC, written, self._synced, _BOOT_ID)
        return body + _CRC.pack(zlib.crc32(body))

    def _give_up(self, exc: OSError) -> None:
        log.warning("memstrata: cannot write the tail marker %s (%s); the log does not depend on it", self.path, exc)
        self.close()
        try:
            self.path.unlink(missing_ok=True)  # a stale marker must not outlive the writes it missed
        except OSError:
            pass

    def record(self, written: int, *, synced: bool = False, synced_through: int = 0) -> None:
        """Note that batch ``written`` is in the OS's hands (``synced``: and on stable storage; or up to
        ``synced_through``)."""
        if synced and written > self._synced:
            self._synced = written
        if synced_through > self._synced:
            self._synced = synced_through
        self.wrote(written)

    def wrote(self, written: int) -> None:
        """:meth:`record` of batch ``written``, neither synced nor up to a synced one (the call after most batches)."""
        if self._fd < 0:
            return
        try:  # the bytes of _slot_bytes, packed and written in one native call (after every batch)
            write_tail_slot(self._fd, self._slot * _STRIDE, written, self._synced, _BOOT_ID)
        except OSError as exc:  # the batch is committed; the marker is advisory, so say so and go on
            self._give_up(exc)
            return
        self._slot ^= 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
