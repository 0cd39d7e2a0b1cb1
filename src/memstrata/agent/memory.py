"""AgentMemory: remember, recall and forget, on one MemoryStore with vector and keyword indexes.

Every memory is one record in a :class:`~memstrata.MemoryStore` under
``m/<id>`` (its text, content, scope, times, metadata and its embedding as
int8 codes); earlier versions live under ``h/<id>/<version>``. The vector
index, the keyword index (FTS5 in RAM) and the filter columns are derived from
the records and rebuilt when the directory is opened, so the store is the one
place a memory lives and ``forget`` + ``compact`` removes it from every file.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import Unpack

from memstrata._closing import ClosesOnExit
from memstrata.agent.config import AgentConfig
from memstrata.agent.embedders import Embedder, check_embedder
from memstrata.agent.records import MemoryRecord, content_digest, to_seconds
from memstrata.agent.state import RESERVED_FIELDS, SCOPES, MemoryState
from memstrata.agent.write import AddOptions, add_batch
from memstrata.store import MemoryStore
from memstrata.types import TierName
from memstrata.vectors.filters import compile_filter

__all__ = ["RESERVED_FIELDS", "AgentMemory"]


class AgentMemory(MemoryState, ClosesOnExit):
    """An agent's memory: ``add`` / ``search`` / ``update`` / ``forget`` with scopes, categories and validity.

    Parameters
    ----------
    path : str or Path, optional
        Directory (created if missing); ``None`` keeps everything in RAM.
    embedder : object with ``embed(texts) -> float32 (n, d)`` and ``dim``, optional
        Without one, pass ``vector=`` to ``add`` and vectors to ``search``
        (keyword search works either way).
    config : AgentConfig, optional
    clock : callable, optional
        Epoch seconds (``time.time``); inject a fake clock in tests.

    Notes
    -----
    One writer per directory (the store's lock). Methods are thread-safe (one lock).
    Access counts are kept in RAM and written, one small record per 1,024 ids
    (:mod:`memstrata.agent.access`), by :meth:`flush` / :meth:`close` and every
    1,000 reads; a crash loses only the counts since then.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.agent import AgentMemory
    >>> with AgentMemory() as memory:
    ...     a = memory.add("the user prefers metric units", user_id="ana", vector=np.array([1.0, 0.0, 0.0]))
    ...     b = memory.add("The user prefers  metric units", user_id="ana", vector=np.array([1.0, 0.0, 0.0]))
    ...     hits = memory.search("metric", user_id="ana", mode="keyword")
    ...     a.id == b.id, b.duplicate_of == a.id, [h.text for h in hits]
    (True, True, ['the user prefers metric units'])
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        config: AgentConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config is not None and not isinstance(config, AgentConfig):
            raise TypeError(f"config: expected an AgentConfig, got {type(config).__name__}")
        config = config or AgentConfig()
        path = None if path is None else Path(path)
        # no trained zstd dictionary: one would keep samples of forgotten texts in the store; no RAM cache in the
        # store's hot tier: every live record is in RAM here already (a cache held a second copy, ~67 B a memory),
        # the store's reads are for history versions and reopening
        store_cfg = {"train_after": 0, "migration_interval_seconds": None, "hot_max_bytes": 0}
        store_cfg.update(config.store_config)
        store = MemoryStore(path, store_cfg, clock=clock)
        super().__init__(path, store, config, None if embedder is None else check_embedder(embedder), clock)
        try:
            self._load()
        except BaseException:
            self.store.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def flush(self) -> None:
        """Write pending access counts and counters; flush the store."""
        with self._lock:
            self._check_open()
            self._access.write(self.store, self._records)
            self._save_meta()
            self.store.flush()

    def close(self) -> None:
        """Write what is pending and close every file; the files are closed even when that write fails."""
        if self._closed:
            return
        with self._lock:
            try:
                self.flush()
            finally:
                self._closed = True
                self.store.close()
                self._keywords.close()
                if self._vectors is not None:
                    self._vectors.close()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._records

    # ------------------------------------------------------------------ add

    def add(self, content: str | Mapping[str, Any], *, metadata: Mapping[str, Any] | None = None,
            vector: np.ndarray | None = None, **options: Unpack[AddOptions]) -> MemoryRecord:
        """Remember ``content``; returns the stored record (or the existing one, for a duplicate).

        ``options`` (all keyword, all optional; :class:`AddOptions`): ``category``
        (default: from the content's type), ``user_id`` / ``agent_id`` /
        ``run_id`` (the scope), ``valid_at`` (when the fact began to hold; default
        now), ``supersedes`` (an id whose validity ends where this one's begins)
        and ``pinned`` (pruning never touches it).

        An exact duplicate (same normalized text in the same scope) returns the
        stored record with ``duplicate_of`` set, its access counted and
        ``metadata`` merged in. A near duplicate (cosine ≥
        ``config.near_duplicate_threshold`` in the same scope) is linked,
        merged or kept as ``config.near_duplicates`` says.
        """
        if vector is not None:
            vector = vector[None] if isinstance(vector, np.ndarray) and vector.ndim == 1 else np.atleast_2d(vector)
        return add_batch(self, [content], "content", metadata=None if metadata is None else [metadata], vectors=vector,
                         **options)[0]

    def add_many(self, contents: Sequence[str | Mapping[str, Any]], *,
                 metadata: Sequence[Mapping[str, Any] | None] | None = None, vectors: np.ndarray | None = None,
                 **options: Unpack[AddOptions]) -> list[MemoryRecord]:
        """:meth:`add` for a batch (one embedding call; every row checked before any is written, then one store
        transaction per 256 rows); duplicates within the batch merge too.

        ``metadata`` has one entry per content (or is None), ``vectors`` one row per content; ``options`` apply to all.
        """
        if isinstance(contents, (str, Mapping)) or not isinstance(contents, Sequence):
            raise TypeError("contents: expected a list of str or dict")
        return self._add_batch(contents, "contents", metadata, vectors, options)

    def _add_batch(self, contents: Sequence[Any], name: str, metadata: Any, vectors: Any,
                   options: AddOptions) -> list[MemoryRecord]:
        return add_batch(self, contents, name, metadata=metadata, vectors=vectors, **options)

    # ----------------------------------------------------------------- read

    def get(self, id_: int, *, include_expired: bool = False) -> MemoryRecord | None:
        """The record of ``id_`` (a copy; superseded ones too), or None if unknown, forgotten or expired."""
        with self._lock:
            rec = self._records.get(id_) if isinstance(id_, (int, np.integer)) else None
            if rec is None or (rec.expired and not include_expired):
                return None
            self._touch(rec, self._now())
            return rec.copy()

    def mask(self, filters: Mapping[str, Any] | None = None, *, as_of: Any = None, user_id: str | None = None,
             agent_id: str | None = None, run_id: str | None = None, include_expired: bool = False) -> np.ndarray | None:
        """Ids (sorted int64) a read may see: live, in scope, matching ``filters``, valid at ``as_of`` (default now),
        not expired. None means every live id (nothing hidden)."""
        spec: dict[str, Any] = {}
        for name, value in zip(SCOPES, self._scope(user_id, agent_id, run_id)):
            if value is not None:
                spec[name] = value
        if filters:
            if not isinstance(filters, Mapping):
                raise TypeError(f"filters: expected a dict, got {type(filters).__name__}")
            spec = {"$and": [spec, dict(filters)]} if spec else dict(filters)
        t = to_seconds(as_of, "as_of")
        restricted = self._n_restricted or t is not None
        if not spec and not restricted:
            return None
        conds: list[dict[str, Any]] = [{"live": True}]
        if spec:
            conds.append(spec)
        if t is not None:
            conds.append({"created_at": {"$lte": t}})
        if restricted:
            at = self._now() if t is None else t
            conds.append({"valid_at": {"$lte": at}})
            conds.append({"$or": [{"invalid_at": {"$exists": False}}, {"invalid_at": {"$gt": at}}]})
            if not include_expired:
                conds.append({"expired": False})
        hits = compile_filter({"$and": conds}).mask(self._columns, strict=False)
        return np.flatnonzero(hits).astype(np.int64)

    def get_all(self, filters: Mapping[str, Any] | None = None, *, limit: int | None = 100, as_of: Any = None,
                user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                include_expired: bool = False) -> list[MemoryRecord]:
        """Records in id order that :meth:`mask` allows, at most ``limit`` (None: all)."""
        with self._lock:
            allowed = self.mask(filters, as_of=as_of, user_id=user_id, agent_id=agent_id, run_id=run_id,
                                include_expired=include_expired)
            ids = sorted(self._records) if allowed is None else allowed.tolist()
            return [self._records[i].copy() for i in ids[: None if limit is None else int(limit)]]

    def history(self, id_: int) -> list[dict[str, Any]]:
        """Every version of ``id_``, oldest first: ``version``, ``event`` (ADD/UPDATE), ``text``, ``content``,
        ``metadata``, ``at``; empty once forgotten."""
        with self._lock:
            rec = self._records.get(id_)
            if rec is None:
                return []
            versions = [self.store.retrieve(f"h/{id_}/{v}") for v in range(1, rec.version)]
            versions.append({"version": rec.version, "text": rec.text, "content": copy.deepcopy(rec.content),
                             "metadata": dict(rec.metadata), "at": rec.updated_at if rec.version > 1 else rec.created_at})
            for v in versions:
                v["event"] = "ADD" if v["version"] == 1 else "UPDATE"
            return versions

    # ----------------------------------------------------------------- write

    def update(self, id_: int, content: str | Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None,
               *, supersede: bool = False, vector: np.ndarray | None = None) -> MemoryRecord:
        """A new version of ``id_`` (the old one stays in :meth:`history`), or with ``supersede=True`` a new memory
        that supersedes it (same scope and category). ``metadata`` is merged."""
        with self._lock:
            rec = self._held(id_)
            meta = self._check_metadata(metadata)
            if supersede:
                return self.add(rec.content if content is None else content, metadata={**rec.metadata, **meta},
                                category=rec.category, user_id=rec.user_id, agent_id=rec.agent_id,
                                run_id=rec.run_id, vector=vector, supersedes=id_, pinned=rec.pinned)
            now = self._now()
            old = {"version": rec.version, "text": rec.text, "content": rec.content, "metadata": dict(rec.metadata),
                   "at": rec.updated_at if rec.version > 1 else rec.created_at}
            text = rec.text if content is None else self._check_content(content)
            x = None
            if content is not None or vector is not None:
                x = self._embed([text], None if vector is None else np.atleast_2d(vector), "vector")
            self.store.store(f"h/{id_}/{rec.version}", old)
            was = self._restricted(rec)
            if content is not None:
                rec.content = content if isinstance(content, str) else copy.deepcopy(dict(content))
                rec.text = text
                rec.hash = content_digest((rec.user_id, rec.agent_id, rec.run_id), text)
                self._keywords.replace(id_, old["text"], text)
            rec.metadata = {**rec.metadata, **meta}
            rec.version += 1
            rec.updated_at = now
            self._refresh(rec, was)
            if x is not None:
                assert self._vectors is not None
                self._vectors.remove(id_)
                self._vectors.add_many([id_], x)
            self._persist([rec], None if x is None else {id_: x[0]})
            return rec.copy()

    def _set_flag(self, id_: int, **changes: Any) -> MemoryRecord:
        with self._lock:
            rec = self._held(id_)
            was = self._restricted(rec)
            for name, value in changes.items():
                setattr(rec, name, value)
            self._refresh(rec, was)
            self._persist([rec])
            return rec.copy()

    def expire(self, id_: int) -> MemoryRecord:
        """Hide ``id_`` from every read (reversible with :meth:`unexpire`; use :meth:`forget` to remove it)."""
        return self._set_flag(id_, expired=True)

    def unexpire(self, id_: int) -> MemoryRecord:
        return self._set_flag(id_, expired=False)

    def pin(self, id_: int) -> MemoryRecord:
        """Pruning never touches a pinned memory."""
        return self._set_flag(id_, pinned=True)

    def unpin(self, id_: int) -> MemoryRecord:
        return self._set_flag(id_, pinned=False)

    def set_tier(self, id_: int, tier: TierName) -> MemoryRecord:
        """Record ``tier`` (``"hot"``, ``"warm"`` or ``"cold"``) and move the record's bytes to that tier of the store."""
        if tier not in ("hot", "warm", "cold"):
            raise ValueError(f"tier: expected 'hot', 'warm' or 'cold', got {tier!r}")
        rec = self._set_flag(id_, tier=tier)
        self.store.migrate(f"m/{id_}", tier)
        return rec

    def forget(self, id_: int) -> bool:
        """Remove ``id_`` and every version of it from every index and the store (after :meth:`compact`, from every
        file); links and pattern evidence that name it are rewritten. False if it was not there."""
        return self.forget_many([id_]) == 1

    def forget_where(self, filters: Mapping[str, Any], *, user_id: str | None = None, agent_id: str | None = None,
                     run_id: str | None = None) -> int:
        """Forget every memory matching ``filters`` and the scope ids, expired and superseded ones included."""
        if not isinstance(filters, Mapping):
            raise TypeError(f"filters: expected a dict, got {type(filters).__name__}")
        conds: list[dict[str, Any]] = [{"live": True}, dict(filters)]
        for name, value in zip(SCOPES, self._scope(user_id, agent_id, run_id)):
            if value is not None:
                conds.append({name: value})
        with self._lock:
            hits = compile_filter({"$and": conds}).mask(self._columns, strict=False)
            return self.forget_many(np.flatnonzero(hits).tolist())

    def forget_many(self, ids: Iterable[int]) -> int:
        """:meth:`forget` for many ids; returns how many were there."""
        from memstrata.agent.write import forget_many

        return forget_many(self, ids)

    # ------------------------------------------------------------ maintenance

    def compact(self) -> dict[str, int]:
        """Reclaim the space of forgotten memories and old versions in every file of the store."""
        with self._lock:
            self.flush()
            if self._vectors is not None:
                self._vectors.flush()
            return self.store.compact()

    def verify(self) -> dict[str, Any]:
        """Check every layer: the store's frames, each record's digest and the indexes' membership."""
        from memstrata.agent.inspect import verify

        with self._lock:
            return verify(self)

    # ------------------------------------------------------ search & friends

    def search(self, query: str | np.ndarray, *, limit: int = 10, filters: Mapping[str, Any] | None = None,
               as_of: Any = None, mode: str = "hybrid", user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, threshold: float | None = None) -> list:
        """Memories best matching ``query``; see :func:`memstrata.agent.search.search`."""
        from memstrata.agent.search import search

        with self._lock:
            self._check_open()
            return search(self, query, limit=limit, filters=filters, as_of=as_of, mode=mode, user_id=user_id,
                          agent_id=agent_id, run_id=run_id, threshold=threshold)

    def explain(self, id_: int) -> dict[str, Any]:
        """Every factor of the relevance of ``id_`` now, with its category, tier and access counts."""
        from memstrata.agent.relevance import relevance_factors

        with self._lock:
            rec = self._records.get(id_)
            if rec is None:
                raise KeyError(f"id: no memory with id {id_!r}")
            out: dict[str, Any] = dict(relevance_factors(rec, self.config, self._now()))
            out.update(id=id_, category=rec.category, tier=rec.tier, access_count=rec.access_count,
                       last_access=rec.last_access, pinned=rec.pinned)
            return out

    def prune(self, *, plan_only: bool = False) -> Any:
        """A :class:`~memstrata.agent.pruning.PrunePlan` (``plan_only=True``), else the counts of applying it."""
        from memstrata.agent.pruning import plan_prune

        plan = plan_prune(self)
        return plan if plan_only else plan.apply()

    def extract_patterns(self) -> list[MemoryRecord]:
        """Group memories into patterns and store those above the threshold; see :mod:`memstrata.agent.patterns`."""
        from memstrata.agent.patterns import extract_patterns

        return extract_patterns(self)

    def get_metrics(self) -> dict[str, Any]:
        """Totals, distributions, bytes per memory, dedup figures, accesses and prune counts."""
        from memstrata.agent.inspect import metrics

        with self._lock:
            return metrics(self)

    def __repr__(self) -> str:
        return f"AgentMemory({str(self.path) if self.path else 'RAM'!r}, {len(self)} memories)"
