"""AgentMemory: every operation, with an injected clock (age, recency, retention, validity)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata.agent import AgentConfig, AgentMemory, PrecomputedEmbedder, StalePlanError
from memstrata.agent.categories import GENERIC, TRADING, Category, CategoryTable
from memstrata.agent.keywords import PENDING_ROWS, KeywordIndex
from memstrata.agent.patterns import confidence
from memstrata.agent.records import MemoryRecord, content_digest, from_stored, to_stored

DAY = 86400.0


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, days: float) -> None:
        self.t += days * DAY


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mem(clock: Clock) -> AgentMemory:
    with AgentMemory(clock=clock) as m:
        yield m


def test_add_get_text_and_dict(mem: AgentMemory, clock: Clock) -> None:
    a = mem.add("the user prefers metric units", metadata={"source": "chat"}, user_id="ana")
    b = mem.add({"type": "preference", "text": "dark mode everywhere"}, user_id="ana")
    assert (a.id, b.id) == (0, 1)
    got = mem.get(a.id)
    assert got is not None and got.text == "the user prefers metric units" and got.metadata == {"source": "chat"}
    assert got.created_at == clock.t and got.user_id == "ana" and got.category == "episodic"
    assert mem.get(b.id).category == "preferences"  # type: ignore[union-attr]
    assert mem.get(99) is None and mem.get("0") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("vector_rows", ["ram", "file"])
def test_single_adds_keep_each_vector_though_each_add_prepares_its_row_in_the_same_arrays(vector_rows: str,
                                                                                         tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((40, 16)).astype(np.float32)
    with AgentMemory(tmp_path / "m", config=AgentConfig(vector_rows=vector_rows, weight_relevance=0.0,
                                                        weight_recency=0.0)) as m:
        ids = [m.add(f"memory number {i}", vector=rows[i]).id for i in range(len(rows))]
        for i, id_ in enumerate(ids):
            hit = m.search(rows[i], limit=1, mode="vector")[0]
            assert hit.id == id_ and hit.similarity == pytest.approx(1.0, abs=0.02)


def test_bad_arguments_name_themselves(mem: AgentMemory) -> None:
    with pytest.raises(TypeError, match="content"):
        mem.add(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="content: expected non-empty"):
        mem.add("   ")
    with pytest.raises(ValueError, match="metadata: 'category' is a field"):
        mem.add("x", metadata={"category": "y"})
    with pytest.raises(ValueError, match="category: unknown category 'nope'"):
        mem.add("x", category="nope")
    with pytest.raises(TypeError, match="user_id"):
        mem.add("x", user_id=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an embedder"):
        mem.add("y")
        mem.search("y", mode="vector")
    with pytest.raises(ValueError, match="mode: expected one of"):
        mem.search("y", mode="fuzzy")
    with pytest.raises(KeyError, match="supersedes"):
        mem.add("z", supersedes=42)


def test_exact_duplicate_merges_metadata_and_counts_access(mem: AgentMemory) -> None:
    a = mem.add("Deploys happen on Tuesdays", metadata={"a": 1}, user_id="ana")
    b = mem.add("  deploys happen on   TUESDAYS ", metadata={"b": 2}, user_id="ana")
    c = mem.add("Deploys happen on Tuesdays", user_id="bob")  # another scope: not a duplicate
    assert b.id == a.id and b.duplicate_of == a.id and c.id != a.id
    rec = mem.get(a.id)
    assert rec is not None and rec.metadata == {"a": 1, "b": 2} and rec.access_count == 2  # merge + this get
    assert len(mem) == 2 and mem.get_metrics()["exact_duplicates_merged"] == 1


@pytest.mark.parametrize("mode", ["link", "merge", "keep"])
def test_near_duplicate_modes(mode: str, clock: Clock) -> None:
    with AgentMemory(config=AgentConfig(near_duplicates=mode, near_duplicate_threshold=0.95), clock=clock) as m:
        a = m.add("alpha one", vector=unit(1, 0, 0), user_id="u")
        b = m.add("alpha two", vector=unit(1, 0.1, 0), user_id="u")  # cosine 0.995
        c = m.add("beta", vector=unit(0, 1, 0), user_id="u")
        d = m.add("alpha three", vector=unit(1, 0.1, 0), user_id="other")  # other scope
        assert c.links == [] and d.links == [] and d.duplicate_of is None
        if mode == "link":
            assert b.id != a.id and b.links == [a.id] and m.get(a.id).links == [b.id]  # type: ignore[union-attr]
        elif mode == "merge":
            assert b.id == a.id and b.duplicate_of == a.id and len(m) == 3
        else:
            assert b.id != a.id and b.links == []


def test_add_many_dedups_within_batch_and_against_store(mem: AgentMemory) -> None:
    mem.add("one", vector=unit(1, 0, 0))
    recs = mem.add_many(["two", "one", "two", "three"], vectors=np.stack([unit(0, 1, 0), unit(1, 0, 0),
                                                                            unit(0, 1, 0), unit(0, 0, 1)]))
    assert [r.duplicate_of for r in recs] == [None, 0, recs[0].id, None]
    assert len(mem) == 3


def test_update_keeps_history_and_reindexes(mem: AgentMemory, clock: Clock) -> None:
    a = mem.add("likes tea", metadata={"k": 1})
    clock.advance(1)
    b = mem.update(a.id, "likes coffee", {"k": 2})
    assert b.id == a.id and b.version == 2 and b.metadata == {"k": 2} and b.updated_at == clock.t
    hist = mem.history(a.id)
    assert [(h["version"], h["event"], h["text"]) for h in hist] == [(1, "ADD", "likes tea"), (2, "UPDATE", "likes coffee")]
    assert [h.id for h in mem.search("coffee", mode="keyword")] == [a.id]
    assert mem.search("tea", mode="keyword") == []
    with pytest.raises(KeyError, match="no memory"):
        mem.update(77, "x")


def test_supersede_and_as_of(mem: AgentMemory, clock: Clock) -> None:
    t0 = clock.t
    a = mem.add("lives in Lisbon", user_id="ana")
    clock.advance(10)
    b = mem.update(a.id, "lives in Porto", supersede=True)
    assert b.id != a.id and b.supersedes == a.id and b.user_id == "ana"
    old = mem.get(a.id)
    assert old is not None and old.superseded_by == b.id and old.invalid_at == clock.t
    now = [h.text for h in mem.search("lives", mode="keyword", user_id="ana")]
    then = [h.text for h in mem.search("lives", mode="keyword", user_id="ana", as_of=t0 + 5 * DAY)]
    assert now == ["lives in Porto"] and then == ["lives in Lisbon"]
    before = mem.search("lives", mode="keyword", as_of=t0 - 1)
    assert before == []
    assert [r.id for r in mem.get_all(as_of=t0 + DAY)] == [a.id]
    c = mem.add("works remotely", valid_at=t0 + 20 * DAY)  # valid from a future date
    assert c.id not in [r.id for r in mem.get_all()] or clock.t >= t0 + 20 * DAY
    clock.advance(15)
    assert c.id in [r.id for r in mem.get_all()]


def test_expire_is_reversible_forget_is_not(mem: AgentMemory) -> None:
    a = mem.add("temporary note")
    mem.expire(a.id)
    assert mem.get(a.id) is None and mem.search("temporary", mode="keyword") == [] and mem.get_all() == []
    assert mem.get(a.id, include_expired=True) is not None
    mem.unexpire(a.id)
    assert [h.id for h in mem.search("temporary", mode="keyword")] == [a.id]
    assert mem.forget(a.id) and not mem.forget(a.id)
    assert mem.get(a.id, include_expired=True) is None


def test_forget_where_and_scopes(mem: AgentMemory) -> None:
    for i in range(6):
        mem.add(f"note {i}", user_id="ana" if i % 2 else "bob", metadata={"i": i})
    assert mem.forget_where({"i": {"$gte": 3}}, user_id="ana") == 2  # 3, 5
    assert sorted(r.metadata["i"] for r in mem.get_all(limit=None)) == [0, 1, 2, 4]
    assert mem.forget_where({}) == 4 and len(mem) == 0


def test_filters_inside_search_return_limit(clock: Clock) -> None:
    rng = np.random.default_rng(0)
    n = 2000
    vecs = rng.standard_normal((n, 16)).astype(np.float32)
    with AgentMemory(config=AgentConfig(near_duplicates="keep"), clock=clock) as m:
        m.add_many([f"memory number {i}" for i in range(n)], vectors=vecs,
                   metadata=[{"shard": i % 100, "score": float(i)} for i in range(n)])
        q = vecs[7]
        for mode in ("vector", "keyword", "hybrid"):
            query = "memory number" if mode == "keyword" else q
            hits = m.search(query, limit=10, filters={"shard": 7}, mode=mode)  # 1 % of the memories
            assert len(hits) == 10 and all(h.metadata["shard"] == 7 for h in hits), mode
        hits = m.search(q, limit=10, filters={"shard": 7}, mode="vector")
        assert hits[0].id == 7  # exact top-1 inside the filter
        hits = m.search(q, limit=15, filters={"$and": [{"score": {"$lt": 1000}}, {"shard": {"$in": [1, 2]}}]}, mode="vector")
        assert len(hits) == 15 and all(h.metadata["shard"] in (1, 2) and h.metadata["score"] < 1000 for h in hits)
        hits = m.search(q, limit=10, filters={"score": {"$gte": 1000}}, mode="vector")  # 50 %: the scan path
        assert len(hits) == 10 and all(h.metadata["score"] >= 1000 for h in hits)


def test_search_scores_parts_and_weights(clock: Clock) -> None:
    cfg = AgentConfig(weight_similarity=1.0, weight_relevance=0.5, weight_recency=0.25, near_duplicates="keep")
    with AgentMemory(config=cfg, clock=clock) as m:
        a = m.add("apple pie recipe", vector=unit(1, 0), category="procedures")
        clock.advance(30)
        b = m.add("apple tart recipe", vector=unit(1, 0.2), category="observations")
        hits = m.search(unit(1, 0.1), mode="vector", limit=2)
        for h in hits:
            expect = 1.0 * h.similarity + 0.5 * h.relevance + 0.25 * h.recency
            assert math.isclose(h.score, expect, rel_tol=1e-6)
            assert h.parts["cosine"] == h.similarity
        by_id = {h.id: h for h in hits}
        assert math.isclose(by_id[a.id].recency, 0.5, rel_tol=1e-6)  # 30 days = one half-life
        assert by_id[b.id].recency == 1.0
        with pytest.raises(ValueError, match="needs an embedder"):
            m.search("apple recipe", mode="hybrid", limit=2)
        assert [h.id for h in m.search("apple recipe", mode="keyword", limit=2)] != []


def test_relevance_explain_and_category_presets(clock: Clock) -> None:
    cfg = AgentConfig(categories="trading")
    with AgentMemory(config=cfg, clock=clock) as m:
        t = m.add({"type": "swap", "action": "swap", "success": True, "profit": 20.0, "pool": "P"})
        assert t.category == "trades" and "Trade: swap" in t.text
        m.get(t.id)
        m.get(t.id)
        clock.advance(60)
        e = m.explain(t.id)
        assert e["importance"] == 0.9 and math.isclose(e["outcome"], 1.2 * 1.2)
        assert math.isclose(e["access"], 1.2) and math.isclose(e["recency"], 0.5)  # last access 60 d ago: floor 0.5
        assert math.isclose(e["relevance"], min(0.9 * 1.44 * 1.2 * 0.5, 1.0))
    assert TRADING["user_preferences"].forever and TRADING["opportunities"].retention_days == 3
    assert GENERIC.categorize({"type": "error"}) == "failures"
    with pytest.raises(ValueError, match="importance"):
        Category("x", 1, 2.0)
    with pytest.raises(ValueError, match="unknown category"):
        CategoryTable({"a": Category("a", 1, 0.5)}, {"t": "b"}, "a")
    with pytest.raises(ValueError, match="unknown preset"):
        AgentConfig(categories="poker")


def test_pattern_confidence_matches_formula(clock: Clock) -> None:
    cfg = AgentConfig(categories="trading", pattern_fields=("action", "pool"), min_occurrences=3, pattern_threshold=0.5)
    with AgentMemory(config=cfg, clock=clock) as m:
        profits = [10.0, 30.0, -5.0, 25.0]
        wins = [True, True, False, True]
        ids = [m.add({"type": "trade", "action": "swap", "pool": "A", "profit": p, "success": s, "n": i}).id
               for i, (p, s) in enumerate(zip(profits, wins))]
        m.add({"type": "trade", "action": "swap", "pool": "B", "profit": 1.0, "success": True})
        pats = m.extract_patterns()
        assert len(pats) == 1
        p = pats[0].content
        mean = sum(profits) / 4
        spread = math.sqrt(sum((x - mean) ** 2 for x in profits) / 4)
        expect = 0.3 * min(4 / 10, 1) + 0.5 * 0.75 + 0.2 / (1 + spread)
        assert math.isclose(p["confidence"], expect) and math.isclose(confidence(4, 0.75, spread), expect)
        assert p["evidence"] == ids and p["recommendation"] == "repeat" and pats[0].category == "patterns"
        m.add({"type": "trade", "action": "swap", "pool": "A", "profit": 12.0, "success": True, "n": 9})
        again = m.extract_patterns()
        assert [r.id for r in again] == [pats[0].id] and again[0].content["statistics"]["occurrence_count"] == 5
        m.forget(ids[0])
        assert ids[0] not in m.get(pats[0].id).content["evidence"]  # type: ignore[union-attr]


def _state(m: AgentMemory) -> dict[int, tuple]:
    return {r.id: (r.tier, r.text, r.access_count, tuple(sorted(r.metadata.items()))) for r in m.get_all(limit=None, include_expired=True)}


def test_prune_plan_equals_apply(clock: Clock) -> None:
    cfg = AgentConfig(categories="trading", near_duplicate_threshold=0.97, near_duplicates="keep")
    with AgentMemory(config=cfg, clock=clock) as m:
        old_obs = m.add({"type": "observation", "summary": "gas high"}, vector=unit(0, 0, 1))
        pref = m.add({"type": "preference", "text": "never trade on weekends"}, vector=unit(0, 1, 0))
        pinned = m.add({"type": "opportunity", "text": "arb on pool X"}, vector=unit(0, 1, 1), pinned=True)
        clock.advance(10)  # the observation (7 d) and pinned opportunity (3 d) are past retention
        dup_a = m.add({"type": "trade", "text": "swap ETH to USDC", "success": True, "profit": 50.0}, vector=unit(1, 0, 0),
                      metadata={"x": 1})
        dup_b = m.add({"type": "trade", "text": "swapped ETH into USDC"}, vector=unit(1, 0.01, 0), metadata={"y": 2})
        mid = m.add({"type": "trade", "text": "added liquidity"}, vector=unit(1, 1, 0))
        clock.advance(2)  # trades are 2 days old: demoted to warm
        plan = m.prune(plan_only=True)
        actions = {i.id: (i.action, i.reason) for i in plan.items}
        assert actions[old_obs.id] == ("forget", "age")
        assert actions[dup_b.id] == ("merge", "redundancy") and plan.items[[i.id for i in plan.items].index(dup_b.id)].into == dup_a.id
        assert actions[dup_a.id] == ("demote", "age") and actions[mid.id] == ("demote", "age")
        assert pref.id not in actions and pinned.id not in actions
        before = _state(m)
        expected = {i: s for i, s in before.items() if i not in plan.removed}
        for item in plan.items:
            if item.action == "demote":
                expected[item.id] = (item.tier,) + expected[item.id][1:]
        merged = expected[dup_a.id]
        expected[dup_a.id] = (merged[0], merged[1], merged[2], tuple(sorted({"x": 1, "y": 2}.items())))
        counts = plan.apply()
        assert counts == plan.counts == {"by_reason": {"age": 3, "redundancy": 1}, "by_action": {"forget": 1, "merge": 1, "demote": 2}}
        assert _state(m) == expected
        assert m.store.tier_of(f"m/{mid.id}") == "warm"
        with pytest.raises(StalePlanError):
            plan.apply()
        stale = m.prune(plan_only=True)
        m.add("something new")
        with pytest.raises(StalePlanError, match="plan again"):
            stale.apply()
        assert m.get_metrics()["pruned"]["redundancy"] == 1


def test_embedder_protocol_and_text_search() -> None:
    texts = ["cats purr", "dogs bark", "kittens purr softly"]
    vecs = np.array([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0.1]], np.float32)
    emb = PrecomputedEmbedder(texts + ["purring"], np.vstack([vecs, [[1, 0, 0.05]]]).astype(np.float32))
    with AgentMemory(embedder=emb, config=AgentConfig(near_duplicates="keep")) as m:
        m.add_many(texts)
        assert [h.text for h in m.search("purring", mode="vector", limit=2)] == ["cats purr", "kittens purr softly"]
        assert m.search("purring", mode="hybrid", limit=1)[0].text == "cats purr"  # first by cosine, kittens share no word
    with pytest.raises(TypeError, match="embedder"):
        AgentMemory(embedder=object())  # type: ignore[arg-type]


def test_reopen_keeps_everything(tmp_path: Path, clock: Clock) -> None:
    with AgentMemory(tmp_path / "m", clock=clock) as m:
        a = m.add("alpha", vector=unit(1, 0), metadata={"k": "v"}, user_id="u")
        b = m.add("beta", vector=unit(0, 1))
        m.update(a.id, "alpha prime")
        m.get(b.id)
        m.forget(b.id)
        c = m.add("gamma", vector=unit(1, 1))
    with AgentMemory(tmp_path / "m", clock=clock) as m:
        assert [r.id for r in m.get_all(limit=None)] == [a.id, c.id]
        assert m.get(a.id).text == "alpha prime" and len(m.history(a.id)) == 2  # type: ignore[union-attr]
        assert m.search(unit(1, 0.01), mode="vector", limit=1)[0].id == a.id
        assert m.get(b.id) is None and m.history(b.id) == []
        d = m.add("delta")
        assert d.id not in (a.id, b.id, c.id)  # a forgotten id is never reused
        assert m.verify()["ok"]


def test_access_counts_outlive_reopen_without_rewriting_records(tmp_path: Path, clock: Clock) -> None:
    """Reads count in small access records (a/<block>); a later update of the record never rolls a count back."""
    with AgentMemory(tmp_path / "m", clock=clock) as m:
        a = m.add("alpha", vector=unit(1, 0))
        b = m.add("beta", vector=unit(0, 1))
        record_before = m.store.retrieve(f"m/{a.id}")
        for _ in range(3):
            m.search(unit(1, 0.1), mode="vector", limit=1)
        clock.advance(1)
        m.get(b.id)
        m.flush()
        assert m.store.retrieve(f"m/{a.id}") == record_before  # the memory record itself was not rewritten
        m.update(b.id, metadata={"k": 1})  # rewrites b's record with its count, after the access block
        m.get(b.id)
        m.forget(b.id)
    with AgentMemory(tmp_path / "m", clock=clock) as m:
        assert m.get_metrics()["top_accessed"] == [(a.id, 3)]  # the three searches
        clock.advance(1)
        got = m.get(a.id)
        assert got is not None and got.access_count == 4 and got.last_access == clock.t
        assert m.get(b.id) is None
        assert sorted(k for k in m.store.keys() if isinstance(k, str) and k.startswith("a/")) == ["a/0"]
        assert m.store.retrieve("a/0")["ids"] == [a.id]  # b's count went with b


def test_pending_access_counts_are_written_in_batches(tmp_path: Path, clock: Clock) -> None:
    with AgentMemory(tmp_path / "m", clock=clock) as m:
        ids = [m.add(f"memory {i}", vector=unit(1, i / 10)).id for i in range(5)]
        m._access.pending_limit = 4
        for id_ in ids[:3]:
            m.get(id_)
        assert "a/0" not in m.store
        m.get(ids[3])  # the fourth pending touch writes the block
        assert m.store.retrieve("a/0")["counts"] == [1, 1, 1, 1]


def test_set_tier_refuses_an_unknown_tier_before_changing_anything(mem: AgentMemory) -> None:
    a = mem.add("alpha")
    with pytest.raises(ValueError, match="tier: expected 'hot', 'warm' or 'cold', got 'lukewarm'"):
        mem.set_tier(a.id, "lukewarm")  # type: ignore[arg-type]
    assert mem.get(a.id).tier == "hot"  # type: ignore[union-attr]
    assert mem.set_tier(a.id, "cold").tier == "cold"


def test_metrics_shape(mem: AgentMemory) -> None:
    mem.add("x one", vector=unit(1, 0))
    mem.add("x one", vector=unit(1, 0))
    mem.search("one", mode="keyword")
    met = mem.get_metrics()
    assert met["total_memories"] == 1 and met["category_distribution"] == {"episodic": 1}
    assert met["tier_distribution"] == {"hot": 1} and met["dedup_ratio"] == 0.5
    assert met["top_accessed"] == [(0, 2)] and met["ram_bytes_per_memory"] > 0


_times = st.one_of(st.just(0.0), st.floats(0, 2e9, allow_nan=False))
_text = st.text(min_size=1, max_size=20)


@given(
    created=_times, updated=_times, valid=_times, invalid=st.none() | _times, text=_text,
    content=st.none() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    user=st.none() | _text, meta=st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=3),
    links=st.lists(st.integers(0, 99), max_size=3), access=st.integers(0, 5), last=st.none() | _times,
    expired=st.booleans(), pinned=st.booleans(), tier=st.sampled_from(["hot", "warm", "cold"]),
    version=st.integers(1, 4), category=st.sampled_from(["episodic", "facts"]),
)
def test_stored_records_read_back_equal(created, updated, valid, invalid, text, content, user, meta, links, access,
                                        last, expired, pinned, tier, version, category) -> None:
    """The compact stored form leaves out only what it can derive: every field reads back equal."""
    rec = MemoryRecord(id=7, content=text if content is None else content, text=text, category=category, user_id=user,
                       metadata=meta, created_at=created, updated_at=updated, valid_at=valid, invalid_at=invalid,
                       expired=expired, links=links, access_count=access, last_access=last, version=version,
                       tier=tier, pinned=pinned, hash=content_digest((user, None, None), text))
    assert from_stored(to_stored(rec)) == rec
    stored = to_stored(rec)
    assert stored == _to_stored_plain(rec) and list(stored) == list(_to_stored_plain(rec))


def _to_stored_plain(rec: MemoryRecord) -> dict:
    """to_stored's rules written out field by field (its plain twin)."""
    defaults = {f.name: f.default for f in dataclasses.fields(MemoryRecord) if f.default is not dataclasses.MISSING}
    out: dict = {}
    for f in dataclasses.fields(MemoryRecord):
        name, value = f.name, getattr(rec, f.name)
        if name in ("hash", "duplicate_of") or (name == "content" and isinstance(value, str) and value == rec.text):
            continue
        if name in ("metadata", "links"):
            if value:
                out[name] = value
        elif name in ("updated_at", "valid_at"):
            if value != rec.created_at:
                out[name] = value
        elif name not in defaults or name == "created_at" or type(value) is not type(defaults[name]) or value != defaults[name]:
            out[name] = value
    return out


