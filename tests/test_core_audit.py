"""AuditLog: the SHA-256 chain, tamper detection, Merkle proofs (RFC 6962 / 9162) and checkpoints."""

from __future__ import annotations

import hashlib
import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata.core import (
    AuditChainError,
    AuditLog,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    encode_entry,
    verify_consistency,
    verify_inclusion,
)
from memstrata.core._merkle import MerkleLevels

# -- reference: RFC 6962 §2.1, written straight from the recursive definitions --------------


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_mth(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, leaves[:k], b) + [ref_mth(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def _tree(leaves: list[bytes]) -> MerkleLevels:
    t = MerkleLevels()
    for h in leaves:
        t.append(h)
    return t


def assert_broken_at(log: AuditLog, seq: int, checkpoints: tuple[Checkpoint, ...] | list[Checkpoint] = (), match: str | None = None) -> None:
    """``verify`` fails, naming entry ``seq`` as the first one it cannot vouch for."""
    with pytest.raises(AuditChainError, match=match) as info:
        log.verify(checkpoints)
    assert info.value.sequence == seq


@pytest.fixture
def log(tmp_path):
    with AuditLog(tmp_path / "audit.sqlite", key=b"secret") as log:
        for i in range(20):
            log.append("write", f"k{i}", hashlib.sha256(str(i).encode()).digest(), actor=f"agent-{i % 3}", result="ok")
        yield log


# -- tree hashing and proofs against the reference ----------------------------------------


@settings(deadline=None)
@given(st.integers(1, 70), st.data())
def test_proofs_match_rfc_reference_and_verify(n, data):
    leaves = _leaves(n)
    tree = _tree(leaves)
    assert tree.root() == ref_mth(leaves)
    i = data.draw(st.integers(0, n - 1))
    path = tree.inclusion_path(i, n)
    assert list(path) == ref_path(i, leaves)
    assert len(path) <= math.ceil(math.log2(n)) if n > 1 else len(path) == 0
    assert verify_inclusion(InclusionProof(i, n, leaves[i], path, tree.root()))
    m = data.draw(st.integers(1, n))
    cpath = () if m == n else tree.consistency_path(m, n)
    assert list(cpath) == (ref_subproof(m, leaves, True) if m < n else [])
    assert len(cpath) <= math.ceil(math.log2(n)) + 1
    assert verify_consistency(ConsistencyProof(m, n, ref_mth(leaves[:m]), ref_mth(leaves), cpath))


@st.composite
def trees(draw, min_size: int) -> tuple[int, list[bytes], MerkleLevels]:
    """A tree of ``min_size``..60 leaves: ``(n, leaves, tree)``."""
    n = draw(st.integers(min_size, 60))
    leaves = _leaves(n)
    return n, leaves, _tree(leaves)


@settings(deadline=None)
@given(trees(2), st.data())
def test_forged_inclusion_proofs_are_rejected(grown, data):
    n, leaves, tree = grown
    i = data.draw(st.integers(0, n - 1))
    good = InclusionProof(i, n, leaves[i], tree.inclusion_path(i, n), tree.root())
    forgery = data.draw(st.sampled_from(["leaf", "path-byte", "index", "size", "root", "drop", "extra"]))
    if forgery == "leaf":
        bad = InclusionProof(i, n, leaves[(i + 1) % n], good.path, good.root)
    elif forgery == "path-byte":
        j = data.draw(st.integers(0, len(good.path) - 1))
        p = bytearray(good.path[j])
        p[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        bad = InclusionProof(i, n, good.entry_hash, good.path[:j] + (bytes(p),) + good.path[j + 1 :], good.root)
    elif forgery == "index":
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
        bad = InclusionProof(other, n, good.entry_hash, good.path, good.root)
    elif forgery == "size":
        bad = InclusionProof(i, n + data.draw(st.integers(1, n)), good.entry_hash, good.path, good.root)
    elif forgery == "root":
        bad = InclusionProof(i, n, good.entry_hash, good.path, ref_mth(leaves[:-1]))
    elif forgery == "drop":
        bad = InclusionProof(i, n, good.entry_hash, good.path[:-1], good.root)
    else:
        bad = InclusionProof(i, n, good.entry_hash, good.path + (leaves[0],), good.root)
    assert verify_inclusion(good)
    trusted = Checkpoint(n, good.root)  # size and root are only meaningful as a checkpoint one trusts
    assert not verify_inclusion(bad, trusted)
    if forgery not in ("size", "root"):
        assert not verify_inclusion(bad)


@settings(deadline=None)
@given(trees(3), st.data())
def test_forged_consistency_proofs_are_rejected(grown, data):
    n, leaves, tree = grown
    m = data.draw(st.integers(1, n - 1))
    good = ConsistencyProof(m, n, tree.root(m), tree.root(n), tree.consistency_path(m, n))
    assert verify_consistency(good)
    other = _leaves(n + 1)[1:]  # a different history of the same length
    forgery = data.draw(st.sampled_from(["first-root", "second-root", "path-byte", "sizes", "history"]))
    if forgery == "first-root":
        bad = ConsistencyProof(m, n, ref_mth(other[:m]), good.second_root, good.path)
    elif forgery == "second-root":
        bad = ConsistencyProof(m, n, good.first_root, ref_mth(other), good.path)
    elif forgery == "path-byte":
        j = data.draw(st.integers(0, len(good.path) - 1))
        p = bytearray(good.path[j])
        p[0] ^= 0x80
        bad = ConsistencyProof(m, n, good.first_root, good.second_root, good.path[:j] + (bytes(p),) + good.path[j + 1 :])
    elif forgery == "sizes":
        bad = ConsistencyProof(m, n + 1, good.first_root, good.second_root, good.path)
    else:  # a rewritten prefix: the old root is not a prefix of the new tree
        t2 = _tree(other[:m] + leaves[m:])
        bad = ConsistencyProof(m, n, good.first_root, t2.root(n), t2.consistency_path(m, n))
    assert not verify_consistency(bad, Checkpoint(m, good.first_root), Checkpoint(n, good.second_root))
    if forgery in ("path-byte", "history"):
        assert not verify_consistency(bad)


def test_proofs_from_the_log_and_checkpoints(log):
    n = len(log)
    for i in (0, 7, n - 1):
        p = log.inclusion_proof(i)
        assert verify_inclusion(p, log.checkpoint()) and len(p.path) <= math.ceil(math.log2(n))
        assert p.entry_hash == log[i].hash
    cp5 = log.checkpoint(5)
    proof = log.consistency_proof(5)
    assert verify_consistency(proof, first=cp5, second=log.checkpoint())
    assert not verify_consistency(proof, first=log.checkpoint(6))
    # exported, signed, kept by a third party
    restored = Checkpoint.from_json(cp5.to_json())
    assert restored == cp5 and restored.verify_signature(b"secret") and not restored.verify_signature(b"other")
    assert log.verify([restored, log.checkpoint()]) == n
    with pytest.raises(ValueError, match="index: expected an integer in"):
        log.inclusion_proof(n)
    with pytest.raises(ValueError, match="m: expected an integer in"):
        log.consistency_proof(n + 1)
    with pytest.raises(ValueError, match="expected a checkpoint exported"):
        Checkpoint.from_json("{}")
    with pytest.raises(TypeError, match="proof: expected an InclusionProof"):
        verify_inclusion(proof)  # type: ignore[arg-type]


def test_consistency_edge_sizes(log):
    assert verify_consistency(log.consistency_proof(0))
    assert verify_consistency(log.consistency_proof(len(log), len(log)))
    assert verify_consistency(log.consistency_proof(16))  # a power of two: the first root is a node


def test_proofs_follow_appends(log):
    cp = log.checkpoint()
    log.append("delete", "k3", actor="agent-1")
    assert verify_consistency(log.consistency_proof(cp.size), first=cp)
    assert verify_inclusion(log.inclusion_proof(len(log) - 1))


# -- tampering: every kind fails verification with the first bad sequence -----------------


def _raw(log: AuditLog) -> sqlite3.Connection:
    conn = sqlite3.connect(log.store.path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    return conn


def test_the_database_refuses_updates_and_deletes(log):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log.store.execute("UPDATE entries SET key='x' WHERE seq=3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log.store.execute("DELETE FROM entries WHERE seq=3")
    assert log.verify() == 20


@settings(deadline=None, max_examples=40)
@given(seq=st.integers(0, 19), column=st.sampled_from(["time", "actor", "operation", "key", "digest", "result", "hash"]), bit=st.integers(0, 7))
def test_flipped_byte_names_its_entry(tmp_path_factory, seq, column, bit):
    path = tmp_path_factory.mktemp("flip") / "audit.sqlite"
    log = AuditLog(path)
    for i in range(20):
        log.append("write", f"k{i}", bytes(32), actor="a", result="ok")
    conn = _raw(log)
    value = conn.execute(f"SELECT {column} FROM entries WHERE seq=?", (seq,)).fetchone()[0]
    if column == "time":
        new: object = value + 2.0 ** -(bit + 1)
    else:
        b = bytearray(value.encode() if isinstance(value, str) else value)
        b[0] ^= 1 << bit if isinstance(value, bytes) else 1 << min(bit, 5)
        new = b.decode() if isinstance(value, str) else bytes(b)
    conn.execute(f"UPDATE entries SET {column}=? WHERE seq=?", (new, seq))
    assert_broken_at(log, seq)
    log.close()


def test_deleted_entry(log):
    _raw(log).execute("DELETE FROM entries WHERE seq=7")
    assert_broken_at(log, 7, match="entry 7: missing")


def test_reordered_entries(log):
    conn = _raw(log)
    rows = {r[0]: r for r in conn.execute("SELECT * FROM entries WHERE seq IN (4, 5)")}
    conn.execute("DELETE FROM entries WHERE seq IN (4, 5)")
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", (4, *rows[5][1:]))
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", (5, *rows[4][1:]))
    assert_broken_at(log, 4)


def test_truncated_tail(log):
    _raw(log).execute("DELETE FROM entries WHERE seq>=15")
    assert_broken_at(log, 15, match="tail was cut off")


def test_truncation_with_a_forged_head_is_caught_by_a_checkpoint(log):
    cp = log.checkpoint()
    conn = _raw(log)
    conn.execute("DELETE FROM entries WHERE seq>=15")
    h = conn.execute("SELECT hash FROM entries WHERE seq=14").fetchone()[0]
    conn.execute("UPDATE head SET size=15, hash=?", (h,))
    assert log.verify() == 15  # the chain alone cannot know
    assert_broken_at(log, 15, checkpoints=[cp], match="checkpoint of 20")


def test_appended_behind_its_back(log):
    conn = _raw(log)
    last = conn.execute("SELECT * FROM entries WHERE seq=19").fetchone()
    fields = (20, last[1], "mallory", "write", "k", bytes(32), "ok")
    h = hashlib.sha256(last[7] + encode_entry(*fields)).digest()  # a correctly chained extra entry
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", (*fields, h))
    assert_broken_at(log, 20, match="added behind its back")


def test_spliced_history_recomputed_is_caught_by_checkpoints(log, tmp_path):
    early, late = log.checkpoint(8), log.checkpoint()
    # rewrite entries 10.. with a valid-looking chain, head included: only the checkpoints can tell
    other = AuditLog(tmp_path / "other.sqlite")
    conn = _raw(log)
    rows = conn.execute("SELECT * FROM entries WHERE seq<10 ORDER BY seq").fetchall()
    conn.execute("DELETE FROM entries")
    conn.execute("UPDATE head SET size=0, hash=zeroblob(32)")
    other_conn = sqlite3.connect(other.store.path, isolation_level=None)
    for r in rows:
        other_conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", r)
    other_conn.execute("UPDATE head SET size=10, hash=?", (rows[-1][7],))
    for i in range(10, 20):
        other.append("write", f"forged{i}", bytes(32), actor="mallory")
    for r in other_conn.execute("SELECT * FROM entries ORDER BY seq"):
        conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", r)
    conn.execute("UPDATE head SET size=20, hash=?", (other.head()[1],))
    other.close()
    assert log.verify() == 20
    assert_broken_at(log, 8, checkpoints=[early, late], match="no longer matches")


def test_spliced_foreign_entry(log, tmp_path):
    other = AuditLog(tmp_path / "other.sqlite")
    for i in range(20):
        other.append("write", f"k{i}", bytes(32), actor="x")
    foreign = sqlite3.connect(other.store.path).execute("SELECT * FROM entries WHERE seq=9").fetchone()
    conn = _raw(log)
    conn.execute("DELETE FROM entries WHERE seq=9")
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", foreign)
    assert_broken_at(log, 9)
    other.close()


def test_append_validates_digest():
    with AuditLog() as log:
        with pytest.raises(TypeError, match="digest: expected bytes"):
            log.append("write", "k", "not-bytes")  # type: ignore[arg-type]
        assert len(log) == 0 and log.verify() == 0
