"""The audit log in PostgreSQL tables (psycopg 3), shared by many processes.

Tables ``<prefix>entries`` (append-only: a trigger rejects UPDATE, DELETE and
TRUNCATE; the last entry is the head), ``<prefix>payloads`` (intent records) and
``<prefix>state`` (with the tables' ``log_format``). A MemoryCore whose
durable tables live in the same database writes the entry and the record
together with :meth:`PostgresLogStore.append_apply`: one statement, one round trip.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from memstrata._native import auditchain
from memstrata.core._audit import AuditChainError
from memstrata.core._layers import PATTERN, TOMBSTONE, encode_record
from memstrata.core._logstore import GENESIS, Build, rows_in_chunks
from memstrata.errors import MemstrataError

__all__ = ["FORMAT", "PostgresLogStore", "migrate"]

#: after a lost compare-and-set append, this many appends lock the head in the database instead
_COLLIDED_WRITES = 64
_ENTRY_TYPES = ("int8", "float8", "text", "text", "text", "bytea", "text", "bytea")  # the entries' columns


def _check_name(what: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"{what}: expected letters, digits and '_', got {name!r}")


#: the table layout this module writes; older layouts are migrated when a store opens them
FORMAT = 2


def _pg_schema(p: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {p}entries (seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, digest BYTEA NOT NULL, result TEXT NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {p}payloads (seq BIGINT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {p}state (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE OR REPLACE FUNCTION {p}append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'memstrata audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME; END $$;
DROP TRIGGER IF EXISTS {p}entries_append_only ON {p}entries;
CREATE TRIGGER {p}entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {p}entries
    FOR EACH STATEMENT EXECUTE FUNCTION {p}append_only();
"""


def _pg_apply_function(name: str, p: str, values: str, patterns: str) -> str:
    """A function that appends one entry at the head and upserts its record into ``values`` and ``patterns``.

    The table names are part of its text, not arguments, so every statement is
    static SQL whose plan PL/pgSQL prepares once per session (``EXECUTE
    format(...)`` planned the upsert again on every call: half the write time).
    Callers of the function take turns on an advisory lock; a compare-and-set
    writer (which takes no lock) that inserted the same sequence number first
    makes the insert do nothing, and the function reads the new head and tries
    again. A NULL kind leaves that table alone; a tombstone for ``patterns``
    only replaces a row that is there.
    """
    return f"""
CREATE OR REPLACE FUNCTION {name}(p_time float8, p_actor text, p_op text, p_key text, p_digest bytea,
        p_result text, p_payload bytea, p_values_kind int, p_patterns_kind int) RETURNS TABLE (o_seq bigint, o_hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint; v_prev bytea; v_hash bytea; v_key bytea := convert_to(p_key, 'UTF8');
    v_actor bytea := convert_to(p_actor, 'UTF8'); v_op bytea := convert_to(p_op, 'UTF8');
    v_result bytea := convert_to(p_result, 'UTF8'); v_head bytea; v_body bytea; v_rows int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{p}append'));
    WHILE v_rows = 0 LOOP
        SELECT t.seq + 1, t.hash INTO v_seq, v_prev FROM {p}entries t ORDER BY t.seq DESC LIMIT 1;
        IF NOT FOUND THEN v_seq := 0; v_prev := decode(repeat('00', 32), 'hex'); END IF;
        v_hash := sha256(v_prev || int8send(v_seq) || float8send(p_time)
            || int4send(octet_length(v_actor)) || v_actor || int4send(octet_length(v_op)) || v_op
            || int4send(octet_length(v_key)) || v_key || int4send(octet_length(p_digest)) || p_digest
            || int4send(octet_length(v_result)) || v_result);
        INSERT INTO {p}entries VALUES (v_seq, p_time, p_actor, p_op, p_key, p_digest, p_result, v_hash)
            ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
    END LOOP;
    IF p_values_kind IS NOT NULL THEN
        v_head := int8send(v_seq) || set_byte('\\x00'::bytea, 0, p_values_kind);
        v_body := CASE WHEN p_values_kind = 1 THEN ''::bytea ELSE coalesce(p_payload, ''::bytea) END;
        INSERT INTO {values} AS t VALUES (v_key,
                v_head || substring(sha256(int4send(octet_length(v_key)) || v_key || v_head || v_body) from 1 for 16) || v_body)
            ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8);
    END IF;
    IF p_patterns_kind IS NOT NULL THEN
        v_head := int8send(v_seq) || set_byte('\\x00'::bytea, 0, p_patterns_kind);
        v_body := CASE WHEN p_patterns_kind = 1 THEN ''::bytea ELSE coalesce(p_payload, ''::bytea) END;
        v_body := v_head || substring(sha256(int4send(octet_length(v_key)) || v_key || v_head || v_body) from 1 for 16) || v_body;
        IF p_patterns_kind = 1 THEN  -- a tombstone only covers a pattern that is there
            UPDATE {patterns} AS t SET v = v_body WHERE t.k = v_key AND substring(t.v from 1 for 8) < int8send(v_seq);
        ELSE
            INSERT INTO {patterns} AS t VALUES (v_key, v_body)
                ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8);
        END IF;
    END IF;
    RETURN QUERY SELECT v_seq, v_hash;
END $$;
"""