def test_vector_index_near_finds_copies_and_forgets_removed_rows() -> None:
    from memstrata.agent.vectorindex import VectorIndex, sketch_radius, unit_rows

    rng = np.random.default_rng(7)
    x = unit_rows(rng.standard_normal((300, 32)).astype(np.float32), "x", None)
    index = VectorIndex(32, buffer_rows=64)  # rows in the buffer and in the quantized memory
    index.add_many(list(range(300)), x)
    found = index.near(x[[5, 250]], 0.99)
    assert [ids.tolist()[:1] for ids, _ in found] == [[5], [250]]
    index.remove(5)
    index.remove(299)  # the last row moves into no hole
    (ids, _), = index.near(x[[5]], 0.99)
    assert 5 not in ids.tolist()
    (ids, _), = index.near(x[[298]], 0.99)
    assert ids.tolist()[:1] == [298]
    assert sketch_radius(1.0) == 0 and sketch_radius(-1.0) == 64 and sketch_radius(0.95, 64) == 13


def test_keyword_index_removes_rows_by_their_text_and_keeps_no_copy_of_it() -> None:
    index = KeywordIndex()
    texts = {i: f"word{i} shared text group{i % 3}" for i in range(2 * PENDING_ROWS + 7)}  # most reach FTS5 itself
    for i, text in texts.items():
        index.add(i, text)
    index.flush()
    index.remove(5, texts[5])
    index.replace(7, texts[7], "replacement words")
    index.add(10_000, "pending only")
    index.remove(10_000, "pending only")
    assert [i for i, _ in index.search("word5")] == [] and [i for i, _ in index.search("word7")] == []
    assert [i for i, _ in index.search("replacement")] == [7] and list(index.search("pending")) == []
    assert sorted(i for i, _ in index.search("shared")) == sorted(set(texts) - {5, 7})
    assert len(index) == len(texts) - 1
    # contentless: FTS5 holds the word lists, not the texts
    assert index._conn.execute("SELECT text FROM fts WHERE rowid = 1").fetchone() == (None,)
    index.clear()
    assert len(index) == 0 and list(index.search("shared")) == []
