"""MemoryStore: persistence, clock-driven migration, capacity, pinning, threads, corruption, full disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _threads import run_in_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata import CorruptDataError, MemoryStore, StorageFullError, StoreConfig
from memstrata.store import StoreLockedError

NO_THREAD = {"migration_interval_seconds": None}


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _values(n: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    out: dict[str, object] = {}
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out[f"text:{i}"] = f"memory {i}: the user asked about tiered storage " * (1 + i % 3)
        elif kind == 1:
            out[f"trace:{i}"] = {"op": "matmul", "delta": -0.01 * i, "tags": ["fused", "int8"], "step": i}
        elif kind == 2:
            out[f"vec:{i}"] = rng.standard_normal(64).astype(np.float32)
        elif kind == 3:
            out[f"dup:{i}"] = {"text": "a repeated memory"}
        else:
            out[f"bytes:{i}"] = bytes(range(i % 256)) * 3
    return out


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b


def test_persistence_across_all_tiers(tmp_path: Path) -> None:
    values = _values(200)
    tiers = ("hot", "warm", "cold")
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        for i, (k, v) in enumerate(values.items()):
            store.store(k, v, tier=tiers[i % 3])
        store.store(b"raw-bytes-key", {"b": 1}, tier="cold")
        assert {store.tier_of(k) for k in values} == set(tiers)
        seq = store.seq
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert len(store) == 201
        assert store.seq == seq
        for k, v in values.items():
            assert _equal(store.retrieve(k), v), k
        assert store.retrieve(b"raw-bytes-key") == {"b": 1}
        assert sorted(map(str, store.keys())) == sorted(map(str, [*values, b"raw-bytes-key"]))
        assert store.verify()["ok"]


def test_delete_is_tombstone_then_reclaimed(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        for i in range(50):
            store.store(f"k{i}", {"i": i, "pad": "x" * 200}, tier="cold")
        seq = store.seq
        for i in range(40):
            assert store.delete(f"k{i}") == seq + 1 + i
        assert "k0" not in store and len(store) == 10
        with pytest.raises(KeyError):
            store.delete("k0")
        stats = store.get_statistics()["tiered_storage"]
        assert stats["tombstones"] == 40
        result = store.compact()
        assert result["tombstones_removed"] == 40 and result["blobs_removed"] == 40
        assert result["packs_removed"] >= 1
        assert all(store.retrieve(f"k{i}")["i"] == i for i in range(40, 50))
        assert store.verify()["ok"]
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert len(store) == 10 and store.retrieve("k45")["i"] == 45


def test_dedup_stores_identical_values_once() -> None:
    with MemoryStore(config=NO_THREAD) as store:
        for i in range(100):
            store.store(f"k{i}", {"text": "same memory"})
        dd = store.get_statistics()["deduplication"]
        assert dd["unique_blobs"] == 1 and dd["keys"] == 100 and dd["dedup_ratio"] == pytest.approx(100.0)
        store.delete("k0")
        store.store("k1", "other")  # overwrite releases one reference
        assert store.retrieve("k2") == {"text": "same memory"}
        assert store.get_statistics()["deduplication"]["unique_blobs"] == 2


def test_clock_driven_migration_and_promotion(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = {**NO_THREAD, "hot_idle_seconds": 60, "warm_idle_seconds": 600, "promote_cold_hits": 2, "promote_warm_hits": 5}
    with MemoryStore(tmp_path / "s", cfg, clock=clock) as store:
        store.store("a", {"v": 1})
        store.store("b", {"v": 2})
        assert store.tier_of("a") == "hot"
        clock.t += 30
        store.retrieve("b")  # b stays fresh
        clock.t += 31
        moved = store.run_migrations()
        assert moved["hot_to_warm"] == 1
        assert store.tier_of("a") == "warm" and store.tier_of("b") == "hot"
        clock.t += 601
        store.run_migrations()
        assert store.tier_of("a") == "cold" and store.tier_of("b") == "cold"
        assert store.retrieve_with_tier("a") == ({"v": 1}, "cold")
        assert store.retrieve("a") == {"v": 1}  # second access promotes cold -> warm
        assert store.tier_of("a") == "warm"
        store.run_migrations()  # the access time of "a" is recent: stays warm
        assert store.tier_of("a") == "warm"
        for _ in range(5):
            store.retrieve("a")
        assert store.tier_of("a") == "hot"
        stats = store.get_statistics()["tiered_storage"]
        assert stats["warm_to_cold"] == 2 and stats["cold_to_warm"] == 1 and stats["warm_to_hot"] == 1
        assert stats["promotions"] == 2 and stats["demotions"] >= 3


def test_pinned_keys_never_move() -> None:
    clock = FakeClock()
    cfg = {**NO_THREAD, "hot_idle_seconds": 1, "warm_idle_seconds": 1, "hot_max_bytes": 4096}
    with MemoryStore(config=cfg, clock=clock) as store:
        store.store("pinned", {"v": "keep me"}, pin=True)
        store.store("w", {"v": "warm"}, tier="warm", pin=True)
        for i in range(200):  # capacity pressure on the hot tier
            store.store(f"k{i}", {"i": i, "pad": "y" * 100})
        clock.t += 100
        store.run_migrations()
        assert store.tier_of("pinned") == "hot" and store.tier_of("w") == "warm"
        assert store.tier_of("k0") == "cold"
        store.unpin("w")
        store.run_migrations()
        assert store.tier_of("w") == "cold"


def test_capacity_bounds_hold() -> None:
    cfg = {**NO_THREAD, "hot_max_bytes": 8192, "warm_max_bytes": 4096}
    with MemoryStore(config=cfg) as store:
        rng = np.random.default_rng(1)
        for i in range(300):
            store.store(f"k{i}", rng.bytes(200))
            assert store.get_statistics()["tiered_storage"]["hot"]["bytes"] <= 8192
        store.run_migrations()
        ts = store.get_statistics()["tiered_storage"]
        assert ts["warm"]["bytes"] <= 4096
        assert ts["hot"]["items"] + 0 < 300 and ts["warm"]["items"] + ts["cold"]["items"] == 300
        assert len(store) == 300 and all(len(store.retrieve(f"k{i}")) == 200 for i in range(300))


def test_concurrent_store_retrieve_delete_with_checker(tmp_path: Path) -> None:
    cfg = {"migration_interval_seconds": 0.01, "hot_max_bytes": 16384, "hot_idle_seconds": 0.0, "warm_idle_seconds": 0.05}
    n_threads, n_ops = 4, 300

    def value(t: int, k: int, version: int) -> dict[str, int]:
        return {"t": t, "k": k, "version": version, "pad": t * 1000 + k}

    with MemoryStore(tmp_path / "s", cfg) as store:

        def worker(t: int) -> None:
            rng = np.random.default_rng(t)
            latest: dict[int, int | None] = {}
            for op in range(n_ops):
                k = int(rng.integers(0, 20))
                key = f"t{t}:k{k}"
                r = rng.random()
                if r < 0.5:
                    store.store(key, value(t, k, op), tier=("hot", "warm", "cold")[op % 3])
                    latest[k] = op
                elif r < 0.85:
                    got = store.retrieve(key, None)
                    want = latest.get(k)
                    assert got == (None if want is None else value(t, k, want)), (key, got, want)
                elif latest.get(k) is not None:
                    store.delete(key)
                    latest[k] = None
            for k, v in latest.items():
                assert store.retrieve(f"t{t}:k{k}", None) == (None if v is None else value(t, k, v))

        run_in_threads(worker, n_threads)
        assert store.verify()["ok"]
        assert store.get_statistics()["tiered_storage"]["migration_errors"] == 0


def _flip_inside(path: Path, needle: bytes) -> None:
    data = bytearray(path.read_bytes())
    i = data.find(needle)
    assert i >= 0, "frame not found in file"
    data[i + len(needle) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def test_bit_flip_in_segment_file_is_detected(tmp_path: Path) -> None:
    """The victim's frame lives inside its entry record: the damaged record still names its key to verify()."""
    text = "a distinctive memory that will be damaged " * 20
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "zstd_level": 1}) as store:
        store.store("victim", {"text": text}, tier="warm")
        store.store("other", {"text": "fine"}, tier="warm")
        frame = store.tiers.read_frame("victim")[0]
    (segment,) = [p for p in (tmp_path / "s" / "log").glob("seg-*.log") if frame[-40:] in p.read_bytes()]
    _flip_inside(segment, frame[-40:])
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        with pytest.raises(CorruptDataError):
            store.retrieve("victim")
        assert store.retrieve("other") == {"text": "fine"}
        report = store.verify()
        assert not report["ok"] and report["bad_keys"] == ["victim"]


