"""MemoryCore and AuditLog: fan-out writes, reads, audit append/verify and proofs, beside direct peers.

Goals (issue 11), each read from one run:

* group commit (no numeric goal): 4 threads against the same writes one at a
  time, groups ``core-write-4-threads-{normal,full,servers}``
  (``extra_info["vs_one_at_a_time"]``);
* embedded fan-out write p50 <= 50 us (durable + audit + cache + events):
  group ``core-write-embedded`` (beside a bare ``MemoryStore.store`` and a bare
  SQLite commit: ``extra_info["p50_us"]``);
* over Redis + PostgreSQL >= 0.8x the throughput of the same writes done
  directly with redis-py + psycopg: group ``core-write-servers``;
* audit append >= 200,000 entries/s: group ``audit-append-10k`` (beside a plain
  Python hash chain and pymerkle);
* verify of 10**6 entries <= 2 s: group ``audit-verify`` (size from
  ``MEMSTRATA_BENCH_AUDIT_N``, default 10**6);
* proofs of <= ceil(log2 N) hashes verified in <= 50 us: groups
  ``proof-inclusion-verify`` / ``proof-consistency-verify`` (beside pymerkle).
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memstrata import MemoryStore
from memstrata._native.auditchain import sha256_path
from memstrata.core import AuditLog, MemoryCore, verify_consistency, verify_inclusion

N_WRITES = 2000
AUDIT_N = int(os.environ.get("MEMSTRATA_BENCH_AUDIT_N", 10**6))
VALUE = {"theme": "dark", "language": "en", "note": "the user prefers metric units", "n": 12}


def _p50_us(fn: Any, n: int) -> float:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


# --------------------------------------------------------------- embedded write / read --


def _embedded_core(path: Path) -> MemoryCore:
    # the goal's layers: durable + audit + cache + events (one subscriber)
    core = MemoryCore(path, vector=False, trust=False)
    core.events.subscribe("memory.write", lambda e: None)
    return core


class _NoDurableCost:
    """A durable backend that keeps nothing: measures the core's own share of a write (audit, cache, events, glue)."""

    def put_newer(self, key: bytes, rec: bytes, ttl_seconds: float | None = None) -> bool:
        return True

    def get(self, key: bytes) -> None:
        return None

    def scan(self, prefix: bytes) -> Any:
        return iter(())

    def close(self) -> None:
        pass


@pytest.mark.parametrize("impl", ["memstrata-core", "memstrata-core-own-share", "memorystore-direct", "sqlite-commit"])
def test_write_embedded(benchmark: Any, tmp_path: Path, impl: str) -> None:
    benchmark.group = "core-write-embedded"
    goal = 50
    if impl.startswith("memstrata-core"):
        if impl == "memstrata-core":
            target: Any = _embedded_core(tmp_path / "core")
        else:  # the same core with a durable store that costs nothing: what the core itself adds (goal 20 µs)
            target = MemoryCore(tmp_path / "core", vector=False, trust=False, durable=_NoDurableCost())
            target.events.subscribe("memory.write", lambda e: None)
            goal = 20
        write = lambda i: target.write_sync(f"user:{i % 500}", VALUE, actor="agent")
    elif impl == "memorystore-direct":
        target = MemoryStore(tmp_path / "store", {"migration_interval_seconds": None})
        write = lambda i: target.store(f"user:{i % 500}", VALUE)
    else:
        conn = sqlite3.connect(tmp_path / "plain.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
        import msgspec

        def write(i: int) -> None:
            conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (f"user:{i % 500}", msgspec.msgpack.encode(VALUE)))

        target = conn
    p50 = _p50_us(write, N_WRITES)
    counter = iter(range(10**9))
    benchmark.pedantic(lambda: write(next(counter)), rounds=500, iterations=1, warmup_rounds=20)
    benchmark.extra_info["p50_us"] = round(p50, 2)
    benchmark.extra_info["goal_p50_us"] = goal
    target.close()


THREADS, THREAD_BLOCKS = 4, 5


