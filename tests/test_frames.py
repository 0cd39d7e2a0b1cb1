"""Frames: format, corruption detection, version and codec errors.

Golden frames of every codec are checked by the codec contract (``tests/conformance/test_codecs.py``).
"""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata.codecs import (
    FORMAT_VERSION,
    FrameVersionError,
    _frame,
    decode,
    get_codec,
    read_header,
    register_dictionary,
    train_dictionary,
)
from memstrata.codecs._dictionaries import lookup_dictionary
from memstrata.codecs._hash import digest
from memstrata.codecs._samples import trace_records
from memstrata.errors import CorruptDataError, UnknownCodecError

# ------------------------------------------------------------------ layout --


def test_header_fields_are_where_the_format_says() -> None:
    # a small lossless frame: implicit content digest, covered by the checksum
    frame = get_codec("raw").encode(b"abc")
    assert frame[:2] == b"\x89M" and frame[2] == FORMAT_VERSION and frame[3] == 0
    assert frame[4] == 0x40  # kind bytes, implicit digest, no meta, no dictionary
    assert frame[5] == 3  # original length (varint)
    assert frame[6:9] == b"abc"
    assert frame[9:] == digest(frame[:9] + digest(b"abc"))[:8]
    h = read_header(frame)
    assert (h.version, h.codec_id, h.kind_name, h.original_length, h.payload_offset, h.payload_length) == (
        1, 0, "bytes", 3, 6, 3,
    )
    assert h.implicit_digest and h.content_digest == digest(b"abc")
    # an explicit 8-byte digest (blosc2 never leaves it implicit)
    frame = get_codec("blosc2").encode(b"abc")
    assert frame[4] == 0x00 and frame[6:14] == digest(b"abc")[:8]
    assert frame[-8:] == digest(frame[:-8])[:8]


def test_long_inputs_carry_the_full_digest() -> None:
    data = bytes(range(256)) * 8
    h = read_header(get_codec("zstd").encode(data))
    assert h.content_digest == digest(data) and not h.implicit_digest
    short = read_header(get_codec("zstd").encode(b"short"))
    assert short.implicit_digest and short.content_digest == digest(b"short")


@given(
    codec_id=st.integers(0, 255),
    kind=st.integers(0, 3),
    payload=st.binary(max_size=300),
    n=st.integers(0, 2**64 - 1) | st.integers(0, 70000),
    mode=st.sampled_from(["short", "long", "implicit"]),
    meta=st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
    with_dict=st.booleans(),
)
def test_compiled_frame_code_matches_the_python_reference(codec_id, kind, payload, n, mode, meta, with_dict):  # type: ignore[no-untyped-def]
    content = digest(payload)[: 8 if mode == "short" else 16]
    meta_bytes = _frame.encode_meta(meta) if meta else b""
    dd = register_dictionary(b"reference dictionary bytes") if with_dict else None
    implicit = mode == "implicit"
    native = _frame.build_frame(codec_id, kind, payload, n, content, meta_bytes, dd, implicit)
    python = _frame._py_build_frame(codec_id, kind, payload, n, content, meta_bytes, dd, implicit)
    assert native == python
    results = []
    for parse in (_frame.parse_frame, _frame._py_parse_frame):
        try:
            results.append(parse(native, lookup_dictionary))
        except CorruptDataError as exc:
            results.append(str(exc))
    assert results[0] == results[1]
    if implicit and isinstance(results[0], tuple):
        tail = (dd or b"") + content
        assert _frame.checksum_matches(native, tail) and _frame._py_checksum_matches(native, tail)
        assert not _frame.checksum_matches(native, tail[:-1] + bytes([tail[-1] ^ 1]))


# -------------------------------------------------------------- corruption --


def _random_frames(n: int, seed: int) -> list[tuple[bytes, object]]:
    """``n`` frames of varied values over every lossless codec (and a dictionary)."""
    rng = random.Random(seed)
    recs = list(trace_records(n, seed=seed))
    d = train_dictionary([json.dumps(r).encode() for r in recs[:300]], 4096)
    configs = [
        {"id": "raw"},
        {"id": "lz4"},
        {"id": "zstd"},
        {"id": "zstd", "dictionary": d.hex()},
        {"id": "zlib"},
        {"id": "blosc2"},
        {"id": "csr"},
        {"id": "int8"},
    ]
    out = []
    for i in range(n):
        config = configs[i % len(configs)]
        which = rng.random()
        if config["id"] in ("csr", "int8"):
            value: object = np.random.default_rng(i).normal(size=(rng.randint(1, 4), rng.randint(1, 6))).astype(np.float32)
        elif which < 0.6:
            value = recs[i]
        elif which < 0.8:
            value = rng.randbytes(rng.randint(0, 64))
        else:
            value = np.arange(rng.randint(0, 40), dtype=rng.choice(["<f4", "<i8", ">u2"]))
        out.append((get_codec(config).encode(value), value))
    return out


@pytest.fixture(scope="module")
def frames() -> list[tuple[bytes, object]]:
    return _random_frames(1000, seed=4)


def _decodes_to_corrupt(frame: bytes) -> bool:
    try:
        decode(frame)
    except CorruptDataError:
        return True
    return False


