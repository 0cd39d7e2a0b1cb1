"""One conformance suite for every tier backend: embedded (dict, mapping, SQLite) and servers (Redis, PostgreSQL)."""

from __future__ import annotations

import pytest
from _servers import database_url, drop_tables, redis_url, unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memstrata.tiers import Backend, MappingBackend, MemoryBackend, PostgresBackend, RedisBackend, SQLiteBackend

KINDS = ["memory", "mapping", "sqlite", "redis", "postgres"]


@pytest.fixture(params=KINDS)
def make_backend(request, tmp_path):
    made = []
    cleanup = []

    def make():
        kind = request.param
        if kind == "memory":
            b = MemoryBackend()
        elif kind == "mapping":
            b = MappingBackend({})
        elif kind == "sqlite":
            b = SQLiteBackend(tmp_path / f"kv{len(made)}.sqlite")
        elif kind == "redis":
            ns = unique("memstrata-test:")
            b = RedisBackend(redis_url(), ns)
            cleanup.append(lambda b=b: [b.client.delete(k) for k in b.client.scan_iter(match=b.namespace + b"*")])
        else:
            url = database_url()
            table = unique("mstest_kv_")[:-1]
            b = PostgresBackend(url, table)
            cleanup.append(lambda: drop_tables(url, table))
        made.append(b)
        return b

    yield make
    for f in cleanup:
        f()
    for b in made:
        try:
            b.close()
        except Exception:
            pass


def test_is_a_backend(make_backend):
    assert isinstance(make_backend(), Backend)


def test_get_put_delete(make_backend):
    b = make_backend()
    assert b.get(b"missing") is None
    b.put(b"k", b"v1")
    b.put(b"k", b"v2")
    b.put(b"empty", b"")
    b.put(b"\x00\xff*?[", b"\x00binary\xff")
    assert (b.get(b"k"), b.get(b"empty"), b.get(b"\x00\xff*?[")) == (b"v2", b"", b"\x00binary\xff")
    b.delete(b"k")
    b.delete(b"never-there")
    assert b.get(b"k") is None
    b.flush()


def test_scan_by_prefix_in_key_order(make_backend):
    b = make_backend()
    keys = [b"a", b"a*", b"a?b", b"a[1]", b"ab", b"a\xff", b"a\xff\xff", b"b", b"\xff\xfe"]
    b.apply({k: k + b"!" for k in keys})
    assert list(b.scan(b"a")) == [(k, k + b"!") for k in sorted(keys) if k.startswith(b"a")]
    assert [k for k, _ in b.scan(b"a\xff")] == [b"a\xff", b"a\xff\xff"]
    assert [k for k, _ in b.scan(b"a*")] == [b"a*"]
    assert [k for k, _ in b.scan()] == sorted(keys)
    assert list(b.scan(b"zzz")) == []


def test_apply_puts_and_deletes_together(make_backend):
    b = make_backend()
    b.apply({b"x": b"1", b"y": b"2"})
    b.apply({b"z": b"3", b"x": b"4"}, deletes=[b"y", b"absent"])
    assert sorted(b.scan()) == [(b"x", b"4"), (b"z", b"3")]
    b.apply({})
    assert len(list(b.scan())) == 2


def test_reopen_sees_committed_writes(make_backend, request):
    if request.node.callspec.params["make_backend"] in ("memory", "mapping"):
        pytest.skip("RAM backends hold nothing past the object")
    b = make_backend()
    b.apply({b"p": b"q"})
    b.flush()
    if isinstance(b, SQLiteBackend):
        b.close()
        b2 = SQLiteBackend(b.path)
        assert b2.get(b"p") == b"q"
        b2.close()
    elif isinstance(b, RedisBackend):
        assert RedisBackend(b.client, b.namespace).get(b"p") == b"q"
    else:
        other = PostgresBackend(database_url(), b.table)
        assert other.get(b"p") == b"q"
        other.close()


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["put", "delete", "apply"]), st.binary(min_size=1, max_size=4), st.binary(max_size=8)), max_size=30))
def test_matches_a_dict_model(make_backend, ops):
    b = make_backend()
    model: dict[bytes, bytes] = {}
    for op, k, v in ops:
        if op == "put":
            b.put(k, v)
            model[k] = v
        elif op == "delete":
            b.delete(k)
            model.pop(k, None)
        else:
            b.apply({k + b"+": v}, deletes=[k])
            model.pop(k, None)
            model[k + b"+"] = v
    assert dict(b.scan()) == model
    for k in model:
        assert b.get(k) == model[k]
