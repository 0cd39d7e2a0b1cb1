"""The codec interface, the registry, and frame-level encode/decode."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from memstrata.codecs import _frame
from memstrata.codecs._dictionaries import lookup_dictionary
from memstrata.codecs._frame import KIND_ARRAY, KIND_BYTES, KIND_OBJECT, KIND_VALUE, FrameHeader
from memstrata.codecs._hash import digest
from memstrata.codecs._quick import SLOW, array_spec, quick_compiled, quick_decode
from memstrata.codecs._values import deserialize, serialize
from memstrata.errors import CorruptDataError, UnknownCodecError

__all__ = [
    "Codec",
    "available_codecs",
    "decode",
    "get_codec",
    "read_header",
    "register_codec",
]

_NO_META: dict[str, Any] = {}
_build_frame = _frame.build_frame

# frames of at least this many original bytes carry the full 16-byte content digest
LONG_DIGEST_MIN_BYTES = 1024

_BY_NAME: dict[str, type[Codec]] = {}
_BY_FRAME_ID: dict[int, type[Codec]] = {}


class Codec(ABC):
    """One way of turning a value into a frame and back.

    Subclasses set ``codec_id`` (the registry name), ``frame_id`` (the byte in
    the frame header; never reused) and ``lossless``, and implement
    :meth:`_encode` / :meth:`_decode`. Equality, hashing and ``repr`` derive from
    :meth:`get_config`, so a codec round-trips through JSON.
    """

    codec_id: ClassVar[str]
    frame_id: ClassVar[int]
    lossless: ClassVar[bool] = True
    # may small frames leave the content digest implicit? Only codecs whose
    # decoders are safe on arbitrary input (the payload is decoded before the
    # checksum can be verified); the format allows it for frame ids 0-3.
    implicit_digest_ok: ClassVar[bool] = False

    # ------------------------------------------------------------------ API --

    def encode(self, data: Any) -> bytes:
        """Encode ``data`` into a self-verifying frame.

        Lossless codecs accept bytes-like objects (returned as ``bytes``), numpy
        arrays (dtype and shape kept) and any value :func:`memstrata.serialize`
        accepts; lossy and structural codecs document what they take.
        """
        return self._frame(*self._prepare(data))

    def decode(self, frame: Any, *, expected_digest: bytes | None = None) -> Any:
        """Decode a frame (written by any registered codec); see :func:`decode`."""
        return decode(frame, expected_digest=expected_digest)

    def get_config(self) -> dict[str, Any]:
        """JSON-safe parameters, including ``"id"``."""
        return {"id": self.codec_id, **self._params()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Codec:
        """Build a codec from :meth:`get_config` output."""
        params = {k: v for k, v in config.items() if k != "id"}
        try:
            return cls(**params)
        except TypeError as exc:
            raise ValueError(f"config: bad parameters for codec {cls.codec_id!r}: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Codec) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    # ----------------------------------------------------- for subclasses --

    def _params(self) -> dict[str, Any]:
        return {}

    def _prepare(self, data: Any) -> tuple[Any, int, dict[str, Any]]:
        """``(contiguous buffer, kind, meta)`` for the generic lossless path."""
        t = type(data)
        if t is bytes or t is bytearray or t is memoryview:
            buf = data if t is bytes else bytes(data)  # one C-ordered copy of bytearray/memoryview input
            return buf, KIND_BYTES, {}
        if t is np.ndarray:
            dtype = data.dtype
            if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
                raise TypeError(f"data: arrays of dtype {dtype} are not supported (object or structured dtype)")
            arr = np.ascontiguousarray(data)
            return arr.reshape(-1).view(np.uint8), KIND_ARRAY, {"dtype": dtype.str, "shape": list(data.shape)}
        return serialize(data), KIND_VALUE, {}

    def _frame(
        self,
        buf: Any,
        kind: int,
        meta: dict[str, Any],
        content_digest: bytes | None = None,
        digest_mode: str | None = None,
        original_length: int | None = None,
    ) -> bytes:
        """Encode ``buf`` and wrap it in a frame.

        ``digest_mode``: ``"implicit"``, ``"short"`` (8 bytes) or ``"long"`` (16);
        by default implicit for small lossless frames of the codecs that allow
        it, long from ``LONG_DIGEST_MIN_BYTES`` on, short otherwise.
        """
        n = len(buf) if original_length is None else original_length
        if content_digest is None:
            content_digest = digest(buf)
        if digest_mode is None:
            if n < LONG_DIGEST_MIN_BYTES:
                digest_mode = "implicit" if self.implicit_digest_ok and kind != KIND_OBJECT else "short"
            else:
                digest_mode = "long"
        payload, extra, dict_digest = self._encode(buf, meta)
        if extra:
            meta = {**meta, **extra}
        return _build_frame(
            self.frame_id,
            kind,
            payload,
            n,
            content_digest[:8] if digest_mode == "short" else content_digest,
            _frame.encode_meta(meta) if meta else b"",
            dict_digest,
            digest_mode == "implicit",
        )

    def _frame_plain(self, buf: Any, kind: int, content_digest: bytes | None = None) -> bytes:
        """:meth:`_frame` without meta and with the default digest mode (the per-record hot path)."""
        n = len(buf)
        if content_digest is None:
            content_digest = digest(buf)
        payload, extra, dict_digest = self._encode(buf, _NO_META)
        if extra:  # rare (chunked payloads): take the general path
            return self._frame(buf, kind, {}, content_digest)
        if n < LONG_DIGEST_MIN_BYTES:
            implicit = self.implicit_digest_ok
            return _build_frame(self.frame_id, kind, payload, n, content_digest if implicit else content_digest[:8],
                                b"", dict_digest, implicit)
        return _build_frame(self.frame_id, kind, payload, n, content_digest, b"", dict_digest, False)

    @abstractmethod
    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None, bytes | None]:
        """Compress ``buf``; returns ``(payload, extra meta or None, dictionary digest or None)``."""

    @classmethod
    @abstractmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        """Inverse of :meth:`_encode`: the original bytes (or, for ``KIND_OBJECT``, the object)."""


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Class decorator adding a codec to the registry (by name and frame id)."""
    name, fid = cls.codec_id, cls.frame_id
    if not 0 <= fid <= 255:
        raise ValueError(f"frame_id: expected 0..255, got {fid}")
    for existing in (_BY_NAME.get(name), _BY_FRAME_ID.get(fid)):
        if existing is not None and existing is not cls:
            raise ValueError(f"codec {name!r} (frame id {fid}) clashes with registered {existing.__name__}")
    _BY_NAME[name] = cls
    _BY_FRAME_ID[fid] = cls
    return cls


