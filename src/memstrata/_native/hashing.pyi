from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from typing_extensions import Buffer as BytesLike

__test__: dict[str, str]

def digest(data: BytesLike) -> bytes: ...
def digest_many(items: Iterable[BytesLike] | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...
def hash_key(key: Any) -> int: ...
def hash_keys(keys: Any) -> npt.NDArray[np.uint64]: ...
