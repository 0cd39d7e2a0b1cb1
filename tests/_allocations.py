"""``traced_bytes(action)``: what a call allocates and still holds, measured with tracemalloc.

Native structures that allocate through ``PyMem_Raw*`` (the eviction orders, the
cache's slot arrays) are traced too, so the figure covers them.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import TypeVar

__all__ = ["traced_bytes"]

T = TypeVar("T")


def traced_bytes(action: Callable[[], T]) -> tuple[T, int]:
    """Run ``action()`` under tracemalloc; return its result and the bytes allocated during it and still held."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = action()
        return result, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
