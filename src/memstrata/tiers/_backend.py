"""The tier backend protocol (bytes by key) and its embedded implementations.

A backend is the smallest thing a durable tier needs: ``get`` / ``put`` /
``delete`` / ``scan`` of bytes by bytes key, the batch variant ``apply`` (its
deletes, then its puts, committed together, atomically: a key in both ends up
put) and ``flush`` (a commit point). Redis or PostgreSQL backends implement the
same six methods and pass the same conformance tests
(``tests/conformance/test_tier_backends.py``).
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from memstrata.errors import CorruptDataError, MemstrataError

__all__ = [
    "DURABILITY_LEVELS",
    "Backend",
    "MappingBackend",
    "MemoryBackend",
    "SQLiteBackend",
    "StorageFullError",
]

#: SQLite ``synchronous`` setting for each durability level.
DURABILITY_LEVELS = {"none": "OFF", "normal": "NORMAL", "full": "FULL"}

SCHEMA_VERSION = 1


class StorageFullError(MemstrataError, OSError):
    """The store ran out of space; the write was not applied and the store is still readable."""


@runtime_checkable
class Backend(Protocol):
    """Bytes by key, with an atomic batch and a flush point."""

    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...
    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


# SQLite's result codes (the sqlite3 module names them from Python 3.11 on)
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 11, 13, 26

def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


class MemoryBackend:
    """A ``dict`` behind the backend protocol (nothing survives the process).

    >>> b = MemoryBackend()
    >>> b.apply({b"a1": b"x", b"a2": b"y", b"b1": b"z"})
    >>> sorted(b.scan(b"a"))
    [(b'a1', b'x'), (b'a2', b'y')]
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._data[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            items = [(k, v) for k, v in self._data.items() if k.startswith(prefix)]
        items.sort()
        return iter(items)

    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        with self._lock:
            for k in deletes:
                self._data.pop(k, None)
            for k, v in puts.items():
                self._data[bytes(k)] = bytes(v)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def size_bytes(self) -> int:
        """Bytes of keys and values held."""
        return sum(len(k) + len(v) for k, v in self._data.items())


class MappingBackend:
    """Any mapping-like engine of bytes (``get``/``[]=``/``del``/``keys``) as a backend.

    Used by :meth:`memstrata.MemoryStore.wrap`. ``apply`` is atomic only if the
    engine's own writes are; if the engine has a ``flush``, ``sync`` or
    ``commit`` method it is called at each flush point.

    >>> engine = {}
    >>> b = MappingBackend(engine)
    >>> b.put(b"k", b"v"); engine
    {b'k': b'v'}
    """

    def __init__(self, engine: MutableMapping[bytes, bytes] | Any) -> None:
        for name in ("get", "__setitem__", "__delitem__", "keys"):
            if not hasattr(engine, name):
                raise TypeError(f"engine: expected a mapping-like object with get/[]=/del/keys, it lacks {name!r}")
        self.engine = engine
        self._flush = next((getattr(engine, n) for n in ("flush", "sync", "commit") if callable(getattr(engine, n, None))), None)

    def get(self, key: bytes) -> bytes | None:
        v = self.engine.get(key)
        return None if v is None else bytes(v)

    def put(self, key: bytes, value: bytes) -> None:
        self.engine[key] = value

    def delete(self, key: bytes) -> None:
        try:
            del self.engine[key]
        except KeyError:
            pass

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(bytes(k) for k in list(self.engine.keys()) if bytes(k).startswith(prefix))
        for k in keys:
            v = self.engine.get(k)
            if v is not None:
                yield k, bytes(v)

    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        for k in deletes:  # deletes first, like every backend: a key in both ends up put
            self.delete(k)
        for k, v in puts.items():
            self.engine[k] = v

    def flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def close(self) -> None:
        self.flush()


def _translate(exc: sqlite3.Error, where: str, write: bool = False) -> Exception:
    """Map SQLite errors onto memstrata's: full disk, corruption, or as-is."""
    code = getattr(exc, "sqlite_errorcode", None)
    msg = str(exc)
    if code == _SQLITE_FULL or "full" in msg:
        return StorageFullError(
            errno.ENOSPC,
            f"memstrata: {where} is full ({msg}); the write was not applied and the store is still "
            "readable; free disk space or raise max_disk_bytes",
        )
    if code is not None and code & 0xFF == 10 and write:  # SQLITE_IOERR while writing
        return StorageFullError(
            errno.EIO,
            f"memstrata: writing {where} failed ({msg}: the disk is full, a file size limit was reached, "
            "or the device failed); the write was not applied and the store is still readable",
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in msg or "not a database" in msg:
        return CorruptDataError(f"memstrata: {where} is damaged ({msg})")
    return exc


class SQLiteBackend:
    """One SQLite file (WAL) holding a ``kv(k BLOB PRIMARY KEY, v BLOB)`` table.

    Parameters
    ----------
    path : str or Path
        The database file (``":memory:"`` for RAM only).
    durability : {"none", "normal", "full"}
        SQLite ``synchronous`` OFF / NORMAL / FULL (see :class:`memstrata.MemoryStore`).
    max_disk_bytes : int, optional
        Cap on the database file size; writes past it raise
        :class:`StorageFullError` and change nothing.
    read_only : bool
        Open without write access (other processes may be writing).
    immutable : bool
        With ``read_only``: nobody writes the file, so SQLite creates no
        ``-shm``/``-wal`` files (read-only media, format-1 stores).

    Notes
    -----
    The schema version lives in the ``meta`` table; opening a file with a newer
    version raises ``CorruptDataError`` naming both versions. One connection,
    used under a lock, so the object is thread-safe.

    >>> b = SQLiteBackend(":memory:")
    >>> b.apply({b"k1": b"v1", b"k2": b"v2"}, deletes=[b"k0"])
    >>> b.get(b"k1"), list(b.scan(b"k2"))
    (b'v1', [(b'k2', b'v2')])
    >>> b.close()
    """

    def __init__(
        self,
        path: str | Path,
        durability: str = "normal",
        *,
        max_disk_bytes: int | None = None,
        read_only: bool = False,
        cache_mib: int = 16,
        immutable: bool = False,
    ) -> None:
        if durability not in DURABILITY_LEVELS:
            raise ValueError(f"durability: expected one of {sorted(DURABILITY_LEVELS)}, got {durability!r}")
        self.path = str(path)
        self.durability = durability
        self.read_only = read_only
        self._lock = threading.RLock()
        where = f"the store file {self.path}"
        self._where = where
        try:
            if read_only:
                uri = Path(self.path).resolve().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translate(exc, where) from exc
        self._conn = conn
        try:
            if not read_only and self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={DURABILITY_LEVELS[durability]}")
            conn.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
            conn.execute("PRAGMA mmap_size=268435456")
            if not read_only:
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is None or int(row[0]) > SCHEMA_VERSION:
                raise CorruptDataError(
                    f"{where}: schema version {None if row is None else row[0]} is not readable by this "
                    f"memstrata (knows up to {SCHEMA_VERSION})"
                )
            self.schema_version = int(row[0])
            if max_disk_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, int(max_disk_bytes) // page)}")
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, where) from exc
        except BaseException:
            conn.close()
            raise

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            try:
                row = self._conn.execute("SELECT v FROM kv WHERE k=?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, self._where) from exc
        return None if row is None else row[0]

    def put(self, key: bytes, value: bytes) -> None:
        self.apply({key: value})

    def get_pair(
        self, key: bytes, prefix: bytes, start: int, length: int, inline_after: int | None = None
    ) -> tuple[bytes | None, bytes | None]:
        """``(value of key, value of prefix + value[start:start + length])`` in one query.

        Optional in the protocol: it lets a reader follow a pointer record
        without a second round trip. A first value longer than ``inline_after``
        holds the second itself: ``(value, value[inline_after:])``.
        """
        with self._lock:
            try:
                row = self._conn.execute(self._pair_sql, (prefix, start + 1, length, key)).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, self._where) from exc
        if row is None:
            return None, None
        if inline_after is not None and len(row[0]) > inline_after:
            return row[0], row[0][inline_after:]
        return row[0], row[1]

    _pair_sql = "SELECT a.v, b.v FROM kv AS a LEFT JOIN kv AS b ON b.k = CAST(? || substr(a.v, ?, ?) AS BLOB) WHERE a.k = ?"

    def delete(self, key: bytes) -> None:
        self.apply({}, (key,))

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        end = _prefix_end(prefix)
        with self._lock:
            try:
                if end is None:
                    rows = self._conn.execute("SELECT k, v FROM kv WHERE k>=? ORDER BY k", (prefix,)).fetchall()
                else:
                    rows = self._conn.execute("SELECT k, v FROM kv WHERE k>=? AND k<? ORDER BY k", (prefix, end)).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self._where) from exc
        return iter(rows)

    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    dels = [(k,) for k in deletes]
                    if dels:
                        conn.executemany("DELETE FROM kv WHERE k=?", dels)
                    if puts:
                        conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", list(puts.items()))
                except BaseException:
                    if conn.in_transaction:  # SQLite already rolled back on some errors (full disk)
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # the connection rolls back by itself on I/O errors
                        pass
                raise _translate(exc, self._where, write=True) from exc

    def flush(self) -> None:
        """Checkpoint the WAL into the database file."""
        if self.read_only or self.path == ":memory:":
            return
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise _translate(exc, self._where) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                self.flush()
            finally:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def vacuum(self) -> None:
        """Rewrite the database file without free pages (space left by deletes and moves)."""
        if self.read_only:
            return
        with self._lock:
            try:
                self._conn.execute("VACUUM")
                if self.path != ":memory:":
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise _translate(exc, self._where) from exc

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``; returns the problems found (empty when sound)."""
        with self._lock:
            try:
                rows = self._conn.execute("PRAGMA quick_check").fetchall()
            except sqlite3.Error as exc:
                return [f"{type(exc).__name__}: {exc}"]
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        return problems

    def size_bytes(self) -> int:
        """Bytes of the database file and its WAL."""
        if self.path == ":memory:":
            with self._lock:
                pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
                return int(pages * self._conn.execute("PRAGMA page_size").fetchone()[0])
        total = 0
        for suffix in ("", "-wal"):
            p = Path(self.path + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
