"""Merkle tree hashing of the audit log (RFC 6962 / RFC 9162, SHA-256) and its proofs.

Leaves are the entries' chain hashes. ``leaf_hash(d) = SHA256(0x00 || d)``,
``node_hash(l, r) = SHA256(0x01 || l || r)``; the tree of ``n`` leaves splits at
the largest power of two below ``n``. Proofs follow RFC 9162 §2.1.3 (inclusion)
and §2.1.4 (consistency); both verifiers need only the proof and the checkpoint
(size, root) it names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

__all__ = [
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "MerkleLevels",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash ``SHA256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash ``SHA256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass(frozen=True)
class Checkpoint:
    """A signed or plain commitment to the first ``size`` entries of a log: their Merkle ``root``.

    ``signature`` is HMAC-SHA256 over :meth:`message` with the log's key (empty
    when the log has none). Export with :meth:`to_json`; a third party keeps it
    and later checks a consistency proof from this checkpoint to a newer one.
    """

    size: int
    root: bytes
    time: float = 0.0
    signature: bytes = b""

    def message(self) -> bytes:
        return b"memstrata-audit-checkpoint\x00" + self.size.to_bytes(8, "big") + self.root

    def verify_signature(self, key: bytes) -> bool:
        """True when ``signature`` is this checkpoint's HMAC under ``key``."""
        expected = hmac.new(key, self.message(), hashlib.sha256).digest()
        return hmac.compare_digest(expected, self.signature)

    def to_json(self) -> str:
        return json.dumps(
            {"size": self.size, "root": self.root.hex(), "time": self.time, "signature": self.signature.hex()},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            d = json.loads(text)
            return cls(
                int(d["size"]),
                bytes.fromhex(d["root"]),
                float(d.get("time", 0.0)),
                bytes.fromhex(d.get("signature", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"text: expected a checkpoint exported by Checkpoint.to_json, got {text[:80]!r}") from exc


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` (its chain hash ``entry_hash``) is leaf ``index`` of the tree of ``size`` leaves with ``root``."""

    index: int
    size: int
    entry_hash: bytes
    path: tuple[bytes, ...]
    root: bytes

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.size, self.root)


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``first_size`` leaves (``first_root``) is a prefix of the one of ``second_size`` (``second_root``)."""

    first_size: int
    second_size: int
    first_root: bytes
    second_root: bytes
    path: tuple[bytes, ...]


def _sides(fn: int, sn: int, n_hashes: int) -> list[bool] | None:
    """RFC 9162's walk from node ``fn`` of a tree whose last node is ``sn`` up to its root.

    For each of ``n_hashes`` proof hashes: True when it is a left sibling (it
    goes before the running hash), False when a right one. None when the
    proof has more or fewer hashes than the walk needs (§2.1.3.2 and §2.1.4.2
    share this loop; only what they hash differs).
    """
    sides = []
    for _ in range(n_hashes):
        if sn == 0:
            return None
        left = bool(fn & 1) or fn == sn
        sides.append(left)
        if left and not fn & 1:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    return sides if sn == 0 else None


def verify_inclusion(proof: InclusionProof, checkpoint: Checkpoint | None = None) -> bool:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); needs nothing but the proof.

    Parameters
    ----------
    proof : InclusionProof
    checkpoint : Checkpoint, optional
        A checkpoint you trust; the proof must name the same size and root.

    Returns
    -------
    bool
        False for any forged, altered or mismatched proof.
    """
    if not isinstance(proof, InclusionProof):
        raise TypeError(f"proof: expected an InclusionProof, got {type(proof).__name__}")
    if checkpoint is not None and (checkpoint.size != proof.size or checkpoint.root != proof.root):
        return False
    if not 0 <= proof.index < proof.size:
        return False
    sides = _sides(proof.index, proof.size - 1, len(proof.path))
    if sides is None:
        return False
    r = leaf_hash(proof.entry_hash)
    for p, left in zip(proof.path, sides):
        r = _sha256(b"\x01" + p + r).digest() if left else _sha256(b"\x01" + r + p).digest()
    return hmac.compare_digest(r, proof.root)


def verify_consistency(
    proof: ConsistencyProof, first: Checkpoint | None = None, second: Checkpoint | None = None
) -> bool:
    """Check a consistency proof (RFC 9162 §2.1.4.2); needs nothing but the proof.

    ``first`` / ``second`` are checkpoints you hold; when given, the proof must
    name the same sizes and roots.
    """
    if not isinstance(proof, ConsistencyProof):
        raise TypeError(f"proof: expected a ConsistencyProof, got {type(proof).__name__}")
    for cp, size, root in ((first, proof.first_size, proof.first_root), (second, proof.second_size, proof.second_root)):
        if cp is not None and (cp.size != size or cp.root != root):
            return False
    m, n, path = proof.first_size, proof.second_size, list(proof.path)
    if m < 0 or m > n:
        return False
    if m == n:
        return not path and proof.first_root == proof.second_root
    if m == 0:
        return not path and proof.first_root == EMPTY_ROOT
    if m & (m - 1) == 0:  # an exact power of two: the first tree is a node of the second
        path.insert(0, proof.first_root)
    if not path:
        return False
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    sides = _sides(fn, sn, len(path) - 1)
    if sides is None:
        return False
    fr = sr = path[0]
    for c, left in zip(path[1:], sides):
        if left:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
    return hmac.compare_digest(fr, proof.first_root) and hmac.compare_digest(sr, proof.second_root)


class MerkleLevels:
    """The perfect subtrees of an append-only Merkle tree, level by level.

    ``levels[h][i]`` is the hash of leaves ``[i * 2**h, (i + 1) * 2**h)``; it
    never changes once complete, so any RFC 6962 subtree hash (a perfect left
    part plus a recursive right part) costs O(log n) and a proof O(log² n).
    Memory: about 64 bytes per leaf.
    """

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = [[]]

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, entry_hash: bytes) -> None:
        levels = self.levels
        levels[0].append(leaf_hash(entry_hash))
        h = 0
        while len(levels[h]) % 2 == 0:
            below = levels[h]
            if h + 1 == len(levels):
                levels.append([])
            levels[h + 1].append(_sha256(b"\x01" + below[-2] + below[-1]).digest())
            h += 1

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)`` where ``lo`` is aligned as the RFC recursion makes it."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            h = n.bit_length() - 1
            return self.levels[h][lo >> h]
        k = _split(n)
        return node_hash(self.levels[k.bit_length() - 1][lo // k], self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        return self.subtree(0, len(self) if size is None else size)

    def inclusion_path(self, index: int, size: int) -> tuple[bytes, ...]:
        out: list[bytes] = []
        lo, hi, m = 0, size, index
        while hi - lo > 1:  # PATH(m, D[lo:hi]) from RFC 6962 §2.1.1, iteratively from the top
            k = _split(hi - lo)
            lo, hi, m = self._halve(out, lo, hi, m, k, m < k)
        out.reverse()
        return tuple(out)

    def consistency_path(self, m: int, n: int) -> tuple[bytes, ...]:
        out: list[bytes] = []
        lo, hi, complete = 0, n, True
        while True:  # SUBPROOF(m, D[lo:hi], complete) from RFC 6962 §2.1.2
            size = hi - lo
            if m == size:
                if not complete:
                    out.append(self.subtree(lo, hi))
                break
            k = _split(size)
            left = m <= k
            lo, hi, m = self._halve(out, lo, hi, m, k, left)
            complete = complete and left
        out.reverse()
        return tuple(out)

    def _halve(self, out: list[bytes], lo: int, hi: int, m: int, k: int, left: bool) -> tuple[int, int, int]:
        """One step down the tree of ``[lo, hi)`` split at ``lo + k``: record the other half's hash, keep ``left`` or right.

        Returns the kept half and ``m`` relative to it. The callers decide
        the side differently (RFC 6962: PATH goes left when ``m < k``,
        SUBPROOF when ``m <= k``), so that test stays with them.
        """
        if left:
            out.append(self.subtree(lo + k, hi))
            return lo, lo + k, m
        out.append(self.subtree(lo, lo + k))
        return lo + k, hi, m - k
