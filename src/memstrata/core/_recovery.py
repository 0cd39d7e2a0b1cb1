"""MemoryCore's recovery: replay of the audit (intent) log on open, replay positions, retries.

The log is the source of truth. On open every layer is brought up to it:
entries past this writer's saved position are applied again (each key's last
non-aborted entry; every layer keeps the newer record, so applying twice or
late changes nothing), trust updates for this writer's own entries are counted
exactly once, and events are re-emitted with ``replayed=True``.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from memstrata.core import _layers
from memstrata.core._audit import AuditEntry
from memstrata.core._events import Event
from memstrata.core._layers import HEAD_BYTES, PATTERN, TOMBSTONE, VALUE, decode_record, encode_record, unwrap_value
from memstrata.errors import MemstrataError

__all__ = ["Recovery", "aborted_seq"]

_WRITE_OPS = ("write", "write.pattern", "delete")


def aborted_seq(result: str) -> int:
    """The sequence number an ``abort`` entry cancels, from its result ``"abort <seq>: <error type>"``."""
    return int(result.split(":", 1)[0].split()[1])


class Recovery:
    """The recovery half of :class:`memstrata.core.MemoryCore` (a mixin over its layers)."""

    audit: Any
    durable: Any
    pattern_store: Any
    cache: Any
    vector: Any
    trust: Any
    events: Any
    config: Any
    clock: Any
    failures: dict[str, int]
    retries: dict[str, int]
    replayed: int
    _pending: dict[str, dict[int, str]]
    _since_checkpoint: int
    _lock: Any

    if TYPE_CHECKING:  # provided by MemoryCore (the write half)

        def _put_durable(self, kb: bytes, rec: bytes, kind: int) -> None: ...

        def _apply_best_effort(
            self, key: str, rec: bytes, payload: bytes, ttl_seconds: float | None, out: dict[str, str] | None = None
        ) -> dict[str, str]: ...

        def _read_record(self, kb: bytes) -> bytes | None: ...

    # -------------------------------------------------------------- recovery --

    def _state_name(self) -> str:
        return f"replay:{self.config.instance}"

    def _recover(self) -> None:
        """Bring every layer up to the log: replay entries past the saved position."""
        store = self.audit.store
        raw = store.get_state(self._state_name())
        if raw:
            state = json.loads(raw)
        else:  # a new writer: only what writers still open (or killed) may not have applied
            start = min(self._open_positions(), default=len(self.audit))
            state = {"from": start, "trust_applied": len(self.audit)}
        trust_raw = store.get_state(f"trust:{self.config.instance}")
        if self.trust is not None and trust_raw:
            self.trust.load_bytes(trust_raw)
        if self.vector is not None and self.durable is not None:
            self._rebuild_vectors()
        start = int(state["from"])
        size = len(self.audit)
        if start < size:
            self._replay(self.audit.entries(start, size), int(state["trust_applied"]))
        self._save_state(size)

    def _live(self, kb: bytes, pattern: bytes) -> bool:
        """Whether a record of the patterns table is the value of its key (see :func:`memstrata.core._layers.pattern_is_live`)."""
        return _layers.pattern_is_live(pattern, self.durable.get(kb))

    def _rebuild_vectors(self) -> None:
        from memstrata.codecs import deserialize

        for ns in {id(self.durable): self.durable, id(self.pattern_store): self.pattern_store}.values():
            for kb, rec in ns.scan(b""):
                r = decode_record(kb, rec, "durable store")
                if ns is not self.durable and not self._live(kb, rec):
                    continue  # a pattern that a later value or delete covers
                if r.kind != TOMBSTONE:
                    value = unwrap_value(r.kind, deserialize(r.payload))
                    if isinstance(value, str):
                        try:
                            self.vector.put(kb.decode(), value)
                        except Exception:  # best-effort: an index that cannot take it must not stop the open
                            self.failures["vector"] += 1

    def _replay(self, entries: Any, trust_applied: int) -> None:
        aborted: set[int] = set()
        ops: list[AuditEntry] = []
        for e in entries:
            if e.operation == "abort":
                aborted.add(aborted_seq(e.result))
            elif e.operation in _WRITE_OPS:
                ops.append(e)
        last: dict[str, AuditEntry] = {}
        for e in ops:
            if e.seq not in aborted:
                last[e.key] = e
        for e in last.values():
            self._apply_entry(e)
            self.replayed += 1
        mine = f"intent {self.config.instance}"
        for e in ops:
            if self.trust is not None and e.seq >= trust_applied and e.result == mine and e.actor:
                self.trust.update(e.actor, success=e.seq not in aborted)
            if self.events is not None and e.seq not in aborted:
                kind = "memory.delete" if e.operation == "delete" else "memory.write"
                self.events.emit(Event(kind, e.key, e.seq, {"replayed": "ok"}, e.actor, self.clock(), replayed=True))

    def _apply_entry(self, e: AuditEntry) -> None:
        """Make every layer hold what entry ``e`` says (idempotent: newer records win)."""
        kb = e.key.encode()
        if e.operation == "delete":
            rec = encode_record(kb, e.seq, TOMBSTONE, b"")
            payload = b""
        else:
            payload_or_none = self.audit.payload(e.seq)
            if payload_or_none is None:
                # applied to the durable store with the entry (PostgreSQL) or before the payload was
                # pruned: the other layers take the durable record if it is still this entry's
                ns = self.pattern_store if e.operation == "write.pattern" else self.durable
                held = None if ns is None else ns.get(kb)
                if held is None or decode_record(kb, held, "durable store").seq != e.seq:
                    return
                payload_or_none = held[HEAD_BYTES:]
            payload = payload_or_none
            if hashlib.sha256(payload).digest() != e.digest:
                raise MemstrataError(f"audit log: the intent payload of entry {e.seq} does not match its digest")
            rec = encode_record(kb, e.seq, PATTERN if e.operation == "write.pattern" else VALUE, payload)
        if self.durable is not None:
            self._put_durable(kb, rec, rec[8])
        self._apply_best_effort(e.key, rec, payload, None)

    def _open_positions(self) -> list[int]:
        """Replay positions of the writers sharing this log that did not close cleanly."""
        states = self.audit.store.states("replay:")
        return [p["from"] for p in map(json.loads, states.values()) if not p.get("closed")]

    def _save_state(self, next_seq: int, closed: bool = False) -> None:
        """Persist the replay position (the oldest entry some layer may still lack) and the trust ledger."""
        pending = [s for p in self._pending.values() for s in p]
        start = min(pending, default=next_seq)
        closed = closed and not pending
        values = {self._state_name(): json.dumps({"from": start, "trust_applied": next_seq, "closed": closed}).encode()}
        if self.trust is not None:
            values[f"trust:{self.config.instance}"] = self.trust.to_bytes()
        store = self.audit.store
        store.set_state(values)
        # a payload is needed until every writer sharing the log has passed it
        store.drop_payloads(min(self._open_positions(), default=start))
        self._since_checkpoint = 0

    def retry(self) -> dict[str, int]:
        """Re-apply best-effort steps that failed; returns how many are still pending per layer."""
        with self._lock:
            for layer, pending in self._pending.items():
                for seq, key in sorted(pending.items()):
                    self.retries[layer] += 1
                    try:
                        self._retry_one(layer, seq, key)
                    except Exception:
                        continue
                    del pending[seq]
            return {layer: len(p) for layer, p in self._pending.items()}

    def _retry_one(self, layer: str, seq: int, key: str) -> None:
        kb = key.encode()
        if layer == "events":
            e = self.audit[seq]
            kind = "memory.delete" if e.operation == "delete" else "memory.write"
            if not self.events.emit(Event(kind, key, seq, {"retried": "ok"}, e.actor, self.clock(), replayed=True)):
                raise MemstrataError("event queue full")
            return
        if layer == "trust":
            self.trust.update(self.audit[seq].actor, success=True)
            return
        rec = self._read_record(kb) if self.durable is not None else None
        if rec is None:
            rec = encode_record(kb, seq, TOMBSTONE, b"")
        r = decode_record(kb, rec, "durable store")
        if layer == "cache":
            self.cache.put_newer(kb, rec, self.config.default_ttl_seconds)
        elif layer == "vector":
            self._apply_vector(key, r.kind, r.payload)

    def _apply_vector(self, key: str, kind: int, payload: bytes) -> None:
        from memstrata.codecs import deserialize

        value = None if kind == TOMBSTONE else unwrap_value(kind, deserialize(payload))
        if isinstance(value, str):
            self.vector.put(key, value)
        else:
            self.vector.delete(key)
