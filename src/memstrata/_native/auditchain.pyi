from typing import Any

from typing_extensions import Buffer as BytesLike

__test__: dict[str, str]

PATHS: tuple[str, ...]
RECORD_HEAD: int
RECORD_TAIL: int
MIN_CANONICAL: int
OK: int
TORN: int
PREV: int
SEQ: int
HASH: int
FORM: int

def sha256_paths() -> list[str]: ...
def sha256_path() -> str: ...
def sha256(data: BytesLike, path: str | None = None) -> bytes: ...
def encode_records(items: list[Any], seq0: int, prev: bytes, times: list[float]) -> tuple[bytes, list[Any], bytes, bytes]: ...
def scan_records(
    buf: BytesLike, start: int, seq0: int, prev: bytes, check_hashes: bool, want_index: bool
) -> tuple[int, int, int, int, bytes, bytes, bytes]: ...
