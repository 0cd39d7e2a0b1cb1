"""The trace blob: round trips, dictionaries, and every kind of damage.

Blobs are compact frames (version 2) that take their dictionary version from
the row; version 1 blobs, written before, still decode (``test_version_1_blobs_still_decode``, and the
golden database in ``tests/golden/traces_v1``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

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
    assert codec.decode(blob, used) == (encoding, RECORD)


def test_dictionary_beats_plain_zstd(codec: BlobCodec) -> None:
    plain, _ = codec.encode(RECORD, ENC_JSON, 0)
    trained, _ = codec.encode(RECORD, ENC_JSON, 1)
    assert len(trained) < len(plain)


@given(data=st.binary(max_size=300))
def test_round_trip_any_bytes(data: bytes) -> None:
    c = BlobCodec(threshold=64)
    blob, version = c.encode(data, ENC_JSON, 0)
    assert version == 0
    assert c.decode(blob, version) == (ENC_JSON, data)
    if len(data) < 64:  # below the threshold: stored as is, 10 bytes of envelope
        assert len(blob) == len(data) + 1 + (1 if len(data) < 128 else 2) + 8


def test_every_flipped_byte_is_detected(codec: BlobCodec) -> None:
    for version in (0, 1):
        blob, used = codec.encode(RECORD, ENC_JSON, version)
        for i in range(len(blob)):
            for bit in range(8):
                bad = bytearray(blob)
                bad[i] ^= 1 << bit
                with pytest.raises(CorruptDataError):
                    codec.decode(bytes(bad), used)


def test_truncated_and_empty_blobs(codec: BlobCodec) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    for n in range(len(blob)):
        with pytest.raises(CorruptDataError):
            codec.decode(blob[:n], 1)
    with pytest.raises(CorruptDataError, match="shorter than the smallest blob"):
        codec.decode(b"", 0)
    with pytest.raises(CorruptDataError, match="expected bytes"):
        codec.decode("text", 0)  # type: ignore[arg-type]


def test_unknown_or_corrupt_dictionary(codec: BlobCodec, dictionary: bytes) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    with pytest.raises(CorruptDataError, match="dictionary version 1, but it is not in this database"):
        BlobCodec().decode(blob, 1)
    damaged = BlobCodec()
    digest = BlobCodec().add_dictionary(1, dictionary)
    damaged.add_dictionary(1, dictionary[:-1] + b"\x00", digest)
    with pytest.raises(CorruptDataError, match="do not match their recorded digest"):
        damaged.decode(blob, 1)


def test_blob_moved_to_another_dictionary_fails(codec: BlobCodec, dictionary: bytes) -> None:
    other = BlobCodec()
    other.add_dictionary(1, get_dictionary(train_dictionary([json.dumps(r).encode() for r in trace_records(300, seed=99)], 2048)))
    blob, _ = codec.encode(RECORD, ENC_JSON, 1)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        other.decode(blob, 1)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):  # the row names no dictionary: also caught
        codec.decode(blob, 0)


def test_future_format_version(codec: BlobCodec) -> None:
    blob, _ = codec.encode(RECORD, ENC_JSON, 0)
    with pytest.raises(CorruptDataError, match="unknown format version 3"):
        codec.decode(bytes([0x30 | blob[0] & 0x0F]) + blob[1:], 0)


# Version-1 blobs as the previous writer made them (RECORD-like data, no dictionary).
V1_RAW = bytes.fromhex("10") + bytes([5]) + b"hello"


def _v1_blob(body: bytes) -> bytes:
    from memstrata.codecs import digest

    return body + digest(body)[:8]


def test_version_1_blobs_still_decode() -> None:
    import zstandard

    c = BlobCodec()
    raw = _v1_blob(V1_RAW)
    assert c.decode(raw, 0) == (ENC_JSON, b"hello")
    params = zstandard.ZstdCompressionParameters.from_level(
        3, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=False, write_checksum=False, write_dict_id=False
    )
    payload = zstandard.ZstdCompressor(compression_params=params).compress(RECORD)
    from memstrata._varint import encode_varint

    body = bytes((0x10 | 1 << 2 | ENC_MSGPACK,)) + encode_varint(0) + encode_varint(len(RECORD)) + payload
    blob = _v1_blob(body)
    assert c.compressed(blob) and c.decode(blob, 0) == (ENC_MSGPACK, RECORD)
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 4
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        c.decode(bytes(bad), 0)


def test_golden_database_of_blob_version_2_reads_back(tmp_path: Path) -> None:
    import shutil

    from memstrata.traces import SymbolicTraceMemory

    golden = Path(__file__).resolve().parent / "golden" / "traces_v2"
    db = tmp_path / "traces.db"
    shutil.copy(golden / "traces.db", db)
    expected = json.loads((golden / "expected.json").read_text())
    with SymbolicTraceMemory({"db_path": str(db), "train_after": 64, "type_train_after": 40}) as mem:
        for tid, value in expected["traces"].items():
            assert json.loads(json.dumps(mem.get_trace_sync(tid))) == value
        for t in mem.traces_sync():
            assert t.compressed_data[0] >> 4 == 2  # every blob is a compact frame
            assert json.loads(json.dumps(mem.decompress_trace(t))) == expected["traces"][t.trace_id]
            # a trace rebuilt from its fields (no row version at hand): its dictionary is found by the checksum
            rebuilt = dataclasses.replace(t)
            assert json.loads(json.dumps(mem.decompress_trace(rebuilt))) == expected["traces"][t.trace_id]
        report = mem.verify_sync()
        assert report["ok"], report["errors"]
