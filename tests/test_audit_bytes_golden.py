"""The binary audit log's bytes never change: every append path writes the golden files of format 1.

``tests/golden/audit-bytes-v1`` was written by ``make_audit_bytes_golden.py``;
here the same appends are made again, in batches and one entry at a time
(the single write's path), and both files must come out byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden.make_audit_bytes_golden import APPENDS, HERE, write

from memstrata.core import FileLogStore


def golden(name: str) -> bytes:
    return (HERE / name).read_bytes()


def one_at_a_time(log, items) -> None:  # type: ignore[no-untyped-def]
    for item in items:
        log.append_many([item])


@pytest.mark.parametrize("append", [lambda log, items: log.append_many(items), one_at_a_time], ids=["batch", "single"])
def test_appends_write_the_golden_bytes(tmp_path: Path, append) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "audit.log", append)
    assert (tmp_path / "audit.log").read_bytes() == golden("audit.log")
    assert (tmp_path / "audit.log.intents").read_bytes() == golden("audit.log.intents")


def test_golden_log_reads_back_every_entry_and_payload(tmp_path: Path) -> None:
    target = tmp_path / "audit.log"
    target.write_bytes(golden("audit.log"))
    (tmp_path / "audit.log.intents").write_bytes(golden("audit.log.intents"))
    items = [item for items in APPENDS for item in items]
    store = FileLogStore(target)
    try:
        rows = list(store.rows(0, None))
        assert [r[2:7] for r in rows] == [item[:5] for item in items]
        assert [r[0] for r in rows] == list(range(len(items)))
        assert [store.payload(seq) for seq in range(len(items))] == [item[5] for item in items]
        assert store.scan_chain()[:2] == (len(items), 0)
    finally:
        store.close()
