"""Group commit: concurrent writers' entries share log appends and durable transactions, in one order."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from test_core_crash import assert_layers_agree_with_log

from memstrata.core import MemoryCore, WriteFailedError
from memstrata.core._layers import decode_record


class Boom(RuntimeError):
    pass


def _queued(core: MemoryCore, n: int) -> None:
    """Wait until ``n`` writes wait in ``core``'s queue (their threads found the write lock taken)."""
    deadline = time.monotonic() + 10
    while len(core._queue) < n:
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.001)


def _batch_of(core: MemoryCore, calls: list) -> list:
    """Start ``calls`` (thunks) in threads while the write lock is held, so one batch commits them all."""
    out: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    with core._lock:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        _queued(core, len(calls))
    for t in threads:
        t.join()
    return out


def _count_appends(core: MemoryCore) -> list[int]:
    """Record the size of every append to ``core``'s log (batches and single entries)."""
    sizes: list[int] = []
    store = core.audit.store
    append, append_one = store.append, store.append_one

    def counted(build):
        rows = append(build)
        sizes.append(len(rows))
        return rows

    def counted_one(item, clock):
        sizes.append(1)
        return append_one(item, clock)

    store.append, store.append_one = counted, counted_one
    return sizes


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_one_batch_is_one_log_append_and_one_sync(tmp_path, monkeypatch, durability):
    with MemoryCore(tmp_path / "mem", durability=durability) as core:
        sizes = _count_appends(core)
        synced: list[int] = []
        fdatasync = os.fdatasync
        log_fd = core.audit.store._fd
        monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), fdatasync(fd))[1])
        results = _batch_of(core, [lambda i=i: core.write_sync(f"k{i}", {"n": i}, actor=f"a{i % 2}") for i in range(6)])
        assert sizes == [6]
        assert synced.count(log_fd) == (1 if durability == "full" else 0)
        assert sorted(r.seq for r in results) == list(range(6))
        for i, r in enumerate(results):
            assert r.ok and r.layers["durable"] == r.layers["cache"] == r.layers["events"] == "ok"
            assert core.read_sync(f"k{i}") == {"n": i} and core.read_sync(f"k{i}", use_cache=False) == {"n": i}
        assert core.trust.get("a0")["writes"] + core.trust.get("a1")["writes"] == 6
    assert_layers_agree_with_log(tmp_path / "mem")


def test_a_batch_keeps_the_log_order_for_one_key(tmp_path):
    with MemoryCore(tmp_path / "mem") as core:
        core.write_sync("k", "before")
        results = _batch_of(
            core,
            [
                lambda: core.write_sync("k", "one"),
                lambda: core.delete_sync("k"),
                lambda: core.write_sync("k", "two", metadata={"is_pattern": True, "pattern_type": "t"}),
                lambda: core.delete_sync("k"),
                lambda: core.write_sync("k", "three"),
            ],
        )
        order = sorted(results, key=lambda r: r.seq)
        last = order[-1]
        value = {"one": "one", "two": "two", "three": "three"}
        ops = [core.audit[r.seq].operation for r in order]
        expected = None if ops[-1] == "delete" else core.read_sync("k", use_cache=False)
        assert core.read_sync("k") == expected
        if ops[-1] != "delete":
            assert decode_record(b"k", core.cache.get(b"k"), "cache").seq == last.seq
        # each delete saw what the write just before it in the log left
        live = True
        for r, op in zip(order, ops):
            if op == "delete":
                assert r.existed is live
            live = op != "delete"
        assert set(value) >= {v for v in ("one", "two", "three") if v == expected} or expected is None
    assert_layers_agree_with_log(tmp_path / "mem")


