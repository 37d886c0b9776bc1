"""SQLite store schema versions: a newer store is refused, an older one migrated, and
store_meta is append-only like the history (checked with the sqlite3 module directly)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from fixtures.plans import make_plan

from scanplan.errors import ScanplanError
from scanplan.store import SQLiteStore
from scanplan.store.sqlite import STORE_SCHEMA_VERSION

# The version-1 schema as the first release wrote it (tables, indexes, triggers on the three
# history tables, none on store_meta); written here by hand, not by the code under test.
V1_SCHEMA = """
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO store_meta (key, value) VALUES ('schema_version', '1');
CREATE TABLE plans (plan_sha256 TEXT PRIMARY KEY CHECK (length(plan_sha256) = 64),
    name TEXT NOT NULL, created_utc TEXT NOT NULL, recorded_utc TEXT NOT NULL,
    plan_json TEXT NOT NULL);
CREATE TABLE plan_points (plan_sha256 TEXT NOT NULL REFERENCES plans (plan_sha256),
    period INTEGER NOT NULL, PRIMARY KEY (plan_sha256, period));
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    plan_sha256 TEXT REFERENCES plans (plan_sha256), period INTEGER, run_number INTEGER,
    time_utc TEXT NOT NULL, payload_json TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
    recorded_utc TEXT NOT NULL,
    FOREIGN KEY (plan_sha256, period) REFERENCES plan_points (plan_sha256, period));
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'append-only'); END;
"""


def raw(path, sql, args=()):
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows


def meta(path) -> dict[str, str]:
    return dict(raw(path, "SELECT key, value FROM store_meta"))


def test_new_store_has_current_version_and_protected_meta(tmp_path):
    path = tmp_path / "s.sqlite"
    SQLiteStore(path).record_plan(make_plan(2))
    assert meta(path)["schema_version"] == str(STORE_SCHEMA_VERSION)
    for sql in (
        "UPDATE store_meta SET value = '1' WHERE key = 'schema_version'",
        "UPDATE store_meta SET key = 'x' WHERE key = 'schema_version'",
        "DELETE FROM store_meta",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="store_meta is append-only"):
            raw(path, sql)
    assert meta(path)["schema_version"] == str(STORE_SCHEMA_VERSION)


@pytest.mark.parametrize("write", [False, True])
def test_newer_store_is_refused_unchanged(tmp_path, write):
    path = tmp_path / "s.sqlite"
    plan = make_plan(2)
    SQLiteStore(path).record_plan(plan)
    raw(path, "UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")  # raising: allowed
    before = path.read_bytes()
    st = SQLiteStore(path)
    with pytest.raises(ScanplanError, match="schema version 99, newer than this tool's"):
        if write:
            st.append("measured", plan_sha256=plan.content_sha256, period=0, payload={"a": 1})
        else:
            st.history()
    assert path.read_bytes() == before
    assert raw(path, "SELECT count(*) FROM events")[0][0] == 2


def test_version_1_store_is_read_then_migrated_on_first_write(tmp_path):
    path = tmp_path / "v1.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_SCHEMA)
    st = SQLiteStore(path)
    assert st.history() == [] and st.schema_version() == 1
    # v1 had no protection of store_meta
    raw(path, "INSERT INTO store_meta (key, value) VALUES ('note', 'x')")
    raw(path, "DELETE FROM store_meta WHERE key = 'note'")
    plan = make_plan(2)
    st.record_plan(plan)
    m = meta(path)
    assert m["schema_version"] == str(STORE_SCHEMA_VERSION) and "migrated_to_2_utc" in m
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw(path, "DELETE FROM store_meta WHERE key = 'migrated_to_2_utc'")
    assert len(st.history(plan_sha256=plan.content_sha256)) == 2


def test_invalid_or_missing_version_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_SCHEMA.replace("'schema_version', '1'", "'schema_version', 'abc'"))
    with pytest.raises(ScanplanError, match="no valid schema_version"):
        SQLiteStore(path).history()
    other = tmp_path / "other.sqlite"
    raw(other, "CREATE TABLE things (a)")
    with pytest.raises(ScanplanError, match="not a scanplan store"):
        SQLiteStore(other).append("measured", payload={"a": 1})
