"""The native write paths of new content write the bytes the Python plan writes.

A new key writing content no key holds (``LogBackend.insert_new``, one
native call) and a key writing new content in place of the content it owns
(``LogBackend.supersede``) are shortcuts of ``_plan_write``, which stays the reference:
the same writes, with the same clock, leave byte-equal segment files and
equal counters whether the shortcut runs or every such write takes the plan.
(The rewrite of a key's own content, ``LogBackend.rewrite``, runs in both:
it defers the blob's access time, so its batch is not the plan's.)
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from _storage_pairs import CONTENTS, COUNTERS, entry_and_blob, segment_files, storage
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata._native.hashing import digest
from memstrata.codecs import get_codec, read_header
from memstrata.tiers import LogBackend, StorageFullError, TieredStorage

writes = st.lists(
    st.tuples(st.integers(0, 14), st.integers(0, len(CONTENTS) - 1), st.booleans(),
              st.sampled_from(["warm", "warm", "cold", "hot"]), st.booleans()),
    min_size=1, max_size=30,
)


@settings(deadline=None)
@given(writes, st.sampled_from([1 << 20, 700]))
def test_the_native_write_paths_write_what_the_plan_writes(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, int, bool, str, bool]], segment_max_bytes: int
) -> None:
    base = tmp_path_factory.mktemp("paths")
    native, now_a = storage(base / "native", planned=False, segment_max_bytes=segment_max_bytes)
    planned, now_b = storage(base / "planned", planned=True, segment_max_bytes=segment_max_bytes)
    made: dict[int, list[int]] = {0: [], 1: []}  # which contents each store made a frame of
    model: dict[str, bytes] = {}
    zstd = get_codec("zstd")
    try:
        for i, (k, c, pin, tier, factory) in enumerate(ops):
            now_a[0] = now_b[0] = 1000.0 + i * 0.25
            key, frame = f"k{k}", CONTENTS[c]
            for side, ts in enumerate((native, planned)):
                if factory:  # a frame made only when the content is new, as MemoryStore writes
                    def make(frame: bytes = frame, side: int = side, c: int = c) -> bytes:
                        made[side].append(c)
                        return frame

                    ts.write(key, make, tier, pin, content_digest=digest(frame), raw_length=len(frame) + 7)
                else:
                    ts.write(key, frame, tier, pin)
            model[key] = frame
        assert made[0] == made[1]
        for name in COUNTERS:
            assert getattr(native, name) == getattr(planned, name), name
        assert segment_files(base / "native") == segment_files(base / "planned")
        for key, frame in model.items():
            got = native.read(key)
            assert got == planned.read(key) and got[0] == zstd.decode(frame)  # the value, and the tier it came from
        assert native.hot.keys() == planned.hot.keys()
    finally:
        native.close()
        planned.close()
    assert segment_files(base / "native") == segment_files(base / "planned")


def test_a_new_key_with_new_content_is_one_batch_of_three_records(tmp_path: Path) -> None:
    ts, now = storage(tmp_path / "log", planned=False)
    log: Any = ts.backend
    calls: list[int] = []
    append = log.append
    log.append = lambda ops, **k: calls.append(len(ops)) or append(ops, **k)
    frame = CONTENTS[3]
    seq = ts.write("a", frame, "warm", True)
    assert calls == []  # not the general path
    entry, blob = entry_and_blob(ts, "a")
    assert entry[:9] == struct.pack("<QB", seq, 2) and entry[25:] == b"W" + frame  # pinned, the frame inline
    assert blob == struct.pack("<IIBIId", 1, 1, 1, len(frame), read_header(frame).original_length, 1000.0) + b"sa"  # "a" owns it
    assert ts.read("a")[0] == get_codec("zstd").decode(frame)
    ts.write("b", frame, "warm")  # the same content under another key: the plan shares it
    assert calls == [5]  # "a" without its frame, the shared data record, the blob, "b", the seq
    ts.close()


def test_a_full_disk_leaves_the_store_readable(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none", max_disk_bytes=2000)
    ts = TieredStorage(log, hot_max_bytes=0)
    zstd = get_codec("zstd")
    written = {}
    with pytest.raises(StorageFullError):
        for i in range(100):
            ts.write(f"k{i}", zstd.encode({"i": i, "text": "x" * 40}), "warm")
            written[f"k{i}"] = i
    assert len(written) > 3
    for again in (False, True):
        for key, i in written.items():
            assert ts.read(key)[0] == {"i": i, "text": "x" * 40}
        assert ts._n_keys == len(written)
        ts.close()
        if not again:
            ts = TieredStorage(LogBackend(tmp_path / "log", "none"), hot_max_bytes=0)


def test_frames_of_other_bytes_types_are_written_as_bytes(tmp_path: Path) -> None:
    class Frame(bytes):
        pass

    zstd = get_codec("zstd")
    ts, _ = storage(tmp_path / "log", planned=False)
    ts.write("a", Frame(CONTENTS[1]), "warm")
    ts.write("b", lambda: bytearray(CONTENTS[2]), "hot", content_digest=digest(CONTENTS[2]), raw_length=9)
    with pytest.raises(struct.error):  # a raw length no blob record holds: the plan refuses it, nothing written
        ts.write("c", CONTENTS[3], "warm", content_digest=digest(CONTENTS[3]), raw_length=-1)
    ts.close()
    ts, _ = storage(tmp_path / "log", planned=False)
    assert [ts.read(k)[0] for k in "ab"] == [zstd.decode(CONTENTS[1]), zstd.decode(CONTENTS[2])]
    with pytest.raises(KeyError):
        ts.read("c")
    assert ts._n_keys == 2
    assert entry_and_blob(ts, "b")[0][25:] == b"W" + CONTENTS[2]
    ts.close()
