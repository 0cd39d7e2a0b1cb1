"""The one dictionary trainer: its schedule, its sample, its size rule, and who uses it."""

from __future__ import annotations

import random
import threading

import pytest

from memstrata import CompressionEngine, MemoryStore
from memstrata.codecs import DictionaryTrainer, dictionary_size, get_dictionary, serialize
from memstrata.codecs._samples import trace_records


def test_training_is_due_at_1x_4x_16x_with_a_factor_of_4() -> None:
    trainer = DictionaryTrainer(5, retrain_factor=4, reservoir=8)
    due = [i + 1 for i in range(100) if trainer.offer(b"record %d" % i)]
    assert due == [5, 20, 80]
    assert trainer.collected() == 8  # the reservoir is bounded


def test_a_factor_of_0_trains_once_and_stop_drops_the_sample() -> None:
    trainer = DictionaryTrainer(3)
    assert [trainer.offer(b"x%d" % i) for i in range(6)] == [False, False, True, False, False, False]
    assert len(trainer.samples()) == 3
    trainer.stop()
    assert trainer.samples() == [] and not trainer.offer(b"more")


def test_shapes_have_their_own_schedule_and_large_records_are_not_sampled() -> None:
    trainer = DictionaryTrainer(10, shape_train_after=2, max_sample_bytes=4)
    assert not trainer.offer(b"12345", "a")  # too large: not sampled
    assert [trainer.offer(b"a%d" % i, "a") for i in range(2)] == [False, True]
    assert trainer.collected("a") == 2 and trainer.collected() == 0
    assert trainer.shapes() == ["a"]
    assert not DictionaryTrainer(0).offer(b"never")


def test_reservoir_keeps_a_uniform_sample() -> None:
    trainer = DictionaryTrainer(10_000, reservoir=100)
    for i in range(10_000):
        trainer.offer(i.to_bytes(4, "little"))
    kept = sorted(int.from_bytes(s, "little") for s in trainer.samples())
    assert len(kept) == 100
    assert 20 <= sum(k < 5000 for k in kept) <= 80  # half the stream, about half the sample


def test_only_one_thread_trains_per_due_point() -> None:
    trainer = DictionaryTrainer(1000)
    hits: list[bool] = []

    def worker() -> None:
        hits.extend(h for h in (trainer.offer(b"r") for _ in range(500)) if h)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hits == [True]


