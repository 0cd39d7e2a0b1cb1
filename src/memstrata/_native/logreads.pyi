from typing import Any

READ_AHEAD_BYTES: int
__test__: dict[str, str]

def read_value(fd: int, offset: int, key: bytes, seed: int) -> bytes | None: ...
def read_tagged(
    table: Any, fds: dict[int, int], key: bytes, seed: int, head: int, tag: int
) -> tuple[int, bytes, bytes | None] | None: ...
