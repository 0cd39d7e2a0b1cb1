"""Opening a trace database: path checks, refusing foreign files, schema, migration, crash replay.

Also the one place where ``sqlite3`` errors become memstrata's: :func:`guarded`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from memstrata._log import get_logger
from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.traces._config import STREAM, SYNCHRONOUS
from memstrata.traces._integrity import Mark, check_against_mark, delta_check, trace_check
from memstrata.traces._schema import APPLICATION_ID, MIGRATE_1_TO_2, SCHEMA_SQL, SCHEMA_VERSION
from memstrata.traces._state import TraceState
from memstrata.traces._types import TraceType

__all__ = ["TraceDatabase", "guarded"]

log = get_logger("traces")
F = TypeVar("F", bound=Callable[..., Any])
_TABLES_V1 = {"meta", "traces", "trace_log", "performance_deltas", "dictionaries", "tombstones"}
_SEQ_TABLES = ("traces", "performance_deltas", "dictionaries", "tombstones", "trace_log")
_TRANSIENT = ("locked", "busy", "disk is full", "readonly", "read-only", "interrupted")


def db_error(path: str, exc: BaseException) -> MemstrataError:
    """The memstrata error for a ``sqlite3`` (or file) error on the trace database at ``path``."""
    text = str(exc)
    if isinstance(exc, OSError) or (isinstance(exc, sqlite3.OperationalError) and any(w in text for w in _TRANSIENT)):
        return MemstrataError(f"trace database {path}: {text}")
    return CorruptDataError(f"trace database {path}: {text} (the file is damaged; verify() reports what)")


def guarded(method: F) -> F:
    """Turn ``sqlite3`` and file errors raised by ``method`` into memstrata errors naming the file."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise db_error(self._path, exc) from None

    return call  # type: ignore[return-value]


def _check_path(path: str) -> None:
    if path == "":
        raise ValueError("db_path: expected a file path or ':memory:', got an empty string")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"db_path: {path} is a directory; expected a trace database file inside it")
    p.parent.mkdir(parents=True, exist_ok=True)


