"""``memstrata.Cache``: lock-step state machine against a model, counters, callbacks, threads, bad input."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from _cache_models import CacheModel
from _threads import run_in_threads
from conformance.eviction import check_pop
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from memstrata import Cache
from memstrata._native.cache import DEFAULT_POLICY, POLICIES

KEYS = st.integers(min_value=0, max_value=11) | st.sampled_from(["a", "b", "c", ("t", 1)])
VALUES = st.integers(min_value=0, max_value=6)


def _weigh(value: int) -> int:
    return value


class CacheMachine(RuleBasedStateMachine):
    """Every Cache call is mirrored on ``CacheModel``; results, evictions and counters must agree."""

    @initialize(
        maxsize=st.integers(min_value=1, max_value=6),
        policy=st.sampled_from(POLICIES),
        max_bytes=st.none() | st.integers(min_value=1, max_value=12),
    )
    def setup(self, maxsize: int, policy: str, max_bytes: int | None) -> None:
        self.evicted: list[tuple[Any, Any]] = []
        weigher = _weigh if max_bytes is not None else None

        def on_evict(key: Any, value: Any) -> None:
            self.evicted.append((key, value))

        self.cache = Cache(maxsize, policy, max_bytes=max_bytes, weigher=weigher, on_evict=on_evict)
        self.model = CacheModel(maxsize, policy, max_bytes=max_bytes, weigher=weigher)

    @rule(key=KEYS, value=VALUES)
    def set(self, key: Any, value: int) -> None:
        self.cache[key] = value
        self.model.set(key, value)

    @rule(key=KEYS)
    def get(self, key: Any) -> None:
        assert self.cache.get(key, "missing") == self.model.get(key, "missing")

    @rule(key=KEYS)
    def getitem(self, key: Any) -> None:
        expected = self.model.get(key, KeyError)
        if expected is KeyError:
            with pytest.raises(KeyError):
                self.cache[key]
        else:
            assert self.cache[key] == expected

    @rule(key=KEYS)
    def peek(self, key: Any) -> None:
        assert self.cache.peek(key) == self.model.peek(key)

    @rule(key=KEYS)
    def pop(self, key: Any) -> None:
        if key in self.model.slots:
            assert self.cache.pop(key) == self.model.pop(key)
        else:
            assert self.cache.pop(key, "gone") == "gone"
            with pytest.raises(KeyError):
                del self.cache[key]

    @rule(key=KEYS, op=st.sampled_from(["pin", "unpin"]))
    def pin_or_unpin(self, key: Any, op: str) -> None:
        if key in self.model.slots:
            getattr(self.cache, op)(key)
            getattr(self.model, op)(key)
        else:
            with pytest.raises(KeyError):
                getattr(self.cache, op)(key)

    @rule()
    def popitem(self) -> None:
        check_pop(self.cache.popitem, self.model.popitem(), "popitem: the cache is empty or every key is pinned")

    @invariant()
    def agree(self) -> None:
        if not hasattr(self, "cache"):
            return
        assert dict(self.cache.items()) == self.model.snapshot()
        assert self.evicted == self.model.evicted
        info = self.cache.info()
        assert info["hits"] == self.model.hits
        assert info["misses"] == self.model.misses
        assert info["evictions"] == self.model.evictions
        assert info["size"] == len(self.cache) == len(self.model.slots) <= self.model.maxsize
        assert info["bytes"] == self.model.bytes
        assert info["pinned"] == len(self.model.order.pinned)
        assert self.cache.allocated_slots == self.model.allocated  # grown by doubling, on demand
        for key in self.model.slots:
            assert key in self.cache
            assert self.cache.is_pinned(key) == (self.model.slots[key] in self.model.order.pinned)


TestCacheMachine = CacheMachine.TestCase


# ----------------------------------------------------------------- behaviour


def test_is_a_mutable_mapping() -> None:
    cache = Cache(4)
    assert isinstance(cache, MutableMapping)
    cache.update({"a": 1}, b=2)
    cache.update([("c", 3)])
    assert cache.setdefault("d", 4) == 4
    assert cache.setdefault("d", 5) == 4
    assert cache == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert cache != {"a": 1}
    assert sorted(cache.keys()) == ["a", "b", "c", "d"]
    assert sorted(cache.values()) == [1, 2, 3, 4]
    cache.clear()
    assert len(cache) == 0 and cache.info()["size"] == 0
    assert cache.info()["policy"] == DEFAULT_POLICY


def test_peek_and_contains_do_not_count_or_touch() -> None:
    cache = Cache(2, policy="lru")
    cache["a"] = 1
    cache["b"] = 2
    assert cache.peek("a") == 1 and "a" in cache
    cache["c"] = 3  # "a" is still the least recently used
    assert "a" not in cache
    info = cache.info()
    assert (info["hits"], info["misses"]) == (0, 0)


def test_info_counts_hits_misses_evictions() -> None:
    cache = Cache(2, policy="fifo")
    for key in "abc":
        cache[key] = key.upper()
    assert cache.get("a") is None  # evicted
    assert cache["b"] == "B"
    with pytest.raises(KeyError):
        cache["zzz"]
    info = cache.info()
    assert (info["hits"], info["misses"], info["evictions"], info["size"]) == (1, 2, 1, 2)


def test_on_evict_receives_pairs_and_runs_outside_the_lock() -> None:
    seen: list[tuple[str, int, int]] = []

    def on_evict(key: str, value: int) -> None:
        # re-entering the cache would deadlock if the lock were still held
        seen.append((key, value, cache.info()["size"]))

    cache = Cache(2, policy="lru", on_evict=on_evict)
    worker = threading.Thread(target=lambda: [cache.set(k, i) for i, k in enumerate("abcd")], daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert seen == [("a", 0, 2), ("b", 1, 2)]


def test_explicit_removal_is_not_an_eviction() -> None:
    seen: list[Any] = []
    cache = Cache(3, on_evict=lambda k, v: seen.append(k))
    cache.update(a=1, b=2, c=3)
    del cache["a"]
    assert cache.pop("b") == 2
    cache.popitem()
    cache["d"] = 4
    cache.clear()
    assert seen == [] and cache.info()["evictions"] == 0


def test_max_bytes_with_weigher() -> None:
    seen: list[str] = []
    cache = Cache(100, policy="lru", max_bytes=10, weigher=len, on_evict=lambda k, v: seen.append(k))
    cache["a"] = b"xxxx"
    cache["b"] = b"xxxx"
    assert cache.info()["bytes"] == 8
    cache["c"] = b"xxxx"  # 12 > 10: evict "a"
    assert seen == ["a"] and cache.info()["bytes"] == 8
    cache["b"] = b"x" * 9  # grows: "c" must go (then 9 <= 10)
    assert seen == ["a", "c"] and cache.info()["bytes"] == 9
    cache["big"] = b"x" * 11  # heavier than max_bytes: evicted on arrival, others stay
    assert seen == ["a", "c", "big"] and "b" in cache and "big" not in cache


def test_all_pinned_and_full_rejects_the_new_key() -> None:
    seen: list[str] = []
    cache = Cache(2, on_evict=lambda k, v: seen.append(k))
    cache["a"] = 1
    cache["b"] = 2
    cache.pin("a")
    cache.pin("b")
    cache["c"] = 3
    assert seen == ["c"] and sorted(cache) == ["a", "b"]
    assert cache.info()["evictions"] == 1 and cache.info()["pinned"] == 2
    with pytest.raises(KeyError, match="every key is pinned"):
        cache.popitem()
    cache.unpin("a")
    cache["c"] = 3
    assert seen == ["c", "a"] and sorted(cache) == ["b", "c"]


def test_pinned_growth_over_max_bytes_shrinks_on_unpin() -> None:
    seen: list[str] = []
    cache = Cache(10, policy="lru", max_bytes=10, weigher=len, on_evict=lambda k, v: seen.append(k))
    cache["a"] = "xxx"
    cache["b"] = "xxx"
    cache.pin("a")
    cache.pin("b")
    cache["a"] = "x" * 9  # 12 > 10, but everything is pinned
    assert cache.info()["bytes"] == 12 and seen == []
    cache.unpin("b")
    assert seen == ["b"] and cache.info()["bytes"] == 9


@pytest.mark.parametrize(
    ("policy", "thread_safe"), [(policy, True) for policy in POLICIES] + [("lru", False)]
)
def test_threads_hammering_stay_consistent(policy: str, thread_safe: bool) -> None:
    # the unlocked cache is exercised by one thread only
    n_threads = 4 if thread_safe else 1
    n_ops = 20_000
    evicted: list[Any] = []
    cache = Cache(64, policy, on_evict=lambda k, v: evicted.append((k, v)), thread_safe=thread_safe)
    n_gets = [0] * n_threads

    def work(t: int) -> None:
        rng = random.Random(t)
        for _ in range(n_ops):
            key = int(rng.paretovariate(1.2)) % 500
            op = rng.random()
            if op < 0.6:
                n_gets[t] += 1
                value = cache.get(key)
                assert value is None or value == key * 2
            elif op < 0.9:
                cache[key] = key * 2
            elif op < 0.95:
                cache.pop(key, None)
            elif op < 0.975:
                try:
                    cache.pin(key)
                    cache.unpin(key)
                except KeyError:
                    pass
            else:
                assert cache.peek(key) in (None, key * 2)

    run_in_threads(work, n_threads)
    info = cache.info()
    assert info["hits"] + info["misses"] == sum(n_gets)
    assert info["evictions"] == len(evicted)
    assert all(v == k * 2 for k, v in evicted)
    assert info["size"] == len(cache) == len(list(cache)) <= 64
    assert info["pinned"] == 0
    snapshot = dict(cache.items())
    assert all(v == k * 2 for k, v in snapshot.items())
    # the order and the mapping agree: popping every victim empties both
    popped = [cache.popitem() for _ in range(len(snapshot))]
    assert dict(popped) == snapshot and len(cache) == 0
    with pytest.raises(KeyError):
        cache.popitem()


class _SlowKey:
    """A key whose ``__eq__`` gives up the GIL, so threads switch inside the cache's critical sections."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return self.n % 4  # collisions: every lookup compares, and so switches threads

    def __eq__(self, other: object) -> bool:
        time.sleep(0)
        return isinstance(other, _SlowKey) and other.n == self.n


