"""The native record codec of the segment log against its readable Python twin (``tiers._segments``)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata._native.logreads import READ_AHEAD_BYTES, read_value
from memstrata._native.logrecords import RECORD_HEADER_SIZE, crc32, encode_batch
from memstrata.errors import CorruptDataError
from memstrata.tiers._segments import HEADER, encode_record, record_at, value_at

SEED = 0x4D535432
records = st.lists(
    st.tuples(st.integers(0, 255), st.binary(max_size=40), st.binary(max_size=6000)), min_size=1, max_size=6
)


@given(st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_crc32_is_zlibs(data: bytes, seed: int) -> None:
    assert crc32(data, seed) == zlib.crc32(data, seed)
    for cut in (0, len(data) // 3, len(data)):  # continuing a checksum, as zlib does
        assert crc32(data[cut:], crc32(data[:cut], seed)) == zlib.crc32(data, seed)


@given(records, st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_a_batch_is_its_records_end_to_end(batch: list[tuple[int, bytes, bytes]], seq: int, seed: int) -> None:
    data, offsets = encode_batch(batch, seq, seed)
    parts = [encode_record(f, seq, k, v, seed) for f, k, v in batch]
    assert data == b"".join(parts)
    assert offsets == [sum(map(len, parts[:i])) for i in range(len(parts))]
    assert RECORD_HEADER_SIZE == HEADER.size


def test_encode_batch_refuses_bad_records() -> None:
    with pytest.raises(ValueError, match="key: at most 65535 bytes"):
        encode_batch([(0, b"k" * 65536, b"")], 1, SEED)
    with pytest.raises(TypeError, match=r"records\[1\]"):
        encode_batch([(0, b"k", b"v"), (0, "k", b"v")], 1, SEED)
    with pytest.raises(ValueError, match="flags must fit a byte"):
        encode_batch([(256, b"k", b"v")], 1, SEED)


@given(records, st.integers(0, 5000))
def test_read_value_is_value_at(tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[int, bytes, bytes]],
                                pad: int) -> None:
    path = tmp_path_factory.mktemp("rec") / "seg"
    data, offsets = encode_batch(batch, 7, SEED)
    path.write_bytes(b"\0" * pad + data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for (_f, k, v), off in zip(batch, offsets):
            assert read_value(fd, pad + off, k, SEED) == v == value_at(fd, os.pread(fd, READ_AHEAD_BYTES, pad + off),
                                                                         pad + off, k, SEED)
            assert read_value(fd, pad + off, k + b"?", SEED) is None  # an intact record of another key
            assert record_at(fd, os.pread(fd, 64, pad + off), pad + off, SEED)[0] == k
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [10, 5000])
def test_damage_raises_what_the_python_twin_raises(tmp_path: Path, size: int) -> None:
    rec = encode_record(0, 3, b"key", b"v" * size, SEED)
    path = tmp_path / "seg"
    for name, raw in {
        "truncated": rec[:-2],
        "bad record header": b"XX" + rec[2:],
        "fails its checksum": rec[:-6] + bytes([rec[-6] ^ 1]) + rec[-5:],
        "short": rec[:10],
    }.items():
        path.write_bytes(raw)
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(CorruptDataError) as native:
                read_value(fd, 0, b"key", SEED)
            with pytest.raises(CorruptDataError) as python:
                value_at(fd, os.pread(fd, READ_AHEAD_BYTES, 0), 0, b"key", SEED)
            assert str(native.value) == str(python.value), name
        finally:
            os.close(fd)


def test_read_value_of_a_closed_file_is_an_oserror() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError):
        read_value(fd, 0, b"k", SEED)
    with pytest.raises(ValueError, match="offset"):
        read_value(0, -1, b"k", SEED)


def _tail_slot_twin(written: int, synced: int, boot: bytes) -> bytes:
    """The tail-marker slot as ``memstrata._tail`` packs it in Python (struct + zlib)."""
    import struct

    body = struct.pack("<4sQQ16s", b"MSTL", written, synced, boot)
    return body + struct.pack("<I", zlib.crc32(body))


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.binary(min_size=16, max_size=16), st.sampled_from([0, 64]))
def test_the_native_tail_slot_is_the_python_one(written: int, synced: int, boot: bytes, offset: int) -> None:
    import tempfile

    from memstrata._native.logrecords import TAIL_SLOT_SIZE, write_tail_slot
    from memstrata._tail import _decode

    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, b"\xff" * 128)
        write_tail_slot(fd, offset, written, synced, boot)
        data = os.pread(fd, 128, 0)
    finally:
        os.close(fd)
        os.unlink(name)
    slot = data[offset : offset + TAIL_SLOT_SIZE]
    assert slot == _tail_slot_twin(written, synced, boot)
    assert data[:offset] + data[offset + TAIL_SLOT_SIZE :] == b"\xff" * (128 - TAIL_SLOT_SIZE)  # nothing else written
    tail = _decode(slot)
    assert tail is not None and (tail.written, tail.synced, tail.boot) == (written, synced, boot)


def test_write_tail_slot_refuses_bad_arguments_and_reports_os_errors(tmp_path: Path) -> None:
    from memstrata._native.logrecords import write_tail_slot

    fd = os.open(tmp_path / "t", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with pytest.raises(ValueError, match="boot: expected 16 bytes"):
            write_tail_slot(fd, 0, 1, 1, b"short")
        with pytest.raises(ValueError, match="offset"):
            write_tail_slot(fd, -1, 1, 1, bytes(16))
    finally:
        os.close(fd)
    ro = os.open(tmp_path / "t", os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="cannot write the tail marker"):
            write_tail_slot(ro, 0, 1, 1, bytes(16))
    finally:
        os.close(ro)


def _rewrite_twin(value: bytes, key: bytes, at: int, expect: bytes, head: bytes, tags: bytes, key2: bytes,
                  value2: bytes, seq: int, seed: int) -> bytes | None:
    """``rewrite_batch``'s batch in Python (``encode_record``), or None when the value does not match."""
    h = len(head)
    if at + len(expect) > len(value) or value[at : at + len(expect)] != expect:
        return None
    if len(value) < h or (len(value) > h and value[h] not in tags):
        return None
    return encode_record(0, seq, key, head + value[h:], seed) + encode_record(2, seq, key2, value2, seed)


