"""Store format 2: the golden format-1 stores and their upgrade, the log's recovery, and the store's clear errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import memstrata
from memstrata import ClosedError, CorruptDataError, MemoryStore, MemstrataError, StorageFullError
from memstrata.store import _layout

GOLDEN = Path(__file__).parent / "golden" / "stores-v1"
V1_STORES = ["compacted", "dictionary", "mixed"]
NO_THREAD = {"migration_interval_seconds": None}


def _expected(name: str) -> dict[str | bytes, Any]:
    raw = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    return {(k[2:].encode() if k.startswith("b:") else k): v for k, v in raw.items()}


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(GOLDEN / name, dst)
    return dst


def _all_read(path: Path, expected: dict[str | bytes, Any], **kw: Any) -> None:
    with MemoryStore(path, NO_THREAD, **kw) as store:
        assert len(store) == len(expected)
        for k, v in expected.items():
            assert store.retrieve(k) == v, k
        assert store.verify()["ok"]


# ------------------------------------------------------------------ format 1 --


@pytest.mark.parametrize("name", V1_STORES)
def test_v1_store_opens_read_only_with_a_clear_message(name: str, tmp_path: Path) -> None:
    path = _copy(name, tmp_path)
    before = {p.name: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with MemoryStore(path, NO_THREAD) as store:
        assert store.read_only and store.format_version == 1
        for k, v in _expected(name).items():
            assert store.retrieve(k) == v
        with pytest.raises(PermissionError, match=r"format-1 store.*MemoryStore\.upgrade"):
            store.store("new", 1)
    assert {p.name: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("name", V1_STORES)
def test_upgrade_converts_each_golden_v1_store(name: str, tmp_path: Path) -> None:
    path = _copy(name, tmp_path)
    report = MemoryStore.upgrade(path)
    assert report["from_version"] == 1 and report["to_version"] == 2 and "store.sqlite" in report["removed"]
    assert not (path / "store.sqlite").exists() and (path / "log" / "CHECKPOINT").exists()
    expected = _expected(name)
    _all_read(path, expected)
    with MemoryStore(path, NO_THREAD) as store:
        assert store.format_version == 2 and not store.read_only
        store.store("after-upgrade", {"ok": True})
        store.compact()
    _all_read(path, {**expected, "after-upgrade": {"ok": True}})
    assert MemoryStore.upgrade(path)["from_version"] == 2  # idempotent


class _Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["copy", "verify", "swap", "remove"])
def test_upgrade_crash_at_each_step_leaves_one_intact_store(step: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy("mixed", tmp_path)
    expected = _expected("mixed")

    def crash(at: str) -> None:
        if at == step:
            raise _Crash(at)

    monkeypatch.setattr(_layout, "_after_step", crash)
    with pytest.raises(_Crash):
        MemoryStore.upgrade(path)
    monkeypatch.setattr(_layout, "_after_step", lambda at: None)
    with MemoryStore(path, NO_THREAD) as store:  # either format opens with every value
        assert store.format_version == (1 if step in ("copy", "verify") else 2)
        assert {k: store.retrieve(k) for k in expected} == expected
    MemoryStore.upgrade(path)  # and upgrading again finishes the job
    assert not (path / "store.sqlite").exists() and not (path / "log.upgrade").exists()
    _all_read(path, expected)


# -------------------------------------------------------------- the log --


def test_delete_then_compact_leaves_no_byte_of_the_value(tmp_path: Path) -> None:
    marker = "ZQX-unique-marker-7f3a9"
    path = tmp_path / "s"
    with MemoryStore(path, NO_THREAD) as store:
        for i in range(50):
            store.store(f"k{i}", {"text": f"ordinary memory {i}"}, tier=("warm", "cold")[i % 2])
        store.store("secret-warm", {"text": marker * 3}, tier="warm")
        store.store("secret-cold", {"text": marker * 5}, tier="cold")
        store.store("secret-raw", marker.encode() * 4, tier="warm")
        assert any(marker.encode() in _plain(p) for p in path.rglob("*") if p.is_file())
        for k in ("secret-warm", "secret-cold", "secret-raw"):
            store.delete(k)
        store.compact()
    leaks = [p for p in path.rglob("*") if p.is_file() and marker.encode() in _plain(p)]
    assert not leaks
    _all_read(path, {f"k{i}": {"text": f"ordinary memory {i}"} for i in range(50)})


def _plain(p: Path) -> bytes:
    """A file's bytes, and its zstd frames decompressed (a marker may sit inside a compressed frame)."""
    import zstandard

    data = p.read_bytes()
    out = [data]
    start = data.find(b"\x28\xb5\x2f\xfd")
    while start >= 0:
        try:
            out.append(zstandard.ZstdDecompressor().decompressobj().decompress(data[start:]))
        except zstandard.ZstdError:
            pass
        start = data.find(b"\x28\xb5\x2f\xfd", start + 1)
    return b"".join(out)