@pytest.mark.parametrize("policy", ["s3fifo-adaptive", "lfu"])
def test_threads_switching_inside_critical_sections(policy: str) -> None:
    evicted: list[tuple[_SlowKey, int]] = []
    cache = Cache(16, policy, on_evict=lambda k, v: evicted.append((k, v)))
    n_threads, n_ops = 4, 1_500

    def work(t: int) -> None:
        rng = random.Random(100 + t)
        for _ in range(n_ops):
            n = rng.randrange(40)
            if rng.random() < 0.5:
                cache[_SlowKey(n)] = n
            else:
                value = cache.get(_SlowKey(n))
                assert value is None or value == n

    run_in_threads(work, n_threads)
    assert all(k.n == v for k, v in evicted)
    info = cache.info()
    assert info["evictions"] == len(evicted) and info["size"] == len(cache) <= 16
    snapshot = dict(cache.items())
    assert len({k.n for k in snapshot}) == len(snapshot)  # no key stored twice
    popped = [cache.popitem() for _ in range(len(snapshot))]
    assert dict(popped) == snapshot and len(cache) == 0


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, r"maxsize: expected an int in \[1, "),
        ((-3,), {}, ValueError, "maxsize: expected an int"),
        ((2.5,), {}, TypeError, "maxsize: expected a positive int, got float"),
        ((True,), {}, TypeError, "maxsize: expected a positive int, got bool"),
        ((4, "arc"), {}, ValueError, "policy: expected one of .*, got 'arc'"),
        ((4,), {"max_bytes": 0, "weigher": len}, ValueError, "max_bytes: expected a positive int"),
        ((4,), {"max_bytes": 10}, ValueError, "max_bytes: needs a weigher"),
        ((4,), {"max_bytes": 1.5, "weigher": len}, TypeError, "max_bytes: expected a positive int or None"),
        ((4,), {"weigher": 3}, TypeError, "weigher: expected a callable or None, got int"),
        ((4,), {"on_evict": "x"}, TypeError, "on_evict: expected a callable or None, got str"),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Cache(*args, **kwargs)


