"""The audit log: append-only entries chained by SHA-256, with Merkle checkpoints and proofs.

Entry ``i`` has ``hash_i = SHA256(hash_{i-1} || encode(entry_i))`` (``hash_-1``
is 32 zero bytes); the Merkle tree's leaves are these hashes. The binary and
SQLite logs also record their head (size and last hash) with their appends, so
a deleted or added tail is caught without any outside help; in PostgreSQL the
head is the last entry (the database refuses deletes), so a tail cut by someone
who removed that guard is caught, like a rewrite that recomputes every hash and
the head, by a checkpoint kept elsewhere. Entries are encoded and
hashed in C (:mod:`memstrata._native.auditchain`) for every log store.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from memstrata._closing import ClosesOnExit
from memstrata._native import auditchain
from memstrata.core._merkle import Checkpoint, ConsistencyProof, InclusionProof, MerkleLevels
from memstrata.errors import CorruptDataError

if TYPE_CHECKING:
    from memstrata.core._logstore import LogStore

__all__ = ["AuditChainError", "AuditEntry", "AuditLog", "Batch", "encode_entry"]

GENESIS = b"\x00" * 32
_HEAD = struct.Struct(">Qd")


class AuditChainError(CorruptDataError):
    """The audit log failed verification; ``sequence`` is the first entry that is wrong or missing."""

    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"audit log: entry {sequence}: {reason}")
        self.sequence = sequence
        self.reason = reason


class AuditEntry(NamedTuple):
    """One audit record. ``digest`` is the SHA-256 of the value's bytes (empty for none)."""

    seq: int
    time: float
    actor: str
    operation: str
    key: str
    digest: bytes
    result: str
    hash: bytes


