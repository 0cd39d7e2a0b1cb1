"""Give the C heap's free pages back to the operating system after a large batch.

A batch add allocates tens of megabytes of temporaries (float copies of the
batch, similarity blocks, grown code arrays) and frees them again. glibc keeps
freed memory below the top of its heap resident (and raises its mmap threshold
after large frees, so later temporaries land in that heap too): a process that
added 10^4 memories in batches held about twice the memory's live size.
``malloc_trim(0)`` returns those pages (about a millisecond for a heap of
tens of megabytes). Other C libraries have no such call and need none of it
from us: there this is a no-op.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["release_free_heap"]


def _find_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc; musl has none
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _find_trim()


def release_free_heap() -> bool:
    """Return free heap pages to the OS where the C library can (glibc); whether it could."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