def test_a_durable_failure_in_a_batch_fails_only_its_own_write(tmp_path):
    with MemoryCore(tmp_path / "mem") as core:
        core.write_sync("bad", "old")
        put_newer = core.durable.put_newer

        def put_many(records):
            raise Boom("the batch failed")

        def put_one(kb, rec, ttl=None):
            if kb == b"bad":
                raise Boom("this key fails")
            return put_newer(kb, rec)

        core.durable.put_many, core.durable.put_newer = put_many, put_one
        results = _batch_of(
            core,
            [lambda: core.write_sync("a", 1), lambda: core.write_sync("bad", "new"), lambda: core.write_sync("b", 2)],
        )
        del core.durable.put_many, core.durable.put_newer
        failed = [r for r in results if isinstance(r, WriteFailedError)]
        assert len(failed) == 1 and failed[0].result.key == "bad"
        assert failed[0].result.layers["durable"].startswith("failed: Boom")
        assert core.read_sync("a") == 1 and core.read_sync("b") == 2 and core.read_sync("bad") == "old"
        aborts = [e for e in core.audit.entries() if e.operation == "abort"]
        assert [(e.key, e.result) for e in aborts] == [("bad", f"abort {failed[0].result.seq}: Boom")]
        assert core.get_stats()["writes_failed"] == 1
        core._replay(core.audit.entries(), len(core.audit))  # what a reopen after a crash replays: not the abort
        assert core.read_sync("bad", use_cache=False) == "old" and core.read_sync("a", use_cache=False) == 1
    with MemoryCore(tmp_path / "mem") as core:
        assert core.read_sync("bad") == "old"
    assert_layers_agree_with_log(tmp_path / "mem")


def test_an_audit_failure_fails_every_write_of_the_batch(tmp_path):
    with MemoryCore(tmp_path / "mem") as core:

        def broken(build):
            raise Boom("disk gone")

        core.audit.store.append = broken
        results = _batch_of(core, [lambda i=i: core.write_sync(f"k{i}", i) for i in range(3)])
        del core.audit.store.append
        assert all(isinstance(r, WriteFailedError) and "audit log failed" in str(r) for r in results)
        assert len(core.audit) == 0 and all(core.read_sync(f"k{i}") is None for i in range(3))
        assert core.get_stats()["writes_failed"] == 3


def test_concurrent_writers_one_chain_every_layer_agrees(tmp_path):
    """Threads write, delete and write patterns over shared keys; batches form; after reopen every layer holds the log's last word."""
    path = tmp_path / "mem"
    with MemoryCore(path, checkpoint_every=50) as core:
        sizes = _count_appends(core)
        store_many = core._store.store_many

        def slow_store_many(*a, **k):  # a slower durable commit, so writers queue behind it
            time.sleep(0.002)
            return store_many(*a, **k)

        core._store.store_many = slow_store_many
        keys = [f"k{i}" for i in range(10)]
        seen: list[list] = [[] for _ in range(4)]

        def writer(t: int) -> None:
            rng = random.Random(t)
            for _ in range(150):
                key, r = rng.choice(keys), rng.random()
                if r < 0.2:
                    res = core.delete_sync(key, actor=f"w{t}")
                elif r < 0.3:
                    res = core.write_sync(key, {"p": t}, metadata={"is_pattern": True, "pattern_type": "x"})
                else:
                    res = core.write_sync(key, f"text {t} {rng.random()}", actor=f"w{t}")
                seen[t].append(res.seq)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(sizes) > 1, "no batch of more than one write formed"
        assert sum(sizes) == len(core.audit) == 600
        for mine in seen:
            assert mine == sorted(mine)  # a thread's writes are logged in the order it made them
        assert sorted(s for mine in seen for s in mine) == list(range(600))
        last = {}
        for e in core.audit.entries():
            last[e.key] = e
        for key, e in last.items():
            cached = core.cache.get(key.encode())
            if cached is not None:
                assert decode_record(key.encode(), cached, "cache").seq == e.seq
        assert core.audit.verify() == 600
    assert assert_layers_agree_with_log(path) == 600
