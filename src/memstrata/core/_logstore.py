"""Where the audit log lives: the store protocol, and an SQLite file (the embedded log of older directories).

Both keep the entries, the head (size, last hash) updated in the same
transaction as each append, the intent payloads, and a small ``state`` table
(layer positions, the trust ledger) for :class:`memstrata.core.MemoryCore`.
The entries table is append-only in the database itself: a trigger rejects
UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from memstrata.errors import MemstrataError

__all__ = ["LogStore", "SQLiteLogStore", "open_log_file"]

GENESIS = b"\x00" * 32
_CHUNK = 50_000

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, time REAL NOT NULL, actor TEXT NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, digest BLOB NOT NULL, result TEXT NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS payloads (seq INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'memstrata audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'memstrata audit log is append-only'); END;
INSERT OR IGNORE INTO head VALUES (1, 0, zeroblob(32));
"""

Build = Callable[[int, bytes], Any]  # (size, last hash) -> memstrata.core._audit.Batch

#: path endings that name an SQLite log (any other path is a binary log)
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def open_log_file(path: str | bytes | os.PathLike[str] | None, durability: str = "normal") -> Any:
    """The log store of a file: SQLite for ``":memory:"``, an existing SQLite file or an SQLite suffix; else the binary log.

    ``None``: a binary log in RAM.
    """
    from memstrata.core._filelog import FileLogStore

    if path is None:
        return FileLogStore(None, durability)
    name = os.fsdecode(path)
    if name == ":memory:" or name.endswith(SQLITE_SUFFIXES):
        return SQLiteLogStore(name, durability)
    try:
        with open(name, "rb") as f:
            if f.read(16) == b"SQLite format 3\x00":
                return SQLiteLogStore(name, durability)
    except FileNotFoundError:
        pass
    return FileLogStore(name, durability)


class LogStore(Protocol):
    """What :class:`memstrata.core.AuditLog` needs of the place its entries live.

    Optional, used when present: ``scan_chain(with_hashes)`` (check every
    record where it is stored, see ``FileLogStore``), ``hashes(start, stop)``
    (the chain hashes without parsing entries) and ``append_one(item, clock)``
    (:meth:`append` of a single item, without a batch).
    """

    def append(self, build: Build) -> list[Any]:
        """Lock the head, call ``build(size, last hash)`` and commit its batch (rows, payloads) with the new head."""
        ...

    def head(self) -> tuple[int, bytes]:
        """``(size, hash of the last entry)``."""
        ...

    def rows(self, start: int, stop: int | None) -> Iterator[Any]:
        """Entries ``start <= seq < stop`` (to the end when ``stop`` is None), in order."""
        ...

    def entry_hash(self, seq: int) -> bytes: ...

    def payload(self, seq: int) -> bytes | None: ...

    def drop_payloads(self, upto: int) -> None: ...

    def close(self) -> None: ...


def rows_in_chunks(lock: Any, conn: Any, sql: str, start: int, stop: int | None) -> Iterator[Any]:
    """Entries ``start <= seq < stop`` by ``sql`` (params lo, hi, limit), a chunk per query, the lock held per chunk only."""
    hi = (1 << 62) if stop is None else stop
    lo = start
    while lo < hi:
        with lock:
            chunk = conn.execute(sql, (lo, hi, _CHUNK)).fetchall()
        yield from chunk
        if len(chunk) < _CHUNK:
            return
        lo = chunk[-1][0] + 1


class SQLiteLogStore:
    """The audit log in one SQLite file (WAL; ``synchronous`` NORMAL or FULL)."""

    def __init__(self, path: str | Path, durability: str = "normal") -> None:
        from memstrata.tiers import DURABILITY_LEVELS

        if durability not in DURABILITY_LEVELS:
            raise ValueError(f"durability: expected one of {sorted(DURABILITY_LEVELS)}, got {durability!r}")
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            self._conn = conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={DURABILITY_LEVELS[durability]}")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.executescript(_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise MemstrataError(f"audit log {self.path}: cannot open ({exc})") from exc

    def append(self, build: Build) -> list[Any]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                size, prev = conn.execute("SELECT size, hash FROM head").fetchone()
                batch = build(size, GENESIS if size == 0 else prev)
                rows: list[Any] = batch.rows
                payloads: list[tuple[int, bytes]] = batch.payloads
                if len(rows) == 1:  # the common case, without executemany's overhead
                    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", rows[0])
                else:
                    conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)", rows)
                for item in payloads:
                    conn.execute("INSERT OR REPLACE INTO payloads VALUES (?,?)", item)
                if rows:
                    conn.execute("UPDATE head SET size=?, hash=?", (size + len(rows), rows[-1][7]))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return rows

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            size, h = self._conn.execute("SELECT size, hash FROM head").fetchone()
        return int(size), bytes(h)

    def rows(self, start: int, stop: int | None) -> Iterator[Any]:
        return rows_in_chunks(
            self._lock, self._conn, "SELECT * FROM entries WHERE seq>=? AND seq<? ORDER BY seq LIMIT ?", start, stop
        )

    def entry_hash(self, seq: int) -> bytes:
        with self._lock:
            row = self._conn.execute("SELECT hash FROM entries WHERE seq=?", (seq,)).fetchone()
        if row is None:
            raise IndexError(f"seq: no entry {seq}")
        return bytes(row[0])

    def payload(self, seq: int) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM payloads WHERE seq=?", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def drop_payloads(self, upto: int) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM payloads WHERE seq<?", (upto,))

    def get_state(self, name: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE name=?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def states(self, prefix: str) -> dict[str, bytes]:
        """Every state value whose name starts with ``prefix``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, value FROM state WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {name: bytes(v) for name, v in rows}

    def set_state(self, values: Mapping[str, bytes]) -> None:
        """Write several state values in one transaction."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO state VALUES (?,?)", list(values.items()))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run raw SQL (for maintenance and tests)."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]
