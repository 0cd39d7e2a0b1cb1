"""The SQLite schema of a trace database (version 2) and the migration from version 1."""

from __future__ import annotations

__all__ = ["APPLICATION_ID", "MIGRATE_1_TO_2", "SCHEMA_SQL", "SCHEMA_VERSION"]

#: Version of the table layout below, recorded in ``meta`` under ``schema_version``.
SCHEMA_VERSION = 2

#: ``PRAGMA application_id`` of a trace database ("mStr"): a SQLite file without
#: it (and without the version-1 tables) is someone else's, and is refused.
APPLICATION_ID = 0x6D537472

# The two tables and their indexes are the documented interface; the extra
# columns (seq, dictionary_version, row_check, direction_rule) and tables (meta,
# dictionaries, tombstones, trace_log) serve sequence numbers, dictionary
# versions, row checksums, provable deletes (``old_seq``: the removed row's
# sequence number, so every number stays accounted for) and the cheap commit of urgent
# traces (``trace_log``, moved into ``traces`` on flush).
# ``traces`` and ``trace_log`` share their columns on purpose: a logged row moves
# into ``traces`` unchanged. (The text SQLite keeps is the formatted string: the
# same bytes as when it was written out twice.)
_TRACE_COLUMNS = """\
    trace_type TEXT NOT NULL,
    compressed_data BLOB NOT NULL,
    compression_ratio REAL NOT NULL,
    original_size INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    timestamp REAL NOT NULL,"""
SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
{_TRACE_COLUMNS}
    retention_priority REAL DEFAULT 1.0,
    seq INTEGER NOT NULL DEFAULT 0,
    dictionary_version INTEGER NOT NULL DEFAULT 0,
    row_check BLOB
);
CREATE INDEX IF NOT EXISTS idx_traces_type_time ON traces(trace_type, timestamp);
CREATE TABLE IF NOT EXISTS trace_log (
    seq INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
{_TRACE_COLUMNS}
    retention_priority REAL,
    dictionary_version INTEGER NOT NULL,
    row_check BLOB
);
CREATE TABLE IF NOT EXISTS performance_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    metric_name TEXT NOT NULL,
    old_value REAL NOT NULL,
    new_value REAL NOT NULL,
    delta_magnitude REAL NOT NULL,
    delta_direction TEXT NOT NULL,
    confidence REAL NOT NULL,
    context TEXT NOT NULL,
    timestamp REAL NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    direction_rule TEXT NOT NULL DEFAULT '',
    row_check BLOB
);
CREATE INDEX IF NOT EXISTS idx_performance_metric_time ON performance_deltas(metric_name, timestamp);
CREATE TABLE IF NOT EXISTS dictionaries (
    version INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    digest BLOB NOT NULL,
    dictionary BLOB NOT NULL,
    n_samples INTEGER NOT NULL,
    created REAL NOT NULL,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (
    trace_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    deleted_at REAL NOT NULL,
    reason TEXT NOT NULL,
    old_seq INTEGER
);
"""

# Version 1 had no row checksums, no direction rule and no contiguity promise;
# the checksums are computed by the migration (over the rows as they are).
MIGRATE_1_TO_2 = """
ALTER TABLE traces ADD COLUMN row_check BLOB;
ALTER TABLE trace_log ADD COLUMN row_check BLOB;
ALTER TABLE performance_deltas ADD COLUMN direction_rule TEXT NOT NULL DEFAULT '';
ALTER TABLE performance_deltas ADD COLUMN row_check BLOB;
ALTER TABLE tombstones ADD COLUMN old_seq INTEGER;
"""
