"""Access counts: how often each memory was read and when, kept apart from the memory records.

Every ``get`` and ``search`` touches what it returns. Rewriting each touched
record (text, content, metadata, embedding) would make reads write as much as
adds; instead the counts of a block of :data:`BLOCK` consecutive ids live in
one small record ``a/<block>`` (ids, counts, last access times), rewritten
whole when any member changed. Counts only grow and times only advance, so on
open the larger of the block's value and the memory record's value wins: a
record rewritten for another reason (an update) never loses a count, and a
block written before that update never rolls it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memstrata.agent.records import MemoryRecord
    from memstrata.agent.table import RecordTable
    from memstrata.store import MemoryStore

__all__ = ["BLOCK", "PREFIX", "AccessLog"]

#: ids per access record
BLOCK = 1024
#: key prefix of the access records
PREFIX = "a/"


class AccessLog:
    """Which access blocks changed since they were last written, and the writing and reading of them.

    ``pending_limit`` touched memories make :meth:`touch` report that a write is due.

    Examples
    --------
    >>> from memstrata import MemoryStore
    >>> from memstrata.agent.records import MemoryRecord, content_digest
    >>> from memstrata.agent.table import RecordTable
    >>> records = RecordTable()
    >>> records.put(MemoryRecord(id=7, content="x", text="x", category="fact", hash=content_digest((None,) * 3, "x")))
    >>> with MemoryStore() as store:
    ...     log = AccessLog()
    ...     rec = records[7]
    ...     _ = log.touch(rec, now=100.0)
    ...     records.set_access(7, rec.access_count, rec.last_access)
    ...     log.write(store, records)
    ...     records.set_access(7, 0, None)
    ...     AccessLog().load(store, records)
    ...     records[7].access_count, records[7].last_access
    (1, 100.0)
    """

    def __init__(self, pending_limit: int = 1000) -> None:
        self.pending_limit = pending_limit
        self._blocks: set[int] = set()  # blocks changed since they were written
        self._members: dict[int, set[int]] = {}  # block -> ids in it that were ever accessed
        self._pending = 0

    def __len__(self) -> int:
        """Touches not yet written."""
        return self._pending

    def touch(self, rec: MemoryRecord, now: float) -> bool:
        """Count one access of ``rec`` at ``now`` (the caller holds the changed count); True when a write is due."""
        rec.access_count += 1
        rec.last_access = now
        block = rec.id // BLOCK
        self._blocks.add(block)
        self._members.setdefault(block, set()).add(rec.id)
        self._pending += 1
        return self._pending >= self.pending_limit

    def forget(self, id_: int) -> None:
        """``id_`` is gone: its block is rewritten without it at the next write."""
        block = id_ // BLOCK
        self._blocks.add(block)
        self._members.get(block, set()).discard(id_)

    def write(self, store: MemoryStore, records: RecordTable) -> None:
        """Write every changed block (one ``store_many``); a block left with no accessed memory is deleted.

        Costs the accessed members of the changed blocks, not the whole memory.
        """
        if not self._blocks:
            return
        items = []
        for b in sorted(self._blocks):
            key = f"{PREFIX}{b}"
            ids = [i for i in sorted(self._members.get(b, ())) if i in records]
            counts = [records.access_of(i) for i in ids]
            kept = [(i, c, t) for i, (c, t) in zip(ids, counts) if c]
            if kept:
                items.append((key, {"ids": [i for i, _, _ in kept], "counts": [c for _, c, _ in kept],
                                    "last": [t for _, _, t in kept]}))
            elif key in store:
                store.delete(key)
        if items:
            store.store_many(items)
        self._blocks.clear()
        self._pending = 0

    def load(self, store: MemoryStore, records: RecordTable) -> None:
        """Raise each record's count and time to what its access block holds (records not in ``records`` are skipped)."""
        for key in list(store.keys()):
            if not (isinstance(key, str) and key.startswith(PREFIX)):
                continue
            value: Any = store.retrieve(key)
            for id_, count, last in zip(value["ids"], value["counts"], value["last"]):
                if id_ not in records:
                    continue
                held, held_last = records.access_of(id_)
                if last is not None and (held_last is None or last > held_last):
                    held_last = float(last)
                records.set_access(id_, max(held, int(count)), held_last)
        for id_ in records.accessed():  # format-1 records carry their counts themselves
            self._members.setdefault(id_ // BLOCK, set()).add(id_)
