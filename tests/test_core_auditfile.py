"""The binary audit log (``FileLogStore``): SHA-256 paths, record encoding, tampering, torn tails, intents."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_audit import assert_broken_at

from memstrata._native import auditchain
from memstrata.core import (
    AuditChainError,
    AuditLog,
    FileLogStore,
    SQLiteLogStore,
    encode_entry,
    verify_consistency,
    verify_inclusion,
)
from memstrata.core._filelog import HEADER
from memstrata.errors import CorruptDataError, MemstrataError

N = 20


def spans(path: Path) -> list[tuple[int, int]]:
    """(start, stop) of every record, read straight from the file format."""
    data = path.read_bytes()
    out, off = [], len(HEADER)
    while off < len(data):
        n = int.from_bytes(data[off : off + 4], "little")
        out.append((off, off + 36 + n + 32))
        off += 36 + n + 32
    return out


def _fill(log: AuditLog, n: int = N, actor: str = "agent") -> None:
    for i in range(n):
        log.append("write", f"k{i}", hashlib.sha256(str(i).encode()).digest(), actor=f"{actor}-{i % 3}", result="ok")


def _ticks() -> itertools.count[float]:
    return itertools.count(1763700000.0, 0.25)


@pytest.fixture
def log(tmp_path):
    ticks = _ticks()
    with AuditLog(tmp_path / "audit.log", key=b"secret", clock=lambda: next(ticks)) as log:
        _fill(log)
        yield log


def _edit(path: Path, fn) -> None:
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(fn(data)))


def _crash(log: AuditLog) -> None:
    """Leave the log as a killed process would: files closed, nothing sealed."""
    log.store._close_fds()


# -- SHA-256 in C, every path against hashlib ---------------------------------------------


@pytest.mark.parametrize("path", auditchain.sha256_paths())
@settings(deadline=None)
@given(data=st.binary(max_size=300))
def test_sha256_paths_equal_hashlib(path, data):
    assert auditchain.sha256(data, path) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("path", auditchain.sha256_paths())
def test_sha256_paths_at_block_edges(path):
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 4096, 100_003):
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        assert auditchain.sha256(data, path) == hashlib.sha256(data).digest(), n
    assert "portable" in auditchain.sha256_paths() and auditchain.sha256_path() == auditchain.sha256_paths()[-1]
    with pytest.raises(ValueError, match="path: expected one of"):
        auditchain.sha256(b"", "sse9")


entry = st.tuples(st.text(max_size=12), st.sampled_from(["write", "delete", "é"]), st.text(min_size=1, max_size=40), st.binary(max_size=40), st.text(max_size=20))


@settings(deadline=None)
@given(st.lists(entry, min_size=1, max_size=12), st.integers(0, 2**40), st.binary(min_size=32, max_size=32))
def test_records_chain_as_encode_entry_defines(items, seq0, prev):
    times = [1.5 * i - 3.0 for i in range(len(items))]
    records, rows, starts, hashes = auditchain.encode_records([(*it, None) for it in items], seq0, prev, times)
    h = prev
    for i, (actor, op, key, digest, result) in enumerate(items):
        canonical = encode_entry(seq0 + i, times[i], actor, op, key, digest, result)
        h = hashlib.sha256(h + canonical).digest()
        assert rows[i] == (seq0 + i, times[i], actor, op, key, digest, result, h)
        assert hashes[32 * i : 32 * i + 32] == h
    count, end, status, _found, last, got_starts, got_hashes = auditchain.scan_records(records, 0, seq0, prev, True, True)
    assert (count, end, status, last) == (len(items), len(records), auditchain.OK, h)
    assert got_starts == starts and got_hashes == hashes


def test_encode_records_checks_its_arguments():
    with pytest.raises(TypeError, match="actor: expected a str, got int"):
        auditchain.encode_records([(1, "w", "k", b"", "")], 0, bytes(32), [0.0])
    with pytest.raises(TypeError, match="digest: expected bytes"):
        auditchain.encode_records([("a", "w", "k", "x", "")], 0, bytes(32), [0.0])
    with pytest.raises(ValueError, match="times: expected 1 entry times"):
        auditchain.encode_records([("a", "w", "k", b"", "")], 0, bytes(32), [])
    with pytest.raises(ValueError, match="prev: expected a 32-byte hash"):
        auditchain.encode_records([], 0, b"", [])


# -- the same chain as the SQLite log; proofs ----------------------------------------------


def test_binary_and_sqlite_logs_hold_the_same_chain(tmp_path):
    logs = []
    for name in ("a.log", "a.sqlite"):
        ticks = _ticks()
        log = AuditLog(tmp_path / name, clock=lambda t=ticks: next(t))  # type: ignore[misc]
        _fill(log, 37)
        log.append_many([("x", "write", f"b{i}", b"", "ok", None) for i in range(5)])
        logs.append(log)
    binary, sqlite = logs
    assert isinstance(binary.store, FileLogStore) and isinstance(sqlite.store, SQLiteLogStore)
    assert list(binary.entries()) == list(sqlite.entries()) and binary.head() == sqlite.head()
    assert binary.root() == sqlite.root() and binary.verify() == sqlite.verify() == 42
    p = binary.inclusion_proof(11)
    assert verify_inclusion(p, sqlite.checkpoint()) and p == sqlite.inclusion_proof(11)
    assert verify_consistency(binary.consistency_proof(16), first=sqlite.checkpoint(16))
    assert binary.verify([binary.checkpoint(7), sqlite.checkpoint()]) == 42
    assert [e.seq for e in binary.entries(40)] == [40, 41] and binary[3].key == "k3"
    for log in logs:
        log.close()


def test_reopen_keeps_entries_state_and_payloads(tmp_path):
    with AuditLog(tmp_path / "audit.log") as log:
        _fill(log)
        log.append("write", "p", b"d", payload=b"intent bytes")
        log.store.set_state({"replay:x": b"7"})
        head = log.head()
    with AuditLog(tmp_path / "audit.log") as log:
        assert log.head() == head and log.verify() == N + 1
        assert log.payload(N) == b"intent bytes" and log.payload(0) is None
        assert log.store.get_state("replay:x") == b"7" and log.store.states("replay:") == {"replay:x": b"7"}
        log.drop_payloads(N + 1)
        assert log.payload(N) is None and (tmp_path / "audit.log.intents").stat().st_size == 0
        log.append("delete", "p")
        assert log.verify() == N + 2


# -- tampering: every kind names its first bad entry ---------------------------------------


@settings(deadline=None, max_examples=60)
@given(seq=st.integers(0, N - 1), where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_names_its_entry(tmp_path_factory, seq, where, bit):
    path = tmp_path_factory.mktemp("flip") / "audit.log"
    with AuditLog(path) as log:
        _fill(log)
        start, stop = spans(path)[seq]
        at = start + int(where * (stop - start))

        def flip(data: bytearray) -> bytearray:
            data[at] ^= 1 << bit
            return data

        _edit(path, flip)
        assert_broken_at(log, seq)  # while open
    with AuditLog(path) as log:  # after reopening too; opening checks structure, not hashes, so
        assert_broken_at(log, seq)  # an append may be accepted, but never hides the damage
        try:
            log.append("write", "late")
        except AuditChainError as exc:
            assert "appends are refused" in str(exc)
        assert_broken_at(log, seq)


def test_deleted_record(log):
    start, stop = spans(log.store.path)[7]
    _edit(log.store.path, lambda d: d[:start] + d[stop:])
    assert_broken_at(log, 7, match="entry 7: missing or out of order")


def test_reordered_records(log):
    (a, b), (_, c) = spans(log.store.path)[4:6]
    _edit(log.store.path, lambda d: d[:a] + d[b:c] + d[a:b] + d[c:])
    assert_broken_at(log, 4)


def test_truncated_tail_while_open_and_after_reopen(log):
    path = log.store.path
    cut = spans(path)[15][0]
    os.truncate(path, cut)
    assert_broken_at(log, 15, match="tail was cut off")
    log.close()
    with AuditLog(path) as again:
        assert_broken_at(again, 15, match="tail was cut off")
        with pytest.raises(AuditChainError, match="appends are refused"):
            again.append("write", "late")


def test_truncation_with_a_forged_seal_is_caught_by_a_checkpoint(log):
    cp = log.checkpoint()
    path = log.store.path
    start15 = spans(path)[15][0]
    h14 = log[14].hash
    log.close()
    os.truncate(path, start15)
    state_path = path.with_name("audit.log.state")
    doc = json.loads(state_path.read_text())
    doc["seal"] = {"size": 15, "end": start15, "hash": h14.hex(), "closed": True}
    state_path.write_text(json.dumps(doc))
    with AuditLog(path) as again:
        assert again.verify() == 15  # the chain alone cannot know
        assert_broken_at(again, 15, checkpoints=[cp], match="checkpoint of 20")


def _chained_extra(log: AuditLog) -> bytes:
    last = log[N - 1]
    records, _, _, _ = auditchain.encode_records([("mallory", "write", "k", bytes(32), "ok")], N, last.hash, [last.time])
    return records


def test_appended_behind_its_back_while_open_and_after_a_clean_close(log):
    path = log.store.path
    extra = _chained_extra(log)
    with open(path, "ab") as f:
        f.write(extra)
    assert_broken_at(log, N, match="added behind its back")
    log.close()
    for _ in range(2):  # saving state on a refused log keeps its seal: the evidence survives reopening
        with AuditLog(path) as again:
            assert_broken_at(again, N, match="added behind its back")
            with pytest.raises(AuditChainError, match="appends are refused"):
                again.append("write", "late")
            again.store.set_state({"replay:x": b"1"})


def test_spliced_foreign_record(log, tmp_path):
    with AuditLog(tmp_path / "other.log") as other:
        _fill(other, actor="x")
        a, b = spans(other.store.path)[9]
        foreign = other.store.path.read_bytes()[a:b]
    s, e = spans(log.store.path)[9]
    _edit(log.store.path, lambda d: d[:s] + foreign + d[e:])
    assert_broken_at(log, 9)


def test_spliced_history_recomputed_is_caught_by_checkpoints(log, tmp_path):
    early, late = log.checkpoint(8), log.checkpoint()
    path = log.store.path
    keep = spans(path)[9][1]
    log.close()
    forged_path = tmp_path / "forged.log"
    forged_path.write_bytes(path.read_bytes()[:keep])  # the first 10 entries, then a rewritten history
    with AuditLog(forged_path) as forged:
        for i in range(10, N):
            forged.append("write", f"forged{i}", bytes(32), actor="mallory")
    for suffix in ("", ".state"):
        (tmp_path / f"audit.log{suffix}").write_bytes((tmp_path / f"forged.log{suffix}").read_bytes())
    with AuditLog(path) as again:
        assert again.verify() == N
        assert_broken_at(again, 8, checkpoints=[early, late], match="no longer matches")


# -- crashes: a torn tail is cut (and kept aside), anything else is reported ---------------


@pytest.mark.parametrize("tail", ["half-record", "zeros", "whole-record-damaged"])
def test_torn_unacknowledged_tail_is_cut_at_open(tmp_path, tail):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    _fill(log)
    extra = _chained_extra(log)
    _crash(log)
    bad = {"half-record": extra[: len(extra) // 2], "zeros": bytes(300), "whole-record-damaged": extra[:-1] + b"\x00"}[tail]
    end = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bad)
    with AuditLog(path) as again:
        assert again.store.torn_bytes == len(bad) and path.stat().st_size == end
        assert (tmp_path / f"audit.log.torn-{end}").read_bytes() == bad  # kept for inspection
        assert again.verify() == N
        again.append("write", "after")
        assert again.verify() == N + 1


def test_damage_before_the_seal_is_never_cut(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    _fill(log)
    log.store.set_state({"x": b"1"})  # seals all 20 entries
    _crash(log)
    last = spans(path)[-1][0]
    _edit(path, lambda d: d[: last + 50] + bytes([d[last + 50] ^ 1]) + d[last + 51 :])
    with AuditLog(path) as again:
        assert again.store.torn_bytes == 0 and again.head()[0] == N
        assert_broken_at(again, N - 1)


def test_damage_followed_by_more_records_is_never_cut(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    _fill(log)
    _crash(log)  # nothing sealed: every record is past the seal
    s = spans(path)[12][0]
    _edit(path, lambda d: d[: s + 60] + bytes([d[s + 60] ^ 1]) + d[s + 61 :])
    with AuditLog(path) as again:
        assert again.store.torn_bytes == 0
        assert_broken_at(again, 12)


def test_torn_intent_is_dropped(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.append("write", "a", b"d", payload=b"first")
    log.append("write", "b", b"d", payload=b"second")
    _crash(log)
    intents = tmp_path / "audit.log.intents"
    intents.write_bytes(intents.read_bytes()[:-3])
    with AuditLog(path) as again:
        assert again.payload(0) == b"first" and again.payload(1) is None
        assert again.verify() == 2


# -- files: one writer, what is and is not a log -------------------------------------------


def test_one_writer_at_a_time(log):
    with pytest.raises(MemstrataError, match="open in another process"):
        AuditLog(log.store.path)


def test_not_an_audit_log(tmp_path):
    (tmp_path / "x.log").write_bytes(b"not a log at all, clearly")
    with pytest.raises(CorruptDataError, match="not a memstrata audit log"):
        AuditLog(tmp_path / "x.log")
    (tmp_path / "v9.log").write_bytes(HEADER[:8] + (9).to_bytes(4, "little") + bytes(20))
    with pytest.raises(CorruptDataError, match="format 9 is not one this memstrata reads"):
        AuditLog(tmp_path / "v9.log")
    (tmp_path / "bad.log").write_bytes(HEADER)
    (tmp_path / "bad.log.state").write_text("{")
    with pytest.raises(CorruptDataError, match="state .* unreadable"):
        AuditLog(tmp_path / "bad.log")


def test_an_existing_sqlite_file_stays_sqlite_whatever_its_name(tmp_path):
    SQLiteLogStore(tmp_path / "old.sqlite").close()
    os.replace(tmp_path / "old.sqlite", tmp_path / "legacy-audit")
    with AuditLog(tmp_path / "legacy-audit") as log:
        assert isinstance(log.store, SQLiteLogStore)
    with AuditLog() as log:
        assert isinstance(log.store, FileLogStore) and log.store.path is None


def test_a_failed_append_leaves_no_entry_and_no_intent(tmp_path, monkeypatch):
    with AuditLog(tmp_path / "audit.log") as log:
        _fill(log, 3)
        log.store.native_append = False  # the Python path's writes (the native one: test_audit_native.py)

        def full(fd, data):
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr("memstrata.core._filelog._write_all", lambda fd, data: full(fd, data) if fd == log.store._fd else os.write(fd, data))
            with pytest.raises(MemstrataError, match="append failed .*nothing was logged"):
                log.append("write", "big", b"d", payload=b"value")
        assert log.payload(3) is None and log.verify() == 3
        log.append("delete", "big")
        assert log.payload(3) is None and log.verify() == 4


def test_full_durability_and_ram_logs(tmp_path):
    with AuditLog(FileLogStore(tmp_path / "full.log", "full")) as log:
        _fill(log)
        assert log.verify() == N
    with AuditLog(tmp_path / "full.log") as log:
        assert log.verify() == N
    with AuditLog() as ram:
        _fill(ram)
        ram.append("write", "p", b"d", payload=b"v")
        assert ram.verify() == N + 1 and ram.payload(N) == b"v" and ram.store.scan_chain()[0] == N + 1
    with pytest.raises(ValueError, match="durability: expected one of"):
        FileLogStore(tmp_path / "x.log", "sometimes")
