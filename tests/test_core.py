"""MemoryCore: fan-out semantics, injected failures, read hierarchy, patterns, events, trust, config."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

import pytest

from memstrata.codecs import serialize
from memstrata.core import (
    AuditLog,
    CoreConfig,
    Event,
    EventBus,
    MemoryCore,
    SQLiteLogStore,
    TrustLedger,
    WriteFailedError,
)
from memstrata.core._layers import HotCache, decode_record
from memstrata.errors import CorruptDataError


class Boom(RuntimeError):
    pass


class Failing:
    """Wraps a layer; the named methods raise while ``on`` is set."""

    def __init__(self, inner, *methods):
        self.inner, self.methods, self.on = inner, set(methods), True

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in self.methods and self.on:

            def fail(*a, **k):
                raise Boom(f"injected failure in {name}")

            return fail
        return attr


@pytest.fixture
def core(tmp_path):
    with MemoryCore(tmp_path / "mem") as c:
        yield c


def test_write_fans_out_to_every_layer(core):
    seen = []
    core.events.subscribe("memory.*", seen.append)
    r = core.write_sync("note", "the user prefers metric units", metadata={"source": "chat"}, actor="agent-a")
    assert r.ok and r.seq == 0
    assert r.layers == {"audit": "ok", "durable": "ok", "cache": "ok", "vector": "ok", "trust": "ok", "events": "ok"}
    assert r.digest == hashlib.sha256(serialize("the user prefers metric units")).digest()
    entry = core.audit[0]
    assert (entry.operation, entry.key, entry.actor, entry.digest) == ("write", "note", "agent-a", r.digest)
    assert decode_record(b"note", core.durable.get(b"note"), "t").seq == 0
    assert core.cache.get(b"note") is not None and "note" in core.vector
    assert core.trust.get("agent-a")["writes"] == 1
    core.events.drain()
    assert [(e.type, e.key, e.results["durable"]) for e in seen] == [("memory.write", "note", "ok")]
    assert core.read_sync("note") == "the user prefers metric units"


def test_read_hierarchy_and_cache_refill(core):
    core.write_sync("k", {"v": 1})
    assert core.read_sync("k") == {"v": 1}
    assert (core.cache_hits, core.cache_misses) == (1, 0)
    core.cache.delete(b"k")
    assert core.read_sync("k") == {"v": 1}  # durable, then refilled
    assert (core.cache_hits, core.cache_misses) == (1, 1)
    assert core.cache.get(b"k") is not None
    assert core.read_sync("k") == {"v": 1}
    assert core.read_sync("k", use_cache=False) == {"v": 1}
    assert core.read_sync("missing") is None and core.read_sync("missing", default=7) == 7
    stats = core.get_stats()
    assert (stats["cache_hits"], stats["cache_misses"]) == (2, 3)  # use_cache=False is neither
    assert stats["cache_hit_rate"] == 0.4


def test_a_damaged_cache_entry_is_never_returned(core):
    core.write_sync("k", "right")
    rec = bytearray(core.cache.get(b"k"))
    rec[-1] ^= 1
    core.cache.hot.put(b"k", bytes(rec))
    assert core.read_sync("k") == "right"
    assert core.get_stats()["failures"]["cache"] == 1


def test_a_damaged_durable_record_raises(core):
    core.write_sync("k", "right")
    rec = bytearray(core.durable.get(b"k"))
    rec[-1] ^= 1
    core.durable.put(b"k", bytes(rec))
    with pytest.raises(CorruptDataError, match="fails its checksum"):
        core.read_sync("k", use_cache=False)
    core.durable.put(b"j", core.durable.get(b"k"))  # another key's record
    with pytest.raises(CorruptDataError, match="another key"):
        core.read_sync("j", use_cache=False)


def test_ttl_expires_cache_entries_only(tmp_path):
    now = [0.0]
    with MemoryCore(tmp_path, cache=HotCache(1 << 20, clock=lambda: now[0])) as core:
        core.write_sync("k", "v", ttl_seconds=10)
        now[0] = 11.0
        assert core.cache.get(b"k") is None
        assert core.read_sync("k") == "v"  # still durable


def test_delete_goes_through_every_layer(core):
    core.write_sync("k", "some text")
    seen = []
    core.events.subscribe("memory.delete", seen.append)
    r = core.delete_sync("k", actor="agent-b")
    assert r.ok and r.existed and r.layers["durable"] == "ok"
    assert core.read_sync("k") is None and core.cache.get(b"k") is None and "k" not in core.vector
    assert core.audit[r.seq].operation == "delete"
    assert core.delete_sync("k").existed is False
    core.events.drain()
    assert [e.key for e in seen] == ["k", "k"]  # a delete of an absent key is logged too


def test_patterns_table(core):
    meta = {"is_pattern": True, "pattern_type": "user_behavior", "confidence": 0.85}
    core.write_sync("behavior_pattern_1", {"action": "click", "frequency": 10}, metadata=meta, actor="ml")
    core.write_sync("p2", {"action": "scroll"}, metadata={**meta, "confidence": 0.4})
    core.write_sync("plain", 1)
    assert core.audit[0].operation == "write.pattern"
    assert core.read_sync("behavior_pattern_1") == {"action": "click", "frequency": 10}
    assert [p["key"] for p in core.patterns()] == ["behavior_pattern_1", "p2"]
    assert core.patterns(min_confidence=0.5) == [
        {"key": "behavior_pattern_1", "value": {"action": "click", "frequency": 10}, "pattern_type": "user_behavior", "confidence": 0.85}
    ]
    assert core.patterns("other") == []
    core.write_sync("p2", "now a plain value")
    assert [p["key"] for p in core.patterns()] == ["behavior_pattern_1"]
    assert core.read_sync("p2", use_cache=False) == "now a plain value"
    with pytest.raises(ValueError, match="confidence"):
        core.write_sync("x", 1, metadata={"is_pattern": True, "confidence": 2})


def test_audit_failure_fails_the_write_and_applies_nothing(tmp_path):
    with MemoryCore(tmp_path) as core:
        core.audit.store = Failing(core.audit.store, "append", "append_one")
        with pytest.raises(WriteFailedError, match="audit log failed") as info:
            core.write_sync("k", "v")
        assert info.value.result.layers["audit"].startswith("failed: Boom")
        core.audit.store.on = False
        assert core.read_sync("k") is None and core.durable.get(b"k") is None and "k" not in core.vector
        stats = core.get_stats()
        assert (stats["writes_total"], stats["writes_failed"], stats["failures"]["audit"]) == (1, 1, 1)
        assert stats["write_success_rate"] == 0.0


def test_durable_failure_aborts_the_write(tmp_path):
    with MemoryCore(tmp_path) as core:
        core.write_sync("k", "old")
        core.durable = Failing(core.durable, "put_newer")
        with pytest.raises(WriteFailedError, match="durable store failed") as info:
            core.write_sync("k", "new", actor="a")
        assert info.value.result.layers == {"audit": "ok", "durable": "failed: Boom: injected failure in put_newer", "trust": "ok"}
        core.durable.on = False
        assert core.read_sync("k") == "old" and core.read_sync("k", use_cache=False) == "old"
        last = core.audit[len(core.audit) - 1]
        assert (last.operation, last.result) == ("abort", "abort 1: Boom")
        assert core.trust.get("a")["failures"] == 1
    with MemoryCore(tmp_path) as core:  # the aborted intent is not replayed
        assert core.read_sync("k") == "old"
        assert core.audit.verify() == 3


@pytest.mark.parametrize("layer,method", [("cache", "put_newer"), ("vector", "put"), ("trust", "update"), ("events", "post")])
def test_best_effort_failures_are_counted_and_retried(tmp_path, layer, method):
    with MemoryCore(tmp_path) as core:
        setattr(core, layer, Failing(getattr(core, layer), method))
        r = core.write_sync("k", "text value", actor="a")
        assert r.ok and r.layers["durable"] == "ok" and r.layers[layer].startswith("failed: Boom")
        assert core.read_sync("k", use_cache=False) == "text value"
        stats = core.get_stats()
        assert stats["failures"][layer] == 1 and stats["lag"][layer] == 1 and stats["writes_failed"] == 0
        getattr(core, layer).on = False
        assert core.retry()[layer] == 0
        assert core.get_stats()["retries"][layer] == 1
        if layer == "cache":
            assert core.cache.get(b"k") is not None
        if layer == "vector":
            assert "k" in core.vector.inner


def test_a_failing_or_slow_handler_never_blocks_the_write(tmp_path):
    gate = threading.Event()
    with MemoryCore(tmp_path, events=EventBus(max_queue=4)) as core:
        core.events.subscribe("memory.write", lambda e: gate.wait(10))
        core.events.subscribe("memory.*", lambda e: 1 / 0)
        t = time.perf_counter()
        results = [core.write_sync(f"k{i}", i) for i in range(20)]
        assert time.perf_counter() - t < 5
        assert all(r.ok for r in results)
        assert core.events.dropped >= 14 and core.get_stats()["failures"]["events"] == core.events.dropped
        gate.set()
        core.events.drain()
        assert core.events.handler_errors == core.events.emitted


def test_async_handlers_and_async_api(tmp_path):
    got = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        got.append(event.key)

    async def main() -> None:
        with MemoryCore(tmp_path) as core:
            core.events.subscribe("memory.write", handler)
            r = await core.write("a", {"x": 1}, actor="agent")
            assert r.ok
            assert await core.read("a") == {"x": 1}
            assert (await core.delete("a")).existed
            core.events.drain()

    asyncio.run(main())
    assert got == ["a"]


def test_semantic_fallback(tmp_path):
    with MemoryCore(tmp_path, semantic_fallback=True, semantic_min_score=0.5) as core:
        core.write_sync("pref:units", "the user prefers metric units for distances")
        core.write_sync("pref:food", "the user is vegetarian")
        assert core.read_sync("which units does the user prefer for distances") == "the user prefers metric units for distances"
        assert core.read_sync("zebra quantum xylophone") is None
    with MemoryCore(tmp_path) as core:  # off unless configured; the index is rebuilt on open
        assert core.read_sync("which units does the user prefer for distances") is None
        assert "pref:units" in core.vector


def test_trust_ledger_rule_and_decay():
    now = [0.0]
    ledger = TrustLedger(rate=0.5, half_life_seconds=10, clock=lambda: now[0])
    assert ledger.update("a", success=True) == 0.75
    assert ledger.update("a", error_rate=0.5) == 0.625
    now[0] = 10.0
    assert ledger.get("a")["score"] == pytest.approx(0.5 + 0.125 / 2)
    ledger.reset("a")
    assert ledger.get("a") == {"score": 0.5, "writes": 0, "failures": 0, "error_rate": 0.0}
    with pytest.raises(ValueError, match="error_rate"):
        ledger.update("a", error_rate=2)


def test_trust_survives_reopen(tmp_path):
    with MemoryCore(tmp_path) as core:
        for _ in range(3):
            core.write_sync("k", 1, actor="a")
        score = core.trust.get("a")["score"]
    with MemoryCore(tmp_path) as core:
        assert core.trust.get("a")["score"] == pytest.approx(score, abs=1e-6)


def test_config_from_file_env_and_arguments(tmp_path, monkeypatch):
    path = tmp_path / "core.toml"
    path.write_text("cache_enabled = false\nvector_dim = 64\n")
    monkeypatch.setenv("MEMSTRATA_VECTOR_ENABLED", "false")
    monkeypatch.setenv("MEMSTRATA_DEFAULT_TTL_SECONDS", "5")
    cfg = CoreConfig.resolve(path, vector_dim=32)
    assert (cfg.cache_enabled, cfg.vector_enabled, cfg.vector_dim, cfg.default_ttl_seconds) == (False, False, 32, 5.0)
    with MemoryCore(tmp_path / "m", config_file=path) as core:
        assert core.cache is None and core.vector is None
        assert core.write_sync("k", 1).layers == {"audit": "ok", "durable": "ok", "events": "ok"}
        assert core.read_sync("k") == 1
    monkeypatch.setenv("MEMSTRATA_FANOUT_ENABLED", "nope")
    with pytest.raises(ValueError, match="MEMSTRATA_FANOUT_ENABLED: expected true/false"):
        CoreConfig.resolve()
    monkeypatch.delenv("MEMSTRATA_FANOUT_ENABLED")
    (tmp_path / "bad.json").write_text(json.dumps({"cache_size": 1}))
    with pytest.raises(ValueError, match="unknown setting 'cache_size'"):
        CoreConfig.resolve(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="not a MemoryCore setting"):
        MemoryCore(colour="red")


def test_layers_can_be_turned_off(tmp_path):
    with MemoryCore(tmp_path, durable=False, vector=False, trust=False, events=False) as core:
        r = core.write_sync("k", "v", actor="a")
        assert r.layers == {"audit": "ok", "cache": "ok"}
        assert core.read_sync("k") == "v"


def test_argument_errors(core):
    with pytest.raises(TypeError, match="key: expected a str"):
        core.write_sync(b"k", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key: expected a non-empty"):
        core.read_sync("")
    with pytest.raises(TypeError, match="metadata: expected a dict"):
        core.write_sync("k", 1, metadata=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl_seconds"):
        core.write_sync("k", 1, ttl_seconds=0)


def test_audited_reads_and_a_shared_audit_object(tmp_path):
    log = AuditLog(tmp_path / "log.sqlite")
    with MemoryCore(tmp_path / "m", audit=log, audit_reads=True) as core:
        core.write_sync("k", 1)
        core.read_sync("k", actor="reader")
        core.read_sync("nope")
        assert [(e.operation, e.result) for e in log.entries(1)] == [("read", "cache"), ("read", "miss")]
        assert core.audit.verify() == 3


def _held_payloads(core: MemoryCore) -> list[int]:
    return [seq for seq in range(len(core.audit)) if core.audit.payload(seq) is not None]


@pytest.mark.parametrize("log_kind", ["binary", "sqlite"])
def test_intent_payloads_are_pruned_once_applied(tmp_path, log_kind):
    if log_kind == "sqlite":  # a directory made before the binary log keeps its SQLite log
        SQLiteLogStore(tmp_path / "audit.sqlite").close()
    with MemoryCore(tmp_path, checkpoint_every=5) as core:
        for i in range(12):
            core.write_sync(f"k{i}", i)
        assert _held_payloads(core) == [10, 11]  # written after the last save
    with MemoryCore(tmp_path) as core:
        assert _held_payloads(core) == []
        if log_kind == "sqlite":
            assert core.audit.store.execute("SELECT count(*) FROM payloads")[0][0] == 0
        else:
            assert (tmp_path / "audit.log.intents").stat().st_size == 0  # the space is given back
        assert [core.read_sync(f"k{i}") for i in range(12)] == list(range(12))


def test_posted_events_are_built_and_delivered_in_order_on_the_bus_thread():
    bus = EventBus(max_queue=1000)
    seen, threads = [], set()

    def handler(e):
        seen.append(e)
        threads.add(threading.get_ident())

    bus.subscribe("memory.*", handler)
    for i in range(300):  # more than half the queue: the linger ends early, nothing is dropped
        assert bus.post("memory.write", f"k{i}", i, {"durable": "ok"}, "a", 1.5)
    bus.emit(Event("memory.delete", "k0", 300))
    t = time.perf_counter()
    bus.drain()
    assert time.perf_counter() - t < 5
    assert [e.seq for e in seen] == list(range(301)) and bus.dropped == 0
    assert seen[7] == Event("memory.write", "k7", 7, {"durable": "ok"}, "a", 1.5)
    assert seen[-1].type == "memory.delete" and threads == {bus._thread.ident}
    bus.close()
    assert not bus._thread.is_alive()


def test_event_handlers_follow_subscriptions_made_after_delivery_began():
    bus = EventBus()
    seen, events = [], []
    bus.subscribe("memory.write", lambda e: (seen.append(("a", e.seq)), events.append(e)))
    bus.post("memory.write", "k", 1, {}, "", 0.0)
    bus.drain()  # the handlers of "memory.write" are matched (and remembered) here
    off = bus.subscribe("memory.*", lambda e: seen.append(("b", e.seq)))
    bus.post("memory.write", "k", 2, {}, "", 0.0)
    bus.drain()
    off()
    bus.post("memory.write", "k", 3, {}, "", 0.0)
    bus.post("memory.delete", "k", 4, {}, "", 0.0)
    bus.drain()
    assert seen == [("a", 1), ("a", 2), ("b", 2), ("a", 3)]
    built = events[0]  # built on the bus thread from the posted fields
    assert built == Event("memory.write", "k", 1, {}, "", 0.0) and built.replayed is False
    with pytest.raises(AttributeError):
        built.seq = 6  # type: ignore[misc]  # and as frozen as one made by Event(...)
    bus.close()
