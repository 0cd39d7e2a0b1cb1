"""The directory of a durable VectorMemory: writer lock, current generation, and its files.

A directory holds, for the current generation ``g``: ``state-g.msvm`` (the
checkpoint, see ``_format``), ``log-g.mslog`` (records since the checkpoint,
see ``_log``) and ``originals-g.f32`` (float originals appended since the
checkpoint). ``CURRENT`` names ``g``; it is replaced atomically once the files
of ``g`` are complete, and the files of older generations are then unlinked:
an instance that still maps them keeps reading them, and the system frees
their space when the last one lets go. No file is ever truncated or
rewritten under a map.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

from memstrata.errors import CorruptDataError, StoreLockedError
from memstrata.vectors._format import sync_directory

CURRENT = "CURRENT"
LOCK = "LOCK"
_CURRENT_MAGIC = b"MSVMCUR1"
_CURRENT = struct.Struct("<8sQI")

# paths this process holds a writer lock on, so a second opener hears "this process"
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()


def state_path(directory: Path, generation: int) -> Path:
    return directory / f"state-{generation}.msvm"


def log_path(directory: Path, generation: int) -> Path:
    return directory / f"log-{generation}.mslog"


def originals_path(directory: Path, generation: int) -> Path:
    return directory / f"originals-{generation}.f32"


class WriterLock:
    """An exclusive ``flock`` on ``path``, known to this process so a second opener is told it is this process."""

    def __init__(self, path: Path, what: str) -> None:
        import fcntl

        self.path = path
        self._key = os.path.realpath(path)
        with _HELD_LOCK:
            if self._key in _HELD:
                raise StoreLockedError(
                    f"{what}: {path} is already open for writing in this process; close that instance "
                    "first, or open it with read_only=True"
                )
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise StoreLockedError(
                    f"{what}: {path} is open for writing in another process; "
                    "open it with read_only=True, or close the other one"
                ) from exc
            _HELD.add(self._key)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            with _HELD_LOCK:
                _HELD.discard(self._key)


def read_current(directory: Path) -> int | None:
    """The current generation, or None when the directory holds no memory yet."""
    try:
        data = (directory / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    if len(data) != _CURRENT.size:
        raise CorruptDataError(f"{directory / CURRENT}: {len(data)} bytes, expected {_CURRENT.size}")
    magic, generation, crc = _CURRENT.unpack(data)
    if magic != _CURRENT_MAGIC or zlib.crc32(data[:16]) != crc:
        raise CorruptDataError(f"{directory / CURRENT}: bad magic or checksum")
    return int(generation)


def write_current(directory: Path, generation: int, *, sync: bool) -> None:
    """Point ``CURRENT`` at ``generation`` atomically, then unlink the files of every other generation."""
    head = _CURRENT_MAGIC + struct.pack("<Q", generation)
    tmp = directory / f".{CURRENT}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(head + struct.pack("<I", zlib.crc32(head)))
        f.flush()
        if sync:
            os.fsync(f.fileno())
    os.replace(tmp, directory / CURRENT)
    if sync:
        sync_directory(directory)
    remove_other_generations(directory, generation)


def remove_other_generations(directory: Path, generation: int) -> None:
    """Unlink the files of every generation but ``generation`` (only the lock holder calls this)."""
    for entry in directory.iterdir():
        stem, _, rest = entry.name.partition("-")
        number = rest.split(".", 1)[0]
        if stem in ("state", "log", "originals") and number.isdigit() and int(number) != generation:
            entry.unlink(missing_ok=True)
        elif entry.name.startswith(".") and ".tmp-" in entry.name:
            entry.unlink(missing_ok=True)  # a temporary file left by a killed writer
