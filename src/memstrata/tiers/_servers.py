"""Server backends behind the tier backend protocol: Redis (redis-py) and PostgreSQL (psycopg 3).

Install with ``pip install 'memstrata[redis]'`` / ``'memstrata[postgres]'``.
Both pass the same conformance tests as the embedded backends
(``tests/conformance/test_tier_backends.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from memstrata.errors import MemstrataError

__all__ = ["PostgresBackend", "RedisBackend", "connect_postgres", "connect_redis"]


def connect_redis(url: str) -> Any:
    """A redis-py client for ``url`` (``redis://host:port/db``), checked with a PING."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the Redis backend needs redis-py: pip install 'memstrata[redis]'") from exc
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise MemstrataError(f"redis at {url}: cannot connect ({exc})") from exc
    return client


def connect_postgres(url: str) -> Any:
    """A psycopg 3 connection (autocommit; explicit transactions) to ``url``."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the PostgreSQL backend needs psycopg 3: pip install 'memstrata[postgres]'") from exc
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise MemstrataError(f"postgresql at {url}: cannot connect ({exc})") from exc


def _glob_escape(prefix: bytes) -> bytes:
    out = bytearray()
    for c in prefix:
        if c in b"*?[]\\":
            out += b"\\"
        out.append(c)
    return bytes(out)


_PUT_NEWER_LUA = """
local cur = redis.call('GETRANGE', KEYS[1], 0, 7)
if cur ~= '' and cur >= string.sub(ARGV[1], 1, 8) then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


class RedisBackend:
    """Bytes by key in Redis, under a key ``namespace``; ``put`` may set a TTL.

    ``apply`` runs in one MULTI/EXEC transaction, so its puts and deletes are
    seen together or not at all. ``scan`` walks ``SCAN MATCH`` and sorts.
    Shared by every process that uses the same server and namespace.
    """

    def __init__(self, url_or_client: Any, namespace: bytes | str = b"memstrata:") -> None:
        self.client = connect_redis(url_or_client) if isinstance(url_or_client, str) else url_or_client
        self.namespace = namespace.encode() if isinstance(namespace, str) else bytes(namespace)
        self._put_newer_sha: str | None = None
        import redis

        self._no_script = redis.exceptions.NoScriptError

    def get(self, key: bytes) -> bytes | None:
        v = self.client.get(self.namespace + key)
        return None if v is None else bytes(v)

    def put(self, key: bytes, value: bytes, ttl_seconds: float | None = None) -> None:
        if ttl_seconds is None:
            self.client.set(self.namespace + key, value)
        else:
            self.client.set(self.namespace + key, value, px=max(1, int(ttl_seconds * 1000)))

    def delete(self, key: bytes) -> None:
        self.client.delete(self.namespace + key)

    def put_newer(self, key: bytes, value: bytes, ttl_seconds: float | None = None) -> bool:
        """Store ``value`` unless the held value's first 8 bytes (a big-endian version) are not smaller.

        Atomic on the server (a Lua script, called by its SHA-1 with ``EVALSHA``
        straight through ``execute_command``: redis-py's ``Script`` object
        costs about as much again as the command); returns whether it stored.
        """
        px = 0 if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        sha = self._put_newer_sha
        if sha is not None:
            try:
                return bool(self.client.execute_command("EVALSHA", sha, 1, self.namespace + key, value, px))
            except self._no_script:
                pass  # the server lost its script cache (restart, SCRIPT FLUSH): load it again
        self._put_newer_sha = sha = self.client.script_load(_PUT_NEWER_LUA)
        return bool(self.client.execute_command("EVALSHA", sha, 1, self.namespace + key, value, px))

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        ns = self.namespace
        keys = sorted(set(self.client.scan_iter(match=_glob_escape(ns + prefix) + b"*", count=1000)))
        out = []
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            for k, v in zip(batch, self.client.mget(batch)):
                if v is not None:
                    out.append((bytes(k[len(ns) :]), bytes(v)))
        return iter(out)

    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        pipe = self.client.pipeline(transaction=True)
        dels = [self.namespace + k for k in deletes]
        if dels:
            pipe.delete(*dels)
        if puts:
            pipe.mset({self.namespace + k: v for k, v in puts.items()})
        pipe.execute()

    def flush(self) -> None:
        pass  # every acknowledged command is applied; persistence is the server's configuration

    def close(self) -> None:
        self.client.close()


class PostgresBackend:
    """Bytes by key in a PostgreSQL table ``(k BYTEA PRIMARY KEY, v BYTEA)`` (psycopg 3).

    Every call commits (``apply`` in one transaction). Many processes may share
    one table; each sees the others' committed writes.
    """

    def __init__(self, url_or_connection: Any, table: str = "memstrata_kv") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"table: expected letters, digits and '_', got {table!r}")
        self.table = table
        self.conn = connect_postgres(url_or_connection) if isinstance(url_or_connection, str) else url_or_connection
        self._lock = threading.RLock()
        with self._lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)")
        t = table
        self._get = f"SELECT v FROM {t} WHERE k=%s"
        self._put = f"INSERT INTO {t} VALUES (%s,%s) ON CONFLICT (k) DO UPDATE SET v=EXCLUDED.v"
        self._del = f"DELETE FROM {t} WHERE k=%s"
        self._put_newer = (
            f"INSERT INTO {t} AS t VALUES (%s,%s) ON CONFLICT (k) DO UPDATE SET v=EXCLUDED.v "
            "WHERE substring(t.v from 1 for 8) < substring(EXCLUDED.v from 1 for 8)"
        )

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            row = self.conn.execute(self._get, (key,), prepare=True).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self.conn.execute(self._put, (key, value), prepare=True)

    def delete(self, key: bytes) -> None:
        with self._lock:
            self.conn.execute(self._del, (key,), prepare=True)

    def put_newer(self, key: bytes, value: bytes) -> bool:
        """Upsert ``value`` unless the held value's first 8 bytes (a big-endian version) are not smaller.

        One statement, so concurrent writers converge on the newest version.
        """
        with self._lock:
            return bool(self.conn.execute(self._put_newer, (key, value), prepare=True).rowcount)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        from memstrata.tiers._backend import _prefix_end

        end = _prefix_end(prefix)
        with self._lock:
            if end is None:
                rows = self.conn.execute(f"SELECT k, v FROM {self.table} WHERE k>=%s ORDER BY k", (prefix,)).fetchall()
            else:
                rows = self.conn.execute(
                    f"SELECT k, v FROM {self.table} WHERE k>=%s AND k<%s ORDER BY k", (prefix, end)
                ).fetchall()
        return iter([(bytes(k), bytes(v)) for k, v in rows])

    def apply(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        with self._lock, self.conn.transaction():
            cur = self.conn.cursor()
            dels = [(k,) for k in deletes]
            if dels:
                cur.executemany(self._del, dels)
            if puts:
                cur.executemany(self._put, list(puts.items()))

    def flush(self) -> None:
        pass  # every call has committed

    def close(self) -> None:
        with self._lock:
            self.conn.close()
