import numpy as np
import numpy.typing as npt

__test__: dict[str, str]
PATHS: tuple[str, ...]

def supported(path: str) -> bool: ...
def has_vpopcntdq() -> bool: ...
# deliberate twin of int8_scan's stub in int4_scan's: each stub mirrors its compiled function in
# simd.pyx argument for argument (stubtest checks it), so shared arguments are written out twice
def int8_scan(
    weights: npt.NDArray[np.int16],
    factor: npt.NDArray[np.float32],
    codes: npt.NDArray[np.int8],
    bias: npt.NDArray[np.float32],
    k: int,
    out_s: npt.NDArray[np.float32],
    out_i: npt.NDArray[np.int64],
    path: str,
) -> None: ...
def int4_scan(
    weights: npt.NDArray[np.int16],
    factor: npt.NDArray[np.float32],
    packed: npt.NDArray[np.uint8],
    d: int,
    bias: npt.NDArray[np.float32],
    k: int,
    out_s: npt.NDArray[np.float32],
    out_i: npt.NDArray[np.int64],
    path: str,
) -> None: ...
def hamming_scan(
    queries: npt.NDArray[np.uint8],
    codes: npt.NDArray[np.uint8],
    k: int,
    out_d: npt.NDArray[np.int32],
    out_i: npt.NDArray[np.int64],
    path: str,
) -> None: ...