class TraceDatabase(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: the connection, its opening and the mark file."""

    def _connect(self, path: str) -> None:
        in_memory = path == ":memory:" or path.startswith("file::memory:")
        if not in_memory:
            _check_path(path)
        self._path = path
        self._mark = None if in_memory else Mark(path, self.config["durability"] == "full")
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise db_error(path, exc) from None
        try:
            self._open_schema(in_memory)
        except BaseException as exc:
            self._disconnect()
            if isinstance(exc, (sqlite3.Error, OSError)) and not isinstance(exc, IsADirectoryError):
                raise db_error(path, exc) from None
            if isinstance(exc, (ValueError, TypeError, IndexError, KeyError, OverflowError)):
                # the arguments were checked before: a value read from the file was not what it must be
                raise CorruptDataError(f"trace database {path}: unreadable on open ({exc!r})") from None
            raise

    def _disconnect(self) -> None:
        """Close the connection and the mark file: at :meth:`close`, or when opening fails."""
        self._conn.close()
        if self._mark is not None:
            self._mark.close()

    def _kind(self) -> str:
        """``"new"``, ``"v1"`` or ``"ours"``; a foreign database raises."""
        conn, path = self._conn, self._path
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise CorruptDataError(f"db_path: {path} is not a SQLite database, or its header is damaged ({exc})") from None
        if app_id == APPLICATION_ID:
            return "ours"
        if app_id == 0 and not tables:
            return "new"
        if app_id == 0 and _TABLES_V1 <= tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0] == 1:
                return "v1"
        raise MemstrataError(
            f"db_path: {path} is a SQLite database that memstrata did not create (application_id {app_id:#x}, "
            f"tables {sorted(tables)}); refusing to write into it: choose another db_path"
        )

    def _open_schema(self, in_memory: bool) -> None:
        conn = self._conn
        kind = self._kind()
        mark = self._mark.read() if self._mark is not None else None
        if kind == "new" and mark is not None and max(mark[0], mark[2]) > 0:
            raise CorruptDataError(
                f"{self._path}: the trace database is missing or empty, but its mark file records seq "
                f"{max(mark[0], mark[2])} and {mark[1]} traces (restore the file from a backup)"
            )
        if kind == "new":
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # retention can give space back
        if not in_memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[self.config['durability']]}")
        if kind == "ours":
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None or version[0] != SCHEMA_VERSION:
                found = None if version is None else version[0]
                raise MemstrataError(
                    f"db_path: trace database {self._path} has schema version {found}; this memstrata reads version "
                    f"{SCHEMA_VERSION} (upgrade memstrata)"
                )
        elif kind == "new":
            conn.executescript("BEGIN;" + SCHEMA_SQL + "COMMIT;")
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("schema_version", SCHEMA_VERSION), ("seq", 0), ("n_traces", 0), ("contiguous_from", 0)],
            )
        else:
            self._migrate_v1()
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        try:
            self._seq, self._n_traces = int(meta["seq"]), int(meta["n_traces"])
        except (KeyError, TypeError, ValueError):
            raise CorruptDataError(f"{self._path}: the trace database's meta table is damaged") from None
        high = max(int(conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {t}").fetchone()[0]) for t in _SEQ_TABLES)
        problem = check_against_mark(self._path, mark, self._seq, self._n_traces, high)
        if problem is not None:
            log.error("%s", problem)
            raise CorruptDataError(problem)
        self._replay(high)
        self._meta_seq = self._high_seq = self._seq
        self._write_mark()

    def _migrate_v1(self) -> None:
        """Schema 1 → 2 in one transaction: row checksums, count and sequence in ``meta``, the marker."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATE_1_TO_2.strip().split(";\n"):
                conn.execute(statement.rstrip(";"))
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        high = max(int(conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {t}").fetchone()[0]) for t in _SEQ_TABLES)
        rows = conn.execute(
            "SELECT trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
            " retention_priority, seq, dictionary_version FROM traces"
        ).fetchall()
        conn.executemany("UPDATE traces SET row_check = ? WHERE trace_id = ?", [(trace_check(r), r[0]) for r in rows])
        logged = conn.execute(
            "SELECT trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
            " retention_priority, seq, dictionary_version FROM trace_log"
        ).fetchall()
        conn.executemany("UPDATE trace_log SET row_check = ? WHERE seq = ?", [(trace_check(r), r[8]) for r in logged])
        deltas = conn.execute(
            "SELECT metric_name, old_value, new_value, delta_magnitude, delta_direction, confidence, context,"
            " timestamp, seq, direction_rule, id FROM performance_deltas"
        ).fetchall()
        conn.executemany("UPDATE performance_deltas SET row_check = ? WHERE id = ?",
                         [(delta_check(r[:10]), r[10]) for r in deltas])
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("schema_version", SCHEMA_VERSION), ("seq", high), ("n_traces", len(rows)), ("contiguous_from", high)],
        )
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")  # takes the auto_vacuum setting; the file is rewritten once
        log.warning("%s: migrated the trace database from schema version 1 to %d (%d traces)",
                    self._path, SCHEMA_VERSION, len(rows))

    def _replay(self, high: int) -> None:
        """Move urgent traces a crash left in ``trace_log`` into ``traces``; account for lost queued rows."""
        conn = self._conn
        logged = conn.execute(
            "SELECT trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
            " retention_priority, seq, dictionary_version, row_check FROM trace_log ORDER BY seq"
        ).fetchall()
        if not logged and high <= self._seq:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            moved, damaged = 0, 0
            for row in logged:
                current = conn.execute("SELECT seq FROM traces WHERE trace_id = ?", (row[0],)).fetchone()
                if current is not None and current[0] >= row[8]:
                    conn.execute("DELETE FROM trace_log WHERE seq = ?", (row[8],))  # already flushed
                    continue
                if row[10] != trace_check(row):
                    damaged += 1  # kept in the log: verify() names it
                    continue
                if current is not None:
                    conn.execute("INSERT INTO tombstones (trace_id, seq, deleted_at, reason, old_seq)"
                                 " VALUES (?, ?, ?, 'replaced', ?)", (row[0], current[0], row[6], current[0]))
                else:
                    self._n_traces += 1
                conn.execute(
                    "INSERT OR REPLACE INTO traces (trace_id, trace_type, compressed_data, compression_ratio,"
                    " original_size, metadata, timestamp, retention_priority, seq, dictionary_version, row_check)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                conn.execute("DELETE FROM trace_log WHERE seq = ?", (row[8],))
                moved += 1
            present: set[int] = set()
            for table in _SEQ_TABLES:
                present.update(r[0] for r in conn.execute(f"SELECT seq FROM {table} WHERE seq > ?", (self._seq,)))
            present.update(r[0] for r in conn.execute("SELECT old_seq FROM tombstones WHERE old_seq > ?", (self._seq,)))
            if high - self._seq > len(present) + len(logged) + 100_000:  # a damaged seq, not a crash's queue
                raise CorruptDataError(f"{self._path}: a row carries seq {high}, far beyond the committed "
                                       f"{self._seq}: the database is damaged")
            lost = [s for s in range(self._seq + 1, high + 1) if s not in present]
            conn.executemany("INSERT INTO tombstones (trace_id, seq, deleted_at, reason) VALUES ('', ?, 0, ?)",
                             [(s, "lost_unflushed") for s in lost])
            self._seq = max(self._seq, high)
            conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                             [(self._seq, "seq"), (self._n_traces, "n_traces")])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.warning("%s: recovered after a crash: %d urgent traces replayed from the log, %d queued rows lost "
                    "(never committed)", self._path, moved, len(lost))
        if damaged:
            log.error("%s: %d damaged rows in the urgent-trace log were not replayed", self._path, damaged)

    def _write_mark(self) -> None:
        """Record ``meta.seq``, the trace count and the highest acknowledged seq outside the database."""
        if self._mark is not None:
            self._mark.write(self._meta_seq, self._n_traces, self._high_seq)


def scopes() -> list[str]:
    """Every dictionary scope: the shared stream, then each trace type."""
    return [STREAM, *(t.value for t in TraceType)]
