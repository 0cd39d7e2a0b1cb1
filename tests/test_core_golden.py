"""The golden MemoryCore directories (``tests/golden/make_core_golden.py``): read forever.

Format 1 (``core-v1``) keeps its audit chain in SQLite, format 2 (``core-v2``)
in the binary log; both hold the same writes, so the same entries and root.
Their audit chains (entry encoding, hashes, Merkle root) and durable records
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

from memstrata.core import AuditChainError, FileLogStore, MemoryCore, SQLiteLogStore, upgrade_audit_log

GOLDEN = Path(__file__).parent / "golden"
FORMATS = ["v1", "v2"]


def expected(fmt: str) -> dict:
    return json.loads((GOLDEN / f"core-{fmt}.expected.json").read_text())


def golden_copy(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / "mem"
    shutil.copytree(GOLDEN / f"core-{fmt}" / "mem", path)  # opening writes (a lock, a reserve): never in the tree
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden_core_reads_every_value_and_entry(tmp_path: Path, fmt: str) -> None:
    exp = expected(fmt)
    with MemoryCore(golden_copy(tmp_path, fmt)) as core:
        assert isinstance(core.audit.store, SQLiteLogStore if fmt == "v1" else FileLogStore)  # a format stays what it is
        for key, value in exp["values"].items():
            assert core.read_sync(key) == value
        assert core.read_sync("k") is None  # deleted
        got = [entry_json(e) for e in core.audit.entries()]
        assert got[: exp["size"]] == exp["entries"]  # reads may append their own entries after


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden_core_chain_verifies_against_its_recorded_root(tmp_path: Path, fmt: str) -> None:
    exp = expected(fmt)
    with MemoryCore(golden_copy(tmp_path, fmt)) as core:
        checkpoint = core.audit.checkpoint(exp["size"])
        assert checkpoint.root.hex() == exp["root"]
        assert core.audit.verify([checkpoint]) >= exp["size"]
        core.write_sync("new", "value")  # and it goes on growing in its own format
        assert core.audit.verify([checkpoint]) == exp["size"] + 1


def test_both_formats_hold_the_same_chain() -> None:
    assert expected("v1")["entries"] == expected("v2")["entries"] and expected("v1")["root"] == expected("v2")["root"]


def test_golden_core_v1_refuses_edits_and_detects_a_forged_entry(tmp_path: Path) -> None:
    golden_core = golden_copy(tmp_path, "v1")
    with closing(sqlite3.connect(golden_core / "audit.sqlite", isolation_level=None)) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the file's own triggers
            conn.execute("UPDATE entries SET key = 'forged' WHERE seq = 1")
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET key = 'forged' WHERE seq = 1")
    with MemoryCore(golden_core) as core, pytest.raises(AuditChainError) as info:
        core.audit.verify()
    assert info.value.sequence == 1


def test_golden_core_v2_detects_a_forged_entry(tmp_path: Path) -> None:
    golden_core = golden_copy(tmp_path, "v2")
    log = golden_core / "audit.log"
    data = log.read_bytes()
    at = data.index(b"k", data.index(b"\x00\x00\x00\x01k"))  # entry 1's key, "k"
    log.write_bytes(data[:at] + b"K" + data[at + 1 :])
    with MemoryCore(golden_core, vector=False) as core, pytest.raises(AuditChainError) as info:
        core.audit.verify()
    assert info.value.sequence == 1


def test_golden_core_v1_upgrades_to_the_binary_log(tmp_path: Path) -> None:
    exp = expected("v1")
    golden_core = golden_copy(tmp_path, "v1")
    with MemoryCore(golden_core, checkpoint_every=2) as core:
        core.write_sync("later", [1, 2])  # a log that grew after the golden writes
        checkpoint = core.audit.checkpoint()
        entries = list(core.audit.entries())
    assert upgrade_audit_log(golden_core) == checkpoint.size
    assert not (golden_core / "audit.sqlite").exists() and (golden_core / "audit.sqlite.upgraded").exists()
    with MemoryCore(golden_core) as core:
        assert isinstance(core.audit.store, FileLogStore)
        assert list(core.audit.entries(0, checkpoint.size)) == entries  # same entries, times and hashes
        assert core.audit.verify([checkpoint]) >= checkpoint.size  # checkpoints taken before still hold
        assert core.audit.checkpoint(exp["size"]).root.hex() == exp["root"]
        for key, value in {**exp["values"], "later": [1, 2]}.items():
            assert core.read_sync(key) == value
    with pytest.raises(FileNotFoundError, match="has no audit.sqlite"):
        upgrade_audit_log(golden_core)


def test_an_interrupted_upgrade_leaves_the_sqlite_log_in_charge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden_core = golden_copy(tmp_path, "v1")

    def crash(*args: object) -> None:
        raise OSError("killed before the switch")

    with monkeypatch.context() as m:
        m.setattr("memstrata.core._upgrade.os.replace", crash)
        with pytest.raises(OSError, match="killed before the switch"):
            upgrade_audit_log(golden_core)
    assert (golden_core / "audit.log").exists()  # a finished copy, but not switched to
    with MemoryCore(golden_core) as core:
        assert isinstance(core.audit.store, SQLiteLogStore)
        core.write_sync("while-interrupted", 1)
    assert upgrade_audit_log(golden_core) == expected("v1")["size"] + 1  # the next run starts over
    with MemoryCore(golden_core) as core:
        assert core.read_sync("while-interrupted") == 1 and core.audit.verify() == expected("v1")["size"] + 1


def test_a_broken_sqlite_chain_is_not_upgraded(tmp_path: Path) -> None:
    golden_core = golden_copy(tmp_path, "v1")
    with closing(sqlite3.connect(golden_core / "audit.sqlite", isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET key = 'forged' WHERE seq = 2")
    with pytest.raises(AuditChainError) as info:
        upgrade_audit_log(golden_core)
    assert info.value.sequence == 2 and (golden_core / "audit.sqlite").exists() and not (golden_core / "audit.log").exists()