def test_checkpoint_then_log_tail_recovers_after_a_kill(tmp_path: Path) -> None:
    """A writer checkpoints, writes more, is killed: the open replays the tail after the checkpoint."""
    path = tmp_path / "s"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from memstrata import MemoryStore
        store = MemoryStore({str(path)!r}, {{"migration_interval_seconds": None}})
        store.store_many({{f"a{{i}}": i for i in range(300)}}, tier="warm")
        store.flush()  # checkpoint
        for i in range(200):
            store.store(f"b{{i}}", {{"i": i}}, tier="warm")
        store.delete("a7")
        print("acked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -signal.SIGKILL and "acked" in proc.stdout, proc.stderr
    expected: dict[str | bytes, Any] = {f"a{i}": i for i in range(300) if i != 7}
    expected.update({f"b{i}": {"i": i} for i in range(200)})
    _all_read(path, expected, read_only=True)
    _all_read(path, expected)


def test_torn_final_write_is_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s"
    with MemoryStore(path, NO_THREAD) as store:
        store.store("k", 1)
    (seg,) = sorted((path / "log").glob("seg-*.log"))[-1:]
    with open(seg, "ab") as f:
        f.write(b"MR\x02\x00\x01\x00\x09\x00\x00\x00")  # the start of a record that never completed
    with caplog.at_level(logging.WARNING, logger="memstrata.store"):
        _all_read(path, {"k": 1})
    assert "torn final write" in caplog.text


def test_damage_before_the_last_record_is_corruption_not_truncation(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = MemoryStore(path, NO_THREAD)
    store.store("first", {"text": "x" * 200}, tier="warm")
    store.flush()
    store.store("second", {"text": "y" * 200}, tier="warm")
    store.store("third", {"text": "z" * 200}, tier="warm")
    store.tiers.backend._closed = True  # a crash: no closing checkpoint
    store._release_lock()
    (seg,) = sorted((path / "log").glob("seg-*.log"))[-1:]
    data = bytearray(seg.read_bytes())
    i = data.find(b"kssecond")  # the index record of "second", in the batch before the last
    assert i > 0
    data[i + 3] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="memstrata repair"):
        MemoryStore(path, NO_THREAD)
    report = MemoryStore.repair(path)
    assert report["damaged_records"] and report["verify_ok"]
    with MemoryStore(path, NO_THREAD) as store:
        assert "second" not in store  # its batch is damaged: named in the report, not returned
        assert store.retrieve("first") == {"text": "x" * 200}
        assert store.retrieve("third") == {"text": "z" * 200}


def test_missing_index_with_data_present_names_repair(tmp_path: Path) -> None:
    path = tmp_path / "s"
    expected = {f"k{i}": {"i": i} for i in range(40)}
    with MemoryStore(path, NO_THREAD) as store:
        store.store_many(expected, tier="warm")
    (path / "log" / "CHECKPOINT").unlink()
    with pytest.raises(CorruptDataError, match=r"memstrata repair .*MemoryStore\.repair"):
        MemoryStore(path, NO_THREAD)
    report = MemoryStore.repair(path)
    assert report["verify_ok"] and report["keys"] == 40 and report["unrecoverable_keys"] == []
    _all_read(path, expected)


def test_creation_cut_short_before_its_first_checkpoint_starts_afresh(tmp_path: Path) -> None:
    """A kill between the first segment's header and the first checkpoint left no record: a writer starts over."""
    from memstrata.tiers import LogBackend

    log_dir = tmp_path / "log"
    LogBackend(log_dir).close()
    (log_dir / "CHECKPOINT").unlink()
    assert sorted(p.name for p in log_dir.iterdir() if not p.name.startswith(".")) == ["seg-00000001.log"]
    with pytest.raises(CorruptDataError, match="CHECKPOINT is missing"):
        LogBackend(log_dir, read_only=True)
    backend = LogBackend(log_dir)
    backend.apply({b"k": b"v"})
    backend.close()
    assert LogBackend(log_dir, read_only=True).get(b"k") == b"v"


def test_log_deleted_with_packs_present_is_not_a_new_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with MemoryStore(path, NO_THREAD) as store:
        store.store("c", {"v": 1}, tier="cold")
    shutil.rmtree(path / "log")
    with pytest.raises(CorruptDataError, match="no index"):
        MemoryStore(path, NO_THREAD)


def test_compaction_keeps_readers_following(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with MemoryStore(path, NO_THREAD) as writer:
        writer.store_many({f"k{i}": i for i in range(100)}, tier="warm")
        with MemoryStore(path, read_only=True) as reader:
            for i in range(0, 100, 3):
                writer.delete(f"k{i}")
            writer.compact()
            writer.store("after", "compaction", tier="warm")
            assert reader.retrieve("after") == "compaction"
            assert reader.retrieve("k1") == 1 and reader.retrieve("k3", None) is None


def test_reads_follow_the_writers_new_dictionaries(tmp_path: Path) -> None:
    path = tmp_path / "s"
    cfg = {**NO_THREAD, "train_after": 50}
    with MemoryStore(path, cfg) as writer:
        writer.store("seed", {"x": 0}, tier="warm")
        with MemoryStore(path, read_only=True) as reader:
            values = {f"r{i}": {"trace": f"perf_delta_{i:05d}", "metric": "accuracy", "v": i} for i in range(400)}
            for k, v in values.items():  # the writer trains dictionaries while the reader reads
                writer.store(k, v, tier="warm")
                assert reader.retrieve(k) == v
            assert writer.engine.get_statistics().get("dictionaries", 1)
            assert reader.verify()["ok"]


def test_read_never_fails_on_a_failed_promotion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "promote_cold_hits": 1}) as store:
        store.store("c", {"v": 1}, tier="cold")

        def full(*a: Any, **kw: Any) -> None:
            raise StorageFullError(28, "memstrata: the store is full")

        monkeypatch.setattr(store.tiers.backend, "apply", full)
        assert store.retrieve("c") == {"v": 1}
        assert store.tiers.statistics()["promotion_errors"] == 1


