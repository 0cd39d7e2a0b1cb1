"""CompressionPolicy: how :class:`~memstrata.codecs.CompressionEngine` chooses codecs and trains dictionaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["CompressionPolicy"]


@dataclass
class CompressionPolicy:
    """How :class:`~memstrata.codecs.CompressionEngine` chooses codecs and trains dictionaries.

    Attributes
    ----------
    tiny_bytes : int
        Values whose serialized size is at most this are stored raw (compression
        cannot win against its own overhead there).
    record_bytes : int
        Records up to this size are "small": zstd with the trained dictionary.
    zstd_level : int
        zstd level for records and bytes.
    train_after : int
        Train a dictionary once this many small records have been seen (0: never).
        Training runs once, inside the ``compress`` call that reaches this count
        (about 0.1 s for 1,000 trace records and a 64 KiB dictionary); call
        :meth:`CompressionEngine.train` ahead of time to keep it off a hot path.
    dictionary_bytes : int
        Upper bound of a trained dictionary's size (it is also kept under an
        eighth of its samples' bytes; see :class:`~memstrata.codecs.DictionaryTrainer`).
    retrain_factor : int
        Retrain the dictionary at ``retrain_factor`` times the previous count
        (1x, 4x, 16x ... ``train_after`` with 4) on a uniform sample of the
        records seen; 0 trains once. Frames name their dictionary, so older
        frames keep decoding (keep every dictionary the engine stores).
    sample_reservoir : int
        Samples kept per record shape for training (a uniform sample).
    shape_fields : list of str
        Fields whose string value names a record's shape (:meth:`CompressionEngine.shape_of`);
        a dict record with none of them is shaped by its set of keys.
    kind_train_after : int
        Records of one shape that :meth:`CompressionEngine.compress_compact` sees
        before training that shape's own dictionary (0: never). The dictionary is
        adopted only if it compresses the shape's samples smaller than the
        general dictionary does.
    max_kinds : int
        Shapes that may get a dictionary of their own; later shapes use the
        general one.
    array_codec : dict
        Codec config for numeric arrays when no loss is allowed.
    lossy_codec : dict
        Codec config for float vectors when the caller allows loss.
    graph_codec : dict
        Codec config for graphs (``kind="graph"``) when the caller allows loss.
    """

    tiny_bytes: int = 40
    record_bytes: int = 16 * 1024
    zstd_level: int = 3
    train_after: int = 1000
    dictionary_bytes: int = 64 * 1024
    retrain_factor: int = 0
    sample_reservoir: int = 2000
    shape_fields: list[str] = field(default_factory=lambda: ["type", "trace_type", "kind"])
    kind_train_after: int = 256
    max_kinds: int = 64
    array_codec: dict[str, Any] = field(default_factory=lambda: {"id": "blosc2", "clevel": 5, "codec": "zstd"})
    lossy_codec: dict[str, Any] = field(default_factory=lambda: {"id": "int8", "per": "dimension"})
    graph_codec: dict[str, Any] = field(default_factory=lambda: {"id": "graph_prune", "min_confidence": 0.1})

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> CompressionPolicy:
        """Build a policy from a dict; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"policy: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (round-trips through :meth:`from_dict`)."""
        return asdict(self)
