__test__: dict[str, str]

INTENT_OVERHEAD: int

def append_entry(
    fd: int,
    ifd: int,
    item: tuple[str, str, str, bytes, str, bytes | None],
    seq: int,
    prev: bytes,
    when: float,
    sync: bool,
) -> tuple[bytes, int]: ...
def encode_record(key: bytes, seq: int, kind: int, payload: bytes) -> bytes: ...
