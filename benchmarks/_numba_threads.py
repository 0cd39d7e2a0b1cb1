"""``numba_threads(n)``: run a block with Numba's thread count set to ``n``, then restore it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Numba parallel kernels use ``n`` threads inside the block (single-thread groups compare cores fairly)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)
