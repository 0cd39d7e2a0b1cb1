"""How far an append-only array grows when it runs out of room.

Arrays that hold one row per stored item (codes, sign bits, filter columns,
sketches) grow by a quarter rather than doubling: a doubled array is on
average a quarter empty, and every empty row is resident memory the caller
pays for. Growing by a quarter keeps an append amortized O(1) (each row is
copied about four times over the array's life instead of once) while at most
a fifth of the array is slack.
"""

from __future__ import annotations

__all__ = ["GROWTH", "grown_capacity"]

#: the factor a full array grows by
GROWTH = 1.25
_MIN_ROWS = 64


def grown_capacity(need: int, current: int) -> int:
    """The capacity to allocate for ``need`` rows when the array holds ``current`` (``need > current``).

    >>> grown_capacity(1000, 800), grown_capacity(5000, 800), grown_capacity(1, 0)
    (1000, 5000, 64)
    """
    return max(int(need), int(current * GROWTH), _MIN_ROWS)
