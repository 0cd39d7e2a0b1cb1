"""Plain-Python helpers shared by the kernel wrappers (validation, twin building).

Nothing here is compiled itself: the wrappers call these once per public call,
never inside a loop, and ``serial_and_parallel`` declares kernels once, at
import of their module.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

__all__ = [
    "as_float_matrix", "check_float_vector", "check_out", "describe", "parallel_twin_source", "public_face", "raise_not_finite",
    "serial_and_parallel", "use_parallel",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def parallel_twin_source(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``fn`` with ``_parallel`` appended to its name, for the ``parallel=True`` twin.

    Numba's on-disk cache keys an entry by the function's qualified name and
    signature but not by its compile flags, so a serial and a parallel build of
    the *same* function object would overwrite each other's cache entries. The
    copy shares the code object (same source, same bytecode) under another name.
    """
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel", fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_parallel"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    return twin


def public_face(body: Callable[Concatenate[Any, _P], _R], first: Any, name: str, doc: str) -> Callable[_P, _R]:
    """The public function ``name``: ``body`` with its first argument fixed to ``first``.

    One body serves several public functions that differ in one value (the bit
    width of ``quantize_int8``/``quantize_int4``, of ``int8_search``/``int4_search``):
    each face gets its own name and docs, and the signature of ``body`` without
    its first parameter (what ``help()``, ``inspect.signature`` and, through the
    ``ParamSpec``, type checkers see). ``body`` takes plain and keyword-only
    parameters (no ``*args``, ``**kwargs`` or positional-only ones).

    >>> def power(exponent: int, base: float, *, scale: float = 1.0) -> float:
    ...     return scale * base**exponent
    >>> square = public_face(power, 2, "square", "The square of ``base``.")
    >>> square(3.0), square(3.0, scale=2.0), square.__name__
    (9.0, 18.0, 'square')
    >>> [str(p) for p in inspect.signature(square).parameters.values()]
    ["base: 'float'", "scale: 'float' = 1.0"]
    """

    # The face is compiled from a two-line source with the parameters of ``body`` (as dataclasses
    # writes ``__init__``), not a ``*args, **kwargs`` wrapper: that one cost ~1 us a call.
    signature = inspect.signature(body)
    params = list(signature.parameters.values())[1:]
    heads: list[str] = []
    passes: list[str] = []
    for p in params:
        if p.kind is p.KEYWORD_ONLY:
            if "*" not in heads:
                heads.append("*")
            heads.append(p.name)
            passes.append(f"{p.name}={p.name}")
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            heads.append(p.name)
            passes.append(p.name)
        else:
            raise TypeError(f"body: expected plain and keyword-only parameters, got {p.kind.description} {p.name!r}")
    source = f"def _make(_body, _first):\n    def {name}({', '.join(heads)}):\n        return _body(_first, {', '.join(passes)})\n    return {name}\n"
    scope: dict[str, Any] = {}
    exec(source, body.__globals__, scope)  # the globals of body's module: doctest finds the face there
    public = scope["_make"](body, first)
    public.__defaults__ = tuple(p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)
    public.__kwdefaults__ = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    public.__signature__ = signature.replace(parameters=params)
    public.__qualname__ = name
    public.__module__ = body.__module__
    public.__doc__ = doc
    return public


def serial_and_parallel(fn: Callable[..., Any], **options: Any) -> tuple[Any, Any]:
    """The serial and the ``parallel=True`` build of the kernel ``fn``, both ``cache=True, nogil=True``.

    ``options`` (e.g. ``fastmath``) go to both builds. Nothing compiles here: Numba
    compiles each build on its first call. The parallel build is of
    ``parallel_twin_source(fn)``, so the two are cached on disk under their own names.
    """
    from numba import njit  # only kernel modules call this, and they import numba anyway

    serial = njit(cache=True, nogil=True, **options)(fn)
    parallel = njit(cache=True, nogil=True, parallel=True, **options)(parallel_twin_source(fn))
    return serial, parallel


def describe(value: Any) -> str:
    """A short description of what arrived, for error messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} with shape {value.shape}"
    return type(value).__name__


def as_float_matrix(name: str, value: Any, *, allow_1d: bool = False) -> np.ndarray:
    """``value`` as a C-contiguous float32 (n, d) array; copies only when needed.

    float64 and non-contiguous input are converted (a copy). Anything else raises
    ``TypeError``; a wrong number of dimensions or ``d == 0`` raises ``ValueError``.
    With ``allow_1d`` a single vector of shape (d,) becomes (1, d).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected float32 or float64 numpy array of shape (n, d), got {describe(value)}")
    if value.dtype != np.float32 and value.dtype != np.float64:
        raise TypeError(
            f"{name}: expected float32 or float64 array of shape (n, d), got {describe(value)}; "
            "convert with .astype(np.float32)"
        )
    if value.ndim == 1 and allow_1d:
        value = value.reshape(1, -1)
    if value.ndim != 2:
        raise ValueError(f"{name}: expected float32 or float64 array of shape (n, d), got {describe(value)}")
    if value.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one dimension (d >= 1), got {describe(value)}")
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, which the kernel reports
        return np.ascontiguousarray(value, dtype=np.float32)


def check_float_vector(name: str, value: Any, length: int, what: str = "") -> np.ndarray:
    """A float vector of ``length`` finite values (scales, offsets, a center) as C-contiguous float32.

    ``what`` says in the error messages what the values are, e.g. "one step per dimension".
    """
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise TypeError(f"{name}: {_expected_vector(length, what)}, got {describe(value)}")
    if value.shape != (length,):
        raise ValueError(f"{name}: {_expected_vector(length, what)}, got {describe(value)}")
    value = np.ascontiguousarray(value, dtype=np.float32)
    if not np.isfinite(value).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return value


def _expected_vector(length: int, what: str) -> str:
    return f"expected float32 array of shape ({length},)" + (f" ({what})" if what else "")


def check_out(name: str, out: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Validate a caller-supplied output buffer (exact shape, dtype, C-contiguous, writeable)."""
    dtype = np.dtype(dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} array of shape {shape}, got {describe(out)}")
    if out.shape != shape:
        raise ValueError(f"{name}: expected {dtype} array of shape {shape}, got {describe(out)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name}: expected a C-contiguous, writeable array; pass np.empty({shape}, {dtype.name})")
    return out


def use_parallel(n_elements: int, threshold: int) -> bool:
    """Whether to call the ``parallel=True`` twin: big enough input and more than one Numba thread."""
    if n_elements < threshold:
        return False
    import numba  # only reached from a kernel wrapper, which has imported numba already

    return bool(numba.get_num_threads() > 1)


def raise_not_finite(name: str, vectors: np.ndarray) -> None:
    """Raise the ``ValueError`` for NaN/inf input, naming the first bad row (slow path, errors only)."""
    bad_rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    first = int(bad_rows[0]) if bad_rows.size else -1
    raise ValueError(
        f"{name}: expected finite values, got NaN or inf in {bad_rows.size} row(s), first at row {first} "
        "(float64 values beyond the float32 range count as inf); drop or replace them first"
    )
