"""The write path of :class:`~memstrata.agent.AgentMemory`: dedup and supersession on add, complete forget."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from memstrata._heap import release_free_heap
from memstrata.agent.dedup import find_near, nearest_stored
from memstrata.agent.records import MemoryRecord, content_digest, to_seconds

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory
    from memstrata.agent.table import RecordTable

__all__ = ["CHUNK_ROWS", "TRIM_ROWS", "AddOptions", "add_batch", "forget_many"]

#: a batch of at least this many rows hands its freed temporaries back to the OS (memstrata._heap)
TRIM_ROWS = 256
#: records of a batch written together (one store transaction)
CHUNK_ROWS = 256


class AddOptions(TypedDict, total=False):
    """The keyword options of :meth:`AgentMemory.add` / :meth:`AgentMemory.add_many`, each optional."""

    category: str | None
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    valid_at: Any
    supersedes: int | None
    pinned: bool


def add_batch(memory: AgentMemory, contents: Sequence[Any], name: str, *, metadata: Any = None, vectors: Any = None,
              category: str | None = None, user_id: Any = None, agent_id: Any = None, run_id: Any = None,
              valid_at: Any = None, supersedes: int | None = None, pinned: bool = False) -> list[MemoryRecord]:
    """Add ``contents`` (``name`` is "content" for one, else the argument name for messages).

    Every row is checked (and embedded) before any is written. Records reach
    the store in transactions of :data:`CHUNK_ROWS`: a batch's temporaries
    (stored forms, frames), freed among the records it keeps, leave holes in
    Python's heap that the OS never gets back, so fewer at a time leave fewer.
    Duplicates are found over the whole batch at once, and its vectors join
    the index in one call (the index fits its quantizer to its first large batch).
    """
    single = name == "content"
    texts = [memory._check_content(c, name if single else f"{name}[{i}]") for i, c in enumerate(contents)]
    metas = [memory._check_metadata(m) for m in (metadata if metadata is not None else [None] * len(texts))]
    if len(metas) != len(texts):
        raise ValueError(f"metadata: expected {len(texts)} entries (one per content), got {len(metas)}")
    scope = memory._scope(user_id, agent_id, run_id)
    if category is not None:
        memory.config.table[category]  # raises naming the known categories
    t_valid = to_seconds(valid_at, "valid_at")
    with memory._lock:
        memory._check_open()
        if supersedes is not None and supersedes not in memory._records:
            raise KeyError(f"supersedes: no memory with id {supersedes!r}")
        x, sketches, encoded = memory._embed_rows(texts, vectors, "vector" if single else "vectors")
        try:
            if len(texts) == 1:  # the usual single add: one row, no batch bookkeeping
                out = [_add_one(memory, contents[0], texts[0], metas[0], x, scope, category, t_valid, supersedes,
                                pinned, sketches, encoded)]
            else:
                out = _add_rows(memory, contents, texts, metas, x, scope, category, t_valid, supersedes, pinned,
                                sketches, encoded)
        except BaseException:  # a store write failed (or was interrupted) part-way: RAM must not hold more than it
            memory._reload()
            raise
        del x, texts, metas
    if len(out) >= TRIM_ROWS:  # after the batch's temporaries (its vectors too) are freed
        release_free_heap()
    return out


def _add_rows(memory: AgentMemory, contents: Sequence[Any], texts: list[str], metas: list[dict[str, Any]],
              x: np.ndarray | None, scope: tuple[Any, Any, Any], category: str | None, t_valid: float | None,
              supersedes: int | None, pinned: bool, sketches: np.ndarray | None = None,
              encoded: list[tuple[bytes, float]] | None = None) -> list[MemoryRecord]:
    """Write checked rows (under the memory's lock); the records to hand back.

    ``sketches`` / ``encoded``: the rows' sketches and stored int8 forms when the caller made them already.
    """
    now = memory._now()
    out: list[MemoryRecord] = []
    new: list[MemoryRecord] = []
    new_vecs: dict[int, np.ndarray] = {}
    new_rows: list[int] = []  # rows of x stored as new memories
    changed: dict[int, MemoryRecord] = {}
    unwritten = 0  # new records not yet in the store: new[-unwritten:]
    batch: dict[int, MemoryRecord] = {}  # the batch's new records by id
    stale: set[int] = set()  # ids of new records changed after install (hand back what the table holds)
    records = memory._records
    if sketches is None and x is not None and memory._vectors is not None:
        sketches = memory._vectors.sketch(x)
    new_forms: dict[int, tuple[bytes, float]] = {}
    near = None
    if x is not None and memory.config.near_duplicates != "keep":
        near = find_near(memory, x, scope, sketches)
    for i, (content, text, meta) in enumerate(zip(contents, texts, metas)):
        if unwritten + len(changed) >= CHUNK_ROWS:
            _write(memory, new[len(new) - unwritten :], changed, new_vecs, new_forms)
            unwritten = 0
        digest = content_digest(scope, text)
        mode = "exact"
        target = _exact_target(records, digest)
        if target is None and near is not None:
            target = near.match(i)
            mode = memory.config.near_duplicates
        if target is not None and mode in ("exact", "merge"):
            if target in batch:
                stale.add(target)
            out.append(_merge(memory, target, meta, mode, supersedes, now, changed))
            continue
        rec = _new_record(memory, content, text, meta, scope, category, now, t_valid, supersedes, pinned, digest)
        if target is not None:
            _link(memory, rec, target, batch.get(target))
        if supersedes is not None:
            memory._supersede(records[supersedes], rec.id, rec.valid_at, changed)
        if x is not None:
            new_vecs[rec.id] = x[i]
            new_rows.append(i)
            if encoded is not None:
                new_forms[rec.id] = encoded[i]
        memory._install(rec, index_text=False)
        if near is not None:
            near.added(i, rec.id)
        new.append(rec)
        batch[rec.id] = rec
        unwritten += 1
        out.append(rec)
    _write(memory, new[len(new) - unwritten :], changed, new_vecs, new_forms)
    if new_vecs:
        assert memory._vectors is not None
        assert x is not None and sketches is not None
        if len(new_rows) == x.shape[0]:  # every row is new (a single add that was no duplicate): no copies
            memory._vectors.add_many(list(new_vecs), x, sketches)
        else:
            memory._vectors.add_many(list(new_vecs), x[new_rows], sketches[new_rows])
    memory.counters["added"] += len(new)
    return [r if r.duplicate_of is not None else (records[r.id] if r.id in stale else r).copy() for r in out]


def _add_one(memory: AgentMemory, content: Any, text: str, meta: dict[str, Any], x: np.ndarray | None,
             scope: tuple[Any, Any, Any], category: str | None, t_valid: float | None, supersedes: int | None,
             pinned: bool, sketches: np.ndarray | None, encoded: list[tuple[bytes, float]] | None) -> MemoryRecord:
    """:func:`_add_rows` of one row (``x`` (1, d) or None): the same decisions and writes, without the batch's
    chunks, maps of rows and near-duplicate matcher."""
    now = memory._now()
    records = memory._records
    vectors = memory._vectors
    if sketches is None and x is not None and vectors is not None:
        sketches = vectors.sketch(x)
    changed: dict[int, MemoryRecord] = {}
    digest = content_digest(scope, text)
    mode = "exact"
    target = _exact_target(records, digest)
    if target is None and x is not None and memory.config.near_duplicates != "keep":
        target = nearest_stored(memory, x, scope, sketches)
        mode = memory.config.near_duplicates
    if target is not None and mode in ("exact", "merge"):
        dup = _merge(memory, target, meta, mode, supersedes, now, changed)
        _write(memory, [], changed, {}, {})
        return dup
    rec = _new_record(memory, content, text, meta, scope, category, now, t_valid, supersedes, pinned, digest)
    if target is not None:
        _link(memory, rec, target, None)
    if supersedes is not None:
        memory._supersede(records[supersedes], rec.id, rec.valid_at, changed)
    memory._install(rec, index_text=False)
    forms = {} if x is None or encoded is None else {rec.id: encoded[0]}
    vecs = {rec.id: x[0]} if x is not None and encoded is None else {}
    if changed:  # a supersession: the superseded record is rewritten in the same write
        _write(memory, [rec], changed, vecs, forms)
    else:  # what _write does for one new record, without its merge of the maps
        memory._persist([rec], vecs, forms)
        memory._keywords.add(rec.id, rec.text)
    if x is not None:
        assert vectors is not None and sketches is not None
        vectors.add_many([rec.id], x, sketches)
    memory.counters["added"] += 1
    if type(rec.content) is str and not rec.metadata and not rec.links:
        return rec  # nothing of it is shared: the table, filter row and store took copies of its fields
    return rec.copy()


def _exact_target(records: RecordTable, digest: str) -> int | None:
    """The stored memory with ``digest`` (same scope and normalized text) that no read hides, or None."""
    for j in records.with_digest(digest):  # usually none
        if not records.is_restricted(j):
            return j
    return None


def _merge(memory: AgentMemory, target: int, meta: dict[str, Any], mode: str, supersedes: int | None, now: float,
           changed: dict[int, MemoryRecord]) -> MemoryRecord:
    """A duplicate row merged into the stored ``target`` (access counted, new metadata keys merged into ``changed``);
    the record handed back for it."""
    records = memory._records
    rec = records[target]  # a snapshot: what changes is put back (_touch, _refresh)
    memory._touch(rec, now)
    if any(k not in rec.metadata or rec.metadata[k] != v for k, v in meta.items()):
        rec.metadata = {**rec.metadata, **meta}  # only a change is written: access counts have their own log
        memory._refresh(rec, memory._restricted(rec))
        changed[rec.id] = rec
    memory.counters["exact_duplicates" if mode == "exact" else "near_merged"] += 1
    if supersedes is not None and supersedes != rec.id:  # the new fact was already known
        memory._supersede(records[supersedes], rec.id, now, changed)
    dup = rec.copy()
    dup.duplicate_of = rec.id
    return dup


def _new_record(memory: AgentMemory, content: Any, text: str, meta: dict[str, Any], scope: tuple[Any, Any, Any],
                category: str | None, now: float, t_valid: float | None, supersedes: int | None, pinned: bool,
                digest: str) -> MemoryRecord:
    """The record of a new memory under a new id (not installed yet)."""
    content_copy = content if isinstance(content, str) else copy.deepcopy(dict(content))
    kind = content_copy.get("type") if isinstance(content_copy, dict) else None
    return MemoryRecord(
        id=memory._new_id(), content=content_copy, text=text,
        category=category or memory.config.table.categorize(content_copy), type=None if kind is None else str(kind),
        user_id=scope[0], agent_id=scope[1], run_id=scope[2], metadata=meta, created_at=now,
        updated_at=now, valid_at=now if t_valid is None else t_valid, supersedes=supersedes,
        pinned=bool(pinned), hash=digest,
    )


def _link(memory: AgentMemory, rec: MemoryRecord, target: int, other: MemoryRecord | None) -> None:
    """Link the new ``rec`` and its near duplicate ``target`` both ways in RAM (``other``: target's record when
    the batch holds it); only the new record stores the link (the other's back-link is derived from it on
    open: MemoryState._link_back)."""
    rec.links = [target]
    if other is None:
        other = memory._records[target]
    other.links = [*other.links, rec.id]  # ids grow, so links stay sorted
    memory._records.set_links(target, other.links)
    memory.counters["near_links"] += 1


def _write(memory: AgentMemory, new: list[MemoryRecord], changed: dict[int, MemoryRecord],
           new_vecs: dict[int, np.ndarray], new_forms: dict[int, tuple[bytes, float]]) -> None:
    """Store ``new`` records and the ``changed`` ones (then emptied), and index the new texts.

    ``new_vecs``: vectors of the batch's new records, none in the index yet; a
    changed record may be one of them (then its changed snapshot is the one
    written), written by an earlier chunk. ``new_forms``: the stored int8 forms of some of them, made already.
    """
    if changed:
        ids = {r.id for r in new}
        recs = [changed.get(r.id, r) for r in new] + [r for r in changed.values() if r.id not in ids]
    else:  # the usual single add: its one new record
        recs = new
    memory._persist(recs, {r.id: new_vecs[r.id] for r in recs if r.id in new_vecs and r.id not in new_forms},
                    {r.id: new_forms[r.id] for r in recs if r.id in new_forms})
    changed.clear()
    if len(new) == 1:
        memory._keywords.add(new[0].id, new[0].text)
    elif new:
        memory._keywords.add_many([(r.id, r.text) for r in new])


def forget_many(memory: AgentMemory, ids: Iterable[int]) -> int:
    """Remove ``ids`` from the store (every version), every index, and every record that names them."""
    with memory._lock:
        memory._check_open()
        gone = [i for i in dict.fromkeys(ids) if i in memory._records]
        if not gone:
            return 0
        gone_set = set(gone)
        memory._generation += 1
        for id_ in gone:
            rec = memory._records.pop(id_)
            for v in range(1, rec.version):
                memory.store.delete(f"h/{id_}/{v}")
            memory.store.delete(f"m/{id_}")
            memory._n_restricted -= memory._restricted(rec)
            memory._columns.set(id_, None)
            memory._keywords.remove(id_, rec.text)
            if memory._vectors is not None:
                memory._vectors.remove(id_)
            memory._access.forget(id_)
        touched = []
        for id_ in memory._records.naming(gone_set):  # links, supersession and pattern evidence must not name them
            rec = memory._records[id_]
            rec.links = [i for i in rec.links if i not in gone_set]
            if rec.supersedes in gone_set:
                rec.supersedes = None
            if rec.superseded_by in gone_set:
                rec.superseded_by = None
            evidence = rec.content.get("evidence") if isinstance(rec.content, dict) else None
            if isinstance(evidence, list) and any(i in gone_set for i in evidence):
                rec.content = {**rec.content, "evidence": [i for i in evidence if i not in gone_set]}
            memory._refresh(rec, memory._restricted(rec))
            touched.append(rec)
        memory._persist(touched)
        memory.counters["forgotten"] += len(gone)
        return len(gone)
