"""Durable VectorMemory: log + checkpoints against a dict model, locks, read-only readers, safe files, corruption."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memstrata import VectorMemory
from memstrata.errors import ClosedError, CorruptDataError, StoreLockedError

F32 = np.float32
DIM = 6


def vec(i: int, version: int = 0) -> np.ndarray:
    return np.random.default_rng([i, version]).standard_normal(DIM).astype(F32)


def vecs(ids: list[int], version: int = 0) -> np.ndarray:
    return np.stack([vec(i, version) for i in ids]) if ids else np.empty((0, DIM), F32)


class DurableMachine(RuleBasedStateMachine):
    """A durable memory in lock-step with a dict id -> (vector, metadata), reopened and checkpointed at random."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "vm"
        self.memory = VectorMemory.open(self.path, DIM, codec="float32", metric="ip", rescore=2)
        self.model: dict[int, tuple[np.ndarray, Any]] = {}
        self.next = 0
        self.version = 0

    def teardown(self) -> None:
        self.memory.close()
        self.tmp.cleanup()

    @rule(n=st.integers(1, 4), tag=st.sampled_from(["a", "b", None]))
    def add(self, n: int, tag: str | None) -> None:
        ids = list(range(self.next, self.next + n))
        self.next += n
        meta = [None if tag is None else {"tag": tag, "i": i} for i in ids]
        self.memory.add(vecs(ids), ids=ids, metadata=meta)
        for i, m in zip(ids, meta):
            self.model[i] = (vec(i), m)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def upsert_or_update(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=3, unique=True))
        self.version += 1
        kind = data.draw(st.sampled_from(["upsert", "vectors", "metadata"]))
        meta = [{"tag": "u", "v": self.version} for _ in ids]
        if kind == "upsert":
            fresh = ids + [self.next]
            self.next += 1
            self.memory.upsert(fresh, vecs(fresh, self.version), metadata=meta + [None])
            for i, m in zip(fresh, meta + [None]):
                self.model[i] = (vec(i, self.version), m)
        elif kind == "vectors":
            self.memory.update(ids, vectors=vecs(ids, self.version))
            for i in ids:
                self.model[i] = (vec(i, self.version), self.model[i][1])
        else:
            before = self.memory.get(ids)
            self.memory.update(ids, metadata=meta)
            np.testing.assert_array_equal(self.memory.get(ids), before)  # metadata-only: no vector touched
            for i, m in zip(ids, meta):
                self.model[i] = (self.model[i][0], m)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=3, unique=True))
        assert self.memory.delete(ids) == len(ids)
        for i in ids:
            del self.model[i]

    @rule()
    def delete_by_filter(self) -> None:
        expected = [i for i, (_, m) in self.model.items() if m is not None and m.get("tag") == "b"]
        assert self.memory.delete(filter={"tag": "b"}, strict=False) == len(expected)
        for i in expected:
            del self.model[i]

    @rule(how=st.sampled_from(["reopen", "checkpoint", "compact", "reopen-read-only"]))
    def persist(self, how: str) -> None:
        if how == "checkpoint":
            self.memory.checkpoint()
        elif how == "compact":
            self.memory.compact()
        else:
            self.memory.close()
            if how == "reopen-read-only":
                with VectorMemory.open(self.path, read_only=True) as reader:
                    self.check(reader)
            self.memory = VectorMemory.open(self.path)

    def check(self, memory: VectorMemory) -> None:
        ids = sorted(self.model)
        assert sorted(memory.ids().tolist()) == ids and len(memory) == len(ids) == memory.count()
        if ids:
            np.testing.assert_array_equal(memory.get(ids), np.stack([self.model[i][0] for i in ids]))
            _, found = memory.search(self.model[ids[0]][0], k=1)
            assert found[0, 0] in ids
        assert dict(memory.items()) == {i: m for i, (_, m) in self.model.items()}
        assert memory.count({"tag": "a"}, strict=False) == sum(
            1 for _, m in self.model.values() if m is not None and m["tag"] == "a"
        )

    @invariant()
    def agrees(self) -> None:
        self.check(self.memory)


