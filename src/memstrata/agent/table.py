"""The records an agent memory holds, column by column: :class:`RecordTable`.

A :class:`~memstrata.agent.records.MemoryRecord` object costs about 220 bytes
before its text (a 170-byte str for a typical 120-character memory), each of
its times another 24, its id 28 and its place in a dict of records about 30
more; the text-and-scope digest that finds exact duplicates was an 81-byte
string in a second dict. Held for every memory, those were half of an agent
memory's RAM. Here the fields live in columns indexed by id (ids are handed
out in order, so the rows are dense): typed arrays of the fixed-size fields
(flags, category, tier, scope, creation and last access time, access count,
digest; 68 bytes a row), the texts in one UTF-8 buffer, and the fields most memories leave
empty (metadata, dict contents, links, supersession, versions past the
first) in small maps of the ids that have them. The columns are
:mod:`array` arrays rather than numpy ones: reading or writing one row's
fields is a few dozen indexing operations, each far cheaper on an ``array``
than on a numpy array (the table is read per record, not in bulk). A :class:`MemoryRecord` is
built when a caller asks for one (:meth:`RecordTable.__getitem__`) and
written back with :meth:`RecordTable.put`: a record read from the table is a
snapshot, and changing it changes nothing until it is put back.

Exact duplicates are found through a hash table of ids keyed by the first 64
bits of each record's 128-bit digest; a candidate counts only when all 128
bits match (the same test as before, by the whole digest).

Examples
--------
>>> from memstrata.agent.records import MemoryRecord, content_digest
>>> table = RecordTable()
>>> table.put(MemoryRecord(id=0, content="tea, no sugar", text="tea, no sugar", category="preferences",
...                        hash=content_digest((None, None, None), "tea, no sugar")))
>>> rec = table[0]; rec.text, rec.category, len(table), 0 in table, 1 in table
('tea, no sugar', 'preferences', 1, True, False)
>>> table.with_digest(content_digest((None, None, None), "Tea,  no sugar"))
[0]
>>> table.pop(0).id, len(table), table.with_digest(rec.hash)
(0, 0, [])
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import numpy as np

from memstrata.agent.records import MemoryRecord

__all__ = ["RecordTable"]

_LIVE, _EXPIRED, _PINNED, _TEXT_CONTENT, _RESTRICTED = 1, 2, 4, 8, 16  # bits of a row's flags
# the fixed-size columns: name -> array typecode (bytearray for "flags" and "tier"); times are epoch seconds,
# NaN for a last access of None; "high"/"low" are the two halves of the 128-bit digest
_COLUMNS = {"category": "H", "scope": "i", "length": "i", "start": "q", "access": "q", "high": "Q", "low": "Q",
            "created": "d", "last": "d"}
_MASK64 = (1 << 64) - 1
_BLOCK_ROWS = 256  # rows added at a time when an id beyond the columns arrives
_NAN = math.nan
_EMPTY, _GONE = -1, -2  # hash slots: never used / used by a removed id (lookups probe past it)
# fields most records leave at a default: held only for the ids that differ (times: from created_at, or None)
_SPARSE = ("metadata", "links", "supersedes", "superseded_by", "version", "content", "updated", "valid", "invalid")
_NO_METADATA: Any = MappingProxyType({})  # read-only: a change must replace a record's metadata, never edit it


class RecordTable:
    """Records by id (non-negative ints), held column by column (see the module docstring).

    Mapping-like: ``table[id]`` (a new :class:`MemoryRecord`, ``KeyError`` when
    absent), ``get``, ``in``, ``len``, iteration over ids (ascending),
    ``values()``, ``items()``; :meth:`put` inserts or overwrites, :meth:`pop`
    removes.
    """

    def __init__(self) -> None:
        self._flags = bytearray()  # _LIVE etc.; 0 for an id never held or removed
        self._tier = bytearray()  # code in _names
        self._cols: dict[str, array[Any]] = {name: array(code) for name, code in _COLUMNS.items()}
        self._text = bytearray()  # every held text, UTF-8, at its row's start/length; a removed one is zeroed
        self._dead = 0  # bytes of removed texts in ``_text``
        self._count = 0  # live rows
        self._names: list[str] = []  # categories and tiers, by code
        self._name_codes: dict[str, int] = {}
        self._scopes: list[tuple[Any, Any, Any, Any]] = []  # (type, user_id, agent_id, run_id), by code
        self._scope_codes: dict[tuple[Any, Any, Any, Any], int] = {}
        self._sparse: dict[str, dict[int, Any]] = {name: {} for name in _SPARSE}
        self._slots = array("q", [_EMPTY]) * 64  # open addressing, linear probing: ids by the digest's high half
        self._used = 0  # slots not _EMPTY

    # ------------------------------------------------------------ mapping

    def __len__(self) -> int:
        return self._count

    def __contains__(self, id_: object) -> bool:
        try:
            return 0 <= id_ < len(self._flags) and bool(self._flags[id_] & _LIVE)  # type: ignore[operator,call-overload]
        except TypeError:  # not an int
            return False

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids().tolist())

    def ids(self) -> np.ndarray:
        """Live ids, ascending (int64)."""
        return np.flatnonzero(np.frombuffer(self._flags, np.uint8) & _LIVE).astype(np.int64)

    def keys(self) -> Iterator[int]:
        return iter(self)

    def values(self) -> Iterator[MemoryRecord]:
        return (self[i] for i in self.ids().tolist())

    def items(self) -> Iterator[tuple[int, MemoryRecord]]:
        return ((i, self[i]) for i in self.ids().tolist())

    def get(self, id_: Any, default: Any = None) -> Any:
        return self[id_] if id_ in self else default

    def __getitem__(self, id_: int) -> MemoryRecord:
        if isinstance(id_, bool) or id_ not in self:
            raise KeyError(id_)
        id_ = int(id_)
        c = self._cols
        start = c["start"][id_]
        text = self._text[start : start + c["length"][id_]].decode()
        flags = self._flags[id_]
        kind, user_id, agent_id, run_id = self._scopes[c["scope"][id_]]
        sparse = self._sparse
        created, last = c["created"][id_], c["last"][id_]
        return MemoryRecord(
            id_, text if flags & _TEXT_CONTENT else sparse["content"][id_], text, self._names[c["category"][id_]],
            kind, user_id, agent_id, run_id, sparse["metadata"].get(id_, _NO_METADATA), created,
            sparse["updated"].get(id_, created), sparse["valid"].get(id_, created), sparse["invalid"].get(id_),
            bool(flags & _EXPIRED),
            sparse["supersedes"].get(id_), sparse["superseded_by"].get(id_), sparse["links"].get(id_, ()),
            c["access"][id_], None if last != last else last, sparse["version"].get(id_, 1),
            self._names[self._tier[id_]], bool(flags & _PINNED),  # type: ignore[arg-type]
            f"{c['high'][id_]:016x}{c['low'][id_]:016x}",
        )

    # ------------------------------------------------------------ writing

    def put(self, rec: MemoryRecord) -> None:
        """Hold ``rec`` under ``rec.id`` (a copy of its fields: changing ``rec`` later changes nothing here).

        ``rec.hash`` must be its digest (:func:`~memstrata.agent.records.content_digest`).
        """
        id_ = rec.id
        if isinstance(id_, bool) or not isinstance(id_, int) or id_ < 0:
            raise ValueError(f"id: expected a non-negative int, got {id_!r}")
        digest = int(rec.hash, 16)
        high, low = digest >> 64, digest & _MASK64
        c = self._cols
        old = id_ in self
        if old:
            start, length = c["start"][id_], c["length"][id_]
            rehash = c["high"][id_] != high
            if rehash:
                self._unhash(id_)
            if self._text[start : start + length].decode() != rec.text:
                self._drop_text(start, length)
                start, length = self._add_text(rec.text)
        else:
            self._reserve(id_ + 1)
            start, length = self._add_text(rec.text)
            rehash = True
        text_content = isinstance(rec.content, str) and rec.content == rec.text
        restricted = rec.expired or rec.invalid_at is not None or rec.valid_at > rec.created_at
        self._flags[id_] = (_LIVE | (_EXPIRED if rec.expired else 0) | (_PINNED if rec.pinned else 0)
                            | (_TEXT_CONTENT if text_content else 0) | (_RESTRICTED if restricted else 0))
        self._tier[id_] = self._code(rec.tier)
        c["category"][id_] = self._code(rec.category)
        c["scope"][id_] = self._scope_code((rec.type, rec.user_id, rec.agent_id, rec.run_id))
        c["start"][id_], c["length"][id_] = start, length
        c["access"][id_] = rec.access_count
        c["high"][id_], c["low"][id_] = high, low
        created = c["created"][id_] = rec.created_at
        c["last"][id_] = _NAN if rec.last_access is None else rec.last_access
        sparse = self._sparse
        for name, value in (("content", None if text_content else rec.content), ("metadata", rec.metadata or None),
                            ("links", tuple(rec.links) or None), ("supersedes", rec.supersedes),
                            ("superseded_by", rec.superseded_by), ("version", rec.version if rec.version != 1 else None),
                            ("updated", rec.updated_at if rec.updated_at != created else None),
                            ("valid", rec.valid_at if rec.valid_at != created else None), ("invalid", rec.invalid_at)):
            if value is not None:
                sparse[name][id_] = value
            elif old:
                sparse[name].pop(id_, None)
        if not old:
            self._count += 1
        if rehash:
            self._hash(id_)

    def set_access(self, id_: int, count: int, last: float | None) -> None:
        """Set the access count and last access time of ``id_`` (held)."""
        self._cols["access"][id_] = count
        self._cols["last"][id_] = _NAN if last is None else last

    def access_of(self, id_: int) -> tuple[int, float | None]:
        """The access count and last access time of ``id_`` (held)."""
        last = self._cols["last"][id_]
        return self._cols["access"][id_], None if last != last else last

    def accessed(self) -> list[int]:
        """Held ids accessed at least once, ascending."""
        live = np.frombuffer(self._flags, np.uint8) & _LIVE > 0
        return np.flatnonzero(live & (np.frombuffer(self._cols["access"], np.int64) > 0)).tolist()

    def set_links(self, id_: int, links: tuple[int, ...] | list[int]) -> None:
        """Set the near-duplicate links of ``id_`` (held)."""
        if links:
            self._sparse["links"][id_] = tuple(links)
        else:
            self._sparse["links"].pop(id_, None)

    def pop(self, id_: int) -> MemoryRecord:
        """Remove ``id_``; its record as it was (``KeyError`` when absent)."""
        rec = self[id_]
        self._unhash(id_)
        c = self._cols
        self._drop_text(c["start"][id_], c["length"][id_])
        self._flags[id_] = 0
        for col in c.values():
            col[id_] = 0
        for values in self._sparse.values():
            values.pop(id_, None)
        self._count -= 1
        return rec

    # ------------------------------------------------------------ queries

    def with_digest(self, digest: str) -> list[int]:
        """Ids whose scope and text have ``digest`` (all 128 bits equal), ascending."""
        found = list(self._probe(int(digest[:16], 16)))  # usually empty: a new text
        if not found:
            return found
        low, lows = int(digest[16:32], 16), self._cols["low"]
        return sorted(i for i in found if lows[i] == low)

    def is_restricted(self, id_: int) -> bool:
        """Whether some read hides ``id_`` (held): expired, with an end of validity, or valid only from after it was made."""
        return bool(self._flags[id_] & _RESTRICTED)

    def created_at(self, id_: int) -> float:
        """When ``id_`` (held) was made."""
        return self._cols["created"][id_]

    def scope_of(self, id_: int) -> tuple[Any, Any, Any]:
        """(user_id, agent_id, run_id) of ``id_`` (held)."""
        return self._scopes[self._cols["scope"][id_]][1:]

    def naming(self, ids: set[int]) -> list[int]:
        """Held ids whose links, supersession or (dict) content's ``evidence`` name one of ``ids``."""
        found: set[int] = set()
        sparse = self._sparse
        for name in ("supersedes", "superseded_by"):
            found.update(i for i, other in sparse[name].items() if other in ids)
        found.update(i for i, links in sparse["links"].items() if not ids.isdisjoint(links))
        for i, content in sparse["content"].items():
            evidence = content.get("evidence") if isinstance(content, dict) else None
            if isinstance(evidence, list) and any(e in ids for e in evidence if isinstance(e, int)):
                found.add(i)
        return sorted(found)

    def linked(self) -> dict[int, tuple[int, ...]]:
        """Every held id with links, and its links (a copy)."""
        return dict(self._sparse["links"])

    @property
    def nbytes(self) -> int:
        """Bytes of the columns, the text buffer and the hash table (the sparse maps' values not counted)."""
        return (len(self._flags) + len(self._tier) + len(self._text) + self._slots.itemsize * len(self._slots)
                + sum(col.itemsize * len(col) for col in self._cols.values()))

    # ------------------------------------------------------------ internals

    def _reserve(self, n: int) -> None:
        """Room for ids below ``n``: rows come in blocks (one call per column for many puts, at most a block of slack)."""
        more = n - len(self._flags)
        if more > 0:
            more = max(more, _BLOCK_ROWS)
            self._flags.extend(bytes(more))
            self._tier.extend(bytes(more))
            for col in self._cols.values():
                col.frombytes(bytes(col.itemsize * more))

    def _code(self, name: str) -> int:
        code = self._name_codes.get(name)
        if code is None:
            if not isinstance(name, str):
                raise TypeError(f"category/tier: expected a string, got {type(name).__name__}")
            if len(self._names) == 65535:
                raise ValueError("category/tier: more than 65,535 distinct names")
            code = self._name_codes[name] = len(self._names)
            self._names.append(name)
        return code

    def _scope_code(self, scope: tuple[Any, Any, Any, Any]) -> int:
        code = self._scope_codes.get(scope)
        if code is None:
            code = self._scope_codes[scope] = len(self._scopes)
            self._scopes.append(scope)
        return code

    def _add_text(self, text: str) -> tuple[int, int]:
        data = text.encode()
        start = len(self._text)
        self._text += data
        return start, len(data)

    def _drop_text(self, start: int, length: int) -> None:
        """Zero a removed text (no stale copy of it stays in RAM) and repack once half the buffer is removed texts."""
        self._text[start : start + length] = bytes(length)
        self._dead += length
        if self._dead > 65536 and 2 * self._dead > len(self._text):
            self._repack()

    def _repack(self) -> None:
        starts, lengths = self._cols["start"], self._cols["length"]
        packed = bytearray()
        for i in self.ids().tolist():
            start = starts[i]
            starts[i] = len(packed)
            packed += self._text[start : start + lengths[i]]
        self._text[:] = bytes(len(self._text))
        self._text = packed
        self._dead = 0

    def _probe(self, high: int) -> Iterator[int]:
        slots, mask, highs = self._slots, len(self._slots) - 1, self._cols["high"]
        at = high & mask
        while True:
            id_ = slots[at]
            if id_ == _EMPTY:
                return
            if id_ >= 0 and highs[id_] == high:
                yield id_
            at = (at + 1) & mask

    def _hash(self, id_: int) -> None:
        if 2 * (self._used + 1) > len(self._slots):  # at most half full, counting removed ids' slots
            size = len(self._slots)
            self._rehash(2 * size if 4 * self._count > size else size, skip=id_)
        self._insert(id_)

    def _insert(self, id_: int) -> None:
        slots, mask = self._slots, len(self._slots) - 1
        at = self._cols["high"][id_] & mask
        while slots[at] >= 0:
            at = (at + 1) & mask
        if slots[at] == _EMPTY:
            self._used += 1
        slots[at] = id_

    def _unhash(self, id_: int) -> None:
        slots, mask = self._slots, len(self._slots) - 1
        at = self._cols["high"][id_] & mask
        while slots[at] != _EMPTY:
            if slots[at] == id_:
                slots[at] = _GONE
                return
            at = (at + 1) & mask

    def _rehash(self, size: int, skip: int) -> None:
        self._slots = array("q", [_EMPTY]) * size
        self._used = 0
        for i in self.ids().tolist():
            if i != skip:
                self._insert(i)
