"""The segment log's compact index: keys sharing fingerprints, reopen, compaction, checkpoint formats.

The index keeps key fingerprints, not keys; these tests narrow the fingerprint
(``memstrata.tiers._log_index.FP_MASK``, the test hook) so that most keys share
one, and check that the log still never returns another key's value.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import memstrata.tiers._log_index as log_index
from memstrata import MemoryStore
from memstrata.errors import CorruptDataError
from memstrata.tiers import LogBackend
from memstrata.tiers._checkpoint import load_checkpoint

KEYS = st.sampled_from([b"k%d" % i for i in range(12)] + [b"a1", b"b2", b"mseq", b"dx", b"", b"m", b"d"])
VALUES = st.binary(max_size=40)


@pytest.fixture
def colliding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two fingerprint bits: every key shares its fingerprint with about a quarter of the others."""
    monkeypatch.setattr(log_index, "FP_MASK", 0x3)


class LogMachine(RuleBasedStateMachine):
    """A LogBackend whose keys share fingerprints, in lock-step with a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memstrata-logindex-")
        self.log = LogBackend(self.dir + "/log", "none", segment_max_bytes=600)
        self.model: dict[bytes, bytes] = {}
        assert self.log._table.mask == log_index.FP_MASK  # the test hook is in force

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=KEYS, value=VALUES)
    def put(self, key: bytes, value: bytes) -> None:
        self.log.put(key, value)
        self.model[key] = value

    @rule(puts=st.dictionaries(KEYS, VALUES, max_size=5), deletes=st.lists(KEYS, max_size=3))
    def batch(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        self.log.apply(puts, deletes)
        for k in deletes:
            self.model.pop(k, None)
        self.model.update(puts)

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.log.delete(key)
        self.model.pop(key, None)

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.log.get(key) == self.model.get(key)

    @rule(prefix=st.sampled_from([b"", b"k", b"k1", b"m", b"d", b"a", b"zz"]))
    def scan(self, prefix: bytes) -> None:
        assert list(self.log.scan(prefix)) == sorted((k, v) for k, v in self.model.items() if k.startswith(prefix))

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = LogBackend(self.dir + "/log", "none", segment_max_bytes=600)

    @rule()
    def reopen_without_checkpoint_of_the_tail(self) -> None:  # the tail replays into a loaded table
        self.log.flush()
        self.log.put(b"k0", b"tail")
        self.model[b"k0"] = b"tail"
        self.log._closed = True  # a crash: no checkpoint at close
        self.log._close_fds()
        self.log = LogBackend(self.dir + "/log", "none", segment_max_bytes=600)

    @rule()
    def compact(self) -> None:
        self.log.vacuum()

    @rule()
    def follower(self) -> None:
        self.log.flush()
        reader = LogBackend(self.dir + "/log", "none", read_only=True)
        try:
            assert {k: reader.get(k) for k in self.model} == self.model
            assert len(reader) == len(self.model)
        finally:
            reader.close()

    @invariant()
    def same_keys(self) -> None:
        assert len(self.log) == len(self.model)
        for k, v in self.model.items():
            assert self.log.get(k) == v


@pytest.mark.parametrize("mask", [0x0, 0x3])
def test_log_machine_with_shared_fingerprints(mask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_index, "FP_MASK", mask)
    machine = LogMachine.TestCase
    machine.settings = settings(stateful_step_count=20, deadline=None, max_examples=settings.default.max_examples // 2)
    machine().runTest()


@given(st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=20), max_size=60))
@settings(deadline=None, max_examples=25)
def test_no_read_returns_another_keys_value(tmp_path_factory: pytest.TempPathFactory, items: dict[bytes, bytes]) -> None:
    """Every key shares one fingerprint: each read still returns its own value, absent keys None."""
    old = log_index.FP_MASK
    log_index.FP_MASK = 0
    try:
        d = tmp_path_factory.mktemp("one-fp")
        with_log = LogBackend(d / "log", "none")
        with_log.apply(items)
        for k, v in items.items():
            assert with_log.get(k) == v
            assert with_log.get(k + b"\x00") == items.get(k + b"\x00")
        with_log.close()
        reopened = LogBackend(d / "log", "none")
        assert {k: reopened.get(k) for k in items} == items
        assert reopened.integrity_check() == []
        reopened.close()
    finally:
        log_index.FP_MASK = old


def test_store_with_shared_fingerprints_returns_each_keys_value(tmp_path: Path, colliding: None) -> None:
    cfg = {"migration_interval_seconds": None, "hot_max_bytes": 1 << 10}
    with MemoryStore(tmp_path / "s", cfg) as store:
        store.store_many({f"key{i}": {"i": i, "text": "x" * (i % 7)} for i in range(300)}, tier="warm")
        for i in range(0, 300, 3):
            store.delete(f"key{i}")
        store.compact()
    with MemoryStore(tmp_path / "s", cfg) as store:
        for i in range(300):
            assert store.retrieve(f"key{i}", None) == (None if i % 3 == 0 else {"i": i, "text": "x" * (i % 7)})
        assert store.verify()["ok"]
    assert load_checkpoint(tmp_path / "s" / "log").mask == 0x3  # the log keeps the mask it was made with


def test_a_misdirected_record_still_raises(tmp_path: Path) -> None:
    """A record of a key with another fingerprint where the index points is damage, not a miss."""
    log = LogBackend(tmp_path / "log", "none")
    log.apply({b"k-one": b"v" * 30})
    log.apply({b"k-two": b"w" * 30})
    loc_one = log._table.lookup(b"k-one")[0]
    loc_two = log._table.lookup(b"k-two")[0]
    fp = log._table.fingerprint(b"k-one")
    log._table.replace(fp, loc_one, loc_two)  # as a swapped page would make it
    with pytest.raises(CorruptDataError, match="belongs to another key"):
        log.get(b"k-one")
    assert log.get(b"k-two") == b"w" * 30
    log._table.replace(fp, loc_two, loc_one)
    log.close()


def test_checkpoint_is_format_3_and_converted_once(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none")
    log.apply({b"k%d" % i: b"v%d" % i for i in range(100)} | {b"mseq": b"1", b"dz": b"dict"})
    log.close()
    ck = load_checkpoint(tmp_path / "log")
    assert ck.version == 3 and len(ck.fingerprints) == 100 and sorted(ck.named) == [b"dz", b"mseq"]
    reopened = LogBackend(tmp_path / "log", "none", read_only=True)
    assert reopened.get(b"k42") == b"v42" and reopened.get(b"dz") == b"dict" and len(reopened) == 102
    assert list(reopened.scan(b"d")) == [(b"dz", b"dict")]
    reopened.close()


def test_index_ram_is_slots_not_keys(tmp_path: Path) -> None:
    log = LogBackend(tmp_path / "log", "none")
    log.apply({b"k" + b"%032d" % i: b"v" for i in range(20_000)})
    for i in range(5_000):  # reads fill the bounded map of proven locations
        log.get(b"k" + b"%032d" % i)
    table = log._table
    assert table.nbytes == table.capacity * 12 and len(table) / table.capacity >= 0.5
    beyond = log.ram_bytes() - table.nbytes  # named keys (none here) and at most PROVEN_MAX proven ones
    assert 0 < beyond <= log_index.PROVEN_MAX * (33 + 33 + log_index.NAMED_ENTRY_BYTES) + 80_000
    log.close()
    reopened = LogBackend(tmp_path / "log", "none")
    assert reopened.ram_bytes() < 20_000 * 33  # after open: slots only, 85% full; the keys alone are 33 bytes each
    assert reopened._table.nbytes == pytest.approx(20_000 * 12 / 0.85, rel=0.01)
    reopened.close()


def test_scan_of_named_keys_reads_no_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = LogBackend(tmp_path / "log", "none")
    log.apply({b"k%d" % i: b"v" for i in range(50)} | {b"d1": b"x", b"d2": b"y"})

    def no_full_read(*args: object) -> None:
        raise AssertionError("a named prefix scan read the segments in full")

    monkeypatch.setattr(log, "_live", no_full_read)
    assert list(log.scan(b"d")) == [(b"d1", b"x"), (b"d2", b"y")]
    log.close()


def _damaged_log(path: Path, items: dict[bytes, bytes], marker: bytes, at: int) -> LogBackend:
    """A closed log of ``items`` with one bit flipped ``at`` bytes into ``marker``, reopened."""
    log = LogBackend(path, "none")
    log.apply(items)
    log.close()
    seg = next(path.glob("seg-*.log"))
    data = bytearray(seg.read_bytes())
    data[data.find(marker) + at] ^= 0x01
    seg.write_bytes(bytes(data))
    return LogBackend(path, "none")


def test_damage_in_an_unscanned_record_of_another_family_does_not_fail_the_scan(tmp_path: Path) -> None:
    log = _damaged_log(tmp_path / "log", {b"k1": b"entry", b"bdata": b"DAMAGEME" * 4}, b"DAMAGEME", 3)
    assert list(log.scan(b"k")) == [(b"k1", b"entry")]
    with pytest.raises(CorruptDataError, match="checksum"):
        log.get(b"bdata")
    with pytest.raises(CorruptDataError, match="checksum"):
        list(log.scan(b"b"))
    log.close()


def test_damaged_key_bytes_fail_the_scan(tmp_path: Path) -> None:
    log = _damaged_log(tmp_path / "log", {b"kVICTIM": b"entry", b"k2": b"x"}, b"kVICTIM", 2)
    with pytest.raises(CorruptDataError, match="checksum"):
        list(log.scan(b"k"))
    assert log.get(b"k2") == b"x"
    log.close()
