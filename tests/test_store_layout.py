"""Record layout 3: a blob written by one key lives inside that key's entry record; shared blobs keep data records."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memstrata import MemoryStore
from memstrata.errors import MemstrataError
from memstrata.tiers import encode_key
from memstrata.tiers._tiers import ENTRY, OWNER, A, B, K, inline_frame, unpack_blob

NO_THREAD: dict[str, Any] = {"migration_interval_seconds": None}
GOLDEN = Path(__file__).parent / "golden" / "stores-v2"


def _records(store: MemoryStore, key: str) -> tuple[bytes | None, list[Any] | None, bytes | None]:
    """(entry record, blob fields, data record) of ``key``."""
    backend = store.tiers.backend
    entry = backend.get(K + encode_key(key))
    assert entry is not None
    d = entry[9:25]
    blob = backend.get(A + d)
    return entry, None if blob is None else unpack_blob(blob), backend.get(B + d)


def _reads_of(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the record reads of the log (each native ``read_value`` or ``read_tagged`` is one record read)."""
    from memstrata.tiers import _log_index, _log_reads

    calls = [0]
    read_value = _log_index.read_value
    read_tagged = _log_reads.read_tagged

    def counting(fd: int, off: int, key: bytes, seed: int) -> bytes | None:
        calls[0] += 1
        return read_value(fd, off, key, seed)

    def counting_tagged(*args: Any) -> Any:
        calls[0] += 1
        return read_tagged(*args)

    monkeypatch.setattr(_log_index, "read_value", counting)
    monkeypatch.setattr(_log_reads, "read_tagged", counting_tagged)
    return calls


def test_a_key_alone_keeps_its_frame_in_its_entry_and_a_warm_read_is_one_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "hot_max_bytes": 0}) as store:
        store.store("a", {"text": "only here"}, tier="warm")
        entry, blob, data = _records(store, "a")
        assert data is None and blob is not None and blob[OWNER] == encode_key("a") and blob[0] == 1
        assert inline_frame(entry, entry[9:25]) == store.tiers.read_frame("a")[0]
        store.tiers.backend._proven.clear()  # no shortcut from the write
        calls = _reads_of(monkeypatch)
        assert store.retrieve("a") == {"text": "only here"}
        assert calls[0] == 1
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("a") == {"text": "only here"} and store.verify()["ok"]
        assert store.tiers.backend.get(b"mlayout") == b"3"


def test_a_second_key_with_the_same_content_shares_the_blob(tmp_path: Path) -> None:
    value = {"text": "said twice", "n": 7}
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("a", value, tier="warm")
        store.store("b", value, tier="warm")
        entry_a, blob, data = _records(store, "a")
        entry_b, _, _ = _records(store, "b")
        assert len(entry_a) == len(entry_b) == ENTRY.size  # no frame left in either entry
        assert data is not None and data[:1] == b"W" and blob is not None and blob[0] == 2 and blob[OWNER] == b""
        assert store.get_statistics()["deduplication"]["unique_blobs"] == 1
        store.delete("a")
        assert store.retrieve("b") == value
        assert store.compact()["blobs_inlined"] == 1  # "b" alone holds it now: its entry takes the frame
        entry_b, blob, data = _records(store, "b")
        assert data is None and blob[OWNER] == encode_key("b") and inline_frame(entry_b, entry_b[9:25]) is not None
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("b") == value and "a" not in store and store.verify()["ok"]


def test_both_keys_of_one_batch_share_a_new_blob(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store_many([("a", [1, 2, 3]), ("b", [1, 2, 3]), ("a", [4]), ("c", [1, 2, 3])], tier="warm")
        assert store.retrieve("a") == [4] and store.retrieve("b") == [1, 2, 3] == store.retrieve("c")
        assert store.verify()["ok"]
        stats = store.get_statistics()["deduplication"]
        assert stats["unique_blobs"] == 2


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize("how", ["overwrite", "delete"])
def test_an_owned_frame_leaves_the_files_with_its_entry(tmp_path: Path, how: str) -> None:
    marker = b"unique-marker-" + bytes(range(48, 123))  # zstd keeps incompressible bytes as literals
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "hot_max_bytes": 0}) as store:
        store.store("a", marker, tier="warm")
        store.store("keep", {"x": 1}, tier="warm")
        assert _files_holding(tmp_path / "s", marker)  # the test can see the value
        if how == "overwrite":
            store.store("a", b"something else", tier="warm")
        else:
            store.delete("a")
        store.compact()
        assert store.tiers.statistics()["garbage_blobs"] == 0
    assert _files_holding(tmp_path / "s", marker) == []
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.verify()["ok"] and store.retrieve("keep") == {"x": 1}


