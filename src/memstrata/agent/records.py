"""What :class:`~memstrata.agent.AgentMemory` hands back: :class:`MemoryRecord` and :class:`SearchResult`."""

from __future__ import annotations

import copy
import hashlib
import operator
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from memstrata.types import TierName

__all__ = ["MemoryRecord", "SearchResult", "content_digest", "from_stored", "to_seconds", "to_stored"]


def content_digest(scope: tuple[Any, ...], text: str) -> str:
    """The identity of a text within a scope: case and runs of whitespace do not count (exact-duplicate key)."""
    normalized = " ".join(text.lower().split())
    return hashlib.blake2b(repr((scope, normalized)).encode(), digest_size=16).hexdigest()


def to_seconds(value: Any, name: str) -> float | None:
    """Epoch seconds from a datetime (naive means UTC), a number, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name}: expected a datetime or epoch seconds, got {type(value).__name__}")


@dataclass(slots=True)
class MemoryRecord:
    """One memory as it stands now. Times are epoch seconds (float) from the memory's clock.

    ``valid_at`` / ``invalid_at`` bound when the fact held (``invalid_at`` None:
    still holds); ``expired`` hides it from reads until :meth:`AgentMemory.unexpire`;
    ``supersedes`` / ``superseded_by`` link the versions of a changed fact;
    ``links`` are near duplicates; ``version`` counts in-place updates.
    """

    id: int
    content: Any
    text: str
    category: str
    type: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    valid_at: float = 0.0
    invalid_at: float | None = None
    expired: bool = False
    supersedes: int | None = None
    superseded_by: int | None = None
    links: list[int] = field(default_factory=list)
    access_count: int = 0
    last_access: float | None = None
    version: int = 1
    tier: TierName = "hot"
    pinned: bool = False
    hash: str = ""
    duplicate_of: int | None = None  # set on the record add() returns when it merged into a stored one

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (content and metadata copied)."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out["content"] = self.content if isinstance(self.content, str) else copy.deepcopy(self.content)
        out["metadata"] = copy.deepcopy(self.metadata) if self.metadata else {}
        out["links"] = list(self.links)
        return out

    def copy(self) -> MemoryRecord:
        """An independent copy (what every read hands back, so callers cannot change the stored record)."""
        twin = MemoryRecord(*_field_values(self))  # the immutable fields are shared; the mutable ones are copied below
        if not isinstance(self.content, str):
            twin.content = copy.deepcopy(self.content)
        twin.metadata = _copy_metadata(self.metadata)
        twin.links = list(self.links)
        return twin

    def is_valid(self, at: float) -> bool:
        """Whether the fact held at ``at`` (seconds)."""
        return self.valid_at <= at and (self.invalid_at is None or at < self.invalid_at)


_FIELDS = tuple(f.name for f in fields(MemoryRecord))
_field_values = operator.attrgetter(*_FIELDS)
_FLAT = (str, int, float, bool, type(None))


def _copy_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """An independent copy: a shallow one when every value is immutable (the usual case), else a deep one."""
    if all(type(v) in _FLAT for v in metadata.values()):
        return dict(metadata)
    return copy.deepcopy(metadata)


# fields at these values are left out of the stored record
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(MemoryRecord) if f.default is not MISSING}
_DEFAULTS.update(metadata={}, links=[])
del _DEFAULTS["created_at"]  # always stored: the times left out are read as equal to it
_DERIVED = ("hash", "duplicate_of")
_SAME_AS_CREATED = ("updated_at", "valid_at")
# how to_stored treats each field, in field order
_KEEP, _DEFAULT, _TIME, _CONTENT, _NONEMPTY, _SKIP = "keep", "default", "time", "content", "nonempty", "skip"


def _rule(name: str) -> str:
    if name in _DERIVED:
        return _SKIP
    if name == "content":
        return _CONTENT
    if name in ("metadata", "links"):
        return _NONEMPTY
    if name in _SAME_AS_CREATED:
        return _TIME
    return _DEFAULT if name in _DEFAULTS else _KEEP


_RULES = tuple((name, _rule(name), _DEFAULTS.get(name), type(_DEFAULTS.get(name))) for name in _FIELDS)


def to_stored(rec: MemoryRecord) -> dict[str, Any]:
    """The record as the store keeps it: only what cannot be derived.

    Left out: fields at their default, ``content`` when it is the text,
    ``updated_at`` / ``valid_at`` when they equal ``created_at``, ``hash``
    (the digest of the scope and text, recomputed by :func:`from_stored`) and
    ``duplicate_of`` (an answer of one ``add``, not state). A typical memory's
    record is about half the size of all its fields.
    """
    out: dict[str, Any] = {}
    created, text = rec.created_at, rec.text
    for (name, rule, default, kind), value in zip(_RULES, _field_values(rec)):  # every field read in one call
        if rule is _KEEP:
            out[name] = value
        elif rule is _DEFAULT:
            if value is not default and (type(value) is not kind or value != default):
                out[name] = value
        elif rule is _TIME:
            if value != created:
                out[name] = value
        elif rule is _CONTENT:
            if not (value == text and isinstance(value, str)):
                out[name] = value if type(value) is str else copy.deepcopy(value)
        elif rule is _NONEMPTY and value:  # an empty dict, list, tuple or read-only mapping is left out
            out[name] = _copy_metadata(value) if name == "metadata" else value
    return out


def from_stored(raw: dict[str, Any]) -> MemoryRecord:
    """The record :func:`to_stored` kept (records of format 1, with every field, read the same way)."""
    raw = dict(raw)
    raw.setdefault("content", raw["text"])
    for name in _SAME_AS_CREATED:
        raw.setdefault(name, raw["created_at"])
    raw.pop("duplicate_of", None)
    rec = MemoryRecord(**raw)
    rec.hash = content_digest((rec.user_id, rec.agent_id, rec.run_id), rec.text)
    return rec


@dataclass
class SearchResult:
    """One hit: ``score = weight_similarity·similarity + weight_relevance·relevance + weight_recency·recency``.

    ``similarity`` is the cosine (vector mode), the normalized BM25 (keyword
    mode) or the normalized reciprocal-rank fusion of both (hybrid); ``parts``
    also holds the raw per-mode values.
    """

    id: int
    content: Any
    text: str
    score: float
    similarity: float
    relevance: float
    recency: float
    metadata: dict[str, Any]
    category: str
    parts: dict[str, float] = field(default_factory=dict)
    record: MemoryRecord | None = None
