"""The embeddings of an agent memory: a :class:`~memstrata.vectors.VectorMemory` behind a small write buffer.

``VectorMemory`` merges added rows into its code arrays on the next search
(a copy of every row), so adding one vector and searching, turn after turn,
would copy the whole memory each turn. New vectors therefore wait in a buffer
of up to ``buffer_rows`` float rows, searched exactly, and move to the
``VectorMemory`` in one batch when it is full.

Searches take an optional set of allowed ids (the compiled filter): when it
holds at most a quarter of the rows, those rows are scored directly
(``VectorMemory.get`` + one matrix product); otherwise the quantized scan is
asked for more candidates, doubling until ``k`` allowed ones are found or
every row was seen. Either way ``k`` results come back whenever ``k`` allowed
rows exist.

Near-duplicate checks on write (:meth:`VectorIndex.near`) read a sketch of
every vector (the signs of 128 fixed random projections, 16 bytes a memory)
instead of scanning the codes: two unit vectors at angle θ differ in each
sketch bit with probability θ/π, so a row is a candidate when its sketch lies
within twice the bits expected at the threshold's angle, first on the first 64
bits, then on all 128 for the few that pass (both in one compiled pass over
the sketches: :func:`memstrata.kernels.nearscreen.screen`), and only the
candidates are scored exactly. A single add makes its unit row, sketch and
stored int8 form in one compiled pass too (:meth:`VectorIndex.prepare_one`). A pair exactly at the threshold
is missed with the binomial tail probability beyond twice its mean (about
0.4 % at cosine 0.95, from the first stage); a pair more similar than the
threshold far less often.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from memstrata._growth import grown_capacity
from memstrata.agent.nearkernels import nearscreen_kernels
from memstrata.types import VectorCodecName
from memstrata.vectors import VectorMemory

__all__ = ["SKETCH_BITS", "IdSet", "VectorIndex", "decode_vector", "encode_vector", "sketch_radius"]

#: Below this fraction of allowed rows a filtered search scores the allowed rows directly.
DIRECT_FRACTION = 0.25
SKETCH_BITS = 128  # two 64-bit words: the first screens every row, both decide
_SKETCH_SEED = 0x6D656D73  # fixed: sketches are rebuilt from the vectors at open, so only consistency matters
_NEAR_MAX_CANDIDATES = 256  # beyond this many sketch candidates a top-k search is cheaper than exact scoring


@functools.lru_cache(maxsize=64)  # asked on every add with the same few arguments
def sketch_radius(threshold: float, bits: int = SKETCH_BITS) -> int:
    """Of ``bits`` sketch bits, how many two vectors at cosine ``threshold`` may differ in and still be candidates.

    Twice the mean at the threshold's angle, at most half the bits.
    """
    angle = math.acos(min(1.0, max(-1.0, float(threshold))))
    return math.ceil(min(0.5, 2.0 * angle / math.pi) * bits)


def encode_vector(x: np.ndarray) -> tuple[bytes, float]:
    """A unit vector as int8 codes and one scale (how a record persists its embedding)."""
    peak = float(np.abs(x).max()) or 1.0
    scale = peak / 127.0
    return np.round(x / scale).astype(np.int8).tobytes(), scale


def decode_vector(codes: bytes, scale: float) -> np.ndarray:
    return np.frombuffer(codes, np.int8).astype(np.float32) * np.float32(scale)


def unit_rows(x: np.ndarray, name: str, dim: int | None) -> np.ndarray:
    """``x`` as C-contiguous unit float32 rows (n, d); ``ValueError``/``TypeError`` naming ``name``."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float32/float64 numpy array, got {type(x).__name__}")
    x = np.atleast_2d(np.asarray(x, np.float32))
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise ValueError(f"{name}: expected shape (n, {dim if dim is not None else 'd'}), got {x.shape}")
    # squared norms in float64: finite exactly when every value is (no float32 square overflows there), and
    # zero exactly for an all-zero row (no float32 square underflows there)
    squares = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    if x.shape[0] == 1:  # one row (a single add, a query): the same checks on a Python float, fewer numpy calls
        square = float(squares[0])
        if not math.isfinite(square):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if not square:
            raise ValueError(f"{name}: expected non-zero vectors, got an all-zero row")
        return (x / np.float64(math.sqrt(square))).astype(np.float32)
    if not np.isfinite(squares).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    if not squares.all():
        raise ValueError(f"{name}: expected non-zero vectors, got an all-zero row")
    return np.ascontiguousarray(x / np.sqrt(squares)[:, None], np.float32)


