"""MemoryCore on Redis (cache) + PostgreSQL (durable store, patterns, audit log), and several processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _servers import fresh_servers

from memstrata.core import AuditChainError, AuditLog, MemoryCore, PostgresLogStore
from memstrata.core._layers import decode_record, pattern_is_live


@pytest.fixture
def servers():
    with fresh_servers() as names:
        yield names


def _core(servers, **kw):
    r, d, prefix, ns = servers
    return MemoryCore(redis_url=r, database_url=d, table_prefix=prefix, redis_namespace=ns, **kw)


def test_fan_out_over_redis_and_postgres(servers):
    with _core(servers) as core:
        assert core._one_database  # the entry and the durable upsert travel together
        r = core.write_sync("user:1", {"theme": "dark"}, actor="agent-a", ttl_seconds=60)
        assert r.ok and r.layers["durable"] == "ok" and r.layers["cache"] == "ok"
        assert core.read_sync("user:1") == {"theme": "dark"} and core.cache_hits == 1
        ttl = core.cache.backend.client.pttl(core.cache.backend.namespace + b"user:1")
        assert 0 < ttl <= 60_000
        core.cache.delete(b"user:1")
        assert core.read_sync("user:1") == {"theme": "dark"} and core.cache.get(b"user:1") is not None
        core.write_sync("pat", [1, 2], metadata={"is_pattern": True, "pattern_type": "t", "confidence": 0.9})
        assert core.patterns() == [{"key": "pat", "value": [1, 2], "pattern_type": "t", "confidence": 0.9}]
        assert core.delete_sync("user:1").existed
        assert core.read_sync("user:1") is None
        assert core.audit.verify() == 3
    with _core(servers) as core:  # everything is in the servers
        assert core.read_sync("pat") == [1, 2] and core.read_sync("user:1") is None


def test_postgres_audit_log_is_append_only_in_the_database(servers):
    import psycopg

    _, d, prefix, _ = servers
    log = AuditLog(PostgresLogStore(d, prefix=prefix + "audit_"))
    for i in range(5):
        log.append("write", f"k{i}", bytes(32), actor="a")
    for sql in (f"UPDATE {prefix}audit_entries SET key='x'", f"DELETE FROM {prefix}audit_entries", f"TRUNCATE {prefix}audit_entries"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            log.store.execute(sql)
    assert log.verify() == 5
    # an owner who drops the trigger and edits an entry is still caught by the chain
    log.store.execute(f"DROP TRIGGER {prefix}audit_entries_append_only ON {prefix}audit_entries")
    log.store.execute(f"UPDATE {prefix}audit_entries SET key='forged' WHERE seq=3")
    with pytest.raises(AuditChainError) as info:
        log.verify()
    assert info.value.sequence == 3
    log.close()


def test_newer_writes_win_whatever_the_arrival_order(servers):
    with _core(servers) as core:
        from memstrata.core._layers import encode_record

        kb = b"race"
        newer, older = encode_record(kb, 10, 0, b"\xa1n"), encode_record(kb, 9, 0, b"\xa1o")
        assert core.durable.put_newer(kb, newer) and not core.durable.put_newer(kb, older)
        assert core.cache.put_newer(kb, newer) and not core.cache.put_newer(kb, older)
        assert decode_record(kb, core.durable.get(kb), "pg").seq == 10
        assert decode_record(kb, core.cache.get(kb), "redis").seq == 10


def test_two_processes_write_through_redis_and_postgres_with_one_chain(servers):
    r, d, prefix, ns = servers
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = Path(__file__).resolve().parent / "_core_server_writer.py"
    n = 60
    procs = [
        subprocess.Popen([sys.executable, str(writer), r, d, prefix, ns, name, str(n)], env=env, stderr=subprocess.PIPE)
        for name in ("alpha", "beta")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    with _core(servers, instance="checker") as core:
        total = core.audit.verify()
        entries = list(core.audit.entries())
        per_writer = 2 * n + len(range(0, n, 7)) + len(range(0, n, 11)) + len(range(5, n, 13))
        assert total == len(entries) == 2 * per_writer
        assert {e.actor for e in entries} == {"alpha", "beta"}
        assert [e.seq for e in entries] == list(range(total))
        last = {}
        for e in entries:
            last[e.key] = e
        for key, e in last.items():
            kb = key.encode()
            rec = decode_record(kb, core.durable.get(kb), "pg")
            assert rec.seq == e.seq, f"{key}: PostgreSQL holds {rec.seq}, the log says {e.seq}"
            cached = core.cache.get(kb)
            assert cached is None or decode_record(kb, cached, "redis").seq == e.seq
            value = core.read_sync(key, use_cache=False)
            if e.operation == "delete":
                assert value is None, f"{key}: deleted at {e.seq}, yet read back"
            elif key.startswith("shared:"):
                assert value["writer"] == e.actor, f"{key}: the last write was {e.actor}'s"
        live = {p["key"] for p in core.patterns()}
        assert live == {k for k, e in last.items() if e.operation == "write.pattern"}
        cp = core.audit.checkpoint()
        assert core.audit.verify([cp]) == total


def test_readme_redis_postgres_example_runs(servers):
    import re

    r, d, prefix, ns = servers
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```py\n(.*?)```", readme, flags=re.S)
    os.environ["MEMSTRATA_TABLE_PREFIX"], os.environ["MEMSTRATA_REDIS_NAMESPACE"] = prefix, ns
    try:
        exec(compile(block, "README.md Redis + PostgreSQL block", "exec"), {"redis_url": r, "database_url": d})
    finally:
        del os.environ["MEMSTRATA_TABLE_PREFIX"], os.environ["MEMSTRATA_REDIS_NAMESPACE"]


def test_payloads_are_kept_until_every_writer_has_passed_them(servers):
    # without a durable store the intent payloads are what a replay re-applies to the cache
    with _core(servers, instance="a", checkpoint_every=1000, durable=False) as slow:
        with _core(servers, instance="b", checkpoint_every=3, durable=False) as fast:
            slow.write_sync("x", 1)
            for i in range(6):
                fast.write_sync(f"y{i}", i)
            assert slow.audit.payload(0) is not None  # writer "a" has not saved past entry 0
        slow.write_sync("x", 2)
    with _core(servers, instance="c", durable=False) as core:
        assert core.audit.store.execute(f"SELECT count(*) FROM {servers[2]}audit_payloads")[0][0] == 0


def test_interleaved_writers_collide_and_fall_back_to_the_locking_function(servers):
    # a core chains its next entry onto the head its last write left; when another writer moved
    # the head meanwhile, nothing is written and the database function (head locked) appends it
    with _core(servers, instance="a") as a, _core(servers, instance="b") as b:
        a.write_sync("k", 0)  # first write: the function (no head remembered yet)
        a.write_sync("k", 1)  # compare-and-set on the remembered head
        assert a.audit.store._collided == 0
        b.write_sync("k", 2)
        b.write_sync("p", "x", metadata={"is_pattern": True, "pattern_type": "t", "confidence": 0.5})
        r = a.write_sync("k", 3)  # the head moved: a collision, then the function
        assert a.audit.store._collided > 0 and r.seq == 4
        assert not a._has_patterns and a.read_sync("p", use_cache=False) == "x"  # b's pattern, seen through its tombstone
        a.write_sync("p", "plain now")  # a value over a pattern: newer than the pattern, which it covers
        b.delete_sync("k")
        entries = list(a.audit.entries())
        assert a.audit.verify() == len(entries) == 7 and [e.seq for e in entries] == list(range(7))
        assert [e.key for e in entries] == ["k", "k", "k", "p", "k", "p", "k"]
        kb, pb = b"k", b"p"
        assert decode_record(kb, a.durable.get(kb), "pg").kind == 1  # the delete's tombstone
        assert decode_record(pb, a.durable.get(pb), "pg").seq == 5
        # the patterns table is left alone by values and deletes: its row is covered by the newer value
        assert decode_record(pb, a.pattern_store.get(pb), "pg").seq == 3
        assert not pattern_is_live(a.pattern_store.get(pb), a.durable.get(pb))
        assert a.read_sync("k", use_cache=False) is None and b.read_sync("p", use_cache=False) == "plain now"
        assert a.patterns() == []


def test_threads_of_one_core_write_through_redis_and_postgres_with_one_chain(servers):
    """Concurrent writers of one MemoryCore queue into batches; PostgreSQL, Redis and the log agree afterwards."""
    import random
    import threading

    keys = [f"k{i}" for i in range(8)]
    with _core(servers, vector=False) as core:

        def writer(t: int) -> None:
            rng = random.Random(t)
            for _ in range(40):
                key, r = rng.choice(keys), rng.random()
                if r < 0.2:
                    core.delete_sync(key, actor=f"w{t}")
                elif r < 0.3:
                    core.write_sync(key, {"p": t}, metadata={"is_pattern": True, "pattern_type": "x"})
                else:
                    core.write_sync(key, {"t": t, "x": rng.random()}, actor=f"w{t}")

        batches: list[int] = []
        many = core.audit.store.append_apply_many

        def counted(items, tables):
            out = many(items, tables)
            batches.append(0 if out is None else len(out))
            return out

        core.audit.store.append_apply_many = counted
        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(batches, default=0) > 1, "no batch went to PostgreSQL as one transaction"
        assert core.audit.verify() == 160
        last = {}
        for e in core.audit.entries():
            last[e.key] = e
        for key, e in last.items():
            kb = key.encode()
            cached = core.cache.get(kb)
            if cached is not None:
                assert decode_record(kb, cached, "cache").seq == e.seq
            value = core.read_sync(key, use_cache=False)
            if e.operation == "delete":
                assert value is None
            else:
                rec = core.pattern_store.get(kb) if e.operation == "write.pattern" else core.durable.get(kb)
                assert decode_record(kb, rec, "durable").seq == e.seq
                assert core.read_sync(key) == value


def test_a_batch_whose_number_was_taken_is_appended_entry_by_entry(servers):
    """Another writer appended after this core's last append: the batch's transaction fails whole, then each entry goes alone."""
    from test_core_groupcommit import _batch_of

    with _core(servers, vector=False) as a, _core(servers, vector=False, instance="b") as b:
        a.write_sync("x", 0)
        b.write_sync("y", 0)  # takes the number a expects next
        results = _batch_of(a, [lambda i=i: a.write_sync(f"k{i}", i) for i in range(3)])
        assert all(r.ok for r in results) and sorted(r.seq for r in results) == [2, 3, 4]
        assert a.audit.store._collided > 0  # the batch collided and went through the database function
        assert [a.read_sync(f"k{i}", use_cache=False) for i in range(3)] == [0, 1, 2]
        assert a.audit.verify() == 5
        batch = _batch_of(a, [lambda i=i: a.write_sync(f"k{i}", -i) for i in range(3)])
        assert all(r.ok for r in batch) and a.audit.verify() == 8
        assert [b.read_sync(f"k{i}", use_cache=False) for i in range(3)] == [0, -1, -2]