TestDurableMachine = DurableMachine.TestCase
TestDurableMachine.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codec": "int8", "metric": "cosine"},
        {"codec": "int8", "metric": "l2", "shortlist": 4, "rescore": 3},
        {"codec": "int4", "metric": "ip"},
        {"codec": "binary", "metric": "l2", "rescore": 4},
    ],
)
def test_reopen_answers_as_before_for_every_codec(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    x = vecs(list(range(300)))
    with VectorMemory.open(tmp_path / "vm", DIM, **kwargs) as memory:
        memory.add(x[:200], metadata=[{"i": i} for i in range(200)])
        memory.checkpoint()
        memory.add(x[200:], ids=np.arange(200, 300))
        memory.delete([5, 250])
        memory.update([7], metadata=[{"i": -7}])
        expected = memory.search(x[:20], 5), memory.get([3, 260])
    with VectorMemory.open(tmp_path / "vm", read_only=True) as again:
        got = again.search(x[:20], 5), again.get([3, 260])
        assert again.metadata(7) == {"i": -7} and again.metadata(260) is None and len(again) == 298
    np.testing.assert_array_equal(expected[0][1], got[0][1])
    np.testing.assert_array_equal(expected[0][0], got[0][0])
    np.testing.assert_array_equal(expected[1], got[1])


def test_one_writer_per_path_and_any_number_of_readers(tmp_path: Path) -> None:
    path = tmp_path / "vm"
    writer = VectorMemory.open(path, DIM)
    writer.add(vecs([0, 1]))
    with pytest.raises(StoreLockedError, match=r"already open for writing in this process"):
        VectorMemory.open(path)
    other = subprocess.run(
        [sys.executable, "-c", f"from memstrata import VectorMemory; VectorMemory.open({str(path)!r})"],
        capture_output=True, text=True,
    )
    assert "StoreLockedError" in other.stderr and "open for writing in another process" in other.stderr
    readers = [VectorMemory.open(path, read_only=True) for _ in range(3)]
    assert all(len(r) == 2 for r in readers)
    with pytest.raises(PermissionError, match=r"opened with read_only=True; open it with VectorMemory.open\(path\)"):
        readers[0].add(vecs([5]))
    with pytest.raises(PermissionError, match="read_only=True"):
        readers[0].delete([0])
    writer.close()
    with VectorMemory.open(path) as again:  # the lock went with close()
        assert len(again) == 2
    for r in readers:
        r.close()


def test_settings_of_an_existing_memory_must_match(tmp_path: Path) -> None:
    VectorMemory.open(tmp_path / "vm", DIM, codec="int4").close()
    with pytest.raises(ValueError, match=r"codec: the VectorMemory at .* has codec='int4', got 'int8'"):
        VectorMemory.open(tmp_path / "vm", codec="int8")
    with pytest.raises(ValueError, match=r"dim: .* holds no VectorMemory yet; pass dim="):
        VectorMemory.open(tmp_path / "new")
    with pytest.raises(FileNotFoundError, match="holds no VectorMemory to open read-only"):
        VectorMemory.open(tmp_path / "missing", read_only=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"is a file; expected a directory"):
        VectorMemory.open(tmp_path / "file", DIM)
    with pytest.raises(ValueError, match=r"durability: expected one of none, normal, full, got 'fsync'"):
        VectorMemory.open(tmp_path / "vm", durability="fsync")


@pytest.mark.parametrize("where", ["this process", "another process"])
def test_save_and_reload_while_another_instance_reads(tmp_path: Path, where: str) -> None:
    """The crash that was: a reload shrank the originals file a live instance mapped (SIGBUS)."""
    snapshot, originals = tmp_path / "vectors.msvm", tmp_path / "originals.f32"
    x = vecs(list(range(400)))
    first = VectorMemory(DIM, codec="int8", rescore=4, originals_path=originals)
    first.add(x)
    first.delete(list(range(0, 400, 3)))
    first.save(snapshot)
    first.close()
    reader = VectorMemory.load(snapshot, originals_path=originals)
    expected = reader.search(x[:10], 5)
    script = textwrap.dedent(
        f"""
        from memstrata import VectorMemory
        m = VectorMemory.load({str(snapshot)!r})
        m.delete(list(range(1, 400, 3)))
        m.save({str(snapshot)!r})
        m.close()
        again = VectorMemory.load({str(snapshot)!r})
        again.compact()
        again.save({str(snapshot)!r})
        """
    )
    if where == "this process":
        exec(script, {})
        with pytest.raises(StoreLockedError, match="this process"):
            VectorMemory.load(snapshot, originals_path=originals)
    else:
        subprocess.run([sys.executable, "-c", script], check=True)
    got = reader.search(x[:10], 5)  # still reading the bytes it mapped
    np.testing.assert_array_equal(expected[1], got[1])
    np.testing.assert_allclose(reader.get([1, 2]), x[[1, 2]] / np.linalg.norm(x[[1, 2]], axis=1, keepdims=True), atol=1e-6)
    reader.close()
    assert len(VectorMemory.load(snapshot)) == 400 - 134 - 133


def test_reader_keeps_reading_while_the_writer_compacts(tmp_path: Path) -> None:
    path = tmp_path / "vm"
    x = vecs(list(range(300)))
    writer = VectorMemory.open(path, DIM, codec="int8", rescore=3)
    writer.add(x)
    reader = VectorMemory.open(path, read_only=True)
    expected = reader.search(x[:8], 4)
    writer.delete(list(range(0, 300, 2)))
    writer.compact()
    writer.add(vecs([1000]), ids=[1000])
    writer.checkpoint()
    got = reader.search(x[:8], 4)
    np.testing.assert_array_equal(expected[1], got[1])
    subprocess.run(
        [sys.executable, "-c", f"from memstrata import VectorMemory\nm = VectorMemory.open({str(path)!r}, read_only=True)\n"
         "assert len(m) == 151, len(m)\nm.search(m.get([1]), 3)"],
        check=True,
    )
    writer.close()
    reader.close()
    assert sorted(os.listdir(path)) == [".tail", "CURRENT", "LOCK", "log-2.mslog", "originals-2.f32", "state-2.msvm"]


def _every_file(path: Path) -> dict[str, bytes]:
    # the lock and the advisory tail marker (tests/faults/test_stale_tail.py) hold no data of the memory
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name not in ("LOCK", ".tail")}


