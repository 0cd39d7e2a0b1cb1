"""Cold tier: append-only pack files of frames, on a pluggable location."""

from __future__ import annotations

import errno
import os
import struct
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from memstrata.errors import CorruptDataError
from memstrata.tiers._backend import StorageFullError

__all__ = ["PACK_MAGIC", "ColdTier", "LocalLocation", "Location", "MemoryLocation"]

PACK_MAGIC = b"MSPK"
# record header in a pack: magic, frame length, 16-byte content digest; the frame follows
_RECORD = struct.Struct("<4sI16s")


@runtime_checkable
class Location(Protocol):
    """Where pack files live (fsspec-style: names, append, ranged reads)."""

    def names(self) -> list[str]: ...
    def append(self, name: str, data: bytes, sync: bool) -> int: ...
    def read(self, name: str, offset: int, length: int) -> bytes: ...
    def size(self, name: str) -> int: ...
    def remove(self, name: str) -> None: ...


class MemoryLocation:
    """Pack files held in RAM (for stores without a path).

    >>> loc = MemoryLocation()
    >>> loc.append("p", b"abc", sync=False), loc.append("p", b"de", sync=False)
    (0, 3)
    >>> loc.read("p", 3, 2)
    b'de'
    """

    def __init__(self) -> None:
        self._files: dict[str, bytearray] = {}

    def names(self) -> list[str]:
        return sorted(self._files)

    def append(self, name: str, data: bytes, sync: bool) -> int:
        buf = self._files.setdefault(name, bytearray())
        offset = len(buf)
        buf += data
        return offset

    def read(self, name: str, offset: int, length: int) -> bytes:
        buf = self._files.get(name)
        if buf is None:
            raise FileNotFoundError(errno.ENOENT, "pack file missing", name)
        return bytes(buf[offset : offset + length])

    def size(self, name: str) -> int:
        return len(self._files.get(name, b""))

    def remove(self, name: str) -> None:
        self._files.pop(name, None)

    def flip(self, name: str, offset: int) -> None:
        """Invert one byte (for corruption tests)."""
        self._files[name][offset] ^= 0xFF


class LocalLocation:
    """Pack files in a local directory; appends are flushed, and fsynced when ``sync``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if p.suffix == ".msp")

    def append(self, name: str, data: bytes, sync: bool) -> int:
        path = self.directory / name
        with self._lock:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                offset = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                    if sync:
                        os.fsync(fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                        # drop the partial record so the pack stays exactly what the index knows
                        os.ftruncate(fd, offset)
                        raise StorageFullError(
                            exc.errno,
                            f"memstrata: no space for pack file {path} ({exc.strerror}); the write was not "
                            "applied and the store is still readable",
                        ) from exc
                    raise
            finally:
                os.close(fd)
        if sync and offset == 0:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return offset

    def sync(self, name: str) -> None:
        path = self.directory / name
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self, name: str, offset: int, length: int) -> bytes:
        with open(self.directory / name, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def size(self, name: str) -> int:
        try:
            return (self.directory / name).stat().st_size
        except FileNotFoundError:
            return 0

    def remove(self, name: str) -> None:
        try:
            (self.directory / name).unlink()
        except FileNotFoundError:
            pass


def pack_name(pack_id: int) -> str:
    return f"pack-{pack_id:08d}.msp"


def pack_id_of(name: str) -> int:
    return int(name[5:13])


class ColdTier:
    """Append-only pack files of frames; packs are sealed (never changed again) when full.

    Each record is ``MSPK``, the frame length, the 16-byte content digest, then
    the frame. The index (pack id, offset, length per blob) lives with the
    warm tier's metadata; a record is referenced only after it was written (and
    fsynced, unless durability is ``"none"``), so a crash can leave unreferenced
    bytes at a pack's end but never an index entry pointing at missing bytes.
    A pack written by an earlier session is sealed; each session appends to a
    new pack. Space of deleted blobs is reclaimed by rewriting packs
    (:meth:`memstrata.tiers.TieredStorage.compact`).

    >>> cold = ColdTier(MemoryLocation())
    >>> ref = cold.append(b"\\x00" * 16, b"frame bytes")
    >>> cold.read(ref, b"\\x00" * 16)
    b'frame bytes'
    """

    def __init__(self, location: Location, *, sync: bool = True, pack_max_bytes: int = 64 << 20) -> None:
        self.location = location
        self.sync = sync
        self.pack_max_bytes = int(pack_max_bytes)
        existing = [pack_id_of(n) for n in location.names() if n.startswith("pack-")]
        self._active = max(existing, default=0) + 1
        self._lock = threading.Lock()

    @property
    def active_pack(self) -> int:
        """Id of the pack being appended to (every other pack is sealed)."""
        return self._active

    def pack_ids(self) -> list[int]:
        return [pack_id_of(n) for n in self.location.names() if n.startswith("pack-")]

    def append(self, content_digest: bytes, frame: bytes) -> tuple[int, int, int]:
        """Write one frame; returns ``(pack id, offset of the frame, frame length)``."""
        with self._lock:
            name = pack_name(self._active)
            if self.location.size(name) >= self.pack_max_bytes:
                self._sync(name)  # sealed: durable before anything is written after it
                self._active += 1
                name = pack_name(self._active)
            record = _RECORD.pack(PACK_MAGIC, len(frame), content_digest) + frame
            offset = self.location.append(name, record, self.sync)
            return self._active, offset + _RECORD.size, len(frame)

    def read(self, ref: tuple[int, int, int], content_digest: bytes | None = None) -> bytes:
        """The frame at ``ref``; ``CorruptDataError`` when the record header does not match."""
        pack_id, offset, length = ref
        name = pack_name(pack_id)
        try:
            head = self.location.read(name, offset - _RECORD.size, _RECORD.size + length)
        except FileNotFoundError as exc:
            raise CorruptDataError(f"ColdTier: pack file {name} is missing") from exc
        if len(head) != _RECORD.size + length:
            raise CorruptDataError(f"ColdTier: pack {name} is truncated at offset {offset}")
        magic, n, d = _RECORD.unpack_from(head)
        if magic != PACK_MAGIC or n != length or (content_digest is not None and d != content_digest):
            raise CorruptDataError(f"ColdTier: bad record header in pack {name} at offset {offset - _RECORD.size}")
        return head[_RECORD.size :]

    def _sync(self, name: str) -> None:
        sync = getattr(self.location, "sync", None)
        if sync is not None:
            sync(name)

    def sync_active(self) -> None:
        """fsync the active pack (after appends made with ``sync`` off)."""
        with self._lock:
            self._sync(pack_name(self._active))

    def seal(self) -> None:
        """Start a new pack for later appends (the current one is never written again)."""
        with self._lock:
            name = pack_name(self._active)
            if self.location.size(name):
                self._sync(name)
                self._active += 1

    def remove(self, pack_id: int) -> None:
        if pack_id == self._active:
            raise ValueError(f"pack_id: {pack_id} is the active pack; seal() it first")
        self.location.remove(pack_name(pack_id))

    def size_bytes(self) -> int:
        return sum(self.location.size(n) for n in self.location.names())
