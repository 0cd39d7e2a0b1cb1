from collections.abc import Callable
from typing import Any

from memstrata._frame_head import FrameVersionError as FrameVersionError

__test__: dict[str, str]

def build(
    codec_id: int,
    kind: int,
    payload: Any,
    original_length: int,
    content_digest: bytes,
    meta: bytes = ...,
    dictionary_digest: bytes | None = ...,
    implicit: bool = ...,
) -> bytes: ...
def checksum_matches(frame: Any, tail: bytes) -> bool: ...
def parse(
    frame: Any, lookup: Callable[[bytes], tuple[bytes, bytes] | None] | None, verify: bool = ...
) -> tuple[int, int, int, int, bytes, bytes | None, int, int, int, int, bytes | None, bytes | None, bool]: ...
def prepare(value: Any, fallback: Callable[[Any], Any]) -> Any: ...
def quick(
    lookup: Callable[[bytes], tuple[bytes, bytes] | None] | None,
    decompressors: dict[tuple[int, bytes | None], Any],
    decoder: Any,
    specs: dict[bytes, tuple[Any, tuple[int, ...]]],
    frombuffer: Callable[..., Any],
    slow: Any,
    frame: bytes,
) -> Any: ...