def test_moves_pins_and_rewrites_keep_every_value(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "hot_max_bytes": 0}) as store:
        store.store("a", {"v": "a" * 50}, tier="warm")
        store.pin("a")  # the entry is rewritten: its frame stays inside
        entry, _, data = _records(store, "a")
        assert data is None and len(entry) > ENTRY.size
        store.unpin("a")
        store.store("a", {"v": "a" * 50}, tier="warm")  # the same content again
        assert _records(store, "a")[2] is None
        store.migrate("a", "cold")  # a cold blob's reference is a data record
        entry, blob, data = _records(store, "a")
        assert len(entry) == ENTRY.size and data is not None and data[:1] == b"C" and blob[OWNER] == b""
        store.migrate("a", "warm")
        assert store.retrieve("a") == {"v": "a" * 50} and store.tier_of("a") == "warm"
        store.store("b", {"v": "b"}, tier="cold")
        assert _records(store, "b")[2][:1] == b"C"
        assert store.verify()["ok"]
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("a") == {"v": "a" * 50} and store.retrieve("b") == {"v": "b"} and store.verify()["ok"]


def _batches_since(store: MemoryStore, tail: tuple[int, int]) -> list[list[bytes]]:
    """The keys of each batch the log appended since ``tail`` (``(segment, offset)``), read from the segment file."""
    from memstrata.tiers._segments import F_END, HEADER

    log = store.tiers.backend
    seg, off = tail
    assert log._tail == seg  # the test's batches are small: no segment roll
    data = os.pread(log._fds[seg], log._pos - off, off)
    batches: list[list[bytes]] = [[]]
    pos = 0
    while pos < len(data):
        _magic, flags, _r, klen, vlen, _seq = HEADER.unpack_from(data, pos)
        batches[-1].append(data[pos + HEADER.size : pos + HEADER.size + klen])
        if flags & F_END:
            batches.append([])
        pos += HEADER.size + klen + vlen + 4
    return [sorted(b) for b in batches if b]


def _tail_of(store: MemoryStore) -> tuple[int, int]:
    return store.tiers.backend._tail, store.tiers.backend._pos


def test_a_key_writing_its_own_content_again_writes_only_its_entry(tmp_path: Path) -> None:
    now = [100.0]
    config = {**NO_THREAD, "hot_max_bytes": 1 << 20}
    with MemoryStore(tmp_path / "s", config, clock=lambda: now[0]) as store:
        seq1 = store.store("a", {"v": "same"}, tier="warm")
        start = _tail_of(store)
        now[0] = 200.0
        seq2 = store.store("a", {"v": "same"}, tier="warm")
        entry, blob, _ = _records(store, "a")
        assert _batches_since(store, start) == [[b"k" + encode_key("a"), b"mseq"]] and seq2 == seq1 + 1
        assert entry[:8] == seq2.to_bytes(8, "little") and inline_frame(entry, entry[9:25]) is not None
        assert blob is not None and blob[0] == 1 and blob[5] == 100.0  # the access time waits for a flush
        store.store("a", {"v": "same"}, tier="hot")  # to the hot tier, with the stored frame
        assert store.retrieve_with_tier("a") == ({"v": "same"}, "hot")
        start = _tail_of(store)
        store.store("a", {"v": "same"}, tier="warm", pin=True)  # a new pin takes the full path
        assert any(A + entry[9:25] in b for b in _batches_since(store, start))
        store.flush()
        assert _records(store, "a")[1][5] == 200.0
        assert store.get_statistics()["deduplication"]["unique_blobs"] == 1 and store.verify()["ok"]
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("a") == {"v": "same"} and store.tiers.is_pinned("a") and len(store) == 1


def test_a_key_writing_shared_content_again_writes_only_its_entry(tmp_path: Path) -> None:
    now = [100.0]
    with MemoryStore(tmp_path / "s", NO_THREAD, clock=lambda: now[0]) as store:
        store.store("a", {"v": "shared"}, tier="warm")
        store.store("b", {"v": "shared"}, tier="warm")
        counts = store.get_statistics()["deduplication"]
        start = _tail_of(store)
        now[0] = 300.0
        store.store("b", {"v": "shared"}, tier="warm")
        assert _batches_since(store, start) == [[b"k" + encode_key("b"), b"mseq"]]
        entry, blob, data = _records(store, "b")
        assert len(entry) == ENTRY.size and blob is not None and blob[0] == 2 and blob[OWNER] == b"" and data
        assert store.get_statistics()["deduplication"] == counts
        start = _tail_of(store)
        store.store("b", {"v": "shared"}, tier="warm", pin=True)  # a new pin: the blob record changes too
        assert any(A + entry[9:25] in b for b in _batches_since(store, start))
        store.flush()
        assert _records(store, "b")[1][5] == 300.0  # the access time the rewrite left
        store.delete("a")
        assert store.retrieve("b") == {"v": "shared"} and store.verify()["ok"]
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("b") == {"v": "shared"} and "a" not in store and store.verify()["ok"]


def test_access_times_in_ram_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memstrata.tiers import _rules

    monkeypatch.setattr(_rules, "TOUCHED_MAX", 16)
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "hot_max_bytes": 0}) as store:
        store.store_many({f"k{i}": f"value {i}" for i in range(50)}, tier="warm")
        for i in range(50):
            assert store.retrieve(f"k{i}") == f"value {i}"
            store.store(f"k{i}", f"value {i}", tier="warm")
            assert len(store.tiers._touched) < 16
        assert store.verify()["ok"]