def test_fit_sizes_dictionaries_by_their_samples() -> None:
    samples = [serialize(r) for r in trace_records(300, seed=3)]
    assert dictionary_size(samples, 64 * 1024) == max(1024, sum(map(len, samples)) // 8)
    assert dictionary_size(samples[:2], 64 * 1024) == 1024 and dictionary_size(samples, 2048) == 2048
    d, raw = DictionaryTrainer(0, dictionary_bytes=4096).fit(samples)
    assert get_dictionary(d) == raw and len(raw) <= 4096
    with pytest.raises(ValueError, match="at least 8 samples"):
        DictionaryTrainer(0).fit([b"a", b"b"])
    with pytest.raises(ValueError, match="retrain_factor: expected an int >= 0"):
        DictionaryTrainer(1, retrain_factor=-1)


def test_engine_learns_through_its_trainer_and_retrains() -> None:
    engine = CompressionEngine({"train_after": 100, "retrain_factor": 4, "dictionary_bytes": 8192})
    recs = [serialize(r) for r in trace_records(400, seed=9)]
    trained = [engine.learn(b) for b in recs]
    firsts = [i + 1 for i, d in enumerate(trained) if d is not None]
    assert firsts == [100, 400]
    assert engine.dictionary == trained[399] and engine.trainer.collected() == 400


def test_the_store_trains_through_the_engine() -> None:
    with MemoryStore(None, {"train_after": 50, "migration_interval_seconds": None}) as store:
        assert store.engine.trainer.retrain_factor == 4
        for i, r in enumerate(trace_records(250, seed=2)):
            store.store(f"k{i}", r)
        assert store.engine.wait_training(60)  # trained off the write path, at 50 new records and again at 200
        first = store.engine.dictionary
        assert first is not None
        assert store.engine.trainer.collected() == 250
        assert all(store.retrieve(f"k{i}") == r for i, r in enumerate(trace_records(250, seed=2)))


def test_store_never_trains_on_the_callers_thread_and_every_frame_stays_readable(tmp_path) -> None:
    """Training runs on the worker thread; frames from before, during and after it read back after a reopen."""
    records = list(trace_records(600, seed=5))
    cfg = {"train_after": 50, "migration_interval_seconds": None}
    threads: list[str] = []
    with MemoryStore(tmp_path / "s", cfg) as store:
        fit = store.engine.trainer.fit

        def spy(samples, size=None):  # type: ignore[no-untyped-def]
            threads.append(threading.current_thread().name)
            return fit(samples, size)

        store.engine.trainer.fit = spy  # type: ignore[method-assign]
        for i, r in enumerate(records[:300]):
            store.store(f"k{i}", r, tier="warm")
        assert store.engine.wait_training(60)
        trained = store.engine.dictionary
        assert trained is not None
        for i, r in enumerate(records[300:], 300):
            store.store(f"k{i}", r, tier="warm")
    assert threads and set(threads) == {"memstrata-dictionary"}
    with MemoryStore(tmp_path / "s", cfg) as store:
        assert store.engine.dictionary is not None
        assert all(store.retrieve(f"k{i}") == r for i, r in enumerate(records))
        assert store.verify()["ok"]
    with MemoryStore(tmp_path / "s", read_only=True) as reader:
        assert all(reader.retrieve(f"k{i}") == r for i, r in enumerate(records))


def test_close_waits_for_a_running_training(tmp_path) -> None:
    gate = threading.Event()
    with MemoryStore(tmp_path / "s", {"train_after": 20, "migration_interval_seconds": None}) as store:
        fit = store.engine.trainer.fit

        def slow(samples, size=None):  # type: ignore[no-untyped-def]
            gate.wait(10)
            return fit(samples, size)

        store.engine.trainer.fit = slow  # type: ignore[method-assign]
        for i, r in enumerate(trace_records(20, seed=6)):
            store.store(f"k{i}", r)  # the 20th asks for a training and returns at once
        assert store.engine.dictionary is None and not store.engine.wait_training(0.01)
        gate.set()
    assert store.engine.wait_training(0)
    with MemoryStore(tmp_path / "s", {"migration_interval_seconds": None}) as store:
        assert store.engine.dictionary is not None  # adopted and persisted before close returned


def test_training_worker_requests_are_never_lost_nor_run_at_once() -> None:
    from memstrata.codecs._background import TrainingWorker

    started, release = threading.Event(), threading.Event()
    running = [0]
    peak = [0]
    runs = [0]

    def train() -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        started.set()
        release.wait(10)
        runs[0] += 1
        running[0] -= 1

    worker = TrainingWorker(train)
    worker.request()
    assert started.wait(10) and worker.pending
    worker.request()  # asked while it trains: one more run afterwards
    worker.request()
    assert not worker.wait(0.01)
    release.set()
    assert worker.wait(10) and not worker.pending
    assert runs[0] == 2 and peak[0] == 1 and worker.runs == 2
    worker.close()
    worker.request()  # refused after close
    assert worker.wait(1) and runs[0] == 2


def test_a_failed_training_is_logged_and_the_worker_stays_usable(caplog) -> None:
    from memstrata.codecs._background import TrainingWorker

    calls = [0]

    def train() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError(28, "No space left on device")

    worker = TrainingWorker(train)
    with caplog.at_level("WARNING", logger="memstrata.codecs"):
        worker.request()
        assert worker.wait(10)
    assert worker.failures == 1 and "dictionary training failed" in caplog.text
    worker.request()
    assert worker.wait(10) and worker.runs == 1 and calls[0] == 2
    worker.close()


def test_the_skipping_reservoir_keeps_early_and_late_records_alike() -> None:
    """Once full, the reservoir draws how many records to skip (algorithm L): every record stays equally likely."""
    early = late = 0
    for run in range(100):
        trainer = DictionaryTrainer(10**9, reservoir=50)
        trainer._rng = random.Random(run)
        for i in range(5000):
            trainer.offer(i.to_bytes(4, "little"))
        kept = [int.from_bytes(s, "little") for s in trainer.samples()]
        assert len(kept) == 50 and len(set(kept)) == 50
        early += sum(k < 500 for k in kept)
        late += sum(k >= 4500 for k in kept)
    # each tenth of the stream holds a tenth of the samples: 500 of 5,000 over 100 runs (sd ~21)
    assert 400 <= early <= 600 and 400 <= late <= 600