class IdSet:
    """A set of non-negative int ids, one byte an id up to the largest (ids here are dense: handed out in order).

    A Python ``set`` of ints costs about 50 bytes a member; this costs one.
    """

    __slots__ = ("_n", "_present")

    def __init__(self) -> None:
        self._present = np.zeros(0, bool)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, (int, np.integer)) or not 0 <= id_ < self._present.shape[0]:
            return False
        return bool(self._present[id_])

    @property
    def nbytes(self) -> int:
        return int(self._present.nbytes)

    def update(self, ids: list[int]) -> None:
        if not ids:
            return
        at = np.asarray(ids, np.int64)
        if at.min() < 0:
            raise ValueError(f"ids: expected non-negative ids, got {int(at.min())}")
        top = int(at.max()) + 1
        if top > self._present.shape[0]:
            grown = np.zeros(grown_capacity(top, self._present.shape[0]), bool)
            grown[: self._present.shape[0]] = self._present
            self._present = grown
        self._n += int(np.unique(at[~self._present[at]]).size)
        self._present[at] = True

    def discard(self, id_: int) -> None:
        if id_ in self:
            self._present[id_] = False
            self._n -= 1


class VectorIndex:
    """Unit vectors by id; cosine top-k, optionally restricted to allowed ids."""

    def __init__(self, dim: int, codec: VectorCodecName = "int8", buffer_rows: int = 512,
                 shortlist: int | None = None) -> None:
        self.dim = int(dim)
        self.codec = codec
        self.buffer_rows = int(buffer_rows)
        self._main = VectorMemory(self.dim, codec=codec, shortlist=shortlist if codec == "int8" else None)
        self._main_ids = IdSet()
        self._buf_ids: list[int] = []
        self._buf = np.empty((0, self.dim), np.float32)  # grows to buffer_rows as single rows arrive
        self._init_sketches()

    def _init_sketches(self) -> None:
        self._scratch: tuple[np.ndarray, ...] | None = None  # prepare_one's output arrays, made on its first call
        self._near_rows = np.empty(_NEAR_MAX_CANDIDATES, np.int64)  # near's screen output, reused
        rng = np.random.default_rng(_SKETCH_SEED)
        self._planes = rng.standard_normal((self.dim, SKETCH_BITS)).astype(np.float32)
        self._sketch_ids = np.empty(0, np.int64)  # -1 marks a removed row until the arrays are packed
        self._sketches = np.empty((2, 0), np.uint64)  # word-major: the screening word of every row is contiguous
        self._sketch_n = 0

    def __len__(self) -> int:
        return len(self._main_ids) + len(self._buf_ids)

    def __contains__(self, id_: int) -> bool:
        return id_ in self._main_ids or id_ in self._buf_ids

    @property
    def nbytes(self) -> int:
        return int(self._main.nbytes + self._buf.nbytes + self._main_ids.nbytes
                   + self._sketch_ids.nbytes + self._sketches.nbytes + self._planes.nbytes)

    def sketch(self, x: np.ndarray) -> np.ndarray:
        """The sketches (uint64 (n, 2)) of unit rows ``x`` (n, d): one bit per random projection's sign."""
        return np.packbits(x @ self._planes > 0, axis=1).view(np.uint64)

    def prepare_one(self, v: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, tuple[bytes, float]]:
        """One float row ``v`` (d,) as a write needs it, in one compiled pass: the unit row (1, d) float32 (as
        :func:`unit_rows` makes it), its sketch (1, 2) (:meth:`sketch`) and its int8 form (:func:`encode_vector`).

        The unit row and the sketch live in arrays of this index that the next call overwrites: the caller
        copies what it keeps (:meth:`add_many` does) before preparing another row.

        ``ValueError`` naming ``name`` for NaN, inf or an all-zero row.
        """
        if v.dtype != np.float32 or not v.flags.c_contiguous:
            v = np.ascontiguousarray(v, np.float32)
        scratch = self._scratch
        if scratch is None:  # made once, then reused: one write at a time (the memory's lock), each copies what it keeps
            d, bits = self._planes.shape
            sketch = np.empty((1, bits // 64), np.uint64)
            scratch = self._scratch = (np.empty((1, d), np.float32), np.empty(bits, np.float32), sketch,
                                       sketch.view(np.uint8)[0], np.empty(d, np.int8))
        unit, proj, sketch, sketch_bytes, codes = scratch
        square, scale = nearscreen_kernels().prepare_row_into(v, self._planes, unit[0], proj, sketch_bytes, codes)
        if not math.isfinite(square):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if not square:
            raise ValueError(f"{name}: expected non-zero vectors, got an all-zero row")
        return unit, sketch, (codes.tobytes(), scale)

    def _add_sketches(self, ids: list[int], sketches: np.ndarray) -> None:
        n, need = self._sketch_n, self._sketch_n + len(ids)
        if need > self._sketch_ids.size:
            cap = grown_capacity(need, self._sketch_ids.size)
            self._sketch_ids = np.concatenate([self._sketch_ids[:n], np.full(cap - n, -1, np.int64)])
            self._sketches = np.concatenate([self._sketches[:, :n], np.zeros((2, cap - n), np.uint64)], axis=1)
        self._sketch_ids[n:need] = ids
        self._sketches[:, n:need] = sketches.T
        self._sketch_n = need

    def _remove_sketch(self, id_: int) -> None:
        n = self._sketch_n
        at = np.flatnonzero(self._sketch_ids[:n] == id_)
        if at.size:  # the last row moves into the hole, so the live rows stay packed
            last = n - 1
            self._sketch_ids[at[0]] = self._sketch_ids[last]
            self._sketches[:, at[0]] = self._sketches[:, last]
            self._sketch_ids[last] = -1
            self._sketch_n = last

    def near(self, x: np.ndarray, threshold: float, sketches: np.ndarray | None = None
             ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each unit row of ``x`` (n, d): ids and exact cosines of the stored rows at ``threshold`` or above.

        ``sketches``: :meth:`sketch` of ``x`` when the caller has it already.

        Each row's pairs come best first (ties by id). Candidates come from the
        sketches (see the module's docstring); a row with more than a few
        hundred candidates is answered by a top-k search instead.
        """
        n = self._sketch_n
        out: list[tuple[np.ndarray, np.ndarray]] = []
        if n == 0:
            return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in range(x.shape[0])]
        first, both = sketch_radius(threshold, 64), sketch_radius(threshold)
        screen = nearscreen_kernels().screen

        live, words = self._sketch_ids, self._sketches
        codes = self.sketch(x) if sketches is None else sketches
        found: list[np.ndarray | None] = []  # candidate ids of each row; None: too many, ask the top-k search
        rows = self._near_rows
        if codes.shape[0] == 1:  # a single add: its candidates' vectors, no merge of batches
            hits = screen(words[0], words[1], n, codes[0], first, both, rows)
            if not hits:  # the usual single add
                return [(_NO_IDS, _NO_SIMS)]
            if hits <= _NEAR_MAX_CANDIDATES:
                return [self._near_one(live[rows[:hits]], x[0], threshold)]
            found.append(None)
        else:
            for code in codes:  # both sketch words of every row in one compiled pass
                hits = screen(words[0], words[1], n, code, first, both, rows)
                found.append(live[rows[:hits]] if hits <= _NEAR_MAX_CANDIDATES else None)  # a copy: rows is reused
        # one read of every candidate's vector for the whole batch
        listed = [c for c in found if c is not None and c.size]
        if not listed and all(c is not None for c in found):
            return [(_NO_IDS, _NO_SIMS)] * len(found)  # no row has a candidate
        union = np.unique(np.concatenate(listed)) if listed else np.empty(0, np.int64)
        vectors = self.get(union.tolist()) if union.size else np.empty((0, self.dim), np.float32)
        for row, ids in zip(x, found):
            if ids is not None and not ids.size:
                out.append((_NO_IDS, _NO_SIMS))
                continue
            if ids is None:
                ids, sims = self.search(row, _NEAR_MAX_CANDIDATES)
            else:
                sims = (vectors[np.searchsorted(union, ids)] @ row).astype(np.float32)
            keep = sims >= threshold
            out.append(best_of(ids[keep], sims[keep], int(keep.sum())))
        return out

    def _near_one(self, only: np.ndarray, q: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`near`'s answer for one row ``q`` from its sketch candidates ``only`` (ids, at least one)."""
        near_sims = self.similarities(only, q)
        keep = near_sims >= threshold
        if only.size == 1:
            return (only, near_sims) if keep[0] else (_NO_IDS, _NO_SIMS)
        return best_of(only[keep], near_sims[keep], int(keep.sum()))

    def add_many(self, ids: list[int], vectors: np.ndarray, sketches: np.ndarray | None = None) -> None:
        """Add unit rows (see :func:`unit_rows`); a batch at least as large as the buffer goes straight in.

        ``sketches``: :meth:`sketch` of ``vectors`` when the caller has it already.
        """
        if not ids:
            return
        if len(ids) == 1 and sketches is not None and len(self._buf_ids) < self._buf.shape[0]:
            self._add_one(ids[0], vectors[0], sketches[0])  # a single add into a buffer with room: no loop, no growth
            return
        self._add_sketches(ids, self.sketch(vectors) if sketches is None else sketches)
        if len(ids) >= self.buffer_rows:
            self.flush()
            self._add_main(ids, vectors)
            return
        for id_, row in zip(ids, vectors):
            if len(self._buf_ids) == self.buffer_rows:
                self.flush()
            if len(self._buf_ids) == self._buf.shape[0]:
                grown = np.empty((min(grown_capacity(len(self._buf_ids) + 1, self._buf.shape[0]), self.buffer_rows),
                                  self.dim), np.float32)
                grown[: len(self._buf_ids)] = self._buf[: len(self._buf_ids)]
                self._buf = grown
            self._buf[len(self._buf_ids)] = row
            self._buf_ids.append(id_)

    def _add_one(self, id_: int, row: np.ndarray, sketch: np.ndarray) -> None:
        """:meth:`add_many` of one row when the buffer has room and the sketch is known."""
        n = self._sketch_n
        if n == self._sketch_ids.size:
            self._add_sketches([id_], sketch[None, :])
        else:
            self._sketch_ids[n] = id_
            self._sketches[:, n] = sketch
            self._sketch_n = n + 1
        self._buf[len(self._buf_ids)] = row
        self._buf_ids.append(id_)

    def flush(self) -> None:
        """Move the buffered rows into the quantized memory."""
        n = len(self._buf_ids)
        if n:
            self._add_main(self._buf_ids, self._buf[:n].copy())
            self._buf_ids = []

    def _add_main(self, ids: list[int], vectors: np.ndarray) -> None:
        self._main.add(vectors, ids=np.asarray(ids, np.int64))
        self._main_ids.update(ids)

    def remove(self, id_: int) -> None:
        self._remove_sketch(id_)
        if id_ in self._main_ids:
            self._main.delete([id_])
            self._main_ids.discard(id_)
        else:
            self._remove_buffered(id_)

    def _remove_buffered(self, id_: int) -> None:
        if id_ in self._buf_ids:
            pos = self._buf_ids.index(id_)
            last = len(self._buf_ids) - 1
            self._buf[pos : last] = self._buf[pos + 1 : last + 1]
            del self._buf_ids[pos]

    def get(self, ids: list[int]) -> np.ndarray:
        """Vectors of ``ids`` (buffered rows exactly, the others decoded from their codes)."""
        out = np.empty((len(ids), self.dim), np.float32)
        in_main = [i for i, id_ in enumerate(ids) if id_ in self._main_ids]
        if in_main:
            out[in_main] = self._main.get(np.asarray([ids[i] for i in in_main], np.int64))
        if len(in_main) < len(ids):
            pos = {id_: p for p, id_ in enumerate(self._buf_ids)}
            for i, id_ in enumerate(ids):
                if id_ not in self._main_ids:
                    out[i] = self._buf[pos[id_]]
        return out

    def similarities(self, ids: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Cosines (float32) of the unit query ``q`` (d,) with the vectors of a few ``ids`` (int64, in the index)."""
        return (self.get(ids.tolist()) @ q).astype(np.float32)

    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (ids int64, cosine float32) of the unit query ``q`` (d,), best first; ``allowed``: sorted ids."""
        n = len(self)
        if n == 0 or k <= 0 or (allowed is not None and allowed.size == 0):
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if allowed is not None and allowed.size <= DIRECT_FRACTION * n:
            present = [int(i) for i in allowed.tolist() if i in self._main_ids or i in self._buf_ids]
            if not present:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            sims = self.get(present) @ q
            return best_of(np.asarray(present, np.int64), sims.astype(np.float32), k)
        nb = len(self._buf_ids)
        b_ids = np.asarray(self._buf_ids, np.int64)
        b_sims = (self._buf[:nb] @ q).astype(np.float32)
        want = k
        while True:
            if self._main_ids:
                s, i = self._main.search(q, k=min(want, len(self._main_ids)))
                m_ids, m_sims = i[0][i[0] >= 0], s[0][i[0] >= 0]
            else:
                m_ids, m_sims = np.empty(0, np.int64), np.empty(0, np.float32)
            ids = np.concatenate([m_ids, b_ids])
            sims = np.concatenate([m_sims, b_sims])
            if allowed is not None:
                keep = np.isin(ids, allowed, assume_unique=True)
                ids, sims = ids[keep], sims[keep]
            if ids.size >= k or want >= len(self._main_ids):
                return best_of(ids, sims, k)
            want *= 4

    def near_duplicates(self, threshold: float) -> np.ndarray:
        """Pairs of ids (int64 (n, 2)) at cosine ≥ ``threshold`` (the vector memory's blocked scan)."""
        self.flush()
        if not self._main_ids:
            return np.empty((0, 2), np.int64)
        return np.asarray(self._main.near_duplicates(threshold), np.int64)

    def close(self) -> None:
        self._main.close()


_NO_IDS = np.empty(0, np.int64)
_NO_SIMS = np.empty(0, np.float32)
_NO_IDS.flags.writeable = _NO_SIMS.flags.writeable = False  # shared by every empty answer


def best_of(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest ``sims`` with their ``ids``, ties broken by the lower id."""
    order = np.lexsort((ids, -sims))[:k]
    return ids[order], sims[order]
