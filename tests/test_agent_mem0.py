"""memstrata.agent.Memory against Mem0's documented behaviour on its non-LLM path (``infer=False``).

What Mem0's docs state for its local ``Memory``: ``add`` takes a string or
chat messages plus ``user_id``/``agent_id``/``run_id`` and ``metadata`` and
returns ``{"results": [{"id", "memory", "event"}]}`` (``infer=False`` stores
the messages as given, system messages skipped); ``get`` returns one memory
dict (``id``, ``memory``, ``hash``, ``metadata``, ``created_at``,
``updated_at``, scope ids) or None; ``get_all`` / ``search`` return
``{"results": [...]}``, need a scope id, honour ``limit`` and ``filters``,
and search hits carry a ``score``; ``update`` / ``delete`` / ``delete_all``
return a ``{"message": ...}``; ``history`` lists events with ``old_memory`` /
``new_memory`` / ``event``; ``reset`` empties the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memstrata.agent import Memory


@pytest.fixture
def m(tmp_path: Path) -> Memory:
    with Memory(str(tmp_path / "mem0")) as mem:
        yield mem


def test_add_string_and_messages(m: Memory) -> None:
    out = m.add("I am vegetarian", user_id="alice", metadata={"topic": "food"}, infer=False)
    assert list(out) == ["results"] and len(out["results"]) == 1
    first = out["results"][0]
    assert first["event"] == "ADD" and first["memory"] == "I am vegetarian" and isinstance(first["id"], str)
    msgs = [{"role": "system", "content": "you are helpful"}, {"role": "user", "content": "I live in Lisbon"},
            {"role": "assistant", "content": "Noted, Lisbon it is"}]
    out = m.add(msgs, user_id="alice", infer=False)
    assert [r["memory"] for r in out["results"]] == ["I live in Lisbon", "Noted, Lisbon it is"]
    got = m.get(first["id"])
    assert got is not None and got["memory"] == "I am vegetarian" and got["user_id"] == "alice"
    assert got["metadata"] == {"topic": "food", "role": "user"}
    assert set(got) >= {"id", "memory", "hash", "metadata", "created_at", "updated_at"}
    assert m.get("999") is None


def test_scope_is_required(m: Memory) -> None:
    with pytest.raises(ValueError, match="user_id"):
        m.add("x")
    with pytest.raises(ValueError, match="user_id"):
        m.get_all()
    with pytest.raises(ValueError, match="user_id"):
        m.search("x")
    with pytest.raises(ValueError, match="user_id"):
        m.delete_all()


def test_get_all_search_filters_limit(m: Memory) -> None:
    for i in range(5):
        m.add(f"likes fruit number {i}", user_id="alice", metadata={"n": i}, infer=False)
    m.add("likes fruit too", user_id="bob", infer=False)
    assert len(m.get_all(user_id="alice")["results"]) == 5
    assert len(m.get_all(user_id="alice", limit=2)["results"]) == 2
    assert [r["metadata"]["n"] for r in m.get_all(user_id="alice", filters={"n": {"gte": 3}})["results"]] == [3, 4]
    hits = m.search("fruit", user_id="alice", limit=3)["results"]
    assert len(hits) == 3 and all("score" in h and h["user_id"] == "alice" for h in hits)
    hits = m.search("fruit", user_id="alice", filters={"OR": [{"n": 1}, {"n": 4}]})["results"]
    assert sorted(h["metadata"]["n"] for h in hits) == [1, 4]
    with pytest.raises(ValueError, match="operator 'icontains'"):
        m.search("fruit", user_id="alice", filters={"n": {"icontains": "x"}})


def test_update_history_delete(m: Memory) -> None:
    mid = m.add("likes tea", user_id="alice", infer=False)["results"][0]["id"]
    assert m.update(mid, "likes coffee") == {"message": "Memory updated successfully!"}
    assert m.get(mid)["memory"] == "likes coffee"  # type: ignore[index]
    hist = m.history(mid)
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in hist] == [
        ("ADD", None, "likes tea"), ("UPDATE", "likes tea", "likes coffee")]
    assert m.delete(mid) == {"message": "Memory deleted successfully!"}
    assert m.get(mid) is None and m.history(mid) == []  # complete delete: a documented difference


def test_delete_all_and_reset(m: Memory) -> None:
    m.add("a1", user_id="alice", infer=False)
    m.add("a2", user_id="alice", infer=False)
    m.add("b1", user_id="bob", infer=False)
    assert m.delete_all(user_id="alice") == {"message": "Memories deleted successfully!"}
    assert m.get_all(user_id="alice")["results"] == [] and len(m.get_all(user_id="bob")["results"]) == 1
    m.reset()
    assert m.get_all(user_id="bob")["results"] == []


def test_infer_means_dedup_not_llm(m: Memory) -> None:
    a = m.add("I am vegetarian", user_id="alice")["results"][0]
    b = m.add("i am  VEGETARIAN", user_id="alice")["results"][0]
    assert b["event"] == "NONE" and b["id"] == a["id"] and len(m.get_all(user_id="alice")["results"]) == 1
