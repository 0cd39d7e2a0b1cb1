"""Codecs, self-verifying frames, value serialization and the CompressionEngine.

Every encoded value is a *frame* (``docs/format.md``): a small header naming the
codec, the original length and content digest, then the payload and a checksum
verified on every decode. Any frame decodes alone with :func:`decode`.
A container that records a frame's dictionary itself (a trace row, an index
entry) can keep *compact frames* instead (:func:`encode_compact`,
:meth:`CompressionEngine.compress_compact`): a head byte, the length, the
payload and a check bound to the dictionary and the container's context.

>>> from memstrata.codecs import get_codec, decode
>>> frame = get_codec("lz4").encode(b"abc" * 100)
>>> decode(frame) == b"abc" * 100
True
"""

from __future__ import annotations

from memstrata.codecs._arrays import BinaryCodec, CSRCodec, Int4Codec, Int8Codec
from memstrata.codecs._bytes import Blosc2Codec, LZ4Codec, RawCodec, ZlibCodec, ZstdCodec  # registers them
from memstrata.codecs._compact import COMPACT_VERSION, decode_compact, encode_compact
from memstrata.codecs._dictionaries import (
    get_dictionary,
    register_dictionary,
    registered_dictionaries,
    train_dictionary,
)
from memstrata.codecs._engine import CompressionEngine
from memstrata.codecs._frame import FORMAT_VERSION, FrameHeader, FrameVersionError
from memstrata.codecs._graph import GraphPruneCodec, prune_graph
from memstrata.codecs._hash import digest
from memstrata.codecs._policy import CompressionPolicy
from memstrata.codecs._quick import SLOW as NOT_QUICK
from memstrata.codecs._quick import decode_quick
from memstrata.codecs._registry import (
    Codec,
    available_codecs,
    codec_for_frame_id,
    decode,
    get_codec,
    read_header,
    register_codec,
)
from memstrata.codecs._shapes import TAG_BYTES, TAG_VALUE
from memstrata.codecs._trainer import DictionaryTrainer, dictionary_size
from memstrata.codecs._values import deserialize, is_plain, serialize

register = register_codec  # the registry's decorator, by the name the design uses

__all__ = [
    "COMPACT_VERSION",
    "FORMAT_VERSION",
    "NOT_QUICK",
    "TAG_BYTES",
    "TAG_VALUE",
    "BinaryCodec",
    "Blosc2Codec",
    "CSRCodec",
    "Codec",
    "CompressionEngine",
    "CompressionPolicy",
    "DictionaryTrainer",
    "FrameHeader",
    "FrameVersionError",
    "GraphPruneCodec",
    "Int4Codec",
    "Int8Codec",
    "LZ4Codec",
    "RawCodec",
    "ZlibCodec",
    "ZstdCodec",
    "available_codecs",
    "codec_for_frame_id",
    "decode",
    "decode_compact",
    "decode_quick",
    "deserialize",
    "dictionary_size",
    "digest",
    "encode_compact",
    "get_codec",
    "get_dictionary",
    "is_plain",
    "prune_graph",
    "read_header",
    "register",
    "register_codec",
    "register_dictionary",
    "registered_dictionaries",
    "serialize",
    "train_dictionary",
]