def test_promotions_count_hits_in_a_fixed_sketch(tmp_path: Path) -> None:
    from memstrata.tiers._reads import HIT_SLOTS

    config = {**NO_THREAD, "hot_max_bytes": 1 << 20, "promote_warm_hits": 3}
    with MemoryStore(tmp_path / "s", config) as store:
        store.store_many({f"k{i}": {"n": i} for i in range(2000)}, tier="warm")
        for i in range(2000):
            store.retrieve(f"k{i}")
        sketch = store.tiers._hit_counts
        assert len(sketch) == HIT_SLOTS and 2 * 2000 - 10 <= sum(sketch) <= 2 * 2000  # two counters a read (one when
        # both fall on the same byte), no dict per key
        # another key may have been promoted in the loop above, both its counters shared with earlier keys':
        # count only what k7's reads promote
        promoted = store.tiers.counters["warm_to_hot"]
        assert store.retrieve_with_tier("k7")[1] == "warm"  # 2 reads
        assert store.retrieve_with_tier("k7") == ({"n": 7}, "warm")  # the 3rd read promotes
        assert store.tier_of("k7") == "hot" and store.tiers.counters["warm_to_hot"] == promoted + 1
        store.run_migrations()
        assert not any(store.tiers._hit_counts)  # a pass starts the counts again


_PROMOTED_BY_READS = """
import sys
from memstrata import MemoryStore
config = {"migration_interval_seconds": None, "hot_max_bytes": 1 << 22, "promote_warm_hits": 2}
with MemoryStore(sys.argv[1], config) as store:
    store.store_many({f"k{i}": i for i in range(20000)}, tier="warm")
    for i in range(20000):
        store.retrieve(f"k{i}")
    print(",".join(k for k in store.keys() if store.tier_of(k) == "hot"))
"""


def test_the_same_reads_promote_the_same_keys_in_every_process(tmp_path: Path) -> None:
    # one read of each of 20,000 keys: a key is promoted when earlier keys' reads filled both its counters,
    # so the promoted set depends on where the sketch puts each key, which must not depend on PYTHONHASHSEED
    import os
    import subprocess
    import sys

    promoted = []
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _PROMOTED_BY_READS, str(tmp_path / seed)], check=True,
                             capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed})
        promoted.append(out.stdout.strip().split(","))
    assert len(promoted[0]) > 100 and promoted[0] == promoted[1]


def test_counts_match_a_recount_after_every_kind_of_change(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store_many([(f"k{i}", {"i": i % 7}) for i in range(40)], tier="warm")
        store.store_many([(f"k{i}", {"i": i % 3}) for i in range(0, 40, 3)], tier="warm")
        store.delete_many([f"k{i}" for i in range(0, 40, 5)])
        store.migrate("k1", "cold")
        tiers = store.tiers
        before = tiers.statistics()
        tiers._recount()
        after = tiers.statistics()
        for name in ("keys", "tombstones", "unique_blobs", "garbage_blobs", "logical_bytes", "unique_bytes", "warm", "cold"):
            assert before[name] == after[name], name


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return bool(a == b)


@pytest.mark.parametrize("name", ["arrays", "compacted", "dictionary", "mixed"])
def test_a_layout_2_store_is_written_in_layout_3_and_keeps_its_old_records(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copytree(GOLDEN / name, path)
    with MemoryStore(path, NO_THREAD, read_only=True) as store:
        assert store.tiers.backend.get(b"mlayout") is None
        old = {k: store.retrieve(k) for k in store.keys()}
    assert old
    with MemoryStore(path, NO_THREAD) as store:
        assert store.tiers.backend.get(b"mlayout") == b"3"
        store.store("new-key", {"fresh": True}, tier="warm")
        assert _records(store, "new-key")[2] is None  # new content: inline
        first = sorted(old, key=repr)[0]
        store.store(first, {"rewritten": 1}, tier="warm")
        second = sorted(old, key=repr)[-1]
        store.store("copy-of-old", old[second], tier="warm")  # content an old shared blob holds: deduplicated
        report = store.compact()
        single = [k for k in old if k not in (first, second) and store.tier_of(k) == "warm"]
        if single:  # the old single-owner warm blobs moved into their keys' entries
            assert report["blobs_inlined"] > 0
            assert any(_records(store, k)[2] is None for k in single)
    with MemoryStore(path, NO_THREAD) as store:
        assert store.retrieve("new-key") == {"fresh": True} and store.retrieve(first) == {"rewritten": 1}
        assert _same(store.retrieve("copy-of-old"), old[second])
        for k, v in old.items():
            if k != first:
                assert _same(store.retrieve(k), v), k
        assert store.verify()["ok"]


def test_a_store_from_a_newer_layout_is_refused(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("a", 1)
        store.tiers.backend.put(b"mlayout", b"4")
    for read_only in (False, True):
        with pytest.raises(MemstrataError, match="newer memstrata"):
            MemoryStore(tmp_path / "s", NO_THREAD, read_only=read_only)