def test_a_flipped_byte_in_any_file_raises_corrupt_data_error(tmp_path: Path) -> None:
    path = tmp_path / "vm"
    with VectorMemory.open(path, 4, codec="int8", metric="l2", rescore=2) as memory:
        memory.add(vecs([0, 1, 2])[:, :4], metadata=[{"k": 1}, None, {"k": 2}])
        memory.checkpoint()
        memory.add(vecs([3])[:, :4], metadata=[{"k": "x"}])
        memory.delete([1])
        memory.update([0], metadata=[{"k": 9}])
    good = _every_file(path)
    assert set(good) == {"CURRENT", "state-1.msvm", "log-1.mslog", "originals-1.f32"}
    for name, data in good.items():
        for pos in range(0, len(data), max(1, len(data) // 200)):
            (path / name).write_bytes(data[:pos] + bytes([data[pos] ^ 0x10]) + data[pos + 1 :])
            with pytest.raises(CorruptDataError):
                VectorMemory.open(path, read_only=True).close()
        (path / name).write_bytes(data)
    for name in ("CURRENT", "state-1.msvm", "originals-1.f32"):
        (path / name).write_bytes(good[name][: len(good[name]) - 3])
        with pytest.raises(CorruptDataError):
            VectorMemory.open(path).close()
        (path / name).write_bytes(good[name])
    (path / "log-1.mslog").unlink()
    with pytest.raises(CorruptDataError, match="is missing"):
        VectorMemory.open(path)
    (path / "log-1.mslog").write_bytes(good["log-1.mslog"])
    with VectorMemory.open(path) as memory:
        assert memory.metadata(0) == {"k": 9} and len(memory) == 3


def test_grep_after_delete_and_compact(tmp_path: Path) -> None:
    """After delete + compact no byte of a deleted vector (codes, originals, metadata) remains in any file."""
    path = tmp_path / "vm"
    x = vecs(list(range(50)))
    secret = x[17]
    with VectorMemory.open(path, DIM, codec="float32", metric="ip", rescore=2) as memory:
        memory.add(x, metadata=[{"note": f"secret-{i:04d}"} for i in range(50)])
        memory.checkpoint()
        memory.upsert([60], secret[None, :] + 1, metadata=[{"note": "kept"}])
        memory.delete([17])
        blob = b"".join(_every_file(path).values())
        assert secret.tobytes() in blob and b"secret-0017" in blob  # the grep can find them
        memory.compact()
        blob = b"".join(_every_file(path).values())
        assert secret.tobytes() not in blob and b"secret-0017" not in blob
        assert x[18].tobytes() in blob and b"secret-0018" in blob
    # in RAM (no directory) the originals file is rewritten too
    originals = tmp_path / "o.f32"
    memory = VectorMemory(DIM, codec="int8", metric="ip", rescore=2, originals_path=originals)
    memory.add(x)
    memory.delete([17])
    assert secret.tobytes() in originals.read_bytes()
    memory.compact()
    assert secret.tobytes() not in originals.read_bytes() and len(originals.read_bytes()) == 49 * DIM * 4
    memory.close()


def test_closed_memory_raises_closed_error_naming_it(tmp_path: Path) -> None:
    memory = VectorMemory.open(tmp_path / "vm", DIM)
    memory.add(vecs([0]))
    memory.close()
    memory.close()  # idempotent
    calls = [
        lambda: len(memory), lambda: memory.add(vecs([1])), lambda: memory.search(vec(0), 1), lambda: memory.get([0]),
        lambda: memory.delete([0]), lambda: memory.metadata(0), lambda: memory.ids(), lambda: memory.count(),
        lambda: memory.save(tmp_path / "x"), lambda: memory.compact(), lambda: memory.update([0], metadata=[None]),
        lambda: memory.upsert([0], vecs([0])), lambda: memory.checkpoint(), lambda: memory.near_duplicates(),
        lambda: list(memory.items()),
    ]
    for call in calls:
        with pytest.raises(ClosedError, match=r"VectorMemory \(.*vm\): closed"):
            call()
    assert issubclass(ClosedError, ValueError)
    with pytest.raises(ClosedError, match=r"VectorMemory: closed"):
        in_ram = VectorMemory(DIM)
        in_ram.close()
        in_ram.search(vec(0), 1)
