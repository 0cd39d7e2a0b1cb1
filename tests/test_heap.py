"""release_free_heap: freed heap pages go back to the OS where the C library allows it."""

from __future__ import annotations

import gc
import os
import sys

import pytest

from memstrata._heap import release_free_heap


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_release_free_heap_returns_freed_pages_below_a_live_block() -> None:
    if not release_free_heap():
        pytest.skip(f"no malloc_trim in this C library ({sys.platform}): nothing to release")
    blocks = [bytearray(64 * 1024) for _ in range(800)]  # ~50 MB of heap blocks below the mmap threshold
    pin = bytearray(64 * 1024)  # a live block above them: free() alone cannot shrink the heap past it
    del blocks
    gc.collect()
    before = _rss()
    assert release_free_heap()
    assert before - _rss() >= 16 << 20
    assert len(pin) == 64 * 1024
