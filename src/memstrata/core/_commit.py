"""Group commit: the writes of concurrent threads reach the log and the durable store as one batch, in log order.

A writer alone (nothing queued, the write lock free) commits its write at
once. Otherwise it queues it: the write at the head of the queue takes the
core's write lock and then commits every write queued by then (those of the
threads that arrived while the previous batch was being committed); the
others sleep until their batch is done. A batch takes one append of entries
to the log
(one ``fdatasync`` with durability ``"full"``), one transaction of the
durable store (on PostgreSQL, the entries and the records in one statement),
then each write's cache, vector, trust and event steps in log order; a
write alone is a batch of one, on the same path.

The order every layer sees is the log's: entries are numbered in queue order,
the durable store receives each key's last record of the batch, and the
best-effort layers apply the records one after another, oldest first.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from memstrata.core._layers import PATTERN, TOMBSTONE, VALUE, encode_record
from memstrata.core._results import WriteFailedError, WriteResult, failed
from memstrata.errors import MemstrataError

__all__ = ["GroupCommit", "Pending"]


class Pending:
    """One queued write or delete, and its outcome once a batch has committed it."""

    __slots__ = (
        "attest",
        "digest",
        "done",
        "error",
        "existed",
        "kb",
        "key",
        "kind",
        "layers",
        "op",
        "payload",
        "rec",
        "result",
        "seq",
        "ttl",
        "who",
    )

    def __init__(
        self,
        key: str,
        op: str,
        kind: int,
        payload: bytes | None,
        digest: bytes,
        who: str,
        ttl: float | None,
        attest: bool,
    ) -> None:
        self.key, self.kb, self.op, self.kind = key, key.encode(), op, kind
        self.payload, self.digest, self.who, self.ttl, self.attest = payload, digest, who, ttl, attest
        self.seq = -1
        self.rec = b""
        self.existed: bool | None = None
        self.layers: dict[str, str] = {}
        self.done = False
        self.result: WriteResult | None = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def reject(self, message: str, cause: Exception) -> None:
        """Fail with :class:`WriteFailedError` (``message``, this write's outcome so far), caused by ``cause``."""
        err = WriteFailedError(f"write of {self.key!r}: {message}", self.outcome(False))
        err.__cause__ = cause
        self.fail(err)

    def outcome(self, ok: bool) -> WriteResult:
        return WriteResult(self.key, self.seq, ok, self.layers, self.digest, self.existed)


class GroupCommit:
    """The write half of :class:`memstrata.core.MemoryCore` (a mixin over its layers)."""

    audit: Any
    durable: Any
    pattern_store: Any
    cache: Any
    events: Any
    trust: Any
    config: Any
    clock: Any
    failures: dict[str, int]
    writes_total: int
    writes_failed: int
    _has_patterns: bool
    _one_database: bool
    _pg_tables: tuple[str, str]
    _since_checkpoint: int
    _lock: Any

    if TYPE_CHECKING:  # provided by MemoryCore and Recovery

        def _read_record(self, kb: bytes) -> bytes | None: ...

        def _apply_best_effort(
            self, key: str, rec: bytes, payload: bytes, ttl_seconds: float | None, out: dict[str, str] | None = None
        ) -> dict[str, str]: ...

        def _best_effort_failed(self, layer: str, seq: int, key: str, exc: BaseException) -> str: ...

        def _save_state(self, next_seq: int, closed: bool = False) -> None: ...

    def _init_commit(self) -> None:
        self._queue: deque[Pending] = deque()  # writes waiting for a batch, oldest first
        self._turn = threading.Condition(threading.Lock())  # guards the queue; signals committed batches
        self._intent = f"intent {self.config.instance}"

    def _submit(
        self, key: str, op: str, kind: int, payload: bytes | None, digest: bytes, who: str, ttl: float | None,
        attest: bool,
    ) -> WriteResult:
        """Commit a write (``payload``) or delete (None), alone or in a batch with the writes queued beside it."""
        if not self._queue and self._lock.acquire(blocking=False):
            try:  # alone: a batch of one, without the queue
                if not self._one_database:
                    return self._write_alone(key, op, kind, payload, digest, who, ttl, attest)
                p = Pending(key, op, kind, payload, digest, who, ttl, attest)
                try:
                    self._commit([p])
                except BaseException as exc:
                    self._no_write_left([p], exc)
            finally:
                self._lock.release()
        else:
            p = Pending(key, op, kind, payload, digest, who, ttl, attest)
            self._commit_queued(p)
        if p.error is not None:
            raise p.error
        assert p.result is not None
        return p.result

    def _commit_queued(self, p: Pending) -> None:
        """Queue ``p``; the write at the head of the queue commits every write queued so far, the others wait.

        Waiting writes sleep on a condition, not on the write lock, so a batch's
        writers all resume when it is committed, and the next head starts the
        next batch with everything queued meanwhile.
        """
        turn = self._turn
        with turn:
            self._queue.append(p)
            while not p.done and self._queue[0] is not p:
                turn.wait()
            if p.done:
                return
        batch: list[Pending] = []
        try:
            with self._lock:
                with turn:  # taken once the lock is ours: the writes that queued while we waited for it join
                    batch = list(self._queue)
                self._commit_batch(batch)
        finally:
            with turn:
                for _ in batch:
                    self._queue.popleft()
                turn.notify_all()

    # ----------------------------------------------------------------- batch --

    def _commit_batch(self, batch: list[Pending]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:
            self._no_write_left(batch, exc)

    @staticmethod
    def _no_write_left(batch: list[Pending], exc: BaseException) -> None:
        """No write of the batch is left without an outcome: those without one fail with ``exc``."""
        for q in batch:
            if not q.done:
                q.fail(exc)

    def _commit(self, batch: list[Pending]) -> None:
        self.writes_total += len(batch)
        if self.durable is not None:
            for p in batch:
                if p.kind == TOMBSTONE:
                    self._note_existed(batch)
                    break
        if self._one_database:
            ok = self._commit_postgres_batch(batch) if len(batch) > 1 else []
            if not ok:
                ok = [p for p in batch if not p.done and self._commit_postgres(p)]
        else:
            ok = self._commit_local(batch)
        for p in ok:
            self._finish(p)
        if ok:
            self._since_checkpoint += len(ok)
            if self._since_checkpoint >= self.config.checkpoint_every:
                self._save_state(ok[-1].seq + 1)

    def _note_existed(self, batch: list[Pending]) -> None:
        """For each delete, whether its key had a value just before it (earlier writes of the batch count)."""
        live: dict[bytes, bool] = {}
        for p in batch:
            if p.kind == TOMBSTONE:
                p.existed = live[p.kb] if p.kb in live else self._read_record(p.kb) is not None
            live[p.kb] = p.kind != TOMBSTONE

    def _commit_local(self, batch: list[Pending]) -> list[Pending]:
        """Log the batch's entries with their intent payloads, then apply them to the durable store; the writes that succeeded."""
        intent = self._intent
        try:
            if len(batch) == 1:  # the usual case: no lists, no entry objects
                p = batch[0]
                p.seq = self.audit.append_seq((p.who, p.op, p.key, p.digest, intent, p.payload))
            else:
                entries = self.audit.append_many([(p.who, p.op, p.key, p.digest, intent, p.payload) for p in batch])
                for p, e in zip(batch, entries):
                    p.seq = e.seq
        except Exception as exc:
            self._audit_failed(batch, exc)
            return []
        for p in batch:
            p.rec = encode_record(p.kb, p.seq, p.kind, p.payload or b"")
            p.layers["audit"] = "ok"
        if self.durable is None:
            return batch
        broken = self._apply_durable(batch)
        if not broken:
            return batch
        self._abort(broken)
        return [p for p in batch if not p.done]

    def _write_alone(
        self, key: str, op: str, kind: int, payload: bytes | None, digest: bytes, who: str, ttl: float | None,
        attest: bool,
    ) -> WriteResult:
        """:meth:`_commit` of an embedded write alone (a single writer's path), under the write lock.

        The same steps in the same order as a batch of one, without its
        :class:`Pending`, lists and loops: the write's state lives in locals,
        and a :class:`Pending` is made only when a critical layer fails (for
        :meth:`_audit_failed` / :meth:`_abort`).
        """
        self.writes_total += 1
        kb = key.encode()
        durable = self.durable
        existed = None
        if kind == TOMBSTONE and durable is not None:
            existed = self._read_record(kb) is not None
        try:
            seq = self.audit.append_seq((who, op, key, digest, self._intent, payload))
        except Exception as exc:
            p = Pending(key, op, kind, payload, digest, who, ttl, attest)
            p.existed = existed
            self._audit_failed([p], exc)
            assert p.error is not None
            raise p.error from exc
        rec = encode_record(kb, seq, kind, payload or b"")
        layers = {"audit": "ok"}
        if durable is not None:
            try:
                if kind == VALUE and not self._has_patterns and self.pattern_store is not durable:
                    durable.put_newer(kb, rec)  # what _durable_ops gives for a value when no pattern was written
                else:
                    for backend, k, r in self._durable_ops(kb, rec, kind):
                        backend.put_newer(k, r)
                layers["durable"] = "ok"
            except Exception as exc:
                p = Pending(key, op, kind, payload, digest, who, ttl, attest)
                p.seq, p.rec, p.layers, p.existed = seq, rec, layers, existed
                self._abort([(p, exc)])
                assert p.error is not None
                raise p.error from exc
        result = self._committed_result(key, seq, kind, rec, payload, digest, who, ttl, attest, layers, existed)
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.config.checkpoint_every:
            self._save_state(seq + 1)
        return result

    def _audit_failed(self, batch: list[Pending], exc: Exception) -> None:
        self.writes_failed += len(batch)
        self.failures["audit"] += len(batch)
        for p in batch:
            p.layers["audit"] = failed(exc)
            p.reject(f"the audit log failed ({exc}); nothing was applied", exc)

    def _abort(self, broken: list[tuple[Pending, Exception]]) -> None:
        """Log an ``abort`` entry for each write the durable store refused, and fail it."""
        self.audit.append_many(
            [(p.who, "abort", p.key, b"", f"abort {p.seq}: {type(error).__name__}", None) for p, error in broken]
        )
        for p, error in broken:
            self.writes_failed += 1
            self.failures["durable"] += 1
            p.layers["durable"] = failed(error)
            if self.trust is not None and p.attest and p.who:
                self._attest(p.who, p.seq, p.key, p.layers, False)
            p.reject(f"the durable store failed ({error}); the write was aborted", error)

    def _apply_durable(self, batch: list[Pending]) -> list[tuple[Pending, Exception]]:
        """Put the batch's records into the durable store (one call per backend when it has ``put_many``); the failures.

        When a batched put fails, the records are put again one by one, in
        log order, so each write gets its own outcome (puts are idempotent).
        """
        if len(batch) > 1:
            ops: list[tuple[Any, bytes, bytes]] = []
            for p in batch:
                ops += self._durable_ops(p.kb, p.rec, p.kind)
            try:
                _put_many(ops)
            except Exception:
                pass
            else:
                for p in batch:
                    p.layers["durable"] = "ok"
                return []
        broken = []
        for p in batch:
            try:
                for backend, kb, rec in self._durable_ops(p.kb, p.rec, p.kind):
                    backend.put_newer(kb, rec)
                p.layers["durable"] = "ok"
            except Exception as exc:
                broken.append((p, exc))
        return broken

    def _durable_ops(self, kb: bytes, rec: bytes, kind: int) -> list[tuple[Any, bytes, bytes]]:
        """The ``(backend, key, record)`` puts that make the durable store hold ``rec`` (values and patterns tables)."""
        if kind == PATTERN:
            self._has_patterns = True
        if self.pattern_store is self.durable:
            return [(self.durable, kb, rec)]
        if kind == PATTERN:
            return [(self.pattern_store, kb, rec), (self.durable, kb, _tombstone_like(kb, rec))]
        if self._has_patterns:
            return [(self.durable, kb, rec), (self.pattern_store, kb, _tombstone_like(kb, rec))]
        return [(self.durable, kb, rec)]

    def _commit_postgres_batch(self, batch: list[Pending]) -> list[Pending]:
        """The batch's entries and records in one PostgreSQL transaction, one round trip; [] when not done that way.

        A batch that cannot go by compare-and-set (another writer took a
        number) is left to :meth:`_commit_postgres`, entry by entry.
        """
        clock, intent = self.clock, self._intent
        items = [(clock(), p.who, p.op, p.key, p.digest, intent, p.payload, _targets(p.kind)) for p in batch]
        try:
            done = self.audit.store.append_apply_many(items, self._pg_tables)
        except Exception as exc:
            self.writes_failed += len(batch)
            self.failures["audit"] += len(batch)
            for p in batch:
                p.layers["audit"] = p.layers["durable"] = failed(exc)
                p.reject(f"PostgreSQL failed ({exc}); nothing was applied", exc)
            return []
        if done is None:
            return []
        for p, (seq, _, (rv, rp)) in zip(batch, done):
            p.seq = seq
            p.layers["audit"] = p.layers["durable"] = "ok"
            self._has_patterns = self._has_patterns or p.kind == PATTERN
            p.rec = rp if p.kind == PATTERN else rv
        return batch

    def _commit_postgres(self, p: Pending) -> bool:
        """The entry and the durable record in one PostgreSQL statement (see :meth:`PostgresLogStore.append_apply`)."""
        try:
            seq, _, (rv, rp) = self.audit.store.append_apply(
                self.clock(),
                p.who,
                p.op,
                p.key,
                p.digest,
                self._intent,
                p.payload,
                self._pg_tables,
                _targets(p.kind),
            )
        except Exception as exc:
            self.writes_failed += 1
            self.failures["audit"] += 1
            p.layers["audit"] = p.layers["durable"] = failed(exc)
            p.reject(f"PostgreSQL failed ({exc}); nothing was applied", exc)
            return False
        p.seq = seq
        p.layers["audit"] = p.layers["durable"] = "ok"
        self._has_patterns = self._has_patterns or p.kind == PATTERN
        p.rec = rp if p.kind == PATTERN else rv  # the record the statement wrote, for the other layers
        return True

    def _finish(self, p: Pending) -> None:
        """The best-effort steps of a committed write of a batch, then its result."""
        p.result = self._committed_result(p.key, p.seq, p.kind, p.rec, p.payload, p.digest, p.who, p.ttl, p.attest,
                                          p.layers, p.existed)
        p.done = True

    def _committed_result(
        self, key: str, seq: int, kind: int, rec: bytes, payload: bytes | None, digest: bytes, who: str,
        ttl: float | None, attest: bool, layers: dict[str, str], existed: bool | None,
    ) -> WriteResult:
        """The best-effort steps of a committed write (cache, trust, events; outcomes into ``layers``), then its result."""
        self._apply_best_effort(key, rec, payload or b"", ttl, layers)
        if self.trust is not None and attest and who:
            self._attest(who, seq, key, layers, True)
        events = self.events
        if events is not None:
            try:
                if not events.post(
                    "memory.delete" if kind == TOMBSTONE else "memory.write", key, seq, dict(layers), who, self.clock()
                ):
                    raise MemstrataError("the event queue is full")
                layers["events"] = "ok"
            except Exception as exc:
                layers["events"] = self._best_effort_failed("events", seq, key, exc)
        return WriteResult(key, seq, True, layers, digest, existed)

    def _attest(self, who: str, seq: int, key: str, layers: dict[str, str], success: bool) -> None:
        """Tell the trust ledger how ``who``'s write went (its outcome goes into ``layers``)."""
        try:
            self.trust.update(who, success=success)
            layers["trust"] = "ok"
        except Exception as exc:
            layers["trust"] = self._best_effort_failed("trust", seq, key, exc)


def _targets(kind: int) -> tuple[int, int | None]:
    """The record kinds a write of ``kind`` puts into PostgreSQL's (values, patterns) tables.

    A value or a delete leaves the patterns table alone: its record in the
    values table is newer than any pattern there, which is then no longer
    live (see :func:`memstrata.core._layers.pattern_is_live`).
    """
    return (TOMBSTONE, PATTERN) if kind == PATTERN else (kind, None)


def _tombstone_like(kb: bytes, rec: bytes) -> bytes:
    """A tombstone with the sequence number of ``rec`` (what the other table of a key holds)."""
    return encode_record(kb, int.from_bytes(rec[:8], "big"), TOMBSTONE, b"")


def _put_many(ops: list[tuple[Any, bytes, bytes]]) -> None:
    """Apply ``(backend, key, record)`` puts: each key's last record, one ``put_many`` per backend that has it."""
    by_backend: dict[int, tuple[Any, dict[bytes, bytes]]] = {}
    for backend, kb, rec in ops:
        by_backend.setdefault(id(backend), (backend, {}))[1][kb] = rec
    for backend, recs in by_backend.values():
        many = getattr(backend, "put_many", None)
        if many is not None:
            many(list(recs.items()))
        else:
            for kb, rec in recs.items():
                backend.put_newer(kb, rec)
