"""DedupStore: reference counts in lock-step with a dict model, persistence, gc, corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _threads import run_in_threads
from golden.dedup.make_dedup_golden import EXPECTED
from golden.dedup.make_dedup_golden import load as load_golden
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from memstrata import DedupStore, serialize
from memstrata.codecs._hash import digest
from memstrata.errors import CorruptDataError

# twins ("a" / b"a", "é" / its UTF-8 bytes) are two keys of the index; b"\xff" has no str twin
KEYS = st.sampled_from(["a", b"a", "b", "é", "é".encode(), b"\xff", "c"])
# a small pool, so duplicates and overwrites are common; one large value crosses the long-digest size
VALUES = st.sampled_from(
    [
        1,
        "one",
        {"text": "hello world", "n": 1},
        {"text": "hello world", "n": 2},
        [1.5, None, True],
        b"\x00" * 300,
        {"big": "x" * 5000},
        np.arange(10, dtype=np.float32),
    ]
)


def _twin(key: str | bytes) -> str | bytes | None:
    if isinstance(key, str):
        return key.encode()
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


class DedupMachine(RuleBasedStateMachine):
    """A DedupStore and a plain dict {key: value}, driven by the same operations.

    The model also keeps the store's index semantics: the sequence number of
    every key's last put or delete (tombstones until ``gc``), and the
    deprecated lookup of a key by its twin's type (a warning, then the twin).
    """

    @initialize(eager_gc=st.booleans())
    def setup(self, eager_gc: bool) -> None:
        self.backend: dict[bytes, bytes] = {}
        self.eager_gc = eager_gc
        self.store = DedupStore(self.backend, eager_gc=eager_gc, bloom_capacity=4)
        self.model: dict[str | bytes, object] = {}
        self.seq = 0
        self.seq_of: dict[str | bytes, int] = {}  # live keys and tombstones

    def _target(self, key: str | bytes) -> tuple[str | bytes, bool]:
        """The key a call on ``key`` acts on, and whether it warns (it finds only the twin)."""
        twin = _twin(key)
        if key not in self.model and twin is not None and twin in self.model:
            return twin, True
        return key, False

    def _call(self, warns: bool, fn, *args):  # type: ignore[no-untyped-def]
        if warns:
            with pytest.warns(DeprecationWarning, match="str and bytes keys are two keys"):
                return fn(*args)
        return fn(*args)

    @rule(key=KEYS, value=VALUES)
    def put(self, key: str | bytes, value: object) -> None:
        target, warns = self._target(key)
        expected_dup = any(serialize(v) == serialize(value) for v in self.model.values())
        revived = not self.eager_gc and self.store.refcount(digest(serialize(value))) == 0 and self._blob_kept(value)
        unchanged = target in self.model and serialize(self.model[target]) == serialize(value)
        d, dup = self._call(warns, self.store.put, key, value)
        assert d == digest(serialize(value))
        assert dup == (expected_dup or revived)
        self.model[target] = value
        if not unchanged:  # rewriting the same content is no write
            self.seq += 1
            self.seq_of[target] = self.seq

    def _blob_kept(self, value: object) -> bool:
        return b"b" + digest(serialize(value)) in self.backend

    @rule(key=KEYS)
    def delete(self, key: str | bytes) -> None:
        target, warns = self._target(key)
        if target in self.model:
            self._call(warns, self.store.delete, key)
            del self.model[target]
            self.seq += 1
            self.seq_of[target] = self.seq
        else:
            with pytest.raises(KeyError):
                self.store.delete(key)

    @rule(key=KEYS)
    def contains(self, key: str | bytes) -> None:
        target, warns = self._target(key)
        assert self._call(warns, self.store.__contains__, key) == (target in self.model)

    @rule()
    def gc(self) -> None:
        report = self.store.gc()
        assert report["refcounts_fixed"] == 0  # nothing crashed: counts were already right
        assert report["tombstones_removed"] == len(self.seq_of.keys() - self.model.keys())
        self.seq_of = {k: n for k, n in self.seq_of.items() if k in self.model}
        if self.eager_gc:
            assert report["blobs_removed"] == 0

    @rule()
    def reopen(self) -> None:
        self.store = DedupStore(self.backend, eager_gc=self.eager_gc, bloom_capacity=4)

    @invariant()
    def contents_match_the_model(self) -> None:
        assert len(self.store) == len(self.model)
        assert sorted(self.store.keys(typed=True), key=repr) == sorted(self.model, key=repr)
        assert sorted(self.store.keys()) == sorted(k.encode() if isinstance(k, str) else k for k in self.model)
        for k, v in self.model.items():
            out = self.store.get(k)
            if isinstance(v, np.ndarray):
                assert out.dtype == v.dtype and np.array_equal(out, v)
            else:
                assert out == v

    @invariant()
    def sequence_numbers_match_the_model(self) -> None:
        assert self.store.seq == self.seq
        for k, n in self.seq_of.items():
            assert self.store.sequence(k) == n

    @invariant()
    def refcounts_match_the_model(self) -> None:
        counts: dict[bytes, int] = {}
        for v in self.model.values():
            d = digest(serialize(v))
            counts[d] = counts.get(d, 0) + 1
        for d, n in counts.items():
            assert self.store.refcount(d) == n
        blobs = {k[1:] for k in self.backend if k[:1] == b"b"}
        if self.eager_gc:
            assert blobs == set(counts)
        else:
            assert blobs >= set(counts)
        s = self.store.get_statistics()
        assert s["references"] == sum(counts.values()) == s["keys"]
        assert s["unique_blobs"] == len(blobs)
        assert s["logical_bytes"] == sum(len(serialize(v)) for v in self.model.values())


TestDedupMachine = DedupMachine.TestCase
TestDedupMachine.settings = settings(stateful_step_count=30, max_examples=60, deadline=None)


def test_reopen_gives_an_identical_store() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend)
    for i in range(200):
        store.put(f"k{i}", {"doc": i % 17, "body": "text " * (i % 5)})
    before = store.get_statistics()
    again = DedupStore(backend)
    after = again.get_statistics()
    for key in ("unique_blobs", "references", "keys", "logical_bytes", "unique_bytes", "stored_bytes", "dedup_ratio"):
        assert after[key] == before[key]
    assert before["unique_blobs"] == 85  # distinct (i % 17, i % 5) pairs
    assert all(again.get(f"k{i}") == {"doc": i % 17, "body": "text " * (i % 5)} for i in range(200))
    d, dup = again.put("new", {"doc": 3, "body": "text " * 3})
    assert dup  # the reopened Bloom filter and index know the old blobs


def test_statistics_report_savings() -> None:
    store = DedupStore()
    text = {"text": "the same long memory " * 50}
    for i in range(10):
        store.put(f"k{i}", text)
    s = store.get_statistics()
    assert s["unique_blobs"] == 1 and s["references"] == 10
    assert s["dedup_ratio"] == 10.0
    assert s["bytes_saved"] == s["logical_bytes"] - s["stored_bytes"] > 9 * len(serialize(text))
    assert s["puts"] == 10 and s["duplicate_puts"] == 9


def test_overwrite_releases_the_old_blob() -> None:
    store = DedupStore()
    d1, _ = store.put("k", "first value")
    d2, _ = store.put("k", "second value")
    assert store.refcount(d1) == 0 and store.refcount(d2) == 1
    assert store.get("k") == "second value"
    assert store.get_statistics()["unique_blobs"] == 1


def test_gc_repairs_what_a_crash_leaves_behind() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend, eager_gc=False)
    d, _ = store.put("a", "kept")
    store.put("b", "dropped")
    store.delete("b")
    # a crash after writing a blob but before its key: an orphan blob
    backend[b"b" + b"\x01" * 16] = backend[b"b" + d]
    # a crash after removing a key but before its count went down: a count too high
    backend[b"r" + d] = backend[b"r" + d][:0] + (5).to_bytes(8, "little") + backend[b"r" + d][8:]
    report = DedupStore(backend, eager_gc=False).gc()
    assert report["blobs_removed"] == 2 and report["refcounts_fixed"] == 1 and report["bytes_freed"] > 0
    store = DedupStore(backend)
    assert store.refcount(d) == 1 and store.get("a") == "kept"
    assert sorted(k[:1] for k in backend if k[:1] in b"bkr") == [b"b", b"k", b"r"]


def test_corrupt_blob_is_detected_never_returned() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend)
    d, _ = store.put("a", {"text": "precious " * 20})
    frame = bytearray(backend[b"b" + d])
    frame[len(frame) // 2] ^= 0x40
    backend[b"b" + d] = bytes(frame)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        store.get("a")
    report = store.verify()
    assert not report["ok"] and report["bad"] == [d]


def test_blob_swapped_between_digests_is_detected() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend)
    da, _ = store.put("a", "value a")
    db, _ = store.put("b", "value b")
    backend[b"b" + da], backend[b"b" + db] = backend[b"b" + db], backend[b"b" + da]
    with pytest.raises(CorruptDataError, match="holds other content than expected"):
        store.get("a")
    assert not store.verify()["ok"]


def test_missing_blob_and_bad_keys() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend)
    d, _ = store.put("a", "value")
    del backend[b"b" + d]
    with pytest.raises(CorruptDataError, match="which is missing"):
        store.get("a")
    with pytest.raises(KeyError):
        store.get("nope")
    with pytest.raises(TypeError, match="key: expected str or bytes, got int"):
        store.put(3, "x")  # type: ignore[arg-type]
    assert 3 not in store and "a" in store
    with pytest.warns(DeprecationWarning, match="'a' is stored as 'a'|b'a' is stored as 'a'"):
        assert b"a" in store  # one key until format 2: still found, with a warning
    with pytest.raises(KeyError):
        store.get_digest("nope")
    assert store.get_digest("a") == d


def test_foreign_backend_format_is_refused() -> None:
    with pytest.raises(CorruptDataError, match="dedup format"):
        DedupStore({b"\x00dedup": b"\x09"})


def test_bloom_filter_grows_past_its_capacity() -> None:
    backend: dict[bytes, bytes] = {}
    store = DedupStore(backend, bloom_capacity=1)  # rounded up to 1024
    for i in range(3000):
        store.put(f"k{i}", i)
    assert store._bloom.capacity >= 3000
    assert all(store.put(f"x{i}", i)[1] for i in range(0, 3000, 97))


def test_concurrent_puts_and_deletes_keep_counts_exact() -> None:
    store = DedupStore()

    def worker(t: int) -> None:
        for i in range(300):
            store.put(f"t{t}-{i % 50}", {"v": i % 7})
            if i % 3 == 0:
                try:
                    store.delete(f"t{t}-{(i * 7) % 50}")
                except KeyError:
                    pass

    run_in_threads(worker, 4)
    assert store.gc()["refcounts_fixed"] == 0
    s = store.get_statistics()
    assert s["references"] == len(store) and s["unique_blobs"] <= 7


# ------------------------------------------------- formats, upgrade, twins

GOLDEN = Path(__file__).resolve().parent / "golden" / "dedup"


def _check_golden_contents(store: DedupStore) -> None:
    assert len(store) == len(EXPECTED)
    assert {k: store.get(k) for k in store.keys(typed=True)} == EXPECTED
    assert "gone" not in store
    assert store.refcount(store.get_digest("a")) == 2  # "b" holds the same content
    assert store.gc()["refcounts_fixed"] == 0
    assert store.verify()["ok"]


@pytest.mark.parametrize("fmt", [1, 2])
def test_golden_mappings_decode_forever(fmt: int) -> None:
    backend = load_golden((GOLDEN / f"format-{fmt}.kv").read_bytes())
    store = DedupStore(backend)
    assert backend[b"\x00dedup"] == b"\x02"  # format 1 was upgraded in place
    if fmt == 2:
        assert store.seq == 9 and store.sequence("foo") == 6 and store.sequence("gone") == 9  # a tombstone
    else:  # the upgrade numbered the live keys, longest key first
        assert store.seq == len(EXPECTED) and store.sequence("sfoo") < store.sequence("foo")
    _check_golden_contents(store)
    _check_golden_contents(DedupStore(backend))  # reopening changes nothing


def test_an_interrupted_upgrade_is_finished_by_the_next_open() -> None:
    golden = load_golden((GOLDEN / "format-1.kv").read_bytes())
    for stop_after in range(1, 26):  # every write of the upgrade (7 keys x 3, and the format)
        backend = _FailingAfter(golden, stop_after)
        try:
            DedupStore(backend)
        except _Interrupted:
            pass
        _check_golden_contents(DedupStore(dict(backend)))


class _Interrupted(Exception):
    pass


class _FailingAfter(dict):  # type: ignore[type-arg]
    """A mapping whose writes fail after ``n`` of them, like a process killed mid-upgrade."""

    def __init__(self, data: dict[bytes, bytes], n: int) -> None:
        super().__init__(data)
        self.left = n

    def _count(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Interrupted

    def __setitem__(self, k: bytes, v: bytes) -> None:
        self._count()
        super().__setitem__(k, v)

    def __delitem__(self, k: bytes) -> None:
        self._count()
        super().__delitem__(k)


def test_str_and_bytes_keys_are_two_keys_and_the_old_lookup_warns() -> None:
    store = DedupStore()
    store.put(b"k", "bytes")
    store.delete(b"k")
    store.put("k", "str")
    assert store.sequence(b"k") == 2 and store.sequence("k") == 3 and store.seq == 3
    with pytest.warns(DeprecationWarning, match="b'k' is stored as 'k'; str and bytes keys are two keys"):
        assert store.get(b"k") == "str"
    assert list(store.keys(typed=True)) == ["k"] and list(store.keys()) == [b"k"]
    with pytest.raises(KeyError):
        store.sequence("never")
    report = store.gc()
    assert report["tombstones_removed"] == 1
    with pytest.raises(KeyError):
        store.sequence(b"k")
