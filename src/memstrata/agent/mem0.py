"""``memstrata.agent.Memory``: the method names, arguments and return shapes of Mem0's local ``Memory``.

An agent written against Mem0 switches with one import::

    from memstrata.agent import Memory      # instead of: from mem0 import Memory

What is the same: ``add`` / ``search`` / ``get`` / ``get_all`` / ``update`` /
``delete`` / ``delete_all`` / ``history`` / ``reset``, scoping by
``user_id`` / ``agent_id`` / ``run_id`` (one of them is required where Mem0
requires one), ``metadata``, ``filters`` (equality, and the operators ``eq ne
gt gte lt lte in nin`` and ``AND`` / ``OR`` / ``NOT``), ``limit``,
``threshold``, and results as ``{"results": [{"id", "memory", "hash",
"metadata", "score", "created_at", "updated_at", ...}]}``.

What differs, on purpose:

* **No LLM.** Messages are stored as they are (each non-system message is one
  memory, as Mem0 does with ``infer=False``). ``infer=True`` (the default)
  means deduplication and supersession instead of fact extraction: a text
  equal to a stored one in the same scope is not stored again (event
  ``NONE``), and a near duplicate (cosine ≥ the configured threshold)
  supersedes the stored memory (event ``UPDATE``, the old text in
  ``previous_memory``, still readable with ``history``). With ``infer=False``
  exact duplicates are still not stored twice; near duplicates are added and linked.
* **Ids** are decimal strings of integers, not UUIDs.
* **Delete is complete**: ``history`` of a deleted memory is empty (Mem0 keeps
  a DELETE event and the old text in its history database).
* **Embedder**: pass ``embedder=`` (or ``memstrata[embed]``'s
  ``SentenceTransformerEmbedder``); provider configs for LLMs, embedders and
  vector stores in ``from_config`` are ignored except ``path`` /
  ``vector_store.config.path``.
* Timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from memstrata._closing import ClosesOnExit
from memstrata.agent.config import AgentConfig
from memstrata.agent.memory import AgentMemory
from memstrata.agent.records import MemoryRecord

__all__ = ["Memory"]

_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
_LOGIC = {"AND": "$and", "OR": "$or", "NOT": "$not"}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def _filters(spec: Any) -> Any:
    """Mem0 filter syntax → memstrata's (``{"k": {"gte": 1}}`` → ``{"k": {"$gte": 1}}``, ``AND`` → ``$and``)."""
    if isinstance(spec, list):
        return [_filters(s) for s in spec]
    if not isinstance(spec, Mapping):
        return spec
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in _LOGIC:
            out[_LOGIC[key]] = _filters(value)
        elif isinstance(value, Mapping):
            ops = {}
            for op, operand in value.items():
                if op not in _OPS:
                    raise ValueError(f"filters: operator {op!r} on {key!r} is not supported; known: {', '.join(sorted(_OPS))}")
                ops["$" + op] = operand
            out[key] = ops
        else:
            out[key] = value
    return out


