"""A key writing new content in place of the content it owns: one native call, the plan's bytes.

``LogBackend.supersede`` (``logrecords.superseding_batch``) writes the old
blob record released, the new blob record, the key's entry holding the new
frame and the seq record. ``_plan_write`` stays the reference: the same
writes, deletes and reopens, with the same clock, leave byte-equal segment
files and equal statistics whether the shortcuts run or every write takes
the plan; damage in a record the shortcut reads raises ``CorruptDataError``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
from _storage_pairs import CONTENTS, assert_same_state, entry_and_blob, planned_only, segment_files, storage
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata import CorruptDataError
from memstrata._native.hashing import digest
from memstrata.codecs import get_codec, read_header
from memstrata.tiers import ColdTier, LogBackend, MemoryLocation, StorageFullError, TieredStorage

ZSTD = get_codec("zstd")

ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 6), st.integers(0, len(CONTENTS) - 1), st.booleans(),
                  st.sampled_from(["warm", "warm", "warm", "cold", "hot"]), st.booleans()),
        st.tuples(st.just("delete"), st.integers(0, 6)),
        st.tuples(st.just("reopen")),
    ),
    min_size=1, max_size=40,
)


@settings(deadline=None, max_examples=150)
@given(ops, st.sampled_from([1 << 20, 900]), st.booleans())
def test_writes_deletes_and_reopens_leave_what_the_plan_leaves(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]], segment_max_bytes: int, with_cold: bool
) -> None:
    base = tmp_path_factory.mktemp("supersede")
    clock = [1000.0]
    packs = {side: MemoryLocation() for side in ("native", "planned")}

    def open_pair() -> dict[str, TieredStorage]:
        return {side: storage(base / side, planned=side == "planned", segment_max_bytes=segment_max_bytes, clock=clock,
                              cold=ColdTier(packs[side], sync=False) if with_cold else None)[0]
                for side in ("native", "planned")}

    pair = open_pair()
    model: dict[str, bytes] = {}
    try:
        for i, step in enumerate(steps):
            clock[0] = 1000.0 + i * 0.25
            if step[0] == "reopen":
                for ts in pair.values():
                    ts.close()
                assert segment_files(base / "native") == segment_files(base / "planned")
                pair = open_pair()
            elif step[0] == "delete":
                key = f"k{step[1]}"
                for ts in pair.values():
                    if key in model:
                        ts.delete(key)
                    else:
                        with pytest.raises(KeyError):
                            ts.delete(key)
                model.pop(key, None)
            else:
                _, k, c, pin, tier, factory = step
                key, frame = f"k{k}", CONTENTS[c]
                for ts in pair.values():
                    if factory:  # a frame made only when the content is new, as MemoryStore writes
                        ts.write(key, lambda frame=frame: frame, tier, pin, content_digest=digest(frame),
                                 raw_length=len(frame) + 3)
                    else:
                        ts.write(key, frame, tier, pin)
                model[key] = frame
            assert_same_state(pair["native"], pair["planned"])
        assert segment_files(base / "native") == segment_files(base / "planned")
        for key, frame in model.items():
            got = pair["native"].read(key)
            assert got == pair["planned"].read(key) and got[0] == ZSTD.decode(frame)
    finally:
        for ts in pair.values():
            ts.close()
    assert segment_files(base / "native") == segment_files(base / "planned")


def _count_appends(ts: TieredStorage) -> list[int]:
    log: Any = ts.backend
    calls: list[int] = []
    append = log.append
    log.append = lambda ops, **k: calls.append(len(ops)) or append(ops, **k)
    return calls


def test_new_content_in_place_of_owned_content_is_one_batch_of_fourentry_and_blob(tmp_path: Path) -> None:
    ts, now = storage(tmp_path / "log", planned=False)
    old, new = CONTENTS[1], CONTENTS[2]
    ts.write("a", old, "warm", True)
    calls = _count_appends(ts)
    end = os.path.getsize(tmp_path / "log" / "seg-00000001.log")
    now[0] = 1001.0
    seq = ts.write("a", new, "warm")  # new content, no longer pinned
    assert calls == []  # not the general path
    entry, blob = entry_and_blob(ts, "a")
    assert entry[:9] == struct.pack("<QB", seq, 0) and entry[25:] == b"W" + new
    assert blob == struct.pack("<IIBIId", 1, 0, 1, len(new), read_header(new).original_length, 1001.0) + b"sa"
    released = ts.backend.get(b"a" + digest(old))
    assert released == struct.pack("<IIBIId", 0, 0, 1, len(old), read_header(old).original_length, 1000.0) + b"sa"
    data = (tmp_path / "log" / "seg-00000001.log").read_bytes()[end:]
    assert [data.count(k) for k in (digest(old), digest(new), b"ksa", b"mseq", b"MR")] == [1, 2, 1, 1, 4]
    assert ts.read("a")[0] == ZSTD.decode(new)
    assert (ts._n_keys, ts._n_blobs, ts._n_garbage, ts._logical) == (1, 1, 1, read_header(new).original_length)
    ts.write("b", new, "warm")  # the same content under another key: shared, the plan's job
    ts.write("a", CONTENTS[3], "warm")  # a's blob is shared now: the plan again
    assert calls == [5, 4]  # (the shared blob keeps its data record: 4 records)
    ts.close()


def test_a_hot_write_of_new_content_supersedes_too(tmp_path: Path) -> None:
    ts, _ = storage(tmp_path / "log", planned=False)
    ts.write("a", CONTENTS[1])  # the hot tier (MemoryStore's default)
    ts.write("b", CONTENTS[2], "warm")
    ts.read("b")
    calls = _count_appends(ts)
    ts.write("a", CONTENTS[3])
    ts.write("b", CONTENTS[4], "warm")  # b is in the hot tier since its read: its old value leaves it
    assert calls == []
    assert ts.read("a") == (ZSTD.decode(CONTENTS[3]), "hot")
    assert ts.read("b") == (ZSTD.decode(CONTENTS[4]), "warm")
    ts.close()


def test_a_damaged_old_record_raises_and_writes_nothing(tmp_path: Path) -> None:
    for damaged in (b"ksa", b"a" + digest(CONTENTS[1])):  # the key's entry, then its old blob record
        path = tmp_path / damaged.hex()
        ts, _ = storage(path, planned=False)
        ts.write("a", CONTENTS[1], "warm")
        ts.close()
        seg = path / "seg-00000001.log"
        data = bytearray(seg.read_bytes())
        at = data.rindex(damaged) + len(damaged) + 10  # a byte of the record's value
        data[at] ^= 0x01
        seg.write_bytes(bytes(data))
        ts, _ = storage(path, planned=False)
        with pytest.raises(CorruptDataError, match="checksum"):
            ts.write("a", CONTENTS[2], "warm")
        assert seg.read_bytes() == bytes(data)  # nothing written
        ts.close()


def test_the_log_checks_what_it_supersedes(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none")
    ts = TieredStorage(log, hot_max_bytes=0, clock=lambda: 5.0)
    ts.write("a", CONTENTS[1], "warm")
    ts.write("b", CONTENTS[4], "warm")
    entry, _ = entry_and_blob(ts, "a")
    d, old_key = digest(CONTENTS[2]), b"a" + digest(CONTENTS[1])
    args = (b"sa", 9, 0, d, CONTENTS[2], b"a" + d, 10, 5.0, (b"mseq", struct.pack("<Q", 9)))
    made: list[int] = []

    def make() -> bytes:
        made.append(1)
        return CONTENTS[2]

    seq = log.seq
    assert log.supersede(b"ksa", entry[:-1], old_key, *args) == (None, None, None)  # not the entry read
    assert log.supersede(b"ksa", entry, b"a" + digest(CONTENTS[4]), *args) == (None, None, None)  # b's blob, not a's
    assert log.supersede(b"ksa", entry, old_key, b"sa", 9, 0, d, make, b"a" + digest(CONTENTS[4]), 10, 5.0,
                         (b"mseq", b"")) == (None, None, None)  # content a blob holds already
    assert log.supersede(b"mx", entry, old_key, *args) == (None, None, None)  # a named key
    assert made == [] and log.seq == seq
    log.max_disk_bytes = log.disk_bytes() + 100  # no room: the frame comes back for the general path
    assert log.supersede(b"ksa", entry, old_key, b"sa", 9, 0, d, make, b"a" + d, 10, 5.0, args[-1]) == (
        None, CONTENTS[2], None)
    assert made == [1] and log.seq == seq
    ts.close()


def test_the_entry_a_write_read_is_not_read_again_unless_a_batch_came_between(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none")
    ts = TieredStorage(log, hot_max_bytes=0, clock=lambda: 5.0)
    for k in ("a", "b"):
        ts.write(k, CONTENTS[1 if k == "a" else 4], "warm")
    reads: list[bytes] = []
    value = log._value

    def counted(key: bytes) -> bytes | None:
        reads.append(key)
        return value(key)

    log._value = counted  # type: ignore[method-assign]
    ts.write("a", CONTENTS[2], "warm")  # the write reads a's entry once; supersede builds on that read
    assert reads.count(b"ksa") == 1 and reads.count(b"a" + digest(CONTENTS[1])) == 1
    assert ts.read_frame("a")[0] == CONTENTS[2]
    entry = log.read_for_write(b"ksa")
    assert entry is not None
    ts.write("c", CONTENTS[3], "warm")  # a batch after that read (a new key: nothing read): read again
    reads.clear()
    d, old_key = digest(CONTENTS[0]), b"a" + digest(CONTENTS[2])
    assert log.supersede(b"ksa", entry, old_key, b"sa", 99, 0, d, CONTENTS[0], b"a" + d, len(CONTENTS[0]), 5.0,
                         (b"mseq", struct.pack("<Q", 99)))[0] is not None
    assert reads.count(b"ksa") == 1
    log._value = value  # type: ignore[method-assign]
    ts.close()


def ts_entry(log: Any) -> bytes:
    entry = log.read_for_write(b"ksa")
    assert entry is not None and entry[9:25] == digest(CONTENTS[2])
    return bytes(entry)


def test_new_content_skips_the_rewrite_and_its_own_content_takes_it(tmp_path: Path) -> None:
    ts, _ = storage(tmp_path / "log", planned=False)
    log: Any = ts.backend
    tried: list[bytes] = []
    rewrite = log.rewrite
    log.rewrite = lambda key, *a, **k: tried.append(key) or rewrite(key, *a, **k)
    ts.write("a", CONTENTS[1], "warm")
    ts.write("a", CONTENTS[2], "warm")  # content no blob record names: the rewrite could not match
    assert tried == [] and log.entry_if_never_stored(b"a" + digest(CONTENTS[3]), b"ksa") == (True, ts_entry(log))
    assert log.entry_if_never_stored(b"a" + digest(CONTENTS[3]), b"ksz") == (True, None)  # an absent key
    assert log.entry_if_never_stored(b"a" + digest(CONTENTS[2]), b"ksa") == (False, None)  # stored: nothing read
    assert log.entry_if_never_stored(b"mseq", b"ksa") == (False, None)  # named: no answer
    ts.write("a", CONTENTS[2], "warm")  # the content it holds: the rewrite
    ts.write("b", CONTENTS[2], "warm")  # content another key holds: the rewrite declines, the plan shares it
    assert tried == [b"ksa", b"ksb"]
    assert ts.read("a")[0] == ts.read("b")[0] == ZSTD.decode(CONTENTS[2])
    ts.close()


def test_superseding_on_a_full_disk_changes_nothing(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none", max_disk_bytes=4000)
    ts = TieredStorage(log, hot_max_bytes=0)
    for i in range(3):
        ts.write(f"k{i}", CONTENTS[i], "warm")
    written = {f"k{i}": CONTENTS[i] for i in range(3)}
    with pytest.raises(StorageFullError):
        for n in range(1000):
            value = ZSTD.encode({"n": n, "text": "y" * 30})
            ts.write(f"k{n % 3}", value, "warm")
            written[f"k{n % 3}"] = value
    for again in (False, True):
        for key, frame in written.items():
            assert ts.read(key)[0] == ZSTD.decode(frame)
        counts = [getattr(ts, n) for n in ("_items", "_stored", "_unique", "_n_blobs", "_n_garbage", "_logical")]
        ts._recount()
        assert counts == [getattr(ts, n) for n in ("_items", "_stored", "_unique", "_n_blobs", "_n_garbage", "_logical")]
        ts.close()
        if not again:
            ts = planned_only(TieredStorage(LogBackend(tmp_path / "log", "none"), hot_max_bytes=0))