@given(
    st.binary(min_size=1, max_size=30), st.binary(max_size=5000), st.integers(0, 40), st.integers(0, 6),
    st.binary(max_size=40), st.binary(max_size=3), st.booleans(), st.integers(0, 2**64 - 1),
)
def test_rewrite_batch_is_its_python_twin(
    key: bytes, value: bytes, at: int, n_expect: int, head: bytes, tags: bytes, flip: bool, seq: int
) -> None:
    import tempfile

    from memstrata._native.logrecords import rewrite_batch

    expect = value[at : at + n_expect]
    if flip and expect:  # a value that does not hold what is expected
        expect = bytes([expect[0] ^ 1]) + expect[1:]
    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, b"pad" + encode_record(0, 1, key, value, SEED))
        size = os.fstat(fd).st_size
        twin = _rewrite_twin(value, key, at, expect, head, tags, b"mseq", b"12345678", seq, SEED)
        done = rewrite_batch(fd, 3, key, at, expect, head, tags, b"mseq", b"12345678", seq, SEED, fd, 1 << 40)
        if twin is None:
            assert done is None and os.fstat(fd).st_size == size  # nothing written
        else:
            assert done is not None
            data, second, written = done
            assert data == twin and written == len(data) and os.pread(fd, len(data) + 1, size) == data
            assert second == len(encode_record(0, seq, key, head + value[len(head) :], SEED))
            room = len(data) - 1  # a batch longer than the room left is not written
            assert rewrite_batch(fd, 3, key, at, expect, head, tags, b"mseq", b"12345678", seq, SEED, fd, room) is None
        # another key's record, and a damaged one, are left to the caller's general path
        assert rewrite_batch(fd, 3, key + b"x", at, expect, head, tags, b"m", b"", seq, SEED, fd, 1 << 40) is None
        os.pwrite(fd, bytes([os.pread(fd, 1, 3 + 18)[0] ^ 0xFF]), 3 + 18)
        end = os.fstat(fd).st_size
        assert rewrite_batch(fd, 3, key, at, expect, head, tags, b"m", b"", seq, SEED, fd, 1 << 40) is None
        assert os.fstat(fd).st_size == end
    finally:
        os.close(fd)
        os.unlink(name)


@given(
    st.binary(min_size=1, max_size=40), st.binary(max_size=3000), st.sampled_from([0, 2]), st.binary(min_size=16, max_size=16),
    st.integers(0, 2**32 - 1), st.floats(allow_nan=False), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
)
def test_new_content_batch_is_its_python_twin(
    kb: bytes, frame: bytes, flags: int, d: bytes, raw: int, atime: float, entry_seq: int, seq: int
) -> None:
    import struct
    import tempfile

    from memstrata._native.logrecords import new_content_batch

    blob = encode_record(0, seq, b"a" + d, struct.pack("<IIBIId", 1, flags >> 1, 1, len(frame), raw, atime) + kb, SEED)
    entry = encode_record(0, seq, b"k" + kb, struct.pack("<QB16s", entry_seq, flags, d) + b"W" + frame, SEED)
    twin = blob + entry + encode_record(2, seq, b"mseq", struct.pack("<Q", entry_seq), SEED)
    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, b"pad")
        args = (b"k" + kb, kb, entry_seq, flags, d, frame, b"a" + d, raw, atime, b"mseq", struct.pack("<Q", entry_seq),
                seq, SEED)
        assert new_content_batch(*args, fd, len(twin) - 1) is None  # no room: nothing written
        assert os.fstat(fd).st_size == 3
        done = new_content_batch(*args, fd, len(twin))
        assert done is not None
        data, second, third, written = done
        assert data == twin and (second, third) == (len(blob), len(blob) + len(entry)) and written == len(twin)
        assert os.pread(fd, len(twin) + 1, 3) == twin
        assert read_value(fd, 3 + len(blob), b"k" + kb, SEED) == struct.pack("<QB16s", entry_seq, flags, d) + b"W" + frame
    finally:
        os.close(fd)
        os.unlink(name)


