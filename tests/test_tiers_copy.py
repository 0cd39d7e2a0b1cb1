"""copy_log and snapshot_store: a copy as of one committed batch, while a writer appends and compacts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from memstrata import MemoryStore
from memstrata.store import snapshot_store
from memstrata.tiers import LogBackend, copy_log


def batch(i: int) -> dict[bytes, bytes]:
    # every batch rewrites the same 20 keys with its number: a consistent copy has one number throughout
    return {f"k{j}".encode(): f"{i}:{j}".encode() * (1 + j % 7) for j in range(20)}


def test_an_unfinished_batch_at_the_end_is_not_copied(tmp_path: Path) -> None:
    src = tmp_path / "log"
    b = LogBackend(src)
    for i in range(5):
        b.apply(batch(i))
    seg = max(p for p in src.iterdir() if p.name.startswith("seg-"))
    with open(seg, "ab") as f:
        f.write(b"MR\x00\x00partial record of a batch being written")
    report = copy_log(src, tmp_path / "copy")
    assert report["seq"] == b.seq and report["keys"] == 20
    c = LogBackend(tmp_path / "copy", read_only=True)
    assert dict(c.scan()) == batch(4) and c.integrity_check() == []
    c.close()
    b.close()
    with pytest.raises(FileExistsError):
        copy_log(src, tmp_path / "copy")
    with pytest.raises(FileNotFoundError):
        copy_log(tmp_path / "nothing", tmp_path / "copy2")


def test_copies_under_a_writer_that_compacts_are_consistent(tmp_path: Path) -> None:
    src = tmp_path / "log"
    b = LogBackend(src, segment_max_bytes=8 << 10)  # small segments: many seals
    b.apply(batch(0))
    stop = threading.Event()

    def write() -> None:
        i = 1
        while not stop.is_set():
            b.apply(batch(i))
            if i % 15 == 0:
                b.vacuum()
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        seen = set()
        for n in range(20):
            report = copy_log(src, tmp_path / f"c{n}")
            c = LogBackend(tmp_path / f"c{n}", read_only=True)
            values = dict(c.scan())
            c.close()
            numbers = {v.split(b":")[0] for v in values.values()}
            assert len(values) == 20 and len(numbers) == 1, report
            assert values == batch(int(numbers.pop()))
            seen.add(report["seq"])
    finally:
        stop.set()
        t.join()
        b.close()
    assert len(seen) > 1


def test_snapshot_store_is_a_complete_store(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with MemoryStore(store, {"migration_interval_seconds": None}) as s:
        for i in range(200):
            s.store(f"k{i}", {"i": i, "text": "x" * i}, tier=("hot", "warm", "cold")[i % 3])
        snap = snapshot_store(store, tmp_path / "snap")
        seq = s.seq
        assert snap["format"] == 2 and any(f.startswith("packs/") for f in snap["files"]) and "log/CHECKPOINT" in snap["files"]
    with MemoryStore(tmp_path / "snap", read_only=True) as c:
        assert c.verify()["ok"] and len(c) == 200 and c.seq == seq and c["k7"] == {"i": 7, "text": "x" * 7}
    with pytest.raises(FileExistsError):
        snapshot_store(store, tmp_path / "snap")
    with pytest.raises(FileNotFoundError):
        snapshot_store(tmp_path / "none", tmp_path / "snap2")
