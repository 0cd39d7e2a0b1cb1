"""VectorMemory's collection API (upsert, update, ids, items, count, delete by filter) and its error messages."""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import VectorMemory

F32 = np.float32


def _memory() -> tuple[VectorMemory, np.ndarray]:
    x = np.random.default_rng(7).standard_normal((30, 8)).astype(F32)
    memory = VectorMemory(8, codec="int8", metric="ip")
    memory.add(x, metadata=[{"kind": "note" if i % 3 else "task", "score": i / 10} if i != 4 else None for i in range(30)])
    return memory, x


def test_upsert_update_ids_items_count_and_delete_by_filter() -> None:
    memory, x = _memory()
    assert memory.ids().tolist() == list(range(30)) and memory.count() == 30
    assert memory.count({"kind": "task"}) == 10 and memory.count({"score": {"$gte": 2.5}}) == 5
    assert memory.ids({"$and": [{"kind": "task"}, {"score": {"$lt": 1}}]}).tolist() == [0, 3, 6, 9]
    assert dict(memory.items({"$id": {"$in": [4, 5]}})) == {4: None, 5: {"kind": "note", "score": 0.5}}
    codes_before = memory.get([5]).copy()
    memory.update([5], metadata=[{"kind": "task"}])  # metadata-only: the vector is untouched
    np.testing.assert_array_equal(memory.get([5]), codes_before)
    assert memory.metadata(5) == {"kind": "task"} and memory.count({"kind": "task"}) == 11
    memory.update([6], vectors=x[7])  # vector-only: metadata kept
    assert memory.metadata(6) == {"kind": "task", "score": 0.6}
    np.testing.assert_array_equal(memory.get([6]), memory.get([7]))
    assert memory.upsert([6, 100], x[:2], metadata=[{"kind": "new"}, None]).tolist() == [6, 100]
    assert memory.metadata(6) == {"kind": "new"} and memory.metadata(100) is None and len(memory) == 31
    assert memory.delete(filter={"kind": "task"}) == 10
    assert memory.count({"kind": "task"}) == 0 and len(memory) == 21
    assert memory.delete(filter={"kind": {"$exists": True}}) == 19 and memory.ids().tolist() == [4, 100]
    with pytest.raises(ValueError, match="no stored metadata has the key 'kind'"):
        memory.count({"kind": "note"})
    assert memory.count({"nothing": 1}, strict=False) == 0


def test_filters_on_search_are_exact_and_strict() -> None:
    memory, x = _memory()
    _, ids = memory.search(x[:3], 30, filter={"kind": "task"})
    assert set(ids[ids >= 0].tolist()) == set(range(0, 30, 3))
    _, with_lambda = memory.search(x[:3], 30, filter=lambda m: m is not None and m["kind"] == "task")
    np.testing.assert_array_equal(ids, with_lambda)
    with pytest.raises(ValueError, match=r"filter\['category'\]: expected a scalar .* got list"):
        memory.search(x[0], 3, filter={"category": ["asyncio", "email"]})
    with pytest.raises(ValueError, match=r"no stored metadata has the key 'categroy'"):
        memory.search(x[0], 3, filter={"categroy": "x"})
    with pytest.raises(ValueError, match=r"unknown operator '\$greater'"):
        memory.search(x[0], 3, filter={"score": {"$greater": 0.5}})
    assert memory.search(x[0], 3, filter={"categroy": "x"}, strict=False)[1].tolist() == [[-1, -1, -1]]


def test_messages_name_what_arrived() -> None:
    memory, x = _memory()
    with pytest.raises(ValueError, match=r"metadata: expected a list of 3 dicts \(or None\), got a list of 1"):
        memory.add(x[:3], ids=[50, 51, 52], metadata=[{"a": 1}])
    with pytest.raises(ValueError, match=r"metadata: expected a list of 2 dicts \(or None\), got dict"):
        memory.add(x[:2], ids=[50, 51], metadata={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ids: expected new ids, got some already in the memory \(\[3\]\); use upsert"):
        memory.add(x[:1], ids=[3])
    with pytest.raises(ValueError, match="metadata: expected JSON-serializable mappings"):
        memory.add(x[:1], ids=[60], metadata=[{"a": object()}])
    with pytest.raises(ValueError, match=r"vectors: expected 2 rows \(one per id\)"):
        memory.update([1, 2], vectors=x[:3])
    with pytest.raises(ValueError, match="delete: pass either ids or filter=, not both or neither"):
        memory.delete()
    with pytest.raises(TypeError, match=r"ids: expected integers, got <U1"):
        memory.get(["a"])


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.get([3, 99999]),
        lambda m: m.metadata(99999),
        lambda m: m.delete([99999]),
        lambda m: m.update([99999], metadata=[None]),
    ],
    ids=["get", "metadata", "delete", "update"],
)
def test_missing_ids_raise_key_error_naming_them_everywhere(call) -> None:
    memory, _ = _memory()
    with pytest.raises(KeyError, match=r"ids: not in the memory: \[99999\]"):
        call(memory)
    assert memory.delete([99999, 3], missing_ok=True) == 1


def test_threads_writing_and_searching_at_once(tmp_path) -> None:
    import threading

    memory = VectorMemory.open(tmp_path / "vm", 8, codec="float32", metric="ip")
    x = np.random.default_rng(3).standard_normal((400, 8)).astype(F32)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 100):
                memory.add(x[i], ids=[i], metadata=[{"t": start}])
                memory.search(x[i], 3, filter={"t": start})
                if i % 10 == 0:
                    memory.delete([i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (0, 100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(memory) == 360 and memory.count({"t": 100}) == 90
    memory.close()
    with VectorMemory.open(tmp_path / "vm", read_only=True) as again:
        assert sorted(again.ids().tolist()) == [i for i in range(400) if i % 10]
