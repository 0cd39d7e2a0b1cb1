"""Keyword search: an SQLite FTS5 index ranked by BM25, held in RAM and rebuilt from the store on open.

The index is derived state (the store holds every text), so it never needs a
file of its own: nothing forgotten can linger in one. It is contentless
(``content=''``): FTS5 keeps the word lists, not a second copy of every text
(the memory's records hold the texts), about half the index's RAM. Removing a
row therefore names the text it was indexed with (FTS5's ``'delete'``
command, which SQLite versions before 3.43 need on a contentless table).

The index keeps which rows hold each word, not where in the text
(``detail=none``): every query is an OR of single words (:func:`fts_query`),
so positions would serve no query, and without them the index takes a third
less RAM (dev texts: 61 against 91 bytes of pages a memory, about 45 bytes
less RSS). BM25 then counts a word once per memory however often it repeats
there; in memories of a sentence or two a repeated query word is rare.

Inserts wait in a small pending map and reach FTS5 in one transaction, when
:data:`PENDING_ROWS` have gathered or before anything reads the index: one
FTS5 insert statement costs about as much as the rest of an agent's ``add``,
and a batch of them costs a fraction per row. Removing a pending row drops it
from the map, so a forgotten text never reaches the index at all.

Examples
--------
>>> index = KeywordIndex()
>>> index.add(1, "the user prefers metric units"); index.add(2, "deploy on fridays is forbidden")
>>> [i for i, _ in index.search("metric units")]
[1]
>>> index.remove(1, "the user prefers metric units"); list(index.search("metric"))
[]
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator

__all__ = ["PENDING_ROWS", "KeywordIndex", "fts_query"]

PENDING_ROWS = 256  # inserts gathered before one transaction writes them

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any word of ``text`` (each quoted, so no word is read as syntax); None if no words."""
    words = _WORD.findall(text.lower())
    if not words:
        return None
    return " OR ".join('"' + w + '"' for w in dict.fromkeys(words))


class KeywordIndex:
    """Ids (int) → text, searchable by BM25 (higher score better)."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        try:
            self._conn.execute("CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='unicode61', content='', detail=none)")
        except sqlite3.OperationalError as exc:  # pragma: no cover - every CPython build has FTS5 today
            raise RuntimeError("keyword search needs SQLite with FTS5 compiled in") from exc

    def add(self, id_: int, text: str) -> None:
        with self._lock:
            self._pending[int(id_)] = text
            if len(self._pending) >= PENDING_ROWS:
                self._flush()

    def add_many(self, rows: list[tuple[int, str]]) -> None:
        with self._lock:
            self._pending.update((int(i), t) for i, t in rows)
            self._flush()

    def replace(self, id_: int, old_text: str, text: str) -> None:
        """Index ``id_`` under ``text`` instead of ``old_text`` (the text it was added with)."""
        self.remove(id_, old_text)
        self.add(id_, text)

    def remove(self, id_: int, text: str) -> None:
        """Drop ``id_``, which was added with ``text`` (a contentless index cannot look the text up itself)."""
        with self._lock:
            if self._pending.pop(int(id_), None) is None:
                self._conn.execute("INSERT INTO fts(fts, rowid, text) VALUES ('delete', ?, ?)", (int(id_), text))

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._conn.execute("INSERT INTO fts(fts) VALUES ('delete-all')")

    def _flush(self) -> None:
        """Write the pending rows in one transaction (the caller holds the lock)."""
        if self._pending:
            rows, self._pending = list(self._pending.items()), {}
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT INTO fts(rowid, text) VALUES (?, ?)", rows)
            self._conn.execute("COMMIT")

    def flush(self) -> None:
        """Make every added row searchable now (reads do this themselves)."""
        with self._lock:
            self._flush()

    def search(self, text: str) -> Iterator[tuple[int, float]]:
        """``(id, score)`` best first (score = -bm25, so higher is better), lazily: stop reading when you have enough."""
        query = fts_query(text)
        if query is None:
            return
        self.flush()
        cur = self._conn.execute("SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY rank", (query,))
        while True:
            rows = cur.fetchmany(256)
            if not rows:
                return
            for rowid, score in rows:
                yield int(rowid), -float(score)

    def __len__(self) -> int:
        self.flush()
        return int(self._conn.execute("SELECT count(*) FROM fts").fetchone()[0])

    def nbytes(self) -> int:
        """Pages the index occupies in RAM (pending rows written first)."""
        self.flush()
        page = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int(page * self._conn.execute("PRAGMA page_count").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