def test_unhashable_keys() -> None:
    cache = Cache(4)
    for call in (
        lambda: cache.set([1], 1),
        lambda: cache.__setitem__({}, 1),
        lambda: cache.get([1]),
        lambda: cache[[1]],
        lambda: cache.peek([1]),
        lambda: [1] in cache,
        lambda: cache.pop([1], None),
        lambda: cache.pin([1]),
    ):
        with pytest.raises(TypeError, match="key: expected a hashable key, got unhashable"):
            call()
    assert cache.info()["misses"] == 0


class _RaisingKey:
    """A hashable key whose comparison raises the class's current ``error``."""

    error: Exception = ValueError("unset")

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        raise _RaisingKey.error


def test_a_key_comparison_error_passes_through_and_frees_the_lock() -> None:
    cache = Cache(4, policy="lru", thread_safe=True)
    cache[_RaisingKey()] = 1
    for error in (ValueError("eq failed"), TypeError("eq refused")):
        _RaisingKey.error = error
        for call in (lambda: cache.get(_RaisingKey()), lambda: cache[_RaisingKey()],
                     lambda: cache.set(_RaisingKey(), 2), lambda: _RaisingKey() in cache):
            with pytest.raises(type(error), match=str(error)):
                call()
    cache["a"] = 1  # the lock was released on every error path
    assert cache.get("a") == 1 and len(cache) == 2