def test_new_content_batch_refuses_bad_arguments() -> None:
    from memstrata._native.logrecords import new_content_batch

    d = bytes(16)
    with pytest.raises(ValueError, match="digest: expected 16 bytes"):
        new_content_batch(b"k", b"", 1, 0, b"x", b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    with pytest.raises(ValueError, match="flags: must fit a byte"):
        new_content_batch(b"k", b"", 1, 256, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    with pytest.raises(ValueError, match="at most 65535 bytes"):
        new_content_batch(b"k" * 70000, b"", 1, 0, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    done = new_content_batch(b"k", b"", 1, 0, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    assert done is not None and done[3] == -9  # EBADF: the caller undoes and writes again, which names the error


@given(
    st.binary(min_size=1, max_size=40), st.binary(max_size=3000), st.sampled_from([0, 2]), st.binary(min_size=16, max_size=16),
    st.integers(0, 2**32 - 1), st.floats(allow_nan=False), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
    st.integers(0, 3), st.booleans(), st.binary(max_size=40),
)
def test_superseding_batch_is_its_python_twin(
    kb: bytes, frame: bytes, flags: int, d: bytes, raw: int, atime: float, entry_seq: int, seq: int, pins: int,
    unpin: bool, old_owner: bytes,
) -> None:
    import struct
    import tempfile

    from memstrata._native.logrecords import superseding_batch

    old_key, old_fields = b"a" + bytes(16), (1, pins, 1, 77, 99, 0.25)
    old_blob = struct.pack("<IIBIId", *old_fields) + old_owner
    released = struct.pack("<IIBIId", 0, pins - unpin, *old_fields[2:]) + old_owner if pins >= unpin else None
    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, b"pad")
        args = (old_key, old_blob, unpin, b"k" + kb, kb, entry_seq, flags, d, frame, b"a" + d, raw, atime, b"mseq",
                struct.pack("<Q", entry_seq), seq, SEED)
        if released is None:  # one pin less than none: the plan's record would not pack
            assert superseding_batch(*args, fd, 1 << 40) is None and os.fstat(fd).st_size == 3
            return
        first = encode_record(0, seq, old_key, released, SEED)
        blob = encode_record(0, seq, b"a" + d, struct.pack("<IIBIId", 1, flags >> 1, 1, len(frame), raw, atime) + kb, SEED)
        entry = encode_record(0, seq, b"k" + kb, struct.pack("<QB16s", entry_seq, flags, d) + b"W" + frame, SEED)
        twin = first + blob + entry + encode_record(2, seq, b"mseq", struct.pack("<Q", entry_seq), SEED)
        assert superseding_batch(*args, fd, len(twin) - 1) is None  # no room: nothing written
        assert os.fstat(fd).st_size == 3
        done = superseding_batch(*args, fd, len(twin))
        assert done is not None
        data, second, third, fourth, written = done
        assert data == twin and written == len(twin) and os.pread(fd, len(twin) + 1, 3) == twin
        assert (second, third, fourth) == (len(first), len(first) + len(blob), len(first) + len(blob) + len(entry))
        assert read_value(fd, 3, old_key, SEED) == released
    finally:
        os.close(fd)
        os.unlink(name)


def test_superseding_batch_refuses_bad_arguments() -> None:
    from memstrata._native.logrecords import superseding_batch

    d, old = bytes(16), bytes(25)
    with pytest.raises(ValueError, match="old_blob: expected a blob record of at least 25 bytes, got 24"):
        superseding_batch(b"a", old[:-1], False, b"k", b"", 1, 0, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    with pytest.raises(ValueError, match="old_blob_key: at most 65535 bytes"):
        superseding_batch(b"a" * 70000, old, False, b"k", b"", 1, 0, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    with pytest.raises(ValueError, match="digest: expected 16 bytes"):
        superseding_batch(b"a", old, False, b"k", b"", 1, 0, b"x", b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    with pytest.raises(ValueError, match="flags: must fit a byte"):
        superseding_batch(b"a", old, False, b"k", b"", 1, -1, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    done = superseding_batch(b"a", old, False, b"k", b"", 1, 0, d, b"", b"a", 0, 0.0, b"m", b"", 1, SEED, -1, 1 << 20)
    assert done is not None and done[4] == -9  # EBADF: the caller undoes and writes again, which names the error
