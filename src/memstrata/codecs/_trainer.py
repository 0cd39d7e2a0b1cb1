"""The one zstd dictionary trainer: samples per record shape, when to train, and training itself.

Every component that learns dictionaries (the :class:`CompressionEngine`, and
through it the store and the trace memory) keeps its samples and its schedule
here, so they all follow the same rules:

* a uniform sample (reservoir sampling) of at most ``reservoir`` records per
  shape, of records no larger than ``max_sample_bytes``; once the reservoir is
  full, the records it skips are only counted (the number to skip is drawn,
  Li's "algorithm L"), so offering a record costs a counter on most writes;
* training is due when a shape has seen ``train_after`` records, and then again
  at ``retrain_factor`` times that count (1x, 4x, 16x ... with a factor of 4),
  or never again with a factor of 0;
* a dictionary of at most ``dictionary_bytes``, and no larger than an eighth of
  the samples (a dictionary much larger than its samples only slows zstd down).
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Iterable
from typing import Any

from memstrata.codecs._dictionaries import get_dictionary, train_dictionary

__all__ = ["DictionaryTrainer", "dictionary_size"]


def dictionary_size(samples: list[bytes], limit: int) -> int:
    """Size to train for: an eighth of the samples' bytes, between 1 KiB and ``limit``."""
    return min(limit, max(1024, sum(map(len, samples)) // 8))


class DictionaryTrainer:
    """Samples of small records per shape, their training schedule, and the training.

    Parameters
    ----------
    train_after : int
        Records of the general shape ``""`` seen before its first training (0: never due).
    shape_train_after : int, optional
        The same for every other shape (default: ``train_after``).
    retrain_factor : int
        After a training, the next one is due at this many times the count
        (0: train once).
    reservoir : int
        Samples kept per shape (a uniform sample of all records offered).
    max_sample_bytes : int
        Records larger than this are not sampled.
    dictionary_bytes : int
        Upper bound of a trained dictionary's size.
    level : int
        zstd level the dictionaries are tuned for.

    Thread-safe.

    Examples
    --------
    >>> trainer = DictionaryTrainer(train_after=3)
    >>> [trainer.offer(b"record %d" % i) for i in range(3)]
    [False, False, True]
    >>> len(trainer.samples())
    3
    """

    # alike in shape only to the S3-FIFO signatures (its stub and test model): keyword-only
    # parameters with defaults, none shared; nothing to factor out
    def __init__(
        self,
        train_after: int,
        *,
        shape_train_after: int | None = None,
        retrain_factor: int = 0,
        reservoir: int = 2000,
        max_sample_bytes: int = 16 * 1024,
        dictionary_bytes: int = 64 * 1024,
        level: int = 3,
    ) -> None:
        for name, v in (("train_after", train_after), ("retrain_factor", retrain_factor), ("reservoir", reservoir)):
            if type(v) is not int or v < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {v!r}")
        self.train_after = train_after
        self.shape_train_after = train_after if shape_train_after is None else shape_train_after
        self.retrain_factor = retrain_factor
        self.reservoir = max(reservoir, 1)
        self.max_sample_bytes = max_sample_bytes
        self.dictionary_bytes = dictionary_bytes
        self.level = level
        self._lock = threading.Lock()
        self._samples: dict[str, list[bytes]] = {}
        self._seen: dict[str, int] = {}
        self._due_at: dict[str, int] = {}  # shape -> count at which training is due; 0: never again
        self._take_at: dict[str, int] = {}  # shape -> count of the next record the full reservoir takes
        self._w: dict[str, float] = {}  # shape -> algorithm L's running weight
        self._rng = random.Random(os.urandom(16))

    @classmethod
    def from_policy(cls, policy: Any) -> DictionaryTrainer:
        """The trainer a :class:`~memstrata.codecs.CompressionPolicy` describes."""
        p = policy
        return cls(p.train_after, shape_train_after=p.kind_train_after, retrain_factor=p.retrain_factor,
                   reservoir=p.sample_reservoir, max_sample_bytes=p.record_bytes,
                   dictionary_bytes=p.dictionary_bytes, level=p.zstd_level)

    def offer(self, sample: bytes, shape: str = "") -> bool:
        """Take ``sample`` (a serialized record of ``shape``) into the sample; True when training is now due."""
        due_at = self._due_at.get(shape)
        if due_at is None:
            due_at = self.shape_train_after if shape else self.train_after
        if not due_at or len(sample) > self.max_sample_bytes:
            return False
        with self._lock:
            due_at = self._due_at.get(shape, due_at)  # another thread may have trained meanwhile
            if not due_at:
                return False
            n = self._seen[shape] = self._seen.get(shape, 0) + 1
            samples = self._samples.setdefault(shape, [])
            if len(samples) < self.reservoir:
                samples.append(sample)
                if len(samples) == self.reservoir:
                    self._skip(shape, n, 1.0)
            elif n >= self._take_at.get(shape, n):  # the record the skip drawn last time lands on
                samples[self._rng.randrange(self.reservoir)] = sample
                self._skip(shape, n, self._w.get(shape, 1.0))
            if n < due_at:
                return False
            self._due_at[shape] = due_at * self.retrain_factor
        return True

    def _skip(self, shape: str, n: int, w: float) -> None:
        """Draw which later record the full reservoir of ``shape`` takes next (algorithm L; under the lock).

        Every record seen so far stays in the sample with the same probability,
        as with a replacement drawn for each record, but without the draw.
        """
        rng, k = self._rng, self.reservoir
        w *= math.exp(math.log(1.0 - rng.random()) / k)  # 1 - random() is in (0, 1]: log is defined
        self._w[shape] = w
        gap = math.log(1.0 - rng.random()) / math.log1p(-w) if w < 1.0 else 0.0
        self._take_at[shape] = n + int(gap) + 1

    def samples(self, shape: str = "") -> list[bytes]:
        """The current sample of ``shape``."""
        with self._lock:
            return list(self._samples.get(shape, ()))

    def stop(self, shape: str = "") -> None:
        """Take no more samples of ``shape`` and drop those kept (it is trained for good, or cannot be)."""
        with self._lock:
            self._due_at[shape] = 0
            self._samples.pop(shape, None)

    def collected(self, shape: str = "") -> int:
        """How many samples of ``shape`` are kept now."""
        return len(self._samples.get(shape, ()))

    def shapes(self) -> list[str]:
        """The shapes sampled so far."""
        with self._lock:
            return list(self._seen)

    def fit(self, samples: Iterable[Any], size: int | None = None) -> tuple[bytes, bytes]:
        """Train a dictionary on ``samples`` and register it; returns ``(digest, dictionary bytes)``.

        ``size`` defaults to :func:`dictionary_size` of the samples, capped at
        ``dictionary_bytes``. Raises ``ValueError`` when zstd cannot train on
        the samples (too few, or too uniform).
        """
        items = [bytes(s) for s in samples]
        if size is None:
            size = dictionary_size(items, self.dictionary_bytes)
        d = train_dictionary(items, size, level=self.level)
        return d, get_dictionary(d)
