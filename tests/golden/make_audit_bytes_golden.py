"""Write the golden bytes of the binary audit log (run once; the files are committed).

    python tests/golden/make_audit_bytes_golden.py

``audit-bytes-v1/`` holds ``audit.log`` and ``audit.log.intents`` exactly as
:class:`memstrata.core.FileLogStore` writes them for :data:`APPENDS` with the
entry times of :func:`times` (single appends, a batch, entries with and without
an intent payload, empty and non-ASCII fields). ``test_audit_bytes_golden.py``
writes the same appends again with every append path and compares the bytes:
the file format never changes. Never regenerate the files of a released format.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "audit-bytes-v1"

#: one list per append call: (actor, operation, key, digest, result, payload) items
APPENDS: list[list[tuple[str, str, str, bytes, str, bytes | None]]] = [
    [("agent-a", "write", "note", bytes(range(32)), "intent 7f3a", b"\x81\xa1v\x01")],
    [("", "write", "k", b"\xff" * 32, "intent 7f3a", b"")],
    [("agent-b", "delete", "unicode-\u00e9\u6f22", b"", "intent 7f3a", None)],
    [
        ("agent-a", "write", "a", b"\x01" * 32, "intent 7f3a", b"x" * 300),
        ("agent-b", "write.pattern", "b", b"\x02" * 32, "intent 7f3a", b"\x00" * 70),
        ("agent-c", "abort", "a", b"", "abort 5: OSError", None),
    ],
    [("", "", "", b"", "", None)],
    [("\U0001f600" * 3, "read", "k" * 200, b"\x03" * 32, "hit", bytes(range(256)) * 9)],
]


def times() -> Callable[[], float]:
    """The entry clock: fixed, with fractions that need all 64 bits of a double."""
    ticks: Iterator[int] = itertools.count()
    return lambda: 1763700000.0 + next(ticks) / 3


def write(path: Path, append: Callable[[Any, list[Any]], Any]) -> None:
    """Append :data:`APPENDS` to a new FileLogStore at ``path`` (``append(log, items)`` makes one append call)."""
    from memstrata.core import AuditLog, FileLogStore

    log = AuditLog(FileLogStore(path), clock=times())
    try:
        for items in APPENDS:
            append(log, items)
    finally:
        log.close()


def main() -> None:
    if HERE.exists():
        sys.exit(f"{HERE} exists: golden files of a released format are never rewritten")
    HERE.mkdir()
    write(HERE / "audit.log", lambda log, items: log.append_many(items))
    (HERE / "audit.log.state").unlink()  # names the seal of one run; not part of the format under test


if __name__ == "__main__":
    main()
