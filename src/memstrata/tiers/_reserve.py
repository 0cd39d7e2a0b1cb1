"""Space held back beside a log, given up so a delete can still be written on a full disk.

Deleting is how a full store is emptied, and a delete is a record appended to
the log: on a disk with no free byte it would fail like any write. The writer
therefore keeps a file of :data:`RESERVE_BYTES` (allocated, not sparse) in the
log directory; a freeing batch that meets ``ENOSPC`` removes it and writes
again. It is made again at open, after a compaction and at close, whenever
the disk has room. The name starts with a dot, so copies of the log skip it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RESERVE_BYTES", "RESERVE_NAME", "ensure_reserve", "release_reserve"]

RESERVE_NAME = ".reserve"
#: about 750 delete records of a 64-byte key; small beside a store, enough to free what matters
RESERVE_BYTES = 64 * 1024


def ensure_reserve(directory: Path) -> bool:
    """Allocate the reserve in ``directory`` if it is missing; False when the disk has no room for it."""
    path = directory / RESERVE_NAME
    try:
        if path.stat().st_size == RESERVE_BYTES:
            return True
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
        return True
    except OSError:
        os.close(fd)
        fd = -1
        path.unlink(missing_ok=True)  # half a reserve would only mislead the next delete
        return False
    finally:
        if fd >= 0:
            os.close(fd)


def release_reserve(directory: Path) -> bool:
    """Give the reserve's space back to the file system; False when there was none."""
    try:
        (directory / RESERVE_NAME).unlink()
        return True
    except FileNotFoundError:
        return False
