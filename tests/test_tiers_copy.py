"""copy_log and snapshot_store: a copy as of one committed batch, while a writer appends and compacts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from memstrata import CorruptDataError, MemoryStore
from memstrata.store import snapshot_store
from memstrata.tiers import SEED, LogBackend, copy_log


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


def _contents(path: Path) -> tuple[int, dict[bytes, bytes]]:
    c = LogBackend(path, read_only=True)
    try:
        assert c.integrity_check() == []
        return c.seq, dict(c.scan())
    finally:
        c.close()


def test_an_earlier_checkpoint_is_kept_while_it_still_opens_the_log(tmp_path: Path) -> None:
    src = tmp_path / "log"
    b = LogBackend(src, segment_max_bytes=4 << 10)  # batches seal segments between the copies
    for i in range(10):
        b.apply(batch(i))
    b.flush()
    first = copy_log(src, tmp_path / "c0")
    base = (tmp_path / "c0" / "CHECKPOINT").read_bytes()
    for i in range(10, 40):
        b.apply(batch(i) | {f"new{i}".encode(): b"v"}, [b"new12"] if i == 30 else [])
    b.flush()  # the source has a newer checkpoint now
    assert (src / "CHECKPOINT").read_bytes() != base
    kept = copy_log(src, tmp_path / "c1", base_checkpoint=base, base_sources=first["sources"])
    assert kept["checkpoint"] == "base" and (tmp_path / "c1" / "CHECKPOINT").read_bytes() == base
    assert kept["segments"] > first["segments"]  # the log replays across the segments sealed since
    plain = copy_log(src, tmp_path / "c2")
    assert plain["checkpoint"] == "current"
    assert _contents(tmp_path / "c1") == _contents(tmp_path / "c2") == (b.seq, dict(b.scan()))
    assert b"new12" not in dict(b.scan()) and kept["keys"] == plain["keys"] == len(b)

    # a segment it lists replaced by another file of the same name and size: the current checkpoint is taken
    moved = dict(first["sources"]) | {name: ino + 1 for name, ino in first["sources"].items()}
    assert copy_log(src, tmp_path / "c3", base_checkpoint=base, base_sources=moved)["checkpoint"] == "current"
    damaged = base[:-1] + bytes([base[-1] ^ 1])  # its digest fails: never used
    assert copy_log(src, tmp_path / "c4", base_checkpoint=damaged)["checkpoint"] == "current"
    b.vacuum()  # compaction: the segments the earlier checkpoint lists are gone
    b.apply(batch(99))
    after = copy_log(src, tmp_path / "c5", base_checkpoint=base, base_sources=first["sources"])
    assert after["checkpoint"] == "current" and _contents(tmp_path / "c5") == (b.seq, dict(b.scan()))
    b.close()


def test_an_earlier_checkpoint_too_far_behind_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import memstrata.tiers._copy as copy_module

    src = tmp_path / "log"
    b = LogBackend(src)
    b.apply(batch(0))
    b.flush()
    first = copy_log(src, tmp_path / "c0")
    base = (tmp_path / "c0" / "CHECKPOINT").read_bytes()
    for i in range(1, 30):
        b.apply(batch(i))
    b.flush()
    monkeypatch.setattr(copy_module, "BASE_MAX_REPLAY", 1000)  # less than the log written since
    assert copy_log(src, tmp_path / "c1", base_checkpoint=base, base_sources=first["sources"])["checkpoint"] == "current"
    monkeypatch.setattr(copy_module, "BASE_MAX_REPLAY", 1 << 20)
    assert copy_log(src, tmp_path / "c2", base_checkpoint=base, base_sources=first["sources"])["checkpoint"] == "base"
    assert _contents(tmp_path / "c1") == _contents(tmp_path / "c2")
    b.close()


def test_a_light_check_sees_what_an_open_sees(tmp_path: Path) -> None:
    src = tmp_path / "log"
    b = LogBackend(src, segment_max_bytes=4 << 10)
    for i in range(12):
        b.apply(batch(i) | {f"only{i}".encode(): b"x" * i})
    b.flush()  # these are in the checkpoint ...
    for i in range(12, 20):  # ... these after it, across seals, with deletes
        b.apply(batch(i), [f"only{i - 10}".encode()])
    full = copy_log(src, tmp_path / "full")
    seen: dict[str, object] = {}
    light = copy_log(src, tmp_path / "light", light=True, inspect=lambda view: seen.setdefault("view", view))
    assert light["keys"] is None and light["seq"] == full["seq"] == b.seq
    view = seen["view"]
    keys = [f"k{j}".encode() for j in range(20)] + [f"only{i}".encode() for i in range(12)] + [b"absent", b"k"]
    assert {k: view.get(k) for k in keys} == {k: b.get(k) for k in keys}  # type: ignore[attr-defined]
    assert _contents(tmp_path / "light") == _contents(tmp_path / "full")
    b.close()


def test_a_light_check_catches_damage(tmp_path: Path) -> None:
    from memstrata.tiers._copy_check import CopyView

    src = tmp_path / "log"
    b = LogBackend(src)
    for i in range(6):
        b.apply(batch(i))
    b.flush()
    b.apply(batch(6))
    copy_log(src, tmp_path / "c", light=True)
    b.close()  # (its checkpoint at close does not reach the copy)
    ck = (tmp_path / "c" / "CHECKPOINT").read_bytes()
    assert CopyView(tmp_path / "c", ck, SEED).get(b"k3") == batch(6)[b"k3"]
    seg = max(p for p in (tmp_path / "c").iterdir() if p.name.startswith("seg-"))
    data = bytearray(seg.read_bytes())
    data[-10] ^= 1  # the batch after the checkpoint
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="damaged or partial record"):
        CopyView(tmp_path / "c", ck, SEED)
    with pytest.raises(CorruptDataError, match="checkpoint"):
        CopyView(tmp_path / "c", ck[:-1] + bytes([ck[-1] ^ 1]), SEED)
    seg.write_bytes(bytes(data[: len(data) // 2]))  # shorter than the checkpoint recorded
    with pytest.raises(CorruptDataError, match="the checkpoint recorded"):
        CopyView(tmp_path / "c", ck, SEED)
