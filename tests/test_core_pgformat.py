"""The PostgreSQL audit log's table layout: format 1 (a head row) is migrated to format 2 (the last entry is the head)."""

from __future__ import annotations

import psycopg
import pytest
from _servers import fresh_servers

from memstrata.core import AuditChainError, AuditLog, MemoryCore, PostgresLogStore
from memstrata.errors import MemstrataError

# format 1 as memstrata wrote it: the head row was updated by every append, and appends went through
# a function that locked it (here a stand-in with the old name, which the migration must drop)
_FORMAT_1 = """
CREATE TABLE {p}entries (seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, digest BYTEA NOT NULL, result TEXT NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE {p}head (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE {p}payloads (seq BIGINT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE {p}state (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
INSERT INTO {p}head VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE FUNCTION {p}append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'memstrata audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME; END $$;
CREATE TRIGGER {p}entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {p}entries
    FOR EACH STATEMENT EXECUTE FUNCTION {p}append_only();
CREATE FUNCTION {p}apply_0123456789ab(p_time float8) RETURNS bigint LANGUAGE sql AS $$ SELECT size FROM {p}head $$;
"""


@pytest.fixture
def servers():
    with fresh_servers() as names:
        yield names


def _format_1_log(url: str, p: str, n: int, *, head_size: int | None = None) -> list:
    """Format-1 tables holding the chain of ``n`` entries (built by a RAM log), as a format-1 writer left them."""
    ram = AuditLog()
    for i in range(n):
        ram.append("write", f"k{i}", bytes([i]) * 32, actor="old", payload=b"v%d" % i)
    rows = list(ram.entries())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FORMAT_1.format(p=p))
        for r in rows:
            conn.execute(f"INSERT INTO {p}entries VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", tuple(r))
        size = n if head_size is None else head_size
        conn.execute(f"UPDATE {p}head SET size=%s, hash=%s", (size, rows[size - 1].hash if size else bytes(32)))
    return rows


def _relations(url: str, p: str) -> set[str]:
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE left(tablename, %s) = %s", (len(p), p)).fetchall()
        funcs = conn.execute("SELECT proname FROM pg_proc WHERE left(proname, %s) = %s", (len(p), p)).fetchall()
    return {t[len(p) :] for (t,) in tables} | {f[len(p) :] + "()" for (f,) in funcs}


def test_a_format_1_log_is_migrated_and_its_chain_still_verifies(servers):
    _, d, prefix, _ = servers
    p = prefix + "audit_"
    rows = _format_1_log(d, p, 12)
    first = AuditLog(PostgresLogStore(d, prefix=p))  # opening migrates
    cp_before = first.checkpoint(12)
    first.close()
    assert "head" not in _relations(d, p) and "apply_0123456789ab()" not in _relations(d, p)
    log = AuditLog(PostgresLogStore(d, prefix=p))
    assert log.store.get_state("log_format") == b"2"
    assert list(log.entries()) == rows and log.head() == (12, rows[-1].hash)
    assert log.verify([cp_before]) == 12
    log.append("write", "after", bytes(32), actor="new")
    assert log.verify([cp_before]) == 13 and log[12].seq == 12
    log.close()


def test_a_core_over_a_migrated_log_keeps_one_chain(servers):
    r, d, prefix, ns = servers
    _format_1_log(d, prefix + "audit_", 5)
    with MemoryCore(redis_url=r, database_url=d, table_prefix=prefix, redis_namespace=ns, trust=False) as core:
        for i in range(4):
            assert core.write_sync(f"user:{i}", i).seq == 5 + i
        assert core.read_sync("user:3", use_cache=False) == 3
        assert core.audit.verify() == 9


def test_a_format_1_head_that_disagrees_is_refused_untouched(servers):
    _, d, prefix, _ = servers
    p = prefix + "audit_"
    _format_1_log(d, p, 6, head_size=4)  # the head row says 4 entries; 6 are there
    with pytest.raises(AuditChainError, match="disagrees with the last entry") as info:
        PostgresLogStore(d, prefix=p)
    assert info.value.sequence == 4
    assert {"head", "apply_0123456789ab()"} <= _relations(d, p)


def test_a_newer_format_is_refused(servers):
    _, d, prefix, _ = servers
    p = prefix + "audit_"
    PostgresLogStore(d, prefix=p).close()
    with psycopg.connect(d, autocommit=True) as conn:
        conn.execute(f"UPDATE {p}state SET value = '3' WHERE name = 'log_format'")
    with pytest.raises(MemstrataError, match="format 3 was written by a newer memstrata"):
        PostgresLogStore(d, prefix=p)


def test_a_cut_tail_is_caught_by_a_checkpoint(servers):
    # the head is the last entry: a tail removed by someone who drops the trigger leaves a shorter,
    # still well-formed chain, which a checkpoint kept elsewhere exposes
    _, d, prefix, _ = servers
    p = prefix + "audit_"
    log = AuditLog(PostgresLogStore(d, prefix=p))
    for i in range(8):
        log.append("write", f"k{i}", bytes(32), actor="a")
    cp = log.checkpoint()
    log.store.execute(f"DROP TRIGGER {p}entries_append_only ON {p}entries")
    log.store.execute(f"DELETE FROM {p}entries WHERE seq >= 6")
    with pytest.raises(AuditChainError, match="checkpoint of 8 entries") as info:
        log.verify([cp])
    assert info.value.sequence == 6
    log.close()


def test_appends_and_compare_and_set_writes_interleave_on_one_chain(servers):
    # AuditLog.append (reads the head under an advisory lock) beside a core's compare-and-set writes
    r, d, prefix, ns = servers
    with MemoryCore(redis_url=r, database_url=d, table_prefix=prefix, redis_namespace=ns, trust=False) as core:
        other = AuditLog(PostgresLogStore(d, prefix=prefix + "audit_"))
        for i in range(6):
            core.write_sync("k", i)
            other.append("note", f"n{i}", actor="other")
        assert [e.key for e in core.audit.entries()] == [k for i in range(6) for k in ("k", f"n{i}")]
        assert core.audit.verify() == 12
        other.close()


def test_redis_reloads_its_script_after_a_script_flush(servers):
    from memstrata.core._layers import decode_record, encode_record

    r, d, prefix, ns = servers
    with MemoryCore(redis_url=r, database_url=d, table_prefix=prefix, redis_namespace=ns, trust=False) as core:
        core.write_sync("k", 1)
        core.cache.backend.client.script_flush()
        assert core.write_sync("k", 2).layers["cache"] == "ok"
        assert decode_record(b"k", core.cache.get(b"k"), "redis").seq == 1
        assert not core.cache.put_newer(b"k", encode_record(b"k", 0, 0, b"\xa1o"))