def test_bit_flip_in_pack_file_is_detected(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("victim", {"text": "cold and soon damaged " * 30}, tier="cold")
        store.store("other", {"text": "cold and fine " * 30}, tier="cold")
        frame = store.tiers.read_frame("victim")[0]
    (pack,) = (tmp_path / "s" / "packs").iterdir()
    _flip_inside(pack, frame[-30:])
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        with pytest.raises(CorruptDataError):
            store.retrieve("victim")
        assert store.retrieve("other")["text"].startswith("cold and fine")
        report = store.verify()
        assert not report["ok"] and report["bad_keys"] == ["victim"] and report["bad_files"] == [pack.name]


def test_full_disk_is_a_clear_error_and_store_stays_readable(tmp_path: Path) -> None:
    cfg = {**NO_THREAD, "max_disk_bytes": 256 * 1024}
    rng = np.random.default_rng(0)
    written = {}
    with MemoryStore(tmp_path / "s", cfg) as store:
        with pytest.raises(StorageFullError, match="full.*still readable"):
            for i in range(10_000):
                v = rng.bytes(2000)
                store.store(f"k{i}", v)
                written[f"k{i}"] = v
        assert len(store) == len(written) > 10
        assert all(store.retrieve(k) == v for k, v in written.items())
        assert store.verify()["ok"]
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert len(store) == len(written)
        assert all(store.retrieve(k) == v for k, v in written.items())


def test_full_disk_on_pack_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("before", {"v": 1}, tier="cold")
        real_write = os.write

        def full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(StorageFullError, match="no space for pack file"):
            store.store("after", {"v": 2}, tier="cold")
        monkeypatch.setattr(os, "write", real_write)
        assert "after" not in store and store.retrieve("before") == {"v": 1}
        assert store.verify()["ok"]


def test_second_writer_is_refused_and_readers_see_commits(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        store.store("k", {"v": 1})
        with pytest.raises(StoreLockedError, match="in this process"):
            MemoryStore(tmp_path / "s", NO_THREAD)
        with MemoryStore(tmp_path / "s", read_only=True) as reader:
            assert reader.retrieve("k") == {"v": 1}
            with pytest.raises(PermissionError):
                reader.store("x", 1)


def test_lossy_vectors_are_smaller_and_bounded() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal(384).astype(np.float32)
    with MemoryStore(config=NO_THREAD) as store:
        store.store("exact", v, tier="warm")
        store.store("lossy", v, tier="warm", allow_loss=True)
        assert np.array_equal(store.retrieve("exact"), v)
        approx = store.retrieve("lossy")
        assert approx.shape == v.shape and np.abs(approx - v).max() < 0.05 * np.abs(v).max()
        exact_len = len(store.tiers.read_frame("exact")[0])
        lossy_len = len(store.tiers.read_frame("lossy")[0])
        assert lossy_len < exact_len / 2


def test_wrap_puts_the_pipeline_in_front_of_a_mapping() -> None:
    engine: dict[bytes, bytes] = {}
    with MemoryStore.wrap(engine, NO_THREAD) as store:
        for i in range(20):
            store.store(f"k{i}", {"text": "shared"} if i % 2 else {"i": i}, tier="warm")
    assert any(k.startswith(b"k") for k in engine)
    with MemoryStore.wrap(engine, NO_THREAD) as store:
        assert len(store) == 20 and store.retrieve("k3") == {"text": "shared"} and store.retrieve("k4") == {"i": 4}
        assert store.get_statistics()["deduplication"]["unique_blobs"] == 11


def test_statistics_sections() -> None:
    with MemoryStore(config=NO_THREAD) as store:
        for i in range(50):
            store.store(f"k{i}", {"text": "memory " * 40, "i": i % 5})
        store.retrieve("k1")
        store.retrieve("nope", None)
        stats = store.get_statistics()
        assert set(stats) == {"middleware", "compression", "tiered_storage", "deduplication", "overall"}
        assert stats["middleware"]["reads"] == 2 and stats["middleware"]["hits"] == 1 and stats["middleware"]["misses"] == 1
        assert stats["middleware"]["writes"] == 50
        assert stats["overall"]["memory_reduction_percent"] > 80 and stats["overall"]["target_met"]
        assert stats["tiered_storage"]["hot"]["items"] == 50


def test_bad_arguments() -> None:
    with MemoryStore(config=NO_THREAD) as store:
        with pytest.raises(TypeError, match="key: expected str or bytes, got int"):
            store.store(1, "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tier: expected one of 'hot', 'warm', 'cold'"):
            store.store("k", "x", tier="lukewarm")
        with pytest.raises(KeyError):
            store.retrieve("missing")
    with pytest.raises(ValueError, match="preset: expected one of"):
        MemoryStore(config="extreme")


def test_config_eviction_policy_is_one_of_the_registry() -> None:
    from memstrata._native.eviction import DEFAULT_POLICY, POLICIES

    assert StoreConfig().eviction_policy == DEFAULT_POLICY
    for policy in POLICIES:
        assert StoreConfig(eviction_policy=policy).eviction_policy == policy
    with pytest.raises(ValueError, match=r"eviction_policy: expected one of adaptive, .*, got 's3-fifo'"):
        StoreConfig(eviction_policy="s3-fifo")
    with pytest.raises(ValueError, match="eviction_policy: expected one of"):
        StoreConfig.from_dict({"eviction_policy": 3})


def test_config_files(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[memstrata]\npreset = "aggressive"\nhot_max_bytes = 1234\n')
    cfg = StoreConfig.load(tmp_path / "c.toml")
    assert cfg.hot_max_bytes == 1234 and cfg.zstd_level == 9
    (tmp_path / "bad.toml").write_text("hot_max_byte = 1\n")
    with pytest.raises(ValueError, match="unknown key 'hot_max_byte'"):
        StoreConfig.load(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="durability: expected"):
        StoreConfig(durability="sometimes")
    assert StoreConfig.from_dict(StoreConfig.preset("conservative").to_dict()) == StoreConfig.preset("conservative")
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"durability": "full"}))
    assert StoreConfig.load(tmp_path / "c.yaml").durability == "full"


