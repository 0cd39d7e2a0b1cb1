"""The contract of a tier backend, as test classes any backend's tests subclass.

A backend (:class:`memstrata.tiers.Backend`) holds bytes by bytes key:
``get`` / ``put`` / ``delete`` / ``scan`` (by prefix, in key order), the batch
``apply`` (its deletes, then its puts, committed together: a key in both ends
up put) and ``flush`` (a commit point). :class:`BackendContract` checks each of
these on one backend; :class:`BackendMachine` drives a backend and a ``dict``
in lock-step (with reopening, for the durable ones); :func:`crash_round` kills
a writing process and checks that every acknowledged batch is whole and no
other batch is half there. :class:`RecordLayerContract` is the narrower
contract of the core's layers (``put_newer`` of sequence-numbered records).

``test_tier_backends.py`` binds every backend of the package to them, the way a
new backend joins: subclass, say how to make and reopen it, what it supports.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conformance._tier_writer import batch_keys, batch_value
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memstrata.tiers import Backend

__all__ = ["MACHINE_SETTINGS", "BackendContract", "BackendMachine", "RecordLayerContract", "crash_round"]

WRITER = Path(__file__).with_name("_tier_writer.py")

BINARY_KEYS = st.binary(min_size=1, max_size=4)
TEXT_KEYS = st.text(alphabet="ab*?[\\", min_size=1, max_size=4).map(str.encode)
VALUES = st.binary(max_size=12)


class BackendContract:
    """What every backend does, as pytest tests (a subclass binds one backend).

    A subclass sets ``make`` (a fresh, empty backend under a scratch folder),
    and may set ``reopen`` (a new object over the same data; ``None``: nothing
    outlives the object), ``binary_keys`` (False: keys must be UTF-8 text),
    ``batches`` (False: no ``apply``) and ``machine_examples``.
    """

    binary_keys: ClassVar[bool] = True
    batches: ClassVar[bool] = True
    machine_examples: ClassVar[int | None] = None  # fewer BackendMachine runs, for slow backends

    def make(self, where: Path) -> Any:
        raise NotImplementedError

    def reopen(self, backend: Any) -> Any | None:
        """The same data through a new object, after ``backend`` is closed (default: nothing survives)."""
        return None

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Any:
        b = self.make(tmp_path)
        yield b
        try:
            b.close()
        except Exception:  # already closed by the test
            pass

    def _keys(self, *keys: bytes) -> list[bytes]:
        return [k for k in keys if self.binary_keys or _is_text(k)]

    def test_is_a_backend(self, backend: Any) -> None:
        if self.batches:
            assert isinstance(backend, Backend)
        for name in ("get", "put", "delete", "scan", "flush", "close"):
            assert callable(getattr(backend, name))

    def test_get_put_delete(self, backend: Any) -> None:
        assert backend.get(b"missing") is None
        backend.put(b"k", b"v1")
        backend.put(b"k", b"v2")  # replaces
        backend.put(b"empty", b"")
        odd = self._keys(b"\x00\xff*?[", b"*?[\\")[0]
        backend.put(odd, b"\x00binary\xff")
        assert (backend.get(b"k"), backend.get(b"empty"), backend.get(odd)) == (b"v2", b"", b"\x00binary\xff")
        backend.delete(b"k")
        backend.delete(b"never-there")  # no error
        assert backend.get(b"k") is None
        backend.flush()
        assert backend.get(odd) == b"\x00binary\xff"

    def test_scan_by_prefix_in_key_order(self, backend: Any) -> None:
        keys = self._keys(b"a", b"a*", b"a?b", b"a[1]", b"a\\", b"ab", b"a\xff", b"a\xff\xff", b"b", b"\xff\xfe", b"a\x7f")
        for k in keys:
            backend.put(k, k + b"!")
        assert list(backend.scan(b"a")) == [(k, k + b"!") for k in sorted(keys) if k.startswith(b"a")]
        assert [k for k, _ in backend.scan(b"a*")] == [b"a*"]  # glob characters are plain bytes
        assert [k for k, _ in backend.scan(b"a[")] == [b"a[1]"]
        assert [k for k, _ in backend.scan()] == sorted(keys)
        assert list(backend.scan(b"zzz")) == []
        if self.binary_keys:
            assert [k for k, _ in backend.scan(b"a\xff")] == [b"a\xff", b"a\xff\xff"]  # no upper bound past 0xff

    def test_apply_puts_and_deletes_together(self, backend: Any) -> None:
        if not self.batches:
            pytest.skip(f"{type(backend).__name__} has no batch apply (its writes are one key at a time)")
        backend.apply({b"x": b"1", b"y": b"2"})
        backend.apply({b"z": b"3", b"x": b"4"}, deletes=[b"y", b"absent"])
        assert sorted(backend.scan()) == [(b"x", b"4"), (b"z", b"3")]
        backend.apply({})
        backend.apply({}, deletes=[])
        assert len(list(backend.scan())) == 2

    def test_apply_deletes_before_it_puts(self, backend: Any) -> None:
        # one order for every backend: a key both deleted and put in one batch ends up put
        if not self.batches:
            pytest.skip(f"{type(backend).__name__} has no batch apply")
        backend.put(b"k", b"old")
        backend.apply({b"k": b"new", b"n": b"1"}, deletes=[b"k", b"n"])
        assert (backend.get(b"k"), backend.get(b"n")) == (b"new", b"1")

    def test_reopen_sees_flushed_writes(self, backend: Any) -> None:
        backend.put(b"p", b"q")
        backend.put(b"gone", b"x")
        backend.delete(b"gone")
        if self.batches:
            backend.apply({b"r": b"s"}, deletes=[b"p"])
        backend.flush()
        before = list(backend.scan())
        again = self.reopen(backend)
        if again is None:
            pytest.skip(f"{type(backend).__name__} holds nothing past the object")
        try:
            assert list(again.scan()) == before
            assert again.get(b"gone") is None
        finally:
            again.close()


def _is_text(key: bytes) -> bool:
    try:
        key.decode()
    except UnicodeDecodeError:
        return False
    return True


class BackendMachine(RuleBasedStateMachine):
    """A backend and a ``dict`` driven with the same writes; every read must agree.

    A subclass sets ``contract`` to an instance of the backend's
    :class:`BackendContract` subclass (its ``make``, ``reopen``, key kind and
    batch support are used).
    """

    contract: ClassVar[BackendContract]

    def __init__(self) -> None:
        super().__init__()
        self.where = Path(tempfile.mkdtemp(prefix="memstrata-tier-"))
        self.backend = self.contract.make(self.where)
        self.model: dict[bytes, bytes] = {}

    def teardown(self) -> None:
        try:
            self.backend.close()
        finally:
            shutil.rmtree(self.where, ignore_errors=True)

    def _key(self, data: st.DataObject) -> bytes:
        pool = sorted(self.model)[:6]
        fresh = BINARY_KEYS if self.contract.binary_keys else TEXT_KEYS
        key: bytes = data.draw(st.sampled_from(pool) | fresh if pool else fresh)
        return key

    @rule(data=st.data(), value=VALUES)
    def put(self, data: st.DataObject, value: bytes) -> None:
        key = self._key(data)
        self.backend.put(key, value)
        self.model[key] = value

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        key = self._key(data)
        self.backend.delete(key)
        self.model.pop(key, None)

    @precondition(lambda self: self.contract.batches)
    @rule(data=st.data(), n_puts=st.integers(0, 3), n_deletes=st.integers(0, 3))
    def apply(self, data: st.DataObject, n_puts: int, n_deletes: int) -> None:
        puts = {self._key(data): data.draw(VALUES) for _ in range(n_puts)}
        deletes = [self._key(data) for _ in range(n_deletes)]
        self.backend.apply(puts, deletes=deletes)
        for k in deletes:
            self.model.pop(k, None)
        self.model.update(puts)

    @rule()
    def flush(self) -> None:
        self.backend.flush()

    @rule()
    def reopen(self) -> None:
        self.backend.flush()
        again = self.contract.reopen(self.backend)
        if again is not None:
            self.backend = again

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        key = self._key(data)
        assert self.backend.get(key) == self.model.get(key)

    @invariant()
    def same_contents(self) -> None:
        assert list(self.backend.scan()) == sorted(self.model.items())


# Each example makes a fresh backend (files, a store, a server table): fewer than hypothesis'
# default examples keep the suite within CI's budget; a backend may ask for fewer still.
MACHINE_SETTINGS = settings(stateful_step_count=30, deadline=None, max_examples=40)


class RecordLayerContract:
    """The core's layers: sequence-numbered records (``memstrata.core``'s record format), newer wins.

    ``put_newer(key, record)`` stores a value record and removes the key for a
    tombstone; a layer that ``compares`` also refuses a record whose sequence
    number is not above the one it holds (concurrent writers converge). A
    subclass sets ``make``.
    """

    compares: ClassVar[bool] = True

    def make(self, where: Path) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def layer(self, tmp_path: Path) -> Any:
        b = self.make(tmp_path)
        yield b
        b.close()

    def test_newer_replaces_and_tombstone_removes(self, layer: Any) -> None:
        from memstrata.core._layers import TOMBSTONE, VALUE, decode_record, encode_record

        assert layer.put_newer(b"k", encode_record(b"k", 1, VALUE, b"one"))
        assert layer.put_newer(b"k", encode_record(b"k", 2, VALUE, b"two"))
        assert decode_record(b"k", layer.get(b"k"), "test").payload == b"two"
        assert layer.put_newer(b"k", encode_record(b"k", 3, TOMBSTONE, b""))
        got = layer.get(b"k")
        assert got is None or decode_record(b"k", got, "test").kind == TOMBSTONE

    def test_older_record_is_refused(self, layer: Any) -> None:
        from memstrata.core._layers import VALUE, decode_record, encode_record

        if not self.compares:
            pytest.skip(f"{type(layer).__name__} has one writer applying in log order; it does not compare")
        assert layer.put_newer(b"k", encode_record(b"k", 5, VALUE, b"five"))
        assert not layer.put_newer(b"k", encode_record(b"k", 4, VALUE, b"four"))
        assert not layer.put_newer(b"k", encode_record(b"k", 5, VALUE, b"again"))
        assert decode_record(b"k", layer.get(b"k"), "test").payload == b"five"


# --------------------------------------------------------------- crashes


def crash_round(kind: str, path: Path, start: int, model: dict[bytes, bytes], rng: random.Random) -> int:
    """Run the writer on ``path``, SIGKILL it mid-stream, reopen and compare with ``model``.

    The batch the kill interrupted is either whole or absent; every
    acknowledged batch is there; ``model`` becomes what the backend holds.
    Returns the next start.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), kind, str(path), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    read: list[bytes] = []
    try:
        # once the writer has applied a batch, let it run on for a while
        for _ in range(rng.randrange(1, 400)):
            line = proc.stdout.readline()
            if not line:
                break
            read.append(line)
        proc.send_signal(signal.SIGKILL)
        # the rest through the same buffered reader (communicate() would skip what it holds)
        out = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    lines = [line.decode() for line in read] + out.decode().splitlines()
    acked = [int(p[1]) for p in (line.split() for line in lines) if len(p) == 2 and p[0] == "a" and p[1].isdigit()]
    assert acked, "the writer acknowledged no batch before the kill"

    from conformance._tier_writer import open_backend

    backend = open_backend(kind, str(path))
    try:
        held = dict(backend.scan())
        last = int(held[b"last"])
        # the kill may land after a batch is applied and before it is acknowledged: at most one more
        assert max(acked) <= last <= max(acked) + 1, (acked[-3:], last)
        for i in range(max(start, last - 2), last + 1):  # the batches no later batch deleted
            for j, k in enumerate(batch_keys(i)):
                model[k] = batch_value(i, j)
        for i in range(start, last - 2):
            for k in batch_keys(i):
                model.pop(k, None)
        model[b"last"] = held[b"last"]
        assert held.keys() == model.keys(), sorted(held.keys() ^ model.keys())[:5]
        assert held == model
    finally:
        backend.close()
    return last + 10