def _records(
    key: str, seq: int, payload: bytes | None, kinds: tuple[int | None, int | None]
) -> tuple[bytes | None, bytes | None]:
    """The records entry ``seq`` puts into the (values, patterns) tables; None where the kind is None."""
    kb, body = key.encode(), payload or b""
    rv, rp = (None if k is None else encode_record(kb, seq, k, b"" if k == TOMBSTONE else body) for k in kinds)
    return rv, rp


def migrate(conn: Any, p: str) -> None:
    """Bring the log tables with prefix ``p`` to :data:`FORMAT` (inside the caller's transaction and schema lock).

    Format 1 kept the head (size, last hash) in a ``<p>head`` row that every
    append updated; format 2 reads the head from the last entry, so an append
    writes one row less. The migration checks that the head row agrees with
    the last entry (a log whose head disagrees is refused, untouched: its
    chain is for :meth:`AuditLog.verify` to judge), drops the head row's table
    and the format-1 functions that locked it, and records the format in the
    state table. Writers of format 1 sharing the database then fail on their
    next append instead of writing beside the new layout.
    """
    row = conn.execute(f"SELECT value FROM {p}state WHERE name = 'log_format'").fetchone()
    if row is not None:
        found = int(bytes(row[0]))
        if found > FORMAT:
            raise MemstrataError(
                f"audit log tables {p}*: format {found} was written by a newer memstrata (this one reads {FORMAT})"
            )
        return
    (old,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (p + "head",)).fetchone()
    if old:
        size, h = conn.execute(f"SELECT size, hash FROM {p}head WHERE id = 1").fetchone()
        last = conn.execute(f"SELECT seq + 1, hash FROM {p}entries ORDER BY seq DESC LIMIT 1").fetchone()
        if (int(size), bytes(h) if size else GENESIS) != (
            (0, GENESIS) if last is None else (int(last[0]), bytes(last[1]))
        ):
            raise AuditChainError(
                int(size),
                f"audit log tables {p}*: the head row ({size} entries) disagrees with the last entry; not migrated",
            )
        functions = conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE proname = %s OR left(proname, %s) = %s",
            (p + "append_apply", len(p) + 6, p + "apply_"),
        ).fetchall()
        for (signature,) in functions:
            conn.execute(f"DROP FUNCTION IF EXISTS {signature}")
        conn.execute(f"DROP TABLE {p}head")
    conn.execute(f"INSERT INTO {p}state VALUES ('log_format', %s)", (str(FORMAT).encode(),))


