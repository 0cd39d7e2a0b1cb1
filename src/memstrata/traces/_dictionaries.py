"""zstd dictionaries trained on the trace stream: when to train, adoption, re-encoding, retraining.

The training itself is the codecs' one trainer (:class:`~memstrata.codecs.DictionaryTrainer`:
its size rule, zstd's trainer, registration); this module decides which samples
(kept in the database, so a reopened memory resumes) and adopts the result.
"""

from __future__ import annotations

from collections.abc import Iterable

from memstrata.errors import CorruptDataError
from memstrata.traces._blob import ENC_JSON
from memstrata.traces._config import STREAM, trace_type
from memstrata.traces._database import guarded, scopes
from memstrata.traces._integrity import trace_check
from memstrata.traces._state import TraceState
from memstrata.traces._types import TraceType

__all__ = ["Dictionaries"]


def _train_one(samples: list[bytes], limit: int, level: int) -> bytes | None:
    """A zstd dictionary of at most ``limit`` bytes trained on ``samples``, or ``None`` if zstd cannot."""
    from memstrata.codecs import DictionaryTrainer

    try:
        return bytes(DictionaryTrainer(0, dictionary_bytes=limit, level=level).fit(samples)[1])
    except ValueError:
        return None


class Dictionaries(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: dictionary training and adoption."""

    @guarded
    def _load_dictionaries(self) -> None:
        """Register the stored dictionaries; reload training samples for scopes still without one."""
        conn = self._conn
        for version, scope, dig, dictionary in conn.execute(
            "SELECT version, scope, digest, dictionary FROM dictionaries ORDER BY version"
        ):
            self._codec.add_dictionary(version, dictionary, dig)
            if self._codec.has_dictionary(version):
                self._active[scope] = version
            self._n_dictionaries = max(self._n_dictionaries, version)
        for scope in scopes():
            if scope not in self._active:
                limit = self.config["train_after" if scope == STREAM else "type_train_after"]
                self._samples[scope] = self._stored_samples(scope, limit)

    def _stored_samples(self, scope: str, limit: int) -> list[bytes]:
        """The serialized data of ``scope``'s latest ``limit`` stored traces (damaged ones skipped)."""
        if scope == STREAM:
            rows = self._conn.execute(
                "SELECT compressed_data, dictionary_version FROM traces ORDER BY seq DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._conn.execute(
                "SELECT compressed_data, dictionary_version FROM traces WHERE trace_type = ? ORDER BY seq DESC LIMIT ?",
                (scope, limit),
            )
        samples = []
        for blob, version in rows.fetchall():
            try:
                samples.append(self._codec.decode(blob, version)[1])
            except CorruptDataError:
                continue  # reported when that trace is read, not here
        return samples

    def _due_training(self) -> list[str]:
        due = []
        for scope, samples in self._samples.items():
            if scope in self._active:
                continue
            if scope != STREAM and STREAM not in self._active:
                continue  # per-type dictionaries are measured against the stream's
            if len(samples) >= self._train_threshold(scope):
                due.append(scope)
        due.sort(key=lambda s: s != STREAM)  # the stream dictionary first
        return due

    def _train_threshold(self, scope: str) -> int:
        found = self._train_at.get(scope)
        if found is not None:
            return found
        return int(self.config["train_after"] if scope == STREAM else self.config["type_train_after"])

    def _adopt(self, scope: str, dictionary: bytes, n_samples: int) -> int:
        """Store a new dictionary version for ``scope`` and make it active (inside a transaction)."""
        with self._state_lock:
            self._n_dictionaries += 1
            version = self._n_dictionaries
            self._seq += 1
            seq = self._seq
            dig = self._codec.add_dictionary(version, dictionary)
            self._trained_now.append((scope, self._active.get(scope), version, seq))
        self._conn.execute(
            "INSERT INTO dictionaries (version, scope, digest, dictionary, n_samples, created, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version, scope, dig, dictionary, n_samples, self._clock(), seq),
        )
        with self._state_lock:
            self._active[scope] = version
        return version

    def _abort_dictionaries(self) -> None:
        """Undo the dictionaries adopted by a transaction that rolled back (caller holds the state lock)."""
        for scope, previous, version, seq in reversed(self._trained_now):
            if previous is None:
                self._active.pop(scope, None)
            else:
                self._active[scope] = previous
            self._codec.remove_dictionary(version)
            self._aborted.append(seq)
        self._trained_now = []

    def _train(self, scope: str) -> None:
        """Train ``scope``'s dictionary, store it, re-encode older traces; inside a transaction.

        A per-type dictionary is adopted only if it compresses that type's samples
        smaller than the stream dictionary does; otherwise (and when zstd cannot
        train on the samples) training is retried with twice as many samples.
        """
        with self._state_lock:
            samples = self._samples.get(scope, [])
            version = self._n_dictionaries + 1
            stream = self._active.get(STREAM, 0)
        dictionary = _train_one(samples, self.config["dictionary_bytes"], self.config["zstd_level"])
        adopted = dictionary is not None
        if dictionary is not None and scope != STREAM:
            codec = self._codec
            codec.add_dictionary(version, dictionary)
            mine = sum(len(codec.encode(x, ENC_JSON, version)[0]) for x in samples)
            adopted = mine < sum(len(codec.encode(x, ENC_JSON, stream)[0]) for x in samples)
            codec.remove_dictionary(version)
        if not adopted or dictionary is None:
            with self._state_lock:
                self._train_at[scope] = 2 * max(len(samples), 1)
            return
        with self._state_lock:
            self._samples.pop(scope, None)
        self._reencode(scope, self._adopt(scope, dictionary, len(samples)))

    def _reencode(self, scope: str, version: int) -> int:
        """Re-encode the stored traces a new dictionary now covers; returns how many changed."""
        columns = ("SELECT trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata,"
                   " timestamp, retention_priority, seq, dictionary_version, row_check FROM traces")
        if scope == STREAM:
            owned = [s for s in self._active if s != STREAM]
            sql = columns + " WHERE dictionary_version = 0"
            if owned:
                sql += f" AND trace_type NOT IN ({', '.join('?' * len(owned))})"
            rows = self._conn.execute(sql, owned).fetchall()
        else:
            rows = self._conn.execute(columns + " WHERE trace_type = ? AND dictionary_version != ?",
                                      (scope, version)).fetchall()
        updates = []
        for row in rows:
            if row[10] != trace_check(row):
                continue  # leave damaged rows as they are: reads and verify() report them
            try:
                encoding, raw = self._codec.decode(row[2], row[9])
            except CorruptDataError:
                continue
            new_blob, used = self._codec.encode(raw, encoding, version)
            if used == version and len(new_blob) < len(row[2]):
                new = (*row[:2], new_blob, len(new_blob) / len(raw), *row[4:9], used)
                updates.append((new_blob, new[3], used, trace_check(new), row[0]))
        if updates:
            self._conn.executemany(
                "UPDATE traces SET compressed_data = ?, compression_ratio = ?, dictionary_version = ?, row_check = ?"
                " WHERE trace_id = ?",
                updates,
            )
            with self._state_lock:
                memory = self._memory
                for new_blob, ratio, used, _, trace_id in updates:
                    old = memory.get(trace_id)
                    if old is not None:
                        memory[trace_id] = (*old[:2], new_blob, ratio, *old[4:9], used)
        return len(updates)

    @guarded
    def _retrain(self, scopes: Iterable[str] | None, n_samples: int) -> dict[str, int]:
        self._flush()
        if scopes is None:
            scopes = [t.value for t in TraceType]
        wanted = [trace_type(s).value if s != STREAM else STREAM for s in scopes]
        report: dict[str, int] = {}
        with self._db_lock:
            conn = self._conn
            for scope in wanted:
                samples = self._stored_samples(scope, n_samples)
                dictionary = _train_one(samples, self.config["dictionary_bytes"], self.config["zstd_level"])
                if dictionary is None:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    report[scope] = self._reencode(scope, self._adopt(scope, dictionary, len(samples)))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    with self._state_lock:
                        self._abort_dictionaries()
                    raise
                with self._state_lock:
                    self._trained_now = []
        return report
