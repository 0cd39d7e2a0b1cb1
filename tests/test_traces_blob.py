"""The trace blob: round trips, dictionaries, and every kind of damage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata import CorruptDataError
from memstrata.codecs import get_dictionary, train_dictionary
from memstrata.codecs._samples import trace_records
from memstrata.traces._blob import ENC_JSON, ENC_MSGPACK, BlobCodec


@pytest.fixture(scope="module")
def dictionary() -> bytes:
    samples = [json.dumps(r).encode() for r in trace_records(300, seed=11)]
    return get_dictionary(train_dictionary(samples, 4096))


@pytest.fixture
def codec(dictionary: bytes) -> BlobCodec:
    c = BlobCodec(level=3, threshold=64)
    c.add_dictionary(1, dictionary)
    return c


RECORD = json.dumps(next(trace_records(1, seed=5))).encode()


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("encoding", [ENC_JSON, ENC_MSGPACK])
def test_round_trip(codec: BlobCodec, version: int, encoding: int) -> None:
    blob, used = codec.encode(RECORD, encoding, version)
    assert used == version
    assert len(blob) < len(RECORD)
    assert codec.decode(blob) == (encoding, RECORD)


def test_dictionary_beats_plain_zstd(codec: BlobCodec) -> None:
    plain, _ = codec.encode(RECORD, ENC_JSON, 0)
    trained, _ = codec.encode(RECORD, ENC_JSON, 1)
    assert len(trained) < len(plain)


@given(data=st.binary(max_size=300))
def test_round_trip_any_bytes(data: bytes) -> None:
    c = BlobCodec(threshold=64)
    blob, version = c.encode(data, ENC_JSON, 0)
    assert version == 0
    assert c.decode(blob) == (ENC_JSON, data)
    if len(data) < 64:  # below the threshold: stored as is, 10 bytes of envelope
        assert len(blob) == len(data) + 1 + (1 if len(data) < 128 else 2) + 8


def test_every_flipped_byte_is_detected(codec: BlobCodec) -> None:
    for version in (0, 1):
        blob, _ = codec.encode(RECORD, ENC_JSON, version)
        for i in range(len(blob)):
            for bit in (0x01, 0x80):
                bad = bytearray(blob)
                bad[i] ^= bit
                with pytest.raises(CorruptDataError):
                    codec.decode(bytes(bad))


def test_truncated_and_empty_blobs(codec: BlobCodec) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    for n in range(len(blob)):
        with pytest.raises(CorruptDataError):
            codec.decode(blob[:n])
    with pytest.raises(CorruptDataError, match="shorter than the smallest blob"):
        codec.decode(b"")
    with pytest.raises(CorruptDataError, match="expected bytes"):
        codec.decode("text")  # type: ignore[arg-type]


def test_unknown_or_corrupt_dictionary(codec: BlobCodec, dictionary: bytes) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    with pytest.raises(CorruptDataError, match="dictionary version 1, but it is not in this database"):
        BlobCodec().decode(blob)
    damaged = BlobCodec()
    digest = BlobCodec().add_dictionary(1, dictionary)
    damaged.add_dictionary(1, dictionary[:-1] + b"\x00", digest)
    with pytest.raises(CorruptDataError, match="do not match their recorded digest"):
        damaged.decode(blob)


def test_blob_moved_to_another_dictionary_fails(codec: BlobCodec, dictionary: bytes) -> None:
    other = BlobCodec()
    other.add_dictionary(1, get_dictionary(train_dictionary([json.dumps(r).encode() for r in trace_records(300, seed=99)], 2048)))
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        other.decode(blob)


def test_future_format_version(codec: BlobCodec) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 0)
    with pytest.raises(CorruptDataError, match="unknown format version 2"):
        codec.decode(bytes([0x20 | blob[0] & 0x0F]) + blob[1:])
