"""Write the golden DedupStore mappings (run once per format; the files are committed).

    python tests/golden/dedup/make_dedup_golden.py

``format-N.kv`` is the whole mapping a DedupStore of format N left behind after
the writes of :func:`write`: records ``(4-byte big-endian key length, key,
4-byte value length, value)`` in key order. ``test_dedup.py`` opens each one
forever: format 2 as it is, format 1 through the in-place upgrade.
``format-1.kv`` was written by the format-1 DedupStore (memstrata before format
2), with the same :func:`write`; never regenerate the file of a released
format.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: what every golden mapping holds after :func:`write` (key -> value)
EXPECTED: dict[Any, Any] = {
    "a": {"text": "hello world", "n": 1},
    "b": {"text": "hello world", "n": 1},  # a duplicate of "a": one blob, two references
    "é": [1.5, None, True],
    b"\xff\x00": "bytes key, not UTF-8",
    "sfoo": "the format-1 entry a format-2 entry of 'foo' lands on",
    "foo": "foo",
    "big": {"big": "x" * 5000},
}
DELETED = ["gone"]


def write(store: Any) -> None:
    for key, value in EXPECTED.items():
        store.put(key, value)
    store.put("gone", "deleted after its put")
    for key in DELETED:
        store.delete(key)


def dump(mapping: dict[bytes, bytes]) -> bytes:
    out = bytearray()
    for k in sorted(mapping):
        out += struct.pack(">I", len(k)) + k + struct.pack(">I", len(mapping[k])) + mapping[k]
    return bytes(out)


def load(data: bytes) -> dict[bytes, bytes]:
    mapping: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        k = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        (n,) = struct.unpack_from(">I", data, pos)
        mapping[k] = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
    return mapping


def main() -> None:
    from memstrata.dedup import DedupStore
    from memstrata.dedup._store import FORMAT

    target = HERE / f"format-{FORMAT}.kv"
    if target.exists():
        sys.exit(f"{target} exists: golden files of a released format are never rewritten")
    mapping: dict[bytes, bytes] = {}
    write(DedupStore(mapping))
    target.write_bytes(dump(mapping))


if __name__ == "__main__":
    main()
