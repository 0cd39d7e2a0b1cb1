"""The state behind an AgentMemory: its records and the RAM indexes derived from them, and their persistence.

Every memory is one record in a :class:`~memstrata.MemoryStore` under
``m/<id>`` (:func:`~memstrata.agent.records.to_stored`); the record set, the
digests for exact-duplicate checks, the filter columns, the keyword and vector
indexes and the access counts are rebuilt from the store on open and kept in
step by the helpers here, which :class:`~memstrata.agent.AgentMemory`'s public
methods call under its lock.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memstrata._heap import release_free_heap
from memstrata.agent.access import AccessLog
from memstrata.agent.config import AgentConfig
from memstrata.agent.embedders import Embedder
from memstrata.agent.keywords import KeywordIndex
from memstrata.agent.offheap import OffHeapIndex
from memstrata.agent.records import MemoryRecord, from_stored, to_stored
from memstrata.agent.rowfile import remove_stale
from memstrata.agent.table import RecordTable
from memstrata.agent.vectorindex import VectorIndex, decode_vector, encode_vector, unit_rows
from memstrata.store import MemoryStore
from memstrata.vectors.filters import MetadataColumns

__all__ = ["FORMAT", "RESERVED_FIELDS", "SCOPES", "MemoryState"]

#: Filterable fields every memory has; user metadata may not use these names.
RESERVED_FIELDS = frozenset(
    ("live", "category", "type", "user_id", "agent_id", "run_id", "created_at", "updated_at", "valid_at",
     "invalid_at", "expired", "tier", "pinned")
)
#: The scope fields, in the order of a scope tuple
SCOPES = ("user_id", "agent_id", "run_id")
_META_KEY = "agent/meta"
_COUNTERS = ("added", "exact_duplicates", "near_links", "near_merged", "forgotten", "searches", "pruned_age",
             "pruned_relevance", "pruned_redundancy", "archived", "demoted")
#: record fields a filter row holds only when set
_OPTIONAL_ROW = ("type", "user_id", "agent_id", "run_id", "invalid_at")
_optional_values = operator.attrgetter(*_OPTIONAL_ROW)
_ID_BLOCK = 1024  # ids are reserved in blocks, so a forgotten id is never handed out again, even after reopen
# 2: records leave out what can be derived (records.to_stored); 3: a near-duplicate link is stored on one side
# only (the other side is derived on open, _link_back). Stores of every earlier format read as well.
FORMAT = 3
_READABLE = (1, 2, 3)
#: unit rows (n, d) or None, their sketches (n, 2) or None, their int8 stored forms or None
Embedded = tuple[np.ndarray | None, np.ndarray | None, list[tuple[bytes, float]] | None]


def new_index(dim: int, config: AgentConfig, directory: Path | None = None) -> VectorIndex:
    """The vector index ``config`` asks for: rows in RAM, or sign bits in RAM and rows in a file in ``directory``."""
    if config.vector_rows == "file":
        assert config.vector_shortlist is not None
        return OffHeapIndex(dim, shortlist=config.vector_shortlist, directory=directory)
    return VectorIndex(dim, config.vector_codec, shortlist=config.vector_shortlist)


class MemoryState:
    """Records, derived indexes and counters of one agent memory directory (see the module docstring)."""

    def __init__(self, path: Path | None, store: MemoryStore, config: AgentConfig, embedder: Embedder | None,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.embedder = embedder
        self.clock = clock
        self.path = path
        self.store = store
        self._lock = threading.RLock()
        self._records = RecordTable()  # by id, column by column; also finds ids by digest
        self._columns = MetadataColumns()
        self._keywords = KeywordIndex()
        self._vectors: VectorIndex | None = None
        self._access = AccessLog()
        self._generation = 0  # bumped by every change, so a prune plan knows it is stale
        self._n_restricted = 0  # live records that some reads hide (expired, or with an end of validity)
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self._next_id = 0
        self._reserved_to = 0
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("AgentMemory: this memory is closed; open the directory again")

    def _held(self, id_: int) -> MemoryRecord:
        """The record of ``id_`` this memory holds (open memories only); ``KeyError`` naming the id."""
        self._check_open()
        rec = self._records.get(id_)
        if rec is None:
            raise KeyError(f"id: no memory with id {id_!r}")
        return rec

    def _load(self) -> None:
        if self.path is not None and not self.store.read_only:
            remove_stale(self.path)  # row files of a killed process: this writer holds the directory now
        meta = self.store.retrieve(_META_KEY, None)
        if meta is not None:
            if meta.get("format") not in _READABLE:
                raise ValueError(f"path: agent memory format {meta.get('format')!r} is not supported (expected one of {_READABLE})")
            self._next_id = self._reserved_to = int(meta["reserved_to"])
            self.counters.update(meta.get("counters", {}))
            if meta.get("dim") is not None:
                self._vectors = new_index(int(meta["dim"]), self.config, self.path)
        records = []
        for key in list(self.store.keys()):
            if isinstance(key, str) and key.startswith("m/"):
                records.append(self.store.retrieve(key))
        records.sort(key=lambda r: r["id"])
        vec_ids: list[int] = []
        vecs: list[np.ndarray] = []
        for raw in records:
            codes, scale = raw.pop("vec", None), raw.pop("vscale", 0.0)
            rec = from_stored(raw)
            self._install(rec, index_text=False)
            if codes is not None:
                vec_ids.append(rec.id)
                vecs.append(decode_vector(codes, scale))
        self._link_back()
        self._access.load(self.store, self._records)
        self._keywords.add_many([(r["id"], r["text"]) for r in records])
        if vecs:
            assert self._vectors is not None
            self._vectors.add_many(vec_ids, unit_rows(np.stack(vecs), "stored vectors", self._vectors.dim))
            self._vectors.flush()
        release_free_heap()  # the decoded records and vectors were temporaries of this size

    def _reload(self) -> None:
        """Rebuild every RAM index from the store, so RAM holds exactly what the store holds.

        After a write that failed part-way (a full disk, say): the records it
        had installed in RAM but not stored are dropped, the ones it stored are
        indexed. Access counts not yet written are lost, as in a crash.
        """
        self._keywords.close()
        if self._vectors is not None:
            self._vectors.close()
        self._records, self._columns = RecordTable(), MetadataColumns()
        self._keywords, self._vectors, self._access = KeywordIndex(), None, AccessLog()
        self._n_restricted, self._next_id, self._reserved_to = 0, 0, 0
        self._generation += 1
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self._load()

    def _link_back(self) -> None:
        """Make the loaded links symmetric: a memory links every memory whose record names it.

        In RAM a link is always held on both sides (sorted ids); a store may keep
        it on one side only (the newer memory's record, written once when it is
        added), so opening derives the other side. Links to ids that no longer
        exist are dropped.
        """
        records = self._records
        stored = records.linked()
        linked: dict[int, set[int]] = {}
        for id_, links in stored.items():
            for other in links:
                if other in records:
                    linked.setdefault(id_, set()).add(other)
                    linked.setdefault(other, set()).add(id_)
        for id_ in stored.keys() | linked.keys():
            links = tuple(sorted(linked.get(id_, ())))
            if stored.get(id_, ()) != links:
                records.set_links(id_, links)

    def _save_meta(self) -> None:
        self.store.store(
            _META_KEY,
            {"format": FORMAT, "reserved_to": self._reserved_to, "counters": dict(self.counters),
             "dim": None if self._vectors is None else self._vectors.dim},
        )

    def _now(self) -> float:
        return float(self.clock())

    def _new_id(self) -> int:
        if self._next_id >= self._reserved_to:
            self._reserved_to = self._next_id + _ID_BLOCK
            self._save_meta()
        self._next_id += 1
        return self._next_id - 1

    @staticmethod
    def _row(rec: MemoryRecord) -> dict[str, Any]:
        row = dict(rec.metadata)
        row.update(live=True, category=rec.category, created_at=rec.created_at, updated_at=rec.updated_at,
                   valid_at=rec.valid_at, expired=rec.expired, tier=rec.tier, pinned=rec.pinned)
        for name, value in zip(_OPTIONAL_ROW, _optional_values(rec)):  # the five fields read in one call
            if value is not None:
                row[name] = value
        return row

    def _restricted(self, rec: MemoryRecord) -> bool:
        """Whether some read hides it: expired, with an end of validity, or valid only from a later time."""
        return rec.expired or rec.invalid_at is not None or rec.valid_at > rec.created_at

    def _install(self, rec: MemoryRecord, *, index_text: bool = True) -> None:
        """Put ``rec`` into the RAM indexes (records, hashes, columns; keywords unless told not to)."""
        self._records.put(rec)
        while len(self._columns) < rec.id:
            self._columns.append_one(None, len(self._columns))
        if len(self._columns) == rec.id:
            self._columns.append_one(self._row(rec), rec.id)
        else:
            self._columns.set(rec.id, self._row(rec))
        self._n_restricted += self._restricted(rec)
        self._next_id = max(self._next_id, rec.id + 1)
        if index_text:
            self._keywords.add(rec.id, rec.text)

    def _supersede(self, old: MemoryRecord, by: int, at: float, changed: dict[int, MemoryRecord]) -> None:
        was = self._restricted(old)
        old.invalid_at, old.superseded_by, old.updated_at = at, by, self._now()
        self._refresh(old, was)
        changed[old.id] = old

    def _refresh(self, rec: MemoryRecord, old_restricted: bool) -> None:
        """After changing ``rec`` (a snapshot from ``_records``): hold it, and update columns and the restricted count."""
        self._records.put(rec)
        self._columns.set(rec.id, self._row(rec))
        self._n_restricted += self._restricted(rec) - old_restricted

    def _persist(self, recs: Sequence[MemoryRecord], vectors: Mapping[int, np.ndarray] | None = None,
                 encoded: Mapping[int, tuple[bytes, float]] | None = None) -> None:
        """Store ``recs``, each with its vector: ``encoded`` (int8 form), else ``vectors``, else the index's."""
        self._generation += 1
        items = []
        stored: dict[int, np.ndarray] = {}  # vectors of rewritten records, read in one call
        if self._vectors is not None:
            ids = [r.id for r in recs if not (encoded and r.id in encoded) and not (vectors and r.id in vectors)
                   and r.id in self._vectors]
            if ids:
                stored = dict(zip(ids, self._vectors.get(ids)))
        for rec in recs:
            raw = to_stored(rec)
            form = encoded.get(rec.id) if encoded else None
            if form is not None:
                raw["vec"], raw["vscale"] = form
                items.append((f"m/{rec.id}", raw))
                continue
            vec = vectors.get(rec.id) if vectors else None
            if vec is None:
                vec = stored.get(rec.id)
            if vec is not None:
                raw["vec"], raw["vscale"] = encode_vector(vec)
            items.append((f"m/{rec.id}", raw))
        if len(items) == 1:
            self.store.store(*items[0])
        elif items:
            self.store.store_many(items)

    def _touch(self, rec: MemoryRecord, now: float) -> None:
        """Count one access of ``rec`` (a snapshot from ``_records``: it and the held record both change)."""
        self._generation += 1
        due = self._access.touch(rec, now)
        self._records.set_access(rec.id, rec.access_count, rec.last_access)
        if due:
            self._access.write(self.store, self._records)

    def _embed(self, texts: list[str], vectors: Any, name: str) -> np.ndarray | None:
        """Unit float32 rows for ``texts``: the given vectors, else the embedder's, else None."""
        return self._embed_rows(texts, vectors, name)[0]

    def _embed_rows(self, texts: list[str], vectors: Any, name: str) -> Embedded:
        """:meth:`_embed`, and for one row into an existing index also its sketch and stored form (one compiled pass)."""
        if vectors is None:
            if self.embedder is None:
                return None, None, None
            vectors = np.asarray(self.embedder.embed(texts))
            name = "embedder.embed(texts)"
        index = self._vectors
        if (index is not None and len(texts) == 1 and isinstance(vectors, np.ndarray) and vectors.dtype.kind == "f"
                and vectors.shape == (1, index.dim)):
            unit, sketch, encoded = index.prepare_one(vectors[0], name)
            return unit, sketch, [encoded]
        x = unit_rows(np.asarray(vectors) if not isinstance(vectors, np.ndarray) else vectors, name,
                      None if self._vectors is None else self._vectors.dim)
        if x.shape[0] != len(texts):
            raise ValueError(f"{name}: expected {len(texts)} vectors (one per memory), got {x.shape[0]}")
        if self._vectors is None:
            self._vectors = new_index(x.shape[1], self.config, self.path)
            self._save_meta()
        return x, None, None

    def _scope(self, user_id: Any, agent_id: Any, run_id: Any) -> tuple[Any, Any, Any]:
        for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name}: expected a string or None, got {type(value).__name__}")
        return (user_id, agent_id, run_id)

    def _check_content(self, content: Any, name: str = "content") -> str:
        if isinstance(content, str):
            if not content.strip():
                raise ValueError(f"{name}: expected non-empty text")
        elif not isinstance(content, Mapping):
            raise TypeError(f"{name}: expected a str or a dict, got {type(content).__name__}")
        text = self.config.formatter(content if isinstance(content, str) else dict(content))
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}: the formatter made no text of it ({text!r})")
        return text

    @staticmethod
    def _check_metadata(metadata: Any) -> dict[str, Any]:
        if metadata is None:
            return {}
        if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
            raise TypeError(f"metadata: expected a dict with str keys, got {type(metadata).__name__}")
        clash = sorted(set(metadata) & RESERVED_FIELDS)
        if clash:
            raise ValueError(f"metadata: {clash[0]!r} is a field of every memory; pass it as an argument or rename it")
        return dict(metadata)