@settings(max_examples=50)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["store", "delete", "migrate", "reopen"]),
            st.integers(0, 7),
            st.one_of(st.integers(), st.text(max_size=50), st.lists(st.integers(), max_size=5)),
            st.sampled_from(["hot", "warm", "cold"]),
        ),
        max_size=40,
    )
)
def test_matches_a_dict_model(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:
    path = tmp_path_factory.mktemp("model")
    model: dict[str, object] = {}
    store = MemoryStore(path, {**NO_THREAD, "durability": "none", "hot_max_bytes": 2048})
    try:
        for op, k, v, tier in ops:
            key = f"k{k}"
            if op == "store":
                store.store(key, v, tier=tier)
                model[key] = v
            elif op == "delete":
                if key in model:
                    store.delete(key)
                    del model[key]
                else:
                    with pytest.raises(KeyError):
                        store.delete(key)
            elif op == "migrate" and key in model:
                store.migrate(key, tier)
                assert store.tier_of(key) == tier
            elif op == "reopen":
                store.close()
                store = MemoryStore(path, {**NO_THREAD, "durability": "none", "hot_max_bytes": 2048})
            assert len(store) == len(model)
        assert {k: store.retrieve(k) for k in model} == model
        assert sorted(store.keys()) == sorted(model)
        assert store.verify()["ok"]
    finally:
        store.close()


def test_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    """A real OS-level cap (RLIMIT_FSIZE) in a subprocess: clear error, store readable after."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from memstrata import MemoryStore, StorageFullError
        store = MemoryStore({str(tmp_path / "s")!r}, {{"migration_interval_seconds": None}})
        store.store("first", {{"v": 1}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        n = 0
        try:
            for i in range(100_000):
                store.store(f"k{{i}}", os.urandom(3000), tier=("warm", "cold")[i % 2])
                n += 1
        except StorageFullError as exc:
            print("FULL", n, exc)
        assert store.retrieve("first") == {{"v": 1}}
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        store.close()
        print("ACKED", n)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "FULL" in proc.stdout and "still readable" in proc.stdout
    acked = int(proc.stdout.split("ACKED")[1])
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert store.retrieve("first") == {"v": 1}
        assert len(store) == acked + 1
        assert store.verify()["ok"]


def test_store_many_matches_store_one_by_one(tmp_path: Path) -> None:
    items = [(f"k{i % 7}", {"v": i % 3}) for i in range(40)] + [("bytes", b"x" * 100), ("arr", np.arange(10))]
    with MemoryStore(tmp_path / "a", NO_THREAD) as one, MemoryStore(tmp_path / "b", NO_THREAD) as many:
        for k, v in items:
            one.store(k, v, tier="warm")
        assert many.store_many(items, tier="warm", batch=16) == one.seq == len(items)
        for k in one.keys():
            assert _equal(one.retrieve(k), many.retrieve(k))
        a, b = one.get_statistics(), many.get_statistics()
        for section in ("deduplication", "tiered_storage"):
            for name in ("keys", "unique_blobs", "logical_bytes", "unique_bytes", "warm", "cold"):
                if name in a[section]:
                    assert a[section][name] == b[section][name], (section, name)
    with MemoryStore(tmp_path / "b", NO_THREAD) as many:
        assert len(many) == 9 and many.retrieve("k3") == {"v": (38 % 3)} and many.verify()["ok"]


def test_store_many_batch_is_atomic(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", {**NO_THREAD, "max_disk_bytes": 96 * 1024}) as store:
        store.store("before", 1)
        rng = np.random.default_rng(0)
        with pytest.raises(StorageFullError):
            store.store_many([(f"k{i}", rng.bytes(4000)) for i in range(200)], batch=200)
        assert len(store) == 1 and "k0" not in store and store.verify()["ok"]
