"""The tier-backend contract, for every backend: embedded (dict, mapping, SQLite, log
segments), servers (Redis, PostgreSQL) and the core's store-backed layer.

A new backend joins with a :class:`~conformance.tiers.BackendContract` subclass
(and a :class:`~conformance.tiers.BackendMachine` bound to it); a durable one
that can be killed mid-write also joins ``CRASH_KINDS``. Redis and PostgreSQL
run where ``.ci/services.sh`` started them and skip with the reason elsewhere.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from _servers import database_url, drop_tables, redis_url, unique
from conformance.tiers import MACHINE_SETTINGS, BackendContract, BackendMachine, RecordLayerContract, crash_round
from hypothesis import settings

from memstrata import MemoryStore
from memstrata.core._layers import HotCache, RedisCache, StoreBackend
from memstrata.tiers import (
    LogBackend,
    MappingBackend,
    MemoryBackend,
    PostgresBackend,
    RedisBackend,
    SQLiteBackend,
)

# ------------------------------------------------------------------ embedded


class TestMemoryBackend(BackendContract):
    def make(self, where: Path) -> MemoryBackend:
        return MemoryBackend()


class TestMappingBackend(BackendContract):
    def make(self, where: Path) -> MappingBackend:
        return MappingBackend({})


class TestSQLiteBackend(BackendContract):
    def make(self, where: Path) -> SQLiteBackend:
        return SQLiteBackend(where / "kv.sqlite")

    def reopen(self, backend: Any) -> SQLiteBackend:
        backend.close()
        return SQLiteBackend(backend.path)


class TestLogBackend(BackendContract):
    def make(self, where: Path) -> LogBackend:
        return LogBackend(where / "log", segment_max_bytes=4096)  # small segments: the machine crosses rolls

    def reopen(self, backend: Any) -> LogBackend:
        backend.close()
        return LogBackend(backend.directory, segment_max_bytes=4096)


class TestStoreBackend(BackendContract):
    """The core's durable layer on a :class:`memstrata.MemoryStore`: text keys, one key per write."""

    binary_keys = False
    batches = False
    machine_examples = 15  # a whole MemoryStore (files, threads) per example

    def make(self, where: Path) -> StoreBackend:
        return StoreBackend(MemoryStore(where / "store", {"migration_interval_seconds": None}), "v:")

    def reopen(self, backend: Any) -> StoreBackend:
        backend.close()
        return StoreBackend(MemoryStore(backend.store.path, {"migration_interval_seconds": None}), backend.prefix)


# ------------------------------------------------------------------- servers


def _removing_data_on_close(backend: Any, remove: Any) -> Any:
    """Make ``backend.close()`` also remove what the test wrote (servers outlive the test)."""
    plain_close = backend.close

    def close() -> None:
        try:
            plain_close()
        finally:
            remove()

    backend.close = close
    backend.plain_close = plain_close  # a reopen hands the removal on to the new object
    return backend


def _remove_namespace(namespace: bytes) -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    for k in client.scan_iter(match=namespace + b"*"):
        client.delete(k)
    client.close()


class TestRedisBackend(BackendContract):
    def make(self, where: Path) -> RedisBackend:
        backend = RedisBackend(redis_url(), unique("memstrata-test:"))
        return _removing_data_on_close(backend, lambda: _remove_namespace(backend.namespace))

    def reopen(self, backend: Any) -> RedisBackend:
        backend.plain_close()
        again = RedisBackend(redis_url(), backend.namespace)
        return _removing_data_on_close(again, lambda: _remove_namespace(again.namespace))


class TestPostgresBackend(BackendContract):
    def make(self, where: Path) -> PostgresBackend:
        url = database_url()
        backend = PostgresBackend(url, unique("mstest_kv_")[:-1])
        return _removing_data_on_close(backend, lambda: drop_tables(url, backend.table))

    def reopen(self, backend: Any) -> PostgresBackend:
        backend.plain_close()
        url = database_url()
        again = PostgresBackend(url, backend.table)
        return _removing_data_on_close(again, lambda: drop_tables(url, again.table))


# -------------------------------------------------- every backend as a machine


def _machine_case(contract: type[BackendContract]) -> Any:
    machine = type(f"{contract.__name__}Machine", (BackendMachine,), {"contract": contract()})
    case = machine.TestCase
    n = contract.machine_examples
    case.settings = MACHINE_SETTINGS if n is None else settings(MACHINE_SETTINGS, max_examples=n)
    return case


TestMemoryMachine = _machine_case(TestMemoryBackend)
TestMappingMachine = _machine_case(TestMappingBackend)
TestSQLiteMachine = _machine_case(TestSQLiteBackend)
TestLogMachine = _machine_case(TestLogBackend)
TestStoreMachine = _machine_case(TestStoreBackend)
TestRedisMachine = _machine_case(TestRedisBackend)
TestPostgresMachine = _machine_case(TestPostgresBackend)


# ------------------------------------------------------------------ crashes

CRASH_KINDS = ["sqlite", "log"]
CRASH_ROUNDS = int(os.environ.get("MEMSTRATA_TIER_CRASH_RUNS", "4"))


@pytest.mark.parametrize("kind", CRASH_KINDS)
def test_kill_keeps_every_acknowledged_batch_and_no_half_batch(kind: str, tmp_path: Path) -> None:
    rng = random.Random(kind)
    path = tmp_path / kind
    model: dict[bytes, bytes] = {}
    start = 0
    for _ in range(CRASH_ROUNDS):
        start = crash_round(kind, path, start, model, rng)


# ------------------------------------------------- the core's record layers


class TestHotCacheLayer(RecordLayerContract):
    def make(self, where: Path) -> HotCache:
        return HotCache(1 << 20)


class TestStoreLayer(RecordLayerContract):
    compares = False  # one writing process applies the audit log in order (see StoreBackend.put_newer)

    def make(self, where: Path) -> StoreBackend:
        return StoreBackend(MemoryStore(where / "store", {"migration_interval_seconds": None}), "v:")


class TestRedisCacheLayer(RecordLayerContract):
    def make(self, where: Path) -> RedisCache:
        backend = TestRedisBackend().make(where)
        return RedisCache(backend)


class TestPostgresLayer(RecordLayerContract):
    def make(self, where: Path) -> PostgresBackend:
        return TestPostgresBackend().make(where)
