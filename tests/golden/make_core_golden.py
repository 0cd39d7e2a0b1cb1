"""Write the golden MemoryCore directory of the current format (run once; the files are committed).

    python tests/golden/make_core_golden.py

``core-v<N>/mem`` is a core's directory after the writes below (its audit log
with the hash chain, and the durable layer's store); ``core-v<N>.expected.json``
lists what ``test_core_golden.py`` reads back from it forever: the values,
every audit entry, and the Merkle root of the chain. Format 1 (``core-v1``)
has an SQLite audit log (``audit.sqlite``); format 2 (``core-v2``) the binary
log (``audit.log``). Never regenerate the files of a released format: add
``core-v<N+1>`` instead.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

FORMAT = 2
HERE = Path(__file__).resolve().parent / f"core-v{FORMAT}"

#: the writes, in order: (operation, key, value, actor)
WRITES = [
    ("write", "note", "the user prefers metric units", "agent-a"),
    ("write", "k", {"v": 1, "blob": [1.5, None, True]}, None),
    ("write", "unicode-é", "ünïcödé value", "agent-b"),
    ("delete", "k", None, "agent-b"),
    ("write", "note", "the user prefers imperial units after all", "agent-a"),
]


def entry_json(e: Any) -> dict[str, Any]:
    """An audit entry as the expected file records it (bytes as hex)."""
    return {
        "seq": e.seq,
        "time": e.time,
        "actor": e.actor,
        "operation": e.operation,
        "key": e.key,
        "digest": e.digest.hex(),
        "result": e.result,
        "hash": e.hash.hex(),
    }


def main() -> None:
    from memstrata.core import MemoryCore

    if HERE.exists():
        sys.exit(f"{HERE} exists: golden files of a released format are never rewritten")
    ticks = itertools.count(1763700000)
    core = MemoryCore(HERE / "mem", clock=lambda: float(next(ticks)))
    values: dict[str, object] = {}
    for op, key, value, actor in WRITES:
        if op == "write":
            core.write_sync(key, value, actor=actor)
            values[key] = value
        else:
            core.delete_sync(key, actor=actor)
            values.pop(key)
    checkpoint = core.audit.checkpoint()
    entries = [entry_json(e) for e in core.audit.entries()]
    core.close()
    for scratch in (HERE / "mem" / "store" / "LOCK", HERE / "mem" / "store" / "log" / ".reserve"):
        scratch.unlink(missing_ok=True)  # made again on open
    expected = {"values": values, "entries": entries, "size": checkpoint.size, "root": checkpoint.root.hex()}
    (HERE.parent / f"core-v{FORMAT}.expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
