"""Type aliases shared by the stubs and the policy layer."""

from __future__ import annotations

from typing import Union

BytesLike = Union[bytes, bytearray, memoryview]