def test_delete_and_close_work_on_a_full_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    written = []
    rng = np.random.default_rng(1)
    with MemoryStore(path, {**NO_THREAD, "max_disk_bytes": 128 * 1024}) as store:
        with pytest.raises(StorageFullError):
            for i in range(1000):
                store.store(f"k{i}", rng.bytes(3000), tier="warm")
                written.append(f"k{i}")
        for k in written[:5]:
            store.delete(k)
        store.compact()
        store.store("fits-again", b"x" * 1000, tier="warm")
    with MemoryStore(path, NO_THREAD) as store:
        assert "k0" not in store and "fits-again" in store and store.verify()["ok"]


def test_large_value_lives_outside_the_index(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("big", np.random.default_rng(0).bytes(8 << 20), tier="warm")
        store.store("small", {"v": 1}, tier="warm")
        ram = store.tiers.backend.ram_bytes()
        assert ram < 64 * 1024  # the index holds locations, not values
        assert store.retrieve("small") == {"v": 1}


# ----------------------------------------------------------- clear errors --


def test_closed_store_raises_closed_error_naming_it(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "s", NO_THREAD)
    store.store("k", 1)
    store.close()
    calls = [
        lambda: store.retrieve("k"), lambda: store.store("k", 2), lambda: store.delete("k"), lambda: len(store),
        lambda: "k" in store, lambda: list(store.keys()), lambda: store.get_statistics(), lambda: store.verify(),
        lambda: store.compact(), lambda: store.flush(), lambda: store.tier_of("k"), lambda: store.pin("k"),
        lambda: store.migrate("k", "cold"), lambda: store.store_many({"a": 1}), lambda: store.seq,
    ]
    for call in calls:
        with pytest.raises(ClosedError, match=r"MemoryStore: .* is closed"):
            call()
    assert issubclass(ClosedError, MemstrataError) and issubclass(ClosedError, ValueError)
    assert "closed" in repr(store)


def test_lock_message_names_this_process_and_error_is_exported(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD):
        with pytest.raises(memstrata.StoreLockedError, match="in this process"):
            MemoryStore(tmp_path / "s", NO_THREAD)
    MemoryStore(tmp_path / "s", NO_THREAD).close()  # released at close


def test_read_only_write_error_names_memorystore(tmp_path: Path) -> None:
    MemoryStore(tmp_path / "s", NO_THREAD).close()
    with MemoryStore(tmp_path / "s", read_only=True) as reader:
        with pytest.raises(PermissionError, match="MemoryStore: .*read_only=True") as info:
            reader.store("k", 1)
        assert "TieredStorage" not in str(info.value)


def test_file_as_store_path_and_empty_path_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "README.md"
    f.write_text("hello")
    with pytest.raises(ValueError, match=r"README\.md is a file, not a store directory"):
        MemoryStore(f)
    with pytest.raises(ValueError, match="empty string"):
        MemoryStore("")


def test_foreign_store_sqlite_is_refused_and_untouched(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "app"
    path.mkdir()
    with sqlite3.connect(path / "store.sqlite") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    before = (path / "store.sqlite").read_bytes()
    for read_only in (False, True):
        with pytest.raises(MemstrataError, match="not a memstrata store file"):
            MemoryStore(path, NO_THREAD, read_only=read_only)
    assert (path / "store.sqlite").read_bytes() == before
    assert sorted(p.name for p in path.iterdir()) == ["store.sqlite"]