class Memory(ClosesOnExit):
    """A Mem0-shaped face over :class:`~memstrata.agent.AgentMemory` (see the module docs for differences)."""

    def __init__(self, path: str | None = None, *, embedder: Any = None, config: AgentConfig | None = None,
                 clock: Any = None) -> None:
        kwargs = {} if clock is None else {"clock": clock}
        self._path = path
        self._embedder = embedder
        self._config = config
        self._kwargs = kwargs
        self.memory = AgentMemory(path, embedder=embedder, config=config, **kwargs)

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any], *, embedder: Any = None) -> Memory:
        path = config_dict.get("path") or config_dict.get("vector_store", {}).get("config", {}).get("path")
        return cls(path, embedder=embedder)

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _scope(user_id: Any, agent_id: Any, run_id: Any, required: bool = True) -> dict[str, Any]:
        scope = {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)) if v is not None}
        if required and not scope:
            raise ValueError("At least one of 'user_id', 'agent_id', or 'run_id' must be provided.")
        return scope

    @staticmethod
    def _item(rec: MemoryRecord, score: float | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"id": str(rec.id), "memory": rec.text, "hash": rec.hash, "metadata": dict(rec.metadata),
                                "created_at": _iso(rec.created_at),
                                "updated_at": _iso(rec.updated_at) if rec.version > 1 else None}
        for name in ("user_id", "agent_id", "run_id"):
            if getattr(rec, name) is not None:
                item[name] = getattr(rec, name)
        if score is not None:
            item["score"] = score
        return item

    @staticmethod
    def _id(memory_id: Any) -> int:
        try:
            return int(str(memory_id))
        except ValueError:
            raise ValueError(f"memory_id: expected an id returned by add, got {memory_id!r}") from None

    # -------------------------------------------------------------------- API

    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: Mapping[str, Any] | None = None, infer: bool = True,
            memory_type: str | None = None, prompt: str | None = None) -> dict[str, Any]:
        """Store each non-system message; ``{"results": [{"id", "memory", "event"}]}``."""
        scope = self._scope(user_id, agent_id, run_id)
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        elif isinstance(messages, Mapping):
            messages = [messages]
        elif not isinstance(messages, list):
            raise ValueError("messages: expected a str, a message dict or a list of message dicts")
        mem = self.memory
        results = []
        for msg in messages:
            if not isinstance(msg, Mapping) or "content" not in msg:
                raise ValueError(f"messages: expected dicts with 'role' and 'content', got {msg!r}")
            if msg.get("role") == "system":
                continue
            meta = dict(metadata or {})
            meta["role"] = msg.get("role", "user")
            if msg.get("name"):
                meta["actor_id"] = msg["name"]
            rec = mem.add(str(msg["content"]), metadata=meta, **scope)
            if rec.duplicate_of is not None:
                results.append({"id": str(rec.id), "memory": rec.text, "event": "NONE"})
            elif infer and rec.links:
                old = mem.get(rec.links[0])
                assert old is not None
                mem.forget(rec.id)
                new = mem.update(old.id, str(msg["content"]), meta, supersede=True)
                results.append({"id": str(new.id), "memory": new.text, "event": "UPDATE", "previous_memory": old.text})
            else:
                results.append({"id": str(rec.id), "memory": rec.text, "event": "ADD"})
        return {"results": results}

    def get(self, memory_id: Any) -> dict[str, Any] | None:
        rec = self.memory.get(self._id(memory_id))
        return None if rec is None else self._item(rec)

    def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                filters: Mapping[str, Any] | None = None, limit: int = 100) -> dict[str, Any]:
        scope = self._scope(user_id, agent_id, run_id)
        recs = self.memory.get_all(_filters(filters), limit=limit, **scope)
        return {"results": [self._item(r) for r in recs]}

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, limit: int = 100, filters: Mapping[str, Any] | None = None,
               threshold: float | None = None) -> dict[str, Any]:
        scope = self._scope(user_id, agent_id, run_id)
        mode = "hybrid" if self.memory.embedder is not None else "keyword"
        hits = self.memory.search(query, limit=limit, filters=_filters(filters), mode=mode, threshold=threshold, **scope)
        return {"results": [self._item(h.record, h.score) for h in hits if h.record is not None]}

    def update(self, memory_id: Any, data: str) -> dict[str, str]:
        self.memory.update(self._id(memory_id), data)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: Any) -> dict[str, str]:
        self.memory.forget(self._id(memory_id))
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:
        scope = self._scope(user_id, agent_id, run_id)
        self.memory.forget_where({}, **scope)
        return {"message": "Memories deleted successfully!"}

    def history(self, memory_id: Any) -> list[dict[str, Any]]:
        id_ = self._id(memory_id)
        out, previous = [], None
        for v in self.memory.history(id_):
            out.append({"id": f"{id_}.{v['version']}", "memory_id": str(id_), "old_memory": previous,
                        "new_memory": v["text"], "event": v["event"], "created_at": _iso(v["at"]),
                        "updated_at": _iso(v["at"]) if v["event"] == "UPDATE" else None, "is_deleted": False})
            previous = v["text"]
        return out

    def reset(self) -> None:
        """Forget everything and compact, so no file keeps any of it."""
        self.memory.forget_where({})
        self.memory.compact()

    def close(self) -> None:
        self.memory.close()
