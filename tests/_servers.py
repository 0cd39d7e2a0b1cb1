"""Redis and PostgreSQL for the server-backend tests.

``.ci/services.sh`` starts both on loopback and exports
``MEMSTRATA_TEST_REDIS_URL`` / ``MEMSTRATA_TEST_DATABASE_URL``. Outside CI a
missing server skips its tests with the reason; under ``CI=true`` it fails them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, why: str) -> None:
    msg = f"{what} is not available ({why}); run `source .ci/services.sh` to start one"
    if IN_CI:
        pytest.fail(f"CI=true: {msg}")
    pytest.skip(msg)


def redis_url() -> str:
    url = os.environ.get("MEMSTRATA_TEST_REDIS_URL")
    if not url:
        _unavailable("Redis", "MEMSTRATA_TEST_REDIS_URL is not set")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # ImportError or a connection error
        _unavailable("Redis", f"{type(exc).__name__}: {exc}")
    return url  # type: ignore[return-value]


def database_url() -> str:
    url = os.environ.get("MEMSTRATA_TEST_DATABASE_URL")
    if not url:
        _unavailable("PostgreSQL", "MEMSTRATA_TEST_DATABASE_URL is not set")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:
        _unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}")
    return url  # type: ignore[return-value]


def unique(prefix: str) -> str:
    """A fresh name for tables or key namespaces, so tests never see each other's data."""
    return f"{prefix}{uuid.uuid4().hex[:10]}_"


def drop_tables(url: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        names = conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",)).fetchall()
        for (name,) in names:
            conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        functions = conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE left(proname, %s) = %s", (len(prefix), prefix)
        ).fetchall()
        for (signature,) in functions:
            conn.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")


@contextlib.contextmanager
def fresh_servers(table_prefix: str = "mstest_", namespace: str = "mstest:") -> Iterator[tuple[str, str, str, str]]:
    """``(redis_url, database_url, table_prefix, redis_namespace)``, fresh names; their data is removed after."""
    r, d = redis_url(), database_url()
    prefix, ns = unique(table_prefix), unique(namespace)
    try:
        yield r, d, prefix, ns
    finally:
        drop_tables(d, prefix)
        import redis

        client = redis.Redis.from_url(r)
        for k in client.scan_iter(match=ns + "*"):
            client.delete(k)
        client.close()
