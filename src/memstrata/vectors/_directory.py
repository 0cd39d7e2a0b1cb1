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
import zlib
from pathlib import Path
from typing import NamedTuple

from memstrata.errors import CorruptDataError
from memstrata.vectors._format import sync_directory

CURRENT = "CURRENT"
LOCK = "LOCK"
_CURRENT_MAGIC_V1 = b"MSVMCUR1"
_CURRENT_V1 = struct.Struct("<8sQI")
_CURRENT_MAGIC = b"MSVMCUR2"
_CURRENT = struct.Struct("<8sQQQI")


class Current(NamedTuple):
    """What ``CURRENT`` records: the generation, and the committed floor of its log.

    ``seq`` / ``log_bytes``: the sequence number and the log's length when the
    floor was recorded (at creation and checkpoint: the state's sequence number
    and an empty log; at ``close``: the last record). A log that ends below
    the floor was truncated or replaced by an older copy, which is damage, not
    a crash. Both are None in a format-1 ``CURRENT`` (a generation alone).
    """

    generation: int
    seq: int | None
    log_bytes: int | None


def state_path(directory: Path, generation: int) -> Path:
    return directory / f"state-{generation}.msvm"


def log_path(directory: Path, generation: int) -> Path:
    return directory / f"log-{generation}.mslog"


def originals_path(directory: Path, generation: int) -> Path:
    return directory / f"originals-{generation}.f32"


def read_current(directory: Path) -> Current | None:
    """What ``CURRENT`` records, or None when the directory holds no memory yet.

    Raises
    ------
    memstrata.CorruptDataError
        ``CURRENT`` is damaged, or missing while files of a memory are there
        (a missing ``CURRENT`` must not turn a memory into a new empty one).
    """
    try:
        data = (directory / CURRENT).read_bytes()
    except FileNotFoundError:
        orphans = sorted(p.name for p in directory.iterdir() if p.name.partition("-")[0] in ("state", "log", "originals"))
        if orphans:
            raise CorruptDataError(
                f"{directory / CURRENT}: missing, but {', '.join(orphans)} of a VectorMemory are here; "
                "restore CURRENT from a backup (it names the generation to open)"
            ) from None
        return None
    if len(data) == _CURRENT_V1.size:
        magic, generation, crc = _CURRENT_V1.unpack(data)
        if magic != _CURRENT_MAGIC_V1 or zlib.crc32(data[:16]) != crc:
            raise CorruptDataError(f"{directory / CURRENT}: bad magic or checksum")
        return Current(int(generation), None, None)
    if len(data) != _CURRENT.size:
        raise CorruptDataError(f"{directory / CURRENT}: {len(data)} bytes, expected {_CURRENT.size}")
    magic, generation, seq, log_bytes, crc = _CURRENT.unpack(data)
    if magic != _CURRENT_MAGIC or zlib.crc32(data[:-4]) != crc:
        raise CorruptDataError(f"{directory / CURRENT}: bad magic or checksum")
    return Current(int(generation), int(seq), int(log_bytes))


def write_current(directory: Path, generation: int, seq: int, log_bytes: int, *, sync: bool) -> None:
    """Point ``CURRENT`` at ``generation`` with its committed floor (see :class:`Current`) atomically,
    then unlink the files of every other generation."""
    head = _CURRENT_MAGIC + struct.pack("<QQQ", generation, seq, log_bytes)
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