def available_codecs() -> list[str]:
    """Names of every registered codec, sorted.

    >>> from memstrata.codecs import available_codecs
    >>> {"raw", "lz4", "zstd", "zlib", "blosc2"} <= set(available_codecs())
    True
    """
    _load_all()
    return sorted(_BY_NAME)


def get_codec(config: str | dict[str, Any] | Codec) -> Codec:
    """A codec from its name, its ``get_config()`` dict, or a codec (returned as is).

    Raises
    ------
    UnknownCodecError
        No codec of that name is registered; the message lists the known ones.

    Examples
    --------
    >>> from memstrata.codecs import get_codec, decode
    >>> codec = get_codec({"id": "zstd", "level": 5})
    >>> codec
    ZstdCodec(level=5, dictionary=None)
    >>> decode(codec.encode(b"hello " * 10))
    b'hello hello hello hello hello hello hello hello hello hello '
    >>> get_codec("brotli")
    Traceback (most recent call last):
    ...
    memstrata.errors.UnknownCodecError: unknown codec 'brotli'; known codecs: binary, blosc2, csr, graph_prune, int4, int8, lz4, raw, zlib, zstd
    """
    if isinstance(config, Codec):
        return config
    name: Any
    if isinstance(config, str):
        name, params = config, {}
    elif isinstance(config, dict):
        name = config.get("id")
        params = config
    else:
        raise TypeError(f"config: expected a codec name, a config dict or a Codec, got {type(config).__name__}")
    _load_all()
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownCodecError(f"unknown codec {name!r}; known codecs: {', '.join(sorted(_BY_NAME))}")
    return cls.from_config(params) if params else cls()


def codec_for_frame_id(frame_id: int) -> type[Codec]:
    cls = _BY_FRAME_ID.get(frame_id)
    if cls is None:
        _load_all()
        cls = _BY_FRAME_ID.get(frame_id)
    if cls is None:
        known = ", ".join(f"{c.codec_id}={i}" for i, c in sorted(_BY_FRAME_ID.items()))
        raise UnknownCodecError(
            f"frame: written by codec id {frame_id}, which is not registered here (known: {known}); "
            "a newer memstrata or a plugin registers it"
        )
    return cls


