"""The audit log in PostgreSQL tables (psycopg 3), shared by many processes.

Tables ``<prefix>entries`` (append-only: a trigger rejects UPDATE, DELETE and
TRUNCATE), ``<prefix>head`` (size and last hash, updated with each append),
``<prefix>payloads`` (intent records) and ``<prefix>state``. A MemoryCore whose
durable tables live in the same database writes the entry and the record
together with :meth:`PostgresLogStore.append_apply`: one statement, one round trip.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from memstrata.core._audit import chain_hash
from memstrata.core._layers import TOMBSTONE, encode_record
from memstrata.core._logstore import GENESIS, Build, _in_chunks

__all__ = ["PostgresLogStore"]

#: after a lost compare-and-set append, this many appends lock the head in the database instead
_COLLIDED_WRITES = 64


def _check_name(what: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"{what}: expected letters, digits and '_', got {name!r}")


def _pg_schema(p: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {p}entries (seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, digest BYTEA NOT NULL, result TEXT NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {p}head (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {p}payloads (seq BIGINT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS {p}state (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
INSERT INTO {p}head VALUES (1, 0, decode(repeat('00', 32), 'hex')) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION {p}append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'memstrata audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME; END $$;
DROP TRIGGER IF EXISTS {p}entries_append_only ON {p}entries;
CREATE TRIGGER {p}entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {p}entries
    FOR EACH STATEMENT EXECUTE FUNCTION {p}append_only();
"""


