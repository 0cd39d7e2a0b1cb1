"""The contract of a codec, as a test class any codec's tests subclass.

Every codec registered with :func:`memstrata.codecs.register_codec` must:

* round-trip its sample values through a frame, alone (:func:`memstrata.codecs.decode`)
  and through the codec (lossless codecs exactly, lossy ones within the bound the
  subclass checks in :meth:`CodecContract.check_lossy`), bytes of any length too
  for lossless byte codecs (a hypothesis property);
* round-trip every configuration through JSON (``get_config`` -> ``get_codec``)
  to an equal, equally hashed codec;
* decode its golden frames of format version 1 (``tests/golden/v1``, written by
  ``tests/golden/make_golden.py``) forever, to the recorded values, and write
  the same bytes again where it is deterministic;
* catch damage: every byte of its frames flipped, every truncation, raises
  :class:`memstrata.CorruptDataError` (never a wrong value).

``test_codecs.py`` runs the contract for every registered codec; a codec's own
test file keeps only what is specific to it (quantization bounds, chunking,
graph pruning rules ...).
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from _value_strategies import assert_same, values
from hypothesis import given
from hypothesis import strategies as st

from memstrata import CorruptDataError
from memstrata.codecs import decode, deserialize, get_codec, read_header, register_dictionary

__all__ = ["GOLDEN", "MAKE_GOLDEN", "ByteCodecContract", "CodecContract", "golden_cases", "load_golden_script"]

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def load_golden_script(name: str) -> Any:
    """The module of ``tests/golden/<name>.py`` (the scripts that wrote the golden files define their cases)."""
    spec = importlib.util.spec_from_file_location(name, GOLDEN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_GOLDEN = load_golden_script("make_golden")
register_dictionary(MAKE_GOLDEN.dictionary_bytes())


def golden_cases(codec_id: str) -> list[str]:
    """Names of the golden frames of ``codec_id`` (files ``tests/golden/v1/<name>.frame``)."""
    return sorted(n for n, (config, _) in MAKE_GOLDEN.CASES.items() if config["id"] == codec_id)


def _config_with_dictionary(config: dict[str, Any]) -> dict[str, Any]:
    from memstrata.codecs import digest

    return {k: (digest(MAKE_GOLDEN.dictionary_bytes()).hex() if v == "@dict" else v) for k, v in config.items()}


class CodecContract:
    """What every codec promises; subclass with the codec's configurations and sample values.

    Attributes
    ----------
    codec_id : str
        The registered name.
    configs : list of dict
        Configurations to check (each is also round-tripped through JSON).
    samples : list
        Values every configuration encodes (arrays, records, bytes, graphs ...).
    """

    codec_id: ClassVar[str]
    configs: ClassVar[list[dict[str, Any]]]
    samples: ClassVar[list[Any]]
    deterministic: ClassVar[bool] = True  # the same value encodes to the same bytes

    def check_lossy(self, value: Any, out: Any, config: dict[str, Any]) -> None:
        """For lossy codecs: ``out`` is close enough to ``value`` (shape and dtype at least)."""
        assert isinstance(out, np.ndarray) and out.shape == np.shape(value)

    def _check(self, value: Any, out: Any, config: dict[str, Any]) -> None:
        if get_codec(config).lossless:
            if isinstance(value, np.ndarray):
                assert out.dtype == value.dtype and out.tobytes() == np.ascontiguousarray(value).tobytes()
            else:
                assert_same(out, value)
        else:
            self.check_lossy(value, out, config)

    def _frames(self) -> list[tuple[bytes, Any, dict[str, Any]]]:
        return [(get_codec(c).encode(v), v, c) for c in self.configs for v in self.samples]

    def test_round_trip(self) -> None:
        for config in self.configs:
            codec = get_codec(config)
            for value in self.samples:
                frame = codec.encode(value)
                self._check(value, decode(frame), config)
                self._check(value, codec.decode(frame), config)
                assert read_header(frame).codec_id == type(codec).frame_id

    def test_config_round_trips_through_json(self) -> None:
        for config in self.configs:
            codec = get_codec(config)
            again = get_codec(json.loads(json.dumps(codec.get_config())))
            assert again == codec and hash(again) == hash(codec) and repr(again) == repr(codec)
            assert codec.get_config()["id"] == self.codec_id

    def test_golden_frames_still_decode(self) -> None:
        names = golden_cases(self.codec_id)
        assert names, f"codec {self.codec_id!r} has no golden frame in tests/golden/v1 (add one to make_golden.py)"
        for name in names:
            config, value = MAKE_GOLDEN.CASES[name]
            frame = (GOLDEN / "v1" / f"{name}.frame").read_bytes()
            header = read_header(frame)
            assert header.version == 1 and header.codec_id == type(get_codec(self.codec_id)).frame_id
            out = decode(frame)
            if name in MAKE_GOLDEN.LOSSY:
                npy = GOLDEN / "v1" / f"{name}.expected.npy"
                if npy.exists():
                    expected = np.load(npy, allow_pickle=False)
                    assert out.dtype == expected.dtype and out.shape == expected.shape
                    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
                else:
                    assert out == deserialize((GOLDEN / "v1" / f"{name}.expected.msgpack").read_bytes())
                continue
            if isinstance(value, np.ndarray):
                assert out.dtype == value.dtype and out.tobytes() == value.tobytes()
            else:
                assert out == value
            if self.deterministic:  # today's code writes the same bytes
                assert get_codec(_config_with_dictionary(config)).encode(value) == frame

    def test_every_flipped_byte_is_caught(self) -> None:
        rng = random.Random(7)
        for frame, _, _ in self._frames():
            buf = bytearray(frame)
            for i in range(len(buf)):
                mask = rng.randint(1, 255)
                buf[i] ^= mask
                with pytest.raises(CorruptDataError):
                    decode(bytes(buf))
                buf[i] ^= mask

    def test_every_truncation_is_caught(self) -> None:
        for frame, _, _ in self._frames():
            for n in range(0, len(frame), max(1, len(frame) // 64)):
                with pytest.raises(CorruptDataError):
                    decode(frame[:n])
            with pytest.raises(CorruptDataError):
                decode(frame + b"\x00")


class ByteCodecContract(CodecContract):
    """The contract of a lossless codec of any bytes and any serializable value (hypothesis properties).

    Each subclass gets its own property tests (hypothesis keeps one executor per test function).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

        @given(data=st.binary(max_size=3000))
        def test_any_bytes_round_trip(self: ByteCodecContract, data: bytes) -> None:
            for config in self.configs:
                codec = get_codec(config)
                assert decode(codec.encode(data)) == data
                assert decode(codec.encode(bytearray(data))) == data
                assert decode(codec.encode(memoryview(data))) == data

        @given(value=values)
        def test_any_value_round_trips(self: ByteCodecContract, value: Any) -> None:
            for config in self.configs:
                codec = get_codec(config)
                frame = codec.encode(value)
                assert_same(decode(frame), value)
                assert_same(codec.decode(frame), value)

        cls.test_any_bytes_round_trip = test_any_bytes_round_trip  # type: ignore[attr-defined]
        cls.test_any_value_round_trips = test_any_value_round_trips  # type: ignore[attr-defined]