def read_header(frame: Any) -> FrameHeader:
    """Parse and verify a frame's header and checksum.

    The payload is not decoded, except for small frames whose content digest is
    implicit: those are decoded once to compute it (the returned header then
    holds all 16 bytes). Raises :class:`~memstrata.errors.CorruptDataError`
    exactly when :func:`decode` would for a corrupt frame.
    """
    header = _frame.parse_frame(frame, lookup_dictionary)[0]
    if header.implicit_digest:
        header = _decode(frame, None, True, True)[1]
    return header


def decode(frame: Any, *, expected_digest: bytes | None = None) -> Any:
    """Decode any frame: verify its checksum, then decode with the codec it names.

    Parameters
    ----------
    frame : bytes-like
    expected_digest : bytes, optional
        The content digest (16 bytes, or its first 8) the caller expects, e.g.
        the digest a key is indexed by; a frame of other content raises.

    Returns
    -------
    bytes, ndarray or value
        What was encoded: bytes-like input as ``bytes``, arrays with their dtype
        and shape, other values as :func:`memstrata.deserialize` gives them.

    Raises
    ------
    CorruptDataError
        Bad magic, checksum, length or content digest; never wrong data.
    FrameVersionError
        A newer format version (a subclass of ``CorruptDataError``).
    UnknownCodecError
        A valid frame from a codec not registered here.
    """
    if expected_digest is None and type(frame) is bytes:
        value = SLOW if quick_compiled is None else quick_compiled(frame)
        if value is SLOW:
            value = quick_decode(frame)
        if value is not SLOW:
            return value
    return _decode(frame, expected_digest, True)


def _decode(frame: Any, expected_digest: bytes | None, verify: bool, with_header: bool = False) -> Any:
    """:func:`decode`; ``verify=False`` skips the checksum (benchmarks measure its cost with it)."""
    header, dictionary = _frame.parse_frame(frame, lookup_dictionary, verify=verify)
    implicit = header.implicit_digest
    if expected_digest is not None and not implicit:
        _check_expected(expected_digest, header.content_digest)
    cls = codec_for_frame_id(header.codec_id)
    mv = memoryview(frame).cast("B") if not isinstance(frame, bytes) else memoryview(frame)
    payload = mv[header.payload_offset : header.payload_offset + header.payload_length]
    try:
        out = cls._decode(payload, header, dictionary)
    except (CorruptDataError, UnknownCodecError):
        raise
    except Exception as exc:  # the codec cannot read the payload: never return a guess
        raise CorruptDataError(f"frame: codec {cls.codec_id!r} failed to decode the payload ({exc})") from exc
    kind = header.kind
    if kind != KIND_OBJECT and len(out) != header.original_length:
        raise CorruptDataError(f"frame: decoded {len(out)} bytes, header says {header.original_length}")
    if implicit:
        # the checksum covers the digest of the decoded bytes: verify it before using them
        content = digest(out)
        dd = header.dictionary_digest
        if verify and not _frame.checksum_matches(frame, content if dd is None else dd + content):
            raise CorruptDataError("frame: checksum mismatch (corrupt, truncated or spliced frame)")
        if expected_digest is not None:
            _check_expected(expected_digest, content)
        if with_header:
            header = header._replace(content_digest=content)
    if kind == KIND_OBJECT:
        value = out
    elif kind == KIND_BYTES:
        value = out if type(out) is bytes else bytes(out)
    elif kind == KIND_VALUE:
        value = deserialize(out)
    elif kind == KIND_ARRAY:
        value = _array_from(out, header.meta)
    else:
        raise CorruptDataError(f"frame: unknown payload kind {kind}")
    return (value, header) if with_header else value


def _check_expected(expected: bytes, actual: bytes) -> None:
    n = min(len(expected), len(actual))
    if n < 8 or expected[:n] != actual[:n]:
        raise CorruptDataError("frame: holds other content than expected (content digest mismatch)")


def _array_from(buf: Any, meta: dict[str, Any]) -> np.ndarray:
    dtype, shape = array_spec(meta)
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    arr = np.frombuffer(buf, dtype=dtype)
    if type(buf) is not bytearray:
        arr = arr.copy()  # writable, and never a view into the frame
    try:
        return arr.reshape(shape)
    except ValueError:
        raise CorruptDataError(f"frame: {arr.size} items do not fill shape {shape}") from None


_loaded = False


def _load_all() -> None:
    """Import the modules that define the built-in codecs (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        import memstrata.codecs._arrays
        import memstrata.codecs._bytes
        import memstrata.codecs._graph  # noqa: F401