@pytest.mark.parametrize("durability", ["normal", "full", "servers"])
def test_write_threads(benchmark: Any, tmp_path: Path, request: Any, durability: str) -> None:
    """Group commit: 4 threads writing at once against the same writes made one at a time (writes per second).

    Embedded with durability ``normal`` and ``full``, and over Redis +
    PostgreSQL (``servers``). Blocks of both alternate, so both see the same
    load; ``vs_one_at_a_time`` is the median of the blocks' ratios.
    """
    benchmark.group = f"core-write-4-threads-{durability}"
    if durability == "servers":
        r, d, prefix, ns = request.getfixturevalue("servers")
        core = MemoryCore(
            redis_url=r, database_url=d, table_prefix=prefix, redis_namespace=ns, vector=False, trust=False
        )
    else:
        core = MemoryCore(tmp_path / "core", vector=False, trust=False, durability=durability)
    core.events.subscribe("memory.write", lambda e: None)
    per_thread = 200 if durability == "normal" else 50
    counter = iter(range(10**9))

    def write(t: int, n: int) -> None:
        for _ in range(n):
            core.write_sync(f"user:{t}:{next(counter) % 500}", VALUE, actor=f"agent-{t}")

    def threaded() -> float:
        workers = [threading.Thread(target=write, args=(t, per_thread)) for t in range(THREADS)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return THREADS * per_thread / (time.perf_counter() - start)

    def one_at_a_time() -> float:
        start = time.perf_counter()
        write(0, THREADS * per_thread)
        return THREADS * per_thread / (time.perf_counter() - start)

    threaded(), one_at_a_time()
    if durability != "servers":  # the embedded log's appends (PostgreSQL's go with the durable records)
        appends, entries = _count_appends(core), len(core.audit)
        threaded()
        benchmark.extra_info["entries_per_append"] = round((len(core.audit) - entries) / appends[0], 2)
    rates: dict[str, list[float]] = {"threads": [], "one": []}
    for _ in range(THREAD_BLOCKS):
        rates["threads"].append(threaded())
        rates["one"].append(one_at_a_time())
    benchmark.pedantic(threaded, rounds=3, iterations=1)
    benchmark.extra_info["writes_per_s"] = round(statistics.median(rates["threads"]))
    benchmark.extra_info["one_at_a_time_writes_per_s"] = round(statistics.median(rates["one"]))
    ratios = [a / b for a, b in zip(rates["threads"], rates["one"])]
    benchmark.extra_info["vs_one_at_a_time"] = round(statistics.median(ratios), 3)
    core.close()


def _count_appends(core: MemoryCore) -> list[int]:
    """Count the appends to ``core``'s log (a batch or a single entry each): ``[appends]``."""
    calls = [0]
    store = core.audit.store
    append, append_one = store.append, store.append_one

    def counted(build: Any) -> Any:
        calls[0] += 1
        return append(build)

    def counted_one(item: Any, clock: Any) -> Any:
        calls[0] += 1
        return append_one(item, clock)

    store.append, store.append_one = counted, counted_one
    return calls


@pytest.mark.parametrize("impl", ["memstrata-core-cache-hit", "memstrata-core-durable", "memorystore-direct"])
def test_read_embedded(benchmark: Any, tmp_path: Path, impl: str) -> None:
    benchmark.group = "core-read-embedded"
    if impl == "memorystore-direct":
        store = MemoryStore(tmp_path / "store", {"migration_interval_seconds": None})
        for i in range(500):
            store.store(f"user:{i}", VALUE)
        read = lambda i: store.retrieve(f"user:{i % 500}")
        closer: Any = store
    else:
        core = _embedded_core(tmp_path / "core")
        for i in range(500):
            core.write_sync(f"user:{i}", VALUE)
        use_cache = impl.endswith("cache-hit")
        read = lambda i: core.read_sync(f"user:{i % 500}", use_cache=use_cache)
        closer = core
    assert read(3) == VALUE
    benchmark.extra_info["p50_us"] = round(_p50_us(read, N_WRITES), 2)
    counter = iter(range(10**9))
    benchmark.pedantic(lambda: read(next(counter)), rounds=500, iterations=1, warmup_rounds=20)
    closer.close()


# ------------------------------------------------------------ Redis + PostgreSQL write --


@pytest.fixture(scope="module")
def servers() -> Any:
    from _servers import fresh_servers

    with fresh_servers("msbench_", "msbench:") as names:
        yield names


SERVER_BLOCKS, SERVER_BLOCK = 12, 25


def _server_writer(servers: Any, impl: str) -> tuple[Any, Any]:
    """``(write(i), close())`` for one implementation: MemoryCore, or the same writes with redis-py + psycopg."""
    r, d, prefix, ns = servers
    import msgspec

    if impl == "memstrata-core":
        core = MemoryCore(
            redis_url=r,
            database_url=d,
            table_prefix=prefix,
            redis_namespace=ns,
            vector=False,
            trust=False,
            events=False,
        )
        return (lambda i: core.write_sync(f"user:{i % 500}", VALUE, actor="agent")), core.close
    import psycopg
    import redis

    client = redis.Redis.from_url(r)
    conn = psycopg.connect(d, autocommit=True)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {prefix}direct (k TEXT PRIMARY KEY, v BYTEA NOT NULL)")
    sql = f"INSERT INTO {prefix}direct VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v=EXCLUDED.v"

    def write(i: int) -> None:
        key, value = f"user:{i % 500}", msgspec.msgpack.encode(VALUE)
        conn.execute(sql, (key, value), prepare=True)
        client.set(ns.encode() + key.encode(), value, ex=3600)

    def close() -> None:
        conn.close()
        client.close()

    return write, close


@pytest.mark.parametrize("impl", ["direct-redis-psycopg", "memstrata-core"])
def test_write_servers(benchmark: Any, servers: Any, impl: str) -> None:
    """Writes per second; the ratio alternates blocks of both implementations, so both see the same load."""
    benchmark.group = "core-write-servers"
    write, close = _server_writer(servers, impl)
    peer_write, peer_close = _server_writer(servers, "direct-redis-psycopg" if impl == "memstrata-core" else impl)
    rates: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(20):
        write(i)
        peer_write(i)
    for block in range(SERVER_BLOCKS):
        for name, fn in (("ours", write), ("peer", peer_write)):
            t = time.perf_counter()
            for i in range(block * SERVER_BLOCK, (block + 1) * SERVER_BLOCK):
                fn(i)
            rates[name].append(SERVER_BLOCK / (time.perf_counter() - t))
    counter = iter(range(10**9))
    benchmark.pedantic(lambda: write(next(counter)), rounds=200, iterations=1)
    benchmark.extra_info["writes_per_s"] = round(statistics.median(rates["ours"]))
    if impl == "memstrata-core":
        benchmark.extra_info["direct_writes_per_s"] = round(statistics.median(rates["peer"]))
        ratios = [a / b for a, b in zip(rates["ours"], rates["peer"])]
        benchmark.extra_info["vs_direct"] = round(statistics.median(ratios), 3)  # median over alternating blocks
        benchmark.extra_info["goal_vs_direct"] = 0.8
    close()
    peer_close()


# ----------------------------------------------------------------------- audit append --


def _items(n: int) -> list[tuple[str, str, str, bytes, str, None]]:
    return [
        ("agent-7", "write", f"user:{i}:preferences", hashlib.sha256(i.to_bytes(8, "big")).digest(), "ok", None)
        for i in range(n)
    ]


@pytest.mark.parametrize("impl", ["memstrata-auditlog", "memstrata-auditlog-sqlite", "plain-python-chain", "pymerkle"])
def test_audit_append(benchmark: Any, tmp_path: Path, impl: str) -> None:
    benchmark.group = "audit-append-10k"
    n = 10_000
    items = _items(n)
    if impl.startswith("memstrata-auditlog"):
        # the binary log (the default), and the SQLite log that directories made before it keep
        log = AuditLog(tmp_path / ("audit.sqlite" if impl.endswith("sqlite") else "audit.log"))
        run = lambda: log.append_many(items)
        benchmark.extra_info["sha256_path"] = sha256_path()
    elif impl == "plain-python-chain":

        def run() -> list[bytes]:
            prev, out = b"\x00" * 32, []
            for actor, op, key, digest, result, _ in items:
                prev = hashlib.sha256(prev + f"{time.time()}|{actor}|{op}|{key}|{result}".encode() + digest).digest()
                out.append(prev)
            return out

    else:
        pymerkle = pytest.importorskip("pymerkle", reason="pymerkle is not installed (pip install pymerkle)")

        def run() -> Any:
            tree = pymerkle.InmemoryTree(algorithm="sha256")
            for actor, op, key, digest, result, _ in items:
                tree.append_entry(f"{actor}|{op}|{key}|{result}".encode() + digest)
            return tree

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["entries_per_s"] = round(n / benchmark.stats.stats.median) if benchmark.stats else None
    benchmark.extra_info["goal_entries_per_s"] = 200_000


# ----------------------------------------------------------------------- audit verify --


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: Any) -> AuditLog:
    log = AuditLog(tmp_path_factory.mktemp("audit") / "audit.log")
    items = _items(10_000)
    for _ in range(AUDIT_N // 10_000):
        log.append_many(items)
    if AUDIT_N % 10_000:
        log.append_many(items[: AUDIT_N % 10_000])
    return log


@pytest.mark.parametrize("impl", ["memstrata-verify", "plain-python-chain"])
def test_audit_verify(benchmark: Any, big_log: AuditLog, impl: str) -> None:
    benchmark.group = "audit-verify"
    if impl == "memstrata-verify":
        run: Any = big_log.verify  # every record re-read from the file and re-hashed
        benchmark.extra_info["sha256_path"] = sha256_path()
    else:
        rows = list(big_log.store.rows(0, None))  # already in RAM: the chain arithmetic alone

        def run() -> int:
            prev = b"\x00" * 32
            for seq, when, actor, op, key, digest, result, _h in rows:
                prev = hashlib.sha256(prev + f"{seq}|{when}|{actor}|{op}|{key}|{result}".encode() + digest).digest()
            return len(rows)

    assert benchmark.pedantic(run, rounds=2, iterations=1) == AUDIT_N
    benchmark.extra_info["entries"] = AUDIT_N
    benchmark.extra_info["goal_seconds_for_1e6"] = 2.0


# ----------------------------------------------------------------------------- proofs --


@pytest.fixture(scope="module")
def pm_tree() -> Any:
    pymerkle = pytest.importorskip("pymerkle", reason="pymerkle is not installed (pip install pymerkle)")
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for i in range(min(AUDIT_N, 100_000)):
        tree.append_entry(i.to_bytes(8, "big"))
    return tree


@pytest.mark.parametrize("impl", ["memstrata", "pymerkle"])
def test_proof_inclusion_verify(benchmark: Any, big_log: AuditLog, impl: str, request: Any) -> None:
    benchmark.group = "proof-inclusion-verify"
    if impl == "memstrata":
        n = len(big_log)
        proof = big_log.inclusion_proof(n // 3)
        assert len(proof.path) <= math.ceil(math.log2(n))
        cp = big_log.checkpoint()
        assert benchmark(verify_inclusion, proof, cp)
        benchmark.extra_info["hashes"] = len(proof.path)
        benchmark.extra_info["ceil_log2_n"] = math.ceil(math.log2(n))
        benchmark.extra_info["goal_us"] = 50
    else:
        tree = request.getfixturevalue("pm_tree")  # skips, with its reason, where pymerkle is absent
        import pymerkle

        size = tree.get_size()
        proof = tree.prove_inclusion(size // 3, size)
        base, root = tree.get_leaf(size // 3), tree.get_root(size)
        benchmark(pymerkle.verify_inclusion, base, root, proof)
        benchmark.extra_info["entries"] = size


@pytest.mark.parametrize("impl", ["memstrata", "pymerkle"])
def test_proof_consistency_verify(benchmark: Any, big_log: AuditLog, impl: str, request: Any) -> None:
    benchmark.group = "proof-consistency-verify"
    if impl == "memstrata":
        n = len(big_log)
        proof = big_log.consistency_proof(n // 3 + 1, n)
        assert len(proof.path) <= math.ceil(math.log2(n)) + 1
        assert benchmark(verify_consistency, proof)
        benchmark.extra_info["hashes"] = len(proof.path)
        benchmark.extra_info["goal_us"] = 50
    else:
        tree = request.getfixturevalue("pm_tree")  # skips, with its reason, where pymerkle is absent
        import pymerkle

        size = tree.get_size()
        proof = tree.prove_consistency(size // 3 + 1, size)
        r1, r2 = tree.get_root(size // 3 + 1), tree.get_root(size)
        benchmark(pymerkle.verify_consistency, r1, r2, proof)