def _pg_apply_function(name: str, p: str, values: str, patterns: str) -> str:
    """A function that appends one entry and upserts its record into ``values`` and ``patterns``.

    The table names are part of its text, not arguments, so every statement is
    static SQL whose plan PL/pgSQL prepares once per session (``EXECUTE
    format(...)`` planned the upsert again on every call: half the write time).
    A NULL kind leaves that table alone; a tombstone for ``patterns`` only
    replaces a row that is there (most keys never held a pattern).
    """
    return f"""
CREATE OR REPLACE FUNCTION {name}(p_time float8, p_actor text, p_op text, p_key text, p_digest bytea,
        p_result text, p_payload bytea, p_values_kind int, p_patterns_kind int) RETURNS TABLE (seq bigint, hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint; v_prev bytea; v_hash bytea; v_key bytea := convert_to(p_key, 'UTF8');
    v_actor bytea := convert_to(p_actor, 'UTF8'); v_op bytea := convert_to(p_op, 'UTF8');
    v_result bytea := convert_to(p_result, 'UTF8'); v_head bytea; v_body bytea;
BEGIN
    SELECT t.size, t.hash INTO v_seq, v_prev FROM {p}head t WHERE t.id = 1 FOR UPDATE;
    IF v_seq = 0 THEN v_prev := decode(repeat('00', 32), 'hex'); END IF;
    v_hash := sha256(v_prev || int8send(v_seq) || float8send(p_time)
        || int4send(octet_length(v_actor)) || v_actor || int4send(octet_length(v_op)) || v_op
        || int4send(octet_length(v_key)) || v_key || int4send(octet_length(p_digest)) || p_digest
        || int4send(octet_length(v_result)) || v_result);
    INSERT INTO {p}entries VALUES (v_seq, p_time, p_actor, p_op, p_key, p_digest, p_result, v_hash);
    UPDATE {p}head SET size = v_seq + 1, hash = v_hash WHERE id = 1;
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


class PostgresLogStore:
    """The audit log in PostgreSQL (psycopg 3): many processes append to one chain.

    Appends lock the head row (``SELECT ... FOR UPDATE``), so concurrent
    writers are serialized and the log stays one chain. Tables are named
    ``<prefix>entries``, ``<prefix>head``, ``<prefix>payloads``, ``<prefix>state``.
    """

    def __init__(self, url: str, *, prefix: str = "memstrata_audit_") -> None:
        from memstrata.tiers import connect_postgres

        _check_name("prefix", prefix)
        self.url = url
        self.prefix = prefix
        self._lock = threading.RLock()
        self._conn = connect_postgres(url)
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (prefix + "schema",))
            self._conn.execute(_pg_schema(prefix))
        p = prefix
        self._lock_head = f"SELECT size, hash FROM {p}head WHERE id=1 FOR UPDATE"
        self._insert_entry = f"INSERT INTO {p}entries VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
        self._insert_payload = (
            f"INSERT INTO {p}payloads VALUES (%s,%s) ON CONFLICT (seq) DO UPDATE SET value=EXCLUDED.value"
        )
        self._update_head = f"UPDATE {p}head SET size=%s, hash=%s WHERE id=1"
        self._apply_sql: dict[tuple[str, str], str] = {}
        self._cas: dict[tuple[str, str], str] = {}
        self._expected: tuple[int, bytes] | None = None  # the head this store's last append_apply left
        self._collided = 0  # appends still to go through the function after a collision

    def append(self, build: Build) -> list[Any]:
        # (psycopg's pipeline mode was measured slower here than plain round trips)
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            size, prev = cur.execute(self._lock_head, prepare=True).fetchone()
            batch = build(int(size), GENESIS if size == 0 else bytes(prev))
            rows: list[Any] = batch.rows
            payloads: list[tuple[int, bytes]] = batch.payloads
            for row in rows:
                cur.execute(self._insert_entry, row, prepare=True)
            for item in payloads:
                cur.execute(self._insert_payload, item, prepare=True)
            if rows:
                cur.execute(self._update_head, (size + len(rows), rows[-1][7]), prepare=True)
            self._expected = None
        return rows

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
    ) -> tuple[int, bytes]:
        """Append one entry and upsert its record into ``tables`` (values, patterns) in one transaction, one round trip.

        ``kinds`` is the record kind for each table (None: leave it alone).
        Returns the entry's sequence number and chain hash.

        The store remembers the head its last append left. While no other
        writer has appended since, the entry and the records are built here
        and sent as one statement that commits only if the head is still the
        one they were chained onto (no server-side hashing or PL/pgSQL). When
        another writer got there first, nothing was written, and the entry is
        appended by the database function instead, which locks the head and
        builds the same bytes (:func:`memstrata.core.encode_entry`, the record
        format) server-side; after such a collision the function is used for a
        while, as collisions are likely to continue. ``AuditLog.verify``
        recomputes every hash either way.
        """
        with self._lock:
            if self._expected is not None and self._collided == 0:
                size, prev = self._expected
                h = chain_hash(prev, size, when, actor, op, key, digest, result)
                kb = key.encode()
                body = payload or b""
                rv, rp = (
                    None if k is None else encode_record(kb, size, k, b"" if k == TOMBSTONE else body) for k in kinds
                )
                tomb = rp is not None and kinds[1] == TOMBSTONE
                params = {
                    "s": size,
                    "prev": prev,
                    "h": h,
                    "t": when,
                    "a": actor,
                    "o": op,
                    "k": key,
                    "d": digest,
                    "r": result,
                }
                params.update(kb=kb, rv=rv, rp=None if tomb else rp, rt=rp if tomb else None)
                try:
                    (won,) = self._conn.execute(self._cas_sql(tables), params, prepare=True).fetchone()
                except BaseException:
                    self._expected = None
                    raise
                if won:
                    self._expected = (size + 1, h)
                    return size, h
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
            self._expected = (int(seq) + 1, bytes(h))
        return int(seq), bytes(h)

    def _cas_sql(self, tables: tuple[str, str]) -> str:
        """One statement: move the head from ``(s, prev)`` to ``(s + 1, h)``, and only then insert the entry and records."""
        sql = self._cas.get(tables)
        if sql is None:
            p = self.prefix
            upsert = (
                "INSERT INTO {table} AS t SELECT %(kb)s::bytea, %({rec})s::bytea FROM u WHERE %({rec})s::bytea IS NOT NULL "
                "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8)"
            )
            for table in tables:
                _check_name("tables", table)
            sql = self._cas[tables] = (
                f"WITH u AS (UPDATE {p}head SET size = size + 1, hash = %(h)s::bytea "
                f"WHERE id = 1 AND size = %(s)s::bigint AND hash = %(prev)s::bytea RETURNING size), "
                f"e AS (INSERT INTO {p}entries SELECT %(s)s::bigint, %(t)s::float8, %(a)s::text, %(o)s::text, %(k)s::text, "
                f"%(d)s::bytea, %(r)s::text, %(h)s::bytea FROM u), "
                f"v AS ({upsert.format(table=tables[0], rec='rv')}), "
                f"w AS ({upsert.format(table=tables[1], rec='rp')}), "
                f"x AS (UPDATE {tables[1]} AS t SET v = %(rt)s::bytea FROM u WHERE %(rt)s::bytea IS NOT NULL AND t.k = %(kb)s::bytea "
                "AND substring(t.v from 1 for 8) < substring(%(rt)s::bytea from 1 for 8)) "
                "SELECT count(*) FROM u"
            )
        return sql

    def _install_apply(self, values: str, patterns: str) -> str:
        for table in (values, patterns):
            _check_name("tables", table)
        tag = hashlib.sha256(f"{values},{patterns}".encode()).hexdigest()[:12]
        name = f"{self.prefix}apply_{tag}"
        if len(name) > 63:
            raise ValueError(f"prefix: {self.prefix!r} is too long for PostgreSQL's 63-character names")
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix + "schema",))
            self._conn.execute(_pg_apply_function(name, self.prefix, values, patterns))
        return f"SELECT * FROM {name}(%s, %s, %s, %s, %s, %s, %s, %s, %s)"

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            size, h = self._conn.execute(f"SELECT size, hash FROM {self.prefix}head WHERE id=1").fetchone()
        return int(size), bytes(h)

    def rows(self, start: int, stop: int | None) -> Iterator[Any]:
        sql = f"SELECT * FROM {self.prefix}entries WHERE seq>=%s AND seq<%s ORDER BY seq LIMIT %s"
        for r in _in_chunks(self._lock, self._conn, sql, start, stop):
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