def test_every_single_byte_flip_is_detected(frames: list[tuple[bytes, object]]) -> None:
    rng = random.Random(5)
    n_checked = 0
    for frame, _ in frames:
        buf = bytearray(frame)
        for i in range(len(buf)):
            mask = rng.randint(1, 255)
            buf[i] ^= mask
            assert _decodes_to_corrupt(bytes(buf)), (frame.hex(), i, mask)
            buf[i] ^= mask
            n_checked += 1
    assert n_checked > 50_000


def test_every_truncation_is_detected(frames: list[tuple[bytes, object]]) -> None:
    for frame, _ in frames:
        for n in range(len(frame)):
            assert _decodes_to_corrupt(frame[:n]), (frame.hex(), n)
        assert _decodes_to_corrupt(frame + b"\x00")  # trailing garbage too


def test_swapped_payloads_are_detected(frames: list[tuple[bytes, object]]) -> None:
    checked = 0
    for (a, _), (b, _) in itertools.pairwise(frames):
        ha, hb = read_header(a), read_header(b)
        head_a, tail_a = a[: ha.payload_offset], a[-8:]
        payload_b = b[hb.payload_offset : hb.payload_offset + hb.payload_length]
        spliced = head_a + payload_b + tail_a
        if spliced != a:
            assert _decodes_to_corrupt(spliced)
            checked += 1
        # the whole frame of another key: caught when the reader knows the digest it expects
        if ha.content_digest[:8] != hb.content_digest[:8]:
            with pytest.raises(CorruptDataError, match="holds other content than expected"):
                decode(b, expected_digest=ha.content_digest)
    assert checked > 900


def test_frames_decode_to_their_values(frames: list[tuple[bytes, object]]) -> None:
    for frame, value in frames[:200]:
        out = decode(frame)
        if isinstance(value, np.ndarray) and read_header(frame).codec_id == 7:  # int8: lossy
            assert out.shape == value.shape
        elif isinstance(value, np.ndarray):
            assert out.dtype == value.dtype and np.array_equal(out, value)
        else:
            assert out == value


@pytest.mark.parametrize("junk", [b"", b"\x89", b"\x89M\x01", b"PK\x03\x04" + bytes(30), bytes(64)])
def test_short_or_foreign_input_is_corrupt(junk: bytes) -> None:
    with pytest.raises(CorruptDataError, match="frame: "):
        decode(junk)


@pytest.mark.parametrize("parse", [_frame.parse_frame, _frame._py_parse_frame], ids=["compiled", "python"])
def test_length_fields_wider_than_64_bits_are_corrupt(parse) -> None:  # type: ignore[no-untyped-def]
    frame = b"\x89M\x01\x00\x40" + b"\xff" * 9 + b"\x02" + b"\x00" * 8
    with pytest.raises(CorruptDataError, match="malformed length field"):
        parse(frame, lookup_dictionary)


def test_non_bytes_frame_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="frame: expected bytes-like, got str"):
        decode("not a frame")  # type: ignore[arg-type]


# ------------------------------------------------ versions and unknown codecs --


def _reseal(body: bytes) -> bytes:
    return body + digest(body)[:8]


def test_future_format_version_is_a_clear_error() -> None:
    frame = bytearray(get_codec("zstd").encode(b"x" * 100))
    frame[2] = FORMAT_VERSION + 1
    with pytest.raises(FrameVersionError, match=r"format version 2 is newer than this memstrata reads \(up to 1\); upgrade"):
        decode(bytes(frame))
    assert issubclass(FrameVersionError, CorruptDataError)


def test_reserved_flags_and_old_versions_are_corrupt() -> None:
    frame = bytearray(get_codec("raw").encode(b"x"))
    bad = bytearray(frame)
    bad[4] |= 0x80
    with pytest.raises(CorruptDataError, match="reserved flag bits"):
        decode(_reseal(bytes(bad[:-8])))
    bad = bytearray(frame)
    bad[2] = 0
    with pytest.raises(CorruptDataError, match="unknown format version 0"):
        decode(bytes(bad))


def test_valid_frame_of_an_unregistered_codec_names_it() -> None:
    frame = _frame.build_frame(200, 0, b"payload", 7, digest(b"payload")[:8])
    with pytest.raises(UnknownCodecError, match=r"codec id 200, which is not registered here \(known: raw=0"):
        decode(frame)
    # an implicit digest is only allowed for codecs 0-3: on another codec it is corruption
    frame = _frame.build_frame(200, 0, b"payload", 7, digest(b"payload"), implicit=True)
    with pytest.raises(CorruptDataError, match="implicit content digest on a frame that cannot have one"):
        decode(frame)


def test_missing_dictionary_is_reported() -> None:
    frame = bytearray(get_codec({"id": "zstd", "dictionary": register_dictionary(b"dictionary one!!" * 8).hex()}).encode(b"dictionary one!! hello"))
    d = register_dictionary(b"dictionary one!!" * 8)
    ref_at = bytes(frame).index(d[:4])
    frame[ref_at : ref_at + 4] = b"\xde\xad\xbe\xef"
    with pytest.raises(CorruptDataError, match="names zstd dictionary deadbeef…, which is not registered here"):
        decode(bytes(frame))
