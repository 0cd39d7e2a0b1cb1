"""The native record codec of the segment log against its readable Python twin (``tiers._segments``)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata._native.logrecords import READ_AHEAD_BYTES, RECORD_HEADER_SIZE, crc32, encode_batch, read_value
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