class _Reentrant:
    """A value whose ``__del__`` reads the cache: only safe once the lock is released."""

    def __init__(self, cache: Cache, seen: list[int]) -> None:
        self.cache, self.seen = cache, seen

    def __del__(self) -> None:
        self.seen.append(len(self.cache.info()))


def test_evicted_values_are_released_after_the_lock() -> None:
    seen: list[int] = []

    def replay() -> None:
        for weights in (None, len):  # one victim per insert, then several (weights)
            cache = Cache(2, policy="lru") if weights is None else Cache(
                8, policy="lru", max_bytes=4, weigher=lambda v: 2 if isinstance(v, _Reentrant) else len(v))
            cache["a"] = _Reentrant(cache, seen)
            cache["b"] = _Reentrant(cache, seen)
            cache["c"] = (1,) if weights is None else (1, 2, 3, 4)  # evicts "a" (and "b" with weights)
            assert seen == ([9] if weights is None else [9, 9, 9])

    # a value released under the lock would deadlock its __del__: run where a hang is detectable
    worker = threading.Thread(target=replay, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive() and seen == [9, 9, 9]


def test_several_victims_reach_on_evict_in_eviction_order() -> None:
    seen: list[str] = []
    cache = Cache(10, policy="lru", max_bytes=6, weigher=len, on_evict=lambda k, v: seen.append(k))
    for key in "abc":
        cache[key] = "xx"
    cache["d"] = "x" * 5  # needs 5 of 6: "a", "b" and "c" go, oldest first
    assert seen == ["a", "b", "c"] and sorted(cache) == ["d"] and cache.info()["evictions"] == 3


def test_bad_weights() -> None:
    cache = Cache(4, max_bytes=100, weigher=lambda v: v)
    with pytest.raises(ValueError, match="weigher: expected a non-negative weight .*, got -1"):
        cache["a"] = -1
    with pytest.raises(TypeError, match="weigher: expected it to return an int, got float"):
        cache["a"] = 1.5
    assert len(cache) == 0 and cache.info()["bytes"] == 0


def test_missing_keys() -> None:
    cache = Cache(4)
    with pytest.raises(KeyError):
        cache.pop("nope")
    with pytest.raises(KeyError):
        del cache["nope"]
    for method in (cache.pin, cache.unpin, cache.is_pinned):
        with pytest.raises(KeyError):
            method("nope")


def test_the_policy_literal_names_every_registered_policy() -> None:
    from typing import get_args

    from memstrata._native.eviction import POLICIES
    from memstrata.types import EvictionPolicyName

    assert get_args(EvictionPolicyName) == POLICIES
