"""One writer per path: an exclusive ``flock`` that also knows the paths this process holds.

``flock`` locks belong to an open file description, so a second open in the
same process is refused like one in another process; the registry lets the
message say which it is.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from memstrata.errors import StoreLockedError

__all__ = ["WriterLock"]

# paths this process holds a writer lock on, so a second opener hears "this process"
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()


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
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise
                raise PermissionError(
                    exc.errno, f"{what}: cannot open {path.parent} for writing ({exc.strerror}); open it with read_only=True",
                    str(path),
                ) from exc
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
