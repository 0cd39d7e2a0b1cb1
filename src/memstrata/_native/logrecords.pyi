RECORD_HEADER_SIZE: int
__test__: dict[str, str]

def crc32(data: bytes, seed: int = 0) -> int: ...
def encode_batch(records: list[tuple[int, bytes, bytes]], seq: int, seed: int) -> tuple[bytes, list[int]]: ...
TAIL_SLOT_SIZE: int

def write_tail_slot(fd: int, offset: int, written: int, synced: int, boot: bytes) -> None: ...
def rewrite_batch(
    src_fd: int, src_offset: int, key: bytes, at: int, expect: bytes, head: bytes, tags: bytes, key2: bytes,
    value2: bytes, seq: int, seed: int, dst_fd: int, room: int,
) -> tuple[bytes, int, int] | None: ...
def new_content_batch(
    entry_key: bytes, owner: bytes, entry_seq: int, flags: int, digest: bytes, frame: bytes, blob_key: bytes,
    raw_length: int, access_time: float, key3: bytes, value3: bytes, seq: int, seed: int, fd: int, room: int,
) -> tuple[bytes, int, int, int] | None: ...
def superseding_batch(
    old_blob_key: bytes, old_blob: bytes, unpin: bool, entry_key: bytes, owner: bytes, entry_seq: int, flags: int,
    digest: bytes, frame: bytes, blob_key: bytes, raw_length: int, access_time: float, key4: bytes, value4: bytes,
    seq: int, seed: int, fd: int, room: int,
) -> tuple[bytes, int, int, int, int] | None: ...
