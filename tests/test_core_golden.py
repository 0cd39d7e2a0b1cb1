"""The golden MemoryCore directory of format 1 (``tests/golden/make_core_golden.py``): read forever.

Its audit chain (entry encoding, hashes, Merkle root) and its durable records
must decode to the same entries and values with every later memstrata.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from golden.make_core_golden import entry_json

from memstrata.core import AuditChainError, MemoryCore

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "core-v1.expected.json").read_text())


@pytest.fixture
def golden_core(tmp_path: Path) -> Path:
    path = tmp_path / "mem"
    shutil.copytree(GOLDEN / "core-v1" / "mem", path)  # opening writes (a lock, a reserve): never in the tree
    return path


def test_golden_core_reads_every_value_and_entry(golden_core: Path) -> None:
    with MemoryCore(golden_core) as core:
        for key, value in EXPECTED["values"].items():
            assert core.read_sync(key) == value
        assert core.read_sync("k") is None  # deleted
        got = [entry_json(e) for e in core.audit.entries()]
        assert got[: EXPECTED["size"]] == EXPECTED["entries"]  # reads may append their own entries after


def test_golden_core_chain_verifies_against_its_recorded_root(golden_core: Path) -> None:
    with MemoryCore(golden_core) as core:
        checkpoint = core.audit.checkpoint(EXPECTED["size"])
        assert checkpoint.root.hex() == EXPECTED["root"]
        assert core.audit.verify([checkpoint]) >= EXPECTED["size"]


def test_golden_core_refuses_edits_and_detects_a_forged_entry(golden_core: Path) -> None:
    with closing(sqlite3.connect(golden_core / "audit.sqlite", isolation_level=None)) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the file's own triggers
            conn.execute("UPDATE entries SET key = 'forged' WHERE seq = 1")
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET key = 'forged' WHERE seq = 1")
    with MemoryCore(golden_core) as core, pytest.raises(AuditChainError) as info:
        core.audit.verify()
    assert info.value.sequence == 1