class PostgresLogStore:
    """The audit log in PostgreSQL (psycopg 3): many processes append to one chain.

    The head of the log is its last entry: an append inserts the entry at the
    next sequence number, and the primary key lets only one writer have each
    number, so concurrent writers are serialized and the log stays one chain
    (entries are never changed or removed: the trigger). Tables are named
    ``<prefix>entries``, ``<prefix>payloads``, ``<prefix>state``. Tables of
    the first layout (format 1, with a ``<prefix>head`` row updated by every
    append) are migrated when opened: see :func:`migrate`.
    """

    def __init__(self, url: str, *, prefix: str = "memstrata_audit_") -> None:
        import psycopg

        from memstrata.tiers import connect_postgres

        _check_name("prefix", prefix)
        self.url = url
        self.prefix = prefix
        self._lock = threading.RLock()
        self._conn = connect_postgres(url)
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (prefix + "schema",))
                self._conn.execute(_pg_schema(prefix))
                migrate(self._conn, prefix)
                # the name PostgreSQL gave the entries' primary key (names are cut at 63 characters)
                (self._entries_key,) = self._conn.execute(
                    "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                    (prefix + "entries",),
                ).fetchone()
        except BaseException:
            self._conn.close()
            raise
        p = prefix
        self._last = f"SELECT seq + 1, hash FROM {p}entries ORDER BY seq DESC LIMIT 1"
        self._insert_entry = f"INSERT INTO {p}entries VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
        self._insert_payload = (
            f"INSERT INTO {p}payloads VALUES (%s,%s) ON CONFLICT (seq) DO UPDATE SET value=EXCLUDED.value"
        )
        self._taken = psycopg.errors.UniqueViolation
        self._raw = psycopg.RawCursor(self._conn)  # $n placeholders: one parameter used twice, no query rewriting
        self._apply_sql: dict[tuple[str, str], str] = {}
        self._cas: dict[tuple[tuple[str, str], int | None], str] = {}
        self._expected: tuple[int, bytes] | None = None  # the head this store's last append_apply left
        self._collided = 0  # appends still to go through the function after a collision

    def append(self, build: Build) -> list[Any]:
        import psycopg

        # (psycopg's pipeline mode was measured slower here than plain round trips)
        with self._lock:
            self._expected = None
            while True:
                try:
                    with self._conn.transaction():
                        cur = self._conn.cursor()
                        # appenders that read the head take turns; a compare-and-set writer that takes no
                        # turn and gets a sequence number first makes an insert fail, and the batch is rebuilt
                        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix + "append",))
                        size, prev = cur.execute(self._last, prepare=True).fetchone() or (0, GENESIS)
                        batch = build(int(size), bytes(prev))
                        rows: list[Any] = batch.rows
                        for row in rows:
                            cur.execute(self._insert_entry, row, prepare=True)
                        for item in batch.payloads:
                            cur.execute(self._insert_payload, item, prepare=True)
                    return rows
                except psycopg.errors.UniqueViolation:
                    continue

    def append_apply(
        self,
        when: float,
        actor: str,
        op: str,
        key: str,
        digest: bytes,
        result: str,
        payload: bytes | None,
        tables: tuple[str, str],
        kinds: tuple[int | None, int | None],
    ) -> tuple[int, bytes, tuple[bytes | None, bytes | None]]:
        """Append one entry and upsert its record into ``tables`` (values, patterns) in one transaction, one round trip.

        ``kinds`` is the record kind for each table (None: leave it alone).
        Returns the entry's sequence number, its chain hash and the two
        records (:func:`memstrata.core._layers.encode_record`; None where the
        kind is None), which the caller hands on to its other layers.

        The store remembers the head its last append left. While no other
        writer has appended since, the entry and the records are built here
        and sent as one statement that inserts the entry at the next sequence
        number and the records (no server-side hashing or PL/pgSQL; entries
        are never changed, so a free number means the remembered head is still
        the last entry). When another writer got there first, the entries'
        primary key fails the statement, nothing was written, and the entry is
        appended by the database function instead, which reads the head and
        builds the same bytes (:func:`memstrata.core.encode_entry`, the record
        format) server-side; after such a collision the function is used for a
        while, as collisions are likely to continue. ``AuditLog.verify``
        recomputes every hash either way.
        """
        with self._lock:
            if self._expected is not None and self._collided == 0:
                size, prev = self._expected
                # the entry's chain hash, as chain_hash() computes it, in C
                h = auditchain.encode_records([(actor, op, key, digest, result)], size, prev, [when])[3]
                kb = key.encode()
                rv, rp = _records(key, size, payload, kinds)
                params: tuple[Any, ...] = (size, when, actor, op, key, digest, result, h, kb, rv)
                if rp is not None:
                    params += (rp,)
                try:
                    self._raw.execute(self._cas_sql(tables, kinds), params, prepare=True)
                    self._expected = (size + 1, h)
                    return size, h, (rv, rp)
                except self._taken as exc:  # another writer has this number: nothing was written
                    if exc.diag.constraint_name != self._entries_key:
                        self._expected = None
                        raise
                except BaseException:
                    self._expected = None
                    raise
                self._collided = _COLLIDED_WRITES
            elif self._collided:
                self._collided -= 1
            sql = self._apply_sql.get(tables)
            if sql is None:
                sql = self._apply_sql[tables] = self._install_apply(*tables)
            self._expected = None
            seq, h = self._conn.execute(
                sql, (when, actor, op, key, digest, result, payload, *kinds), prepare=True
            ).fetchone()
            seq, h = int(seq), bytes(h)
            self._expected = (seq + 1, h)
        return seq, h, _records(key, seq, payload, kinds)

    def append_apply_many(
        self, items: list[tuple[Any, ...]], tables: tuple[str, str]
    ) -> list[tuple[int, bytes, tuple[bytes | None, bytes | None]]] | None:
        """:meth:`append_apply` of several entries in one statement (one transaction, one round trip).

        ``items`` are ``(time, actor, operation, key, digest, result, payload,
        kinds)`` with ``kinds`` a value kind for the values table and a pattern
        or None for the patterns table; they are appended in order, and each
        table receives each key's last record. Returns what
        :meth:`append_apply` returns for each. Only by compare-and-set from the
        remembered head: when this store does not know the head, or another
        writer took one of the numbers (the entries' primary key fails the
        whole statement), nothing is written and None is returned; the caller
        then appends the entries one by one.
        """
        with self._lock:
            if self._expected is None or self._collided:
                return None
            for table in tables:
                _check_name("tables", table)
            size, prev = self._expected
            hashes = auditchain.encode_records([it[1:6] for it in items], size, prev, [it[0] for it in items])[3]
            out: list[tuple[int, bytes, tuple[bytes | None, bytes | None]]] = []
            params: list[Any] = []

            def slot(value: Any, cast: str) -> str:
                params.append(value)
                return f"${len(params)}::{cast}"

            rows: list[str] = []  # the entries
            last: tuple[dict[bytes, Any], dict[bytes, Any]] = ({}, {})  # each table's last record per key
            for i, (when, actor, op, key, digest, result, payload, kinds) in enumerate(items):
                if kinds[0] is None or kinds[1] not in (None, PATTERN):
                    raise ValueError(f"kinds: expected (a value kind, PATTERN or None), got {kinds!r}")
                seq, h = size + i, hashes[32 * i : 32 * i + 32]
                rv, rp = _records(key, seq, payload, kinds)
                fields = zip((seq, when, actor, op, key, digest, result, h), _ENTRY_TYPES)
                rows.append("(" + ", ".join(slot(v, t) for v, t in fields) + ")")
                kb = key.encode()
                last[0][kb] = rv
                if rp is not None:
                    last[1][kb] = rp
                out.append((seq, h, (rv, rp)))
            newer = "substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8)"
            upserts = [
                f"{name} AS (INSERT INTO {table} AS t VALUES "
                + ", ".join(f"({slot(k, 'bytea')}, {slot(r, 'bytea')})" for k, r in recs.items())
                + f" ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE {newer})"
                for name, table, recs in zip(("v", "w"), tables, last)
                if recs
            ]
            sql = f"WITH {', '.join(upserts)} INSERT INTO {self.prefix}entries VALUES {', '.join(rows)}"
            try:
                self._raw.execute(sql, params)
            except self._taken as exc:  # another writer has one of the numbers: nothing was written
                if exc.diag.constraint_name != self._entries_key:
                    self._expected = None
                    raise
                self._collided = _COLLIDED_WRITES
                return None
            except BaseException:
                self._expected = None
                raise
            self._expected = (size + len(items), out[-1][1])
            return out

    def _cas_sql(self, tables: tuple[str, str], kinds: tuple[int | None, int | None]) -> str:
        """One statement: insert the entry at the remembered next number, and the records with it.

        If the number is taken, the entries' primary key fails the whole
        statement, records included. Its parameters: seq, time, actor,
        operation, key, digest, result, hash, the key's bytes and the values
        record, then the patterns record when ``kinds[1]`` is set (a patterns
        tombstone only replaces a row that is there).
        """
        shape = (tables, kinds[1])
        sql = self._cas.get(shape)
        if sql is None:
            if kinds[0] is None:
                raise ValueError("kinds: the values table always takes a record (a value or a tombstone)")
            for table in tables:
                _check_name("tables", table)
            newer = "substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8)"
            sql = (
                f"WITH v AS (INSERT INTO {tables[0]} AS t VALUES ($9::bytea, $10::bytea) "
                f"ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE {newer})"
            )
            if kinds[1] == TOMBSTONE:
                sql += (
                    f", w AS (UPDATE {tables[1]} AS t SET v = $11::bytea WHERE t.k = $9::bytea "
                    "AND substring(t.v from 1 for 8) < substring($11::bytea from 1 for 8))"
                )
            elif kinds[1] is not None:
                sql += (
                    f", w AS (INSERT INTO {tables[1]} AS t VALUES ($9::bytea, $11::bytea) "
                    f"ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE {newer})"
                )
            sql = self._cas[shape] = sql + f" INSERT INTO {self.prefix}entries VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        return sql

    def _install_apply(self, values: str, patterns: str) -> str:
        for table in (values, patterns):
            _check_name("tables", table)
        tag = hashlib.sha256(f"{FORMAT}:{values},{patterns}".encode()).hexdigest()[:12]
        name = f"{self.prefix}apply_{tag}"
        if len(name) > 63:
            raise ValueError(f"prefix: {self.prefix!r} is too long for PostgreSQL's 63-character names")
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix + "schema",))
            self._conn.execute(_pg_apply_function(name, self.prefix, values, patterns))
        return f"SELECT * FROM {name}(%s, %s, %s, %s, %s, %s, %s, %s, %s)"

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            row = self._conn.execute(self._last).fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))

    def rows(self, start: int, stop: int | None) -> Iterator[Any]:
        sql = f"SELECT * FROM {self.prefix}entries WHERE seq>=%s AND seq<%s ORDER BY seq LIMIT %s"
        for r in rows_in_chunks(self._lock, self._conn, sql, start, stop):
            yield (r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6], bytes(r[7]))

    def entry_hash(self, seq: int) -> bytes:
        with self._lock:
            row = self._conn.execute(f"SELECT hash FROM {self.prefix}entries WHERE seq=%s", (seq,)).fetchone()
        if row is None:
            raise IndexError(f"seq: no entry {seq}")
        return bytes(row[0])

    def payload(self, seq: int) -> bytes | None:
        with self._lock:
            row = self._conn.execute(f"SELECT value FROM {self.prefix}payloads WHERE seq=%s", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def drop_payloads(self, upto: int) -> None:
        with self._lock:
            self._conn.execute(f"DELETE FROM {self.prefix}payloads WHERE seq<%s", (upto,))

    def get_state(self, name: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute(f"SELECT value FROM {self.prefix}state WHERE name=%s", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def states(self, prefix: str) -> dict[str, bytes]:
        """Every state value whose name starts with ``prefix``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT name, value FROM {self.prefix}state WHERE left(name, %s) = %s", (len(prefix), prefix)
            ).fetchall()
        return {name: bytes(v) for name, v in rows}

    def set_state(self, values: Mapping[str, bytes]) -> None:
        with self._lock, self._conn.transaction():
            self._conn.cursor().executemany(
                f"INSERT INTO {self.prefix}state VALUES (%s,%s) ON CONFLICT (name) DO UPDATE SET value=EXCLUDED.value",
                list(values.items()),
            )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run raw SQL (for maintenance and tests)."""
        with self._lock:
            cur = self._conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
