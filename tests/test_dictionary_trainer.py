"""The one dictionary trainer: its schedule, its sample, its size rule, and who uses it."""

from __future__ import annotations

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
        first = store.engine.dictionary
        assert first is not None  # trained at 50 new records, again at 200
        assert store.engine.trainer.collected() == 250
        assert all(store.retrieve(f"k{i}") == r for i, r in enumerate(trace_records(250, seed=2)))
