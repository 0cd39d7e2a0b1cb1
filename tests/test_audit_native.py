"""The native single-entry append (``memstrata._native.corewrite``) against its Python twin.

Both paths of :meth:`FileLogStore.append_one` must leave the same bytes in
``audit.log`` and ``audit.log.intents``, the same head, offsets and payloads;
a failed write must leave no entry behind on either path.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata._native.corewrite import append_entry
from memstrata.core import AuditLog, FileLogStore
from memstrata.errors import MemstrataError

text = st.text(max_size=40)
items = st.tuples(
    text,
    st.sampled_from(["write", "write.pattern", "delete", "abort", "read"]) | text,
    text,
    st.binary(max_size=40),
    text,
    st.none() | st.binary(max_size=700),
)


def _clock(times: list[float]):  # type: ignore[no-untyped-def]
    it = iter(times)
    return lambda: next(it)


def _append_all(path: Path, native: bool, appends: list, times: list[float], durability: str) -> FileLogStore:  # type: ignore[type-arg]
    store = FileLogStore(path, durability)
    store.native_append = native
    clock = _clock(times)
    for item in appends:
        store.append_one(item, clock)
    return store


@given(
    appends=st.lists(items, min_size=1, max_size=12),
    times=st.lists(st.floats(allow_nan=False), min_size=12, max_size=12),
    durability=st.sampled_from(["none", "normal", "full"]),
)
def test_native_append_writes_the_bytes_of_the_python_path(tmp_path_factory, appends, times, durability) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("twin")
    native = _append_all(d / "native.log", True, appends, times, durability)
    python = _append_all(d / "python.log", False, appends, times, durability)
    try:
        for suffix in ("", ".intents"):
            assert (d / f"native.log{suffix}").read_bytes() == (d / f"python.log{suffix}").read_bytes()
        assert native.head() == python.head()
        assert list(native.rows(0, None)) == list(python.rows(0, None))
        assert native.hashes(0, len(appends)) == python.hashes(0, len(appends))
        assert [native.payload(s) for s in range(len(appends))] == [a[5] for a in appends]
        assert native.scan_chain()[:2] == (len(appends), 0)
    finally:
        native.close()
        python.close()
    reopened = FileLogStore(d / "native.log")  # what a later process reads back from the native path's files
    try:
        assert [reopened.payload(s) for s in range(len(appends))] == [a[5] for a in appends]
    finally:
        reopened.close()


def test_append_one_returns_the_row_of_the_python_path(tmp_path: Path) -> None:
    item = ("agent", "write", "k\u00e9", b"\x01" * 32, "intent x", b"payload")
    rows = []
    for native in (True, False):
        store = FileLogStore(tmp_path / f"{native}.log")
        store.native_append = native
        rows.append(store.append_one(item, lambda: 2.25))
        store.close()
    assert rows[0] == rows[1] and rows[0][:7] == (0, 2.25, "agent", "write", "k\u00e9", b"\x01" * 32, "intent x")


@pytest.mark.parametrize(
    "bad, error",
    [
        ((1, "write", "k", b"", "ok", None), "actor: expected a str"),
        (("a", "write", "k", "digest", "ok", None), "digest: expected bytes"),
        (("a", "write", "k", b"", "ok", "payload"), "payload: expected bytes or None"),
        (("a", "write", "k", b"", "ok"), "item: expected"),
    ],
)
def test_a_bad_item_writes_nothing(tmp_path: Path, bad: tuple, error: str) -> None:  # type: ignore[type-arg]
    store = FileLogStore(tmp_path / "audit.log")
    size = (tmp_path / "audit.log").stat().st_size
    with pytest.raises((TypeError, ValueError), match=error):
        store.append_one(bad, lambda: 0.0)
    assert store.head()[0] == 0 and (tmp_path / "audit.log").stat().st_size == size
    assert (tmp_path / "audit.log.intents").stat().st_size == 0
    with pytest.raises(ValueError, match="prev: expected a 32-byte hash"):
        append_entry(store._fd, store._ifd, ("a", "w", "k", b"", "ok", None), 0, b"short", 0.0, False)
    store.close()


class _FileSizeLimit:
    """Writes past ``limit`` bytes of any file fail with EFBIG (a full disk, as the writer sees it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __enter__(self) -> None:
        self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.saved[1]))

    def __exit__(self, *exc: object) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
@pytest.mark.parametrize("stage", ["log", "intents"])
def test_a_failed_write_leaves_no_entry_and_appends_go_on(tmp_path: Path, native: bool, stage: str) -> None:
    with AuditLog(tmp_path / "audit.log") as log:
        log.store.native_append = native
        for i in range(3):
            log.append_many([("a", "write", f"k{i}", b"d", "ok", b"v" * 10)])
        log_size = (tmp_path / "audit.log").stat().st_size
        intents_size = (tmp_path / "audit.log.intents").stat().st_size
        if stage == "log":  # the intent (small) fits, the entry (a long key) does not
            limit, item = log_size + 100, ("a", "write", "k" * 400, b"d", "ok", b"v")
        else:  # the intent (a large payload) does not fit; the log is untouched
            limit, item = max(log_size, intents_size) + 200, ("a", "write", "big", b"d", "ok", b"v" * 5000)
        with (
            _FileSizeLimit(limit),
            pytest.raises(MemstrataError, match=f"{'append' if stage == 'log' else 'intent write'} failed"),
        ):
            log.append_many([item])
        assert (tmp_path / "audit.log").stat().st_size == log_size  # the partial record was cut
        if stage == "intents":
            assert (tmp_path / "audit.log.intents").stat().st_size == intents_size
        assert len(log) == 3 and log.payload(3) is None and log.verify() == 3
        log.append_many([("a", "write", "after", b"d", "ok", b"after")])
        assert log.verify() == 4 and log.payload(3) == b"after" and log.payload(2) == b"v" * 10
    with AuditLog(tmp_path / "audit.log") as log:  # and the files read back the same after a reopen
        assert log.verify() == 4 and log.payload(3) == b"after" and [e.key for e in log.entries()][3] == "after"