def _field(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def encode_entry(seq: int, when: float, actor: str, operation: str, key: str, digest: bytes, result: str) -> bytes:
    """The canonical bytes of an entry that its chain hash covers (length-prefixed fields)."""
    return b"".join(
        (
            _HEAD.pack(seq, when),
            _field(actor.encode()),
            _field(operation.encode()),
            _field(key.encode()),
            _field(digest),
            _field(result.encode()),
        )
    )


def chain_hash(
    prev: bytes,
    seq: int,
    when: float,
    actor: str,
    operation: str,
    key: str,
    digest: bytes,
    result: str,
    _sha: Any = hashlib.sha256,
    _pack: Any = _HEAD.pack,
) -> bytes:
    """``SHA256(prev || encode_entry(...))``, inlined: append and verify spend their time here."""
    a, o, k, r = actor.encode(), operation.encode(), key.encode(), result.encode()
    entry_hash: bytes = _sha(
        b"".join(
            (
                prev,
                _pack(seq, when),
                len(a).to_bytes(4, "big"),
                a,
                len(o).to_bytes(4, "big"),
                o,
                len(k).to_bytes(4, "big"),
                k,
                len(digest).to_bytes(4, "big"),
                digest,
                len(r).to_bytes(4, "big"),
                r,
            )
        )
    ).digest()
    return entry_hash


Row = tuple[int, float, str, str, str, bytes, str, bytes]  # an AuditEntry as stored
_entry = functools.partial(tuple.__new__, AuditEntry)  # a row as an AuditEntry, without _make's Python frame
Item = tuple[str, str, str, bytes, str, bytes | None]  # actor, operation, key, digest, result, payload


class Batch(NamedTuple):
    """Entries chained onto a log's head, ready for its store to commit."""

    rows: list[AuditEntry]
    payloads: list[tuple[int, bytes]]
    #: the rows as binary log records, where each starts in ``records`` (native u64), their hashes end to end
    records: bytes
    starts: bytes
    hashes: bytes


#: why a binary log's record failed (``auditchain`` scan statuses)
_SCAN_REASONS = {
    auditchain.SEQ: "missing or out of order (found entry {found} in its place)",
    auditchain.PREV: "it does not follow the entry before it (its previous hash differs)",
    auditchain.HASH: "its hash does not match its content and the previous hash",
    auditchain.FORM: "its record is malformed (its field lengths do not add up)",
    auditchain.TORN: "its record is cut short",
}


class AuditLog(ClosesOnExit):
    """Append-only, hash-chained, Merkle-checkpointed log of memory operations.

    Parameters
    ----------
    store : str, Path or log store, optional
        A file: the binary log (one writing process; see
        ``memstrata.core._filelog``), or an SQLite log when the path ends in
        ``.sqlite``/``.sqlite3``/``.db`` or is an existing SQLite file. Or a
        log store object such as :class:`memstrata.core.PostgresLogStore`
        (many processes may append to one PostgreSQL log; appends are
        serialized in the database). Default: a binary log in RAM.
    key : bytes, optional
        Key for signing checkpoints (HMAC-SHA256).
    clock : callable
        Seconds since the epoch for entry times.

    Examples
    --------
    >>> from memstrata.core import AuditLog, verify_inclusion, verify_consistency
    >>> log = AuditLog()
    >>> for i in range(10):
    ...     _ = log.append("write", f"k{i}", actor="agent-1")
    >>> log.verify()
    10
    >>> proof = log.inclusion_proof(3)
    >>> verify_inclusion(proof), len(proof.path) <= 4
    (True, True)
    >>> verify_consistency(log.consistency_proof(4, 10))
    True
    """

    def __init__(self, store: Any = None, *, key: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        if store is None or isinstance(store, (str, bytes)) or hasattr(store, "__fspath__"):
            from memstrata.core._logstore import open_log_file

            store = open_log_file(store)
        self.store: LogStore = store
        self.key = key
        self.clock = clock
        self._lock = threading.Lock()
        self._tree: MerkleLevels | None = None

    # ------------------------------------------------------------ append --

    def append(
        self,
        operation: str,
        key: str,
        digest: bytes = b"",
        *,
        actor: str | None = None,
        result: str = "",
        payload: bytes | None = None,
    ) -> AuditEntry:
        """Append one entry and commit it; returns it with its sequence number and hash.

        ``payload`` (optional bytes) is kept beside the entry, outside the
        chain, until :meth:`drop_payloads`: :class:`MemoryCore` uses it as the
        intent record it replays after a crash.
        """
        return self.append_many([(actor or "", operation, key, digest, result, payload)])[0]

    def append_seq(self, item: Item) -> int:
        """:meth:`append_many` of one item, returning only its sequence number (the single write's path)."""
        one = getattr(self.store, "append_one", None)
        if one is None or type(item[3]) is not bytes:  # the general path (and its errors)
            return self.append_many([item])[0].seq
        seq: int = one(item, self.clock)[0]
        return seq

    def append_many(self, items: Sequence[Item]) -> list[AuditEntry]:
        """Append ``(actor, operation, key, digest, result, payload)`` items in one transaction."""
        items = list(items)
        for it in items:
            if not isinstance(it[3], bytes):
                raise TypeError(f"digest: expected bytes, got {type(it[3]).__name__}")
        clock = self.clock
        one = getattr(self.store, "append_one", None)  # a store's path for a single entry, when it has one
        if one is not None and len(items) == 1:
            return [_entry(one(items[0], clock))]

        def build(size: int, prev: bytes) -> Batch:
            times = [clock() for _ in items]
            records, rows, starts, hashes = auditchain.encode_records(items, size, prev, times)
            payloads = [(seq, it[5]) for seq, it in enumerate(items, size) if it[5] is not None]
            return Batch(list(map(_entry, rows)), payloads, records, starts, hashes)

        return self.store.append(build)

    # ------------------------------------------------------------- reads --

    def __len__(self) -> int:
        return self.store.head()[0]

    def head(self) -> tuple[int, bytes]:
        """``(size, hash of the last entry)`` as recorded by the log."""
        return self.store.head()

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[AuditEntry]:
        """Entries with ``start <= seq < stop`` in order (read in chunks)."""
        for row in self.store.rows(start, stop):
            yield AuditEntry(*row)

    def __getitem__(self, seq: int) -> AuditEntry:
        for e in self.entries(seq, seq + 1):
            return e
        raise IndexError(f"seq: no entry {seq} in a log of {len(self)}")

    def payload(self, seq: int) -> bytes | None:
        return self.store.payload(seq)

    def drop_payloads(self, upto: int) -> None:
        """Forget the intent payloads of entries ``< upto`` (every layer has applied them)."""
        self.store.drop_payloads(upto)

    # ------------------------------------------------------------ verify --

    def verify(self, checkpoints: Iterable[Checkpoint] = ()) -> int:
        """Recompute the whole chain; returns the number of entries.

        Raises
        ------
        AuditChainError
            Naming the first bad sequence number: a changed byte, a missing,
            reordered or spliced entry, a tail cut off or added behind the
            log's back, or a checkpoint (``checkpoints``, kept elsewhere) whose
            root no longer matches; then ``sequence`` is the size of the largest
            checkpoint that still matches (every entry before it is proven).
        """
        size, head_hash = self.store.head()
        cps = sorted(checkpoints, key=lambda c: c.size)
        scan = getattr(self.store, "scan_chain", None)
        if scan is not None:  # a binary log: every record checked in C
            expected, prev, leaves = self._scan(scan, size, bool(cps))
        else:
            expected, prev, leaves = self._walk_rows(bool(cps))
        if expected > size:
            raise AuditChainError(
                size, f"the log records {size} entries but holds {expected}: entries were added behind its back"
            )
        if expected < size:
            raise AuditChainError(
                expected, f"the log records {size} entries but holds {expected}: the tail was cut off"
            )
        if size and prev != head_hash:
            raise AuditChainError(size - 1, "the recorded head hash does not match the last entry")
        tree = MerkleLevels()
        for h in leaves:
            tree.append(h)
        good = 0
        for cp in cps:
            if cp.size > expected:
                raise AuditChainError(
                    expected, f"a checkpoint of {cp.size} entries exists but the log holds {expected}"
                )
            if not hmac.compare_digest(tree.root(cp.size), cp.root):
                raise AuditChainError(
                    good, f"the checkpoint of {cp.size} entries no longer matches: entries were rewritten"
                )
            good = cp.size
        return expected

    @staticmethod
    def _scan(
        scan: Callable[[bool], tuple[int, int, int, bytes, bytes]], size: int, leaves: bool
    ) -> tuple[int, bytes, list[bytes]]:
        """Check a binary log's records as they are on disk; ``(count, last hash, hashes if leaves)``."""
        expected, status, found, prev, blob = scan(leaves)
        if status != auditchain.OK:
            if expected < size:
                raise AuditChainError(expected, _SCAN_REASONS[status].format(found=found))
            raise AuditChainError(
                size, f"the log records {size} entries but holds more bytes: entries were added behind its back"
            )
        return expected, prev, [blob[i : i + 32] for i in range(0, len(blob), 32)]

    def _walk_rows(self, leaves: bool) -> tuple[int, bytes, list[bytes]]:
        """Check the rows of a database log one by one; ``(count, last hash, hashes if leaves)``."""
        prev = GENESIS
        expected = 0
        hashes: list[bytes] = []
        for seq, when, actor, op, key, digest, result, h in self.store.rows(0, None):
            if seq != expected:
                raise AuditChainError(expected, f"missing or out of order (found entry {seq} in its place)")
            if chain_hash(prev, seq, when, actor, op, key, digest, result) != h:
                raise AuditChainError(seq, "its hash does not match its content and the previous hash")
            if leaves:
                hashes.append(h)
            prev = h
            expected += 1
        return expected, prev, hashes

    def _hashes(self, start: int, stop: int) -> Iterable[bytes]:
        hashes = getattr(self.store, "hashes", None)
        if hashes is not None:
            return hashes(start, stop)  # type: ignore[no-any-return]
        return (row[7] for row in self.store.rows(start, stop))

    # ------------------------------------------------------ checkpoints --

    def _levels(self) -> MerkleLevels:
        """The Merkle levels, caught up with entries appended since (by any process)."""
        with self._lock:
            if self._tree is None:
                self._tree = MerkleLevels()
            tree = self._tree
            size = self.store.head()[0]
            if len(tree) < size:
                for h in self._hashes(len(tree), size):
                    tree.append(h)
            return tree

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root of the first ``size`` entries (all by default)."""
        tree = self._levels()
        size = len(tree) if size is None else self._check_size("size", size, len(tree))
        return tree.root(size)

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """A checkpoint of the first ``size`` entries, signed when the log has a key."""
        tree = self._levels()
        size = len(tree) if size is None else self._check_size("size", size, len(tree))
        cp = Checkpoint(size, tree.root(size), self.clock())
        if self.key is not None:
            cp = Checkpoint(cp.size, cp.root, cp.time, hmac.new(self.key, cp.message(), hashlib.sha256).digest())
        return cp

    @staticmethod
    def _check_size(name: str, value: int, limit: int, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= limit:
            raise ValueError(f"{name}: expected an integer in [{low}, {limit}], got {value!r}")
        return value

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the log of ``size`` entries (default: all); ≤ ⌈log2 size⌉ hashes."""
        tree = self._levels()
        size = len(tree) if size is None else self._check_size("size", size, len(tree), 1)
        self._check_size("index", index, size - 1)
        entry_hash = self.store.entry_hash(index)
        return InclusionProof(index, size, entry_hash, tree.inclusion_path(index, size), tree.root(size))

    def consistency_proof(self, m: int, n: int | None = None) -> ConsistencyProof:
        """Proof that the log of ``m`` entries is a prefix of the log of ``n`` (default: all)."""
        tree = self._levels()
        n = len(tree) if n is None else self._check_size("n", n, len(tree))
        self._check_size("m", m, n)
        path = () if m in (0, n) else tree.consistency_path(m, n)
        return ConsistencyProof(m, n, tree.root(m), tree.root(n), path)

    def close(self) -> None:
        """Close the log store (a second call does nothing: every store's ``close`` is idempotent)."""
        self.store.close()
