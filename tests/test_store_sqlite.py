"""SQLite run-conditions store: append-only history, idempotency, transactions, bad files."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from fixtures.plans import make_plan

from scanplan.errors import ScanplanError
from scanplan.store import SQLiteStore


@pytest.fixture()
def store(tmp_path):
    return SQLiteStore(tmp_path / "runs.sqlite", busy_timeout_s=0.2)


def _raw(store, sql, args=()):
    with closing(sqlite3.connect(store.path)) as conn:
        return conn.execute(sql, args).fetchall()


def test_record_plan_is_idempotent(store):
    plan = make_plan(4)
    first = store.record_plan(plan)
    assert [e.created for e in first] == [True] * 4
    again = store.record_plan(plan)
    assert [e.created for e in again] == [False] * 4
    assert [e.id for e in again] == [e.id for e in first]
    assert _raw(store, "SELECT count(*) FROM events")[0][0] == 4
    assert _raw(store, "SELECT count(*) FROM plans")[0][0] == 1
    stored = store.get_plan(plan.content_sha256[:10])
    assert stored == plan
    planned = store.history(plan_sha256=plan.content_sha256, period=2, kinds=["planned"])
    assert planned[0].payload["e_beam_mev"] == plan.point(2).e_beam_mev


def test_append_history_latest_and_runs(store):
    plan = make_plan(3)
    sha = plan.content_sha256
    store.record_plan(plan)
    store.append("run_started", plan_sha256=sha, period=1, run_number=50284,
                 payload={"run_number": 50284}, idempotency_key="rs:1:50284")  # fmt: skip
    store.append("applied", plan_sha256=sha, period=1, run_number=50284,
                 payload={"dhstb01_current_a": 180.0}, time_utc="2026-11-25T12:00:00Z")  # fmt: skip
    store.append("applied", plan_sha256=sha, period=1, run_number=50284,
                 payload={"dhstb01_current_a": 180.5}, time_utc="2026-11-25T12:10:00Z")  # fmt: skip
    store.append("measured", plan_sha256=sha, period=2, run_number=50290, payload={"runPOT": 7e9})
    hist = store.history(plan_sha256=sha, run_number=50284)
    assert [e.kind for e in hist] == ["run_started", "applied", "applied"]
    latest = store.latest(plan_sha256=sha, kinds=["applied"])
    assert latest[("applied", 1, 50284)].payload == {"dhstb01_current_a": 180.5}
    assert store.runs_by_period(sha) == {1: [50284], 2: [50290]}
    assert store.history(kinds=[]) == []


def test_idempotency_key_same_content_no_duplicate_different_content_error(store):
    plan = make_plan(2)
    sha = plan.content_sha256
    store.record_plan(plan)
    kw = dict(plan_sha256=sha, period=0, run_number=7, payload={"x": 1.5}, idempotency_key="k1")
    a = store.append("verdict", **kw)
    b = store.append("verdict", **kw)  # a resumed run repeats the call
    assert a.created and not b.created and a.id == b.id
    assert len(store.history(kinds=["verdict"])) == 1
    with pytest.raises(ScanplanError, match="different content"):
        store.append("verdict", **{**kw, "payload": {"x": 2.0}})
    # the same explicit time twice also de-duplicates without a key
    t = "2026-11-25T13:00:00Z"
    e1 = store.append("reading", payload={"i": 1}, time_utc=t)
    e2 = store.append("reading", payload={"i": 1}, time_utc=t)
    assert e1.id == e2.id and not e2.created


def test_history_cannot_be_updated_or_deleted(store):
    store.record_plan(make_plan(1))
    for sql in (
        "UPDATE events SET kind = 'x'",
        "DELETE FROM events",
        "DELETE FROM plans",
        "UPDATE plans SET name = 'x'",
        "DELETE FROM plan_points",
    ):
        with (
            closing(sqlite3.connect(store.path)) as conn,
            pytest.raises(sqlite3.IntegrityError, match="append-only"),
        ):
            conn.execute(sql)
    assert _raw(store, "SELECT count(*) FROM events")[0][0] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kind="Bad Kind"), "lower-case identifier"),
        (dict(kind="applied", plan_sha256="abc"), "64 lower-case hex"),
        (dict(kind="applied", plan_sha256="0" * 64), "not in store"),
        (dict(kind="applied", period=-1), "period must be"),
        (dict(kind="applied", run_number=0), "run number must be"),
        (dict(kind="applied", payload={"x": float("nan")}), "not finite"),
        (dict(kind="applied", payload={"x": object()}), "not JSON-serialisable"),
        (dict(kind="applied", time_utc="yesterday"), "ISO 8601 in UTC"),
        (dict(kind="applied", time_utc="2026-11-25T12:00:00+01:00"), "ISO 8601 in UTC"),
    ],
)
def test_bad_events_are_refused_and_nothing_written(store, kwargs, message):
    store.record_plan(make_plan(1))
    kind = kwargs.pop("kind")
    with pytest.raises(ScanplanError, match=message):
        store.append(kind, **kwargs)
    assert _raw(store, "SELECT count(*) FROM events")[0][0] == 1


def test_unknown_period_of_a_recorded_plan(store):
    plan = make_plan(2)
    store.record_plan(plan)
    with pytest.raises(ScanplanError, match="has no period 5"):
        store.append("applied", plan_sha256=plan.content_sha256, period=5, payload={})


def test_hash_mismatch_is_refused(store):
    plan = make_plan(2)
    tampered = plan.model_copy(update={"name": "edited by hand"})
    with pytest.raises(ScanplanError, match="hash mismatch"):
        store.record_plan(tampered)
    assert not store.path.exists() or _raw(store, "SELECT count(*) FROM plans")[0][0] == 0


def test_locked_store_gives_a_clear_error_and_writes_nothing(store):
    store.record_plan(make_plan(1))
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with pytest.raises(ScanplanError, match="locked by another writer"):
            store.record_plan(make_plan(3, name="second"))
        other.execute("ROLLBACK")
    assert _raw(store, "SELECT count(*) FROM plans")[0][0] == 1
    assert _raw(store, "SELECT count(*) FROM events")[0][0] == 1


def test_read_only_missing_and_corrupted_files(tmp_path, store):
    store.record_plan(make_plan(1))
    ro = SQLiteStore(store.path, read_only=True)
    assert len(ro.history()) == 1
    with pytest.raises(ScanplanError, match="read-only"):
        ro.append("applied", payload={})
    with pytest.raises(ScanplanError, match="does not exist"):
        SQLiteStore(tmp_path / "nope.sqlite").history()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ScanplanError, match="not a scanplan SQLite store"):
        SQLiteStore(junk).append("applied", payload={})
    assert junk.read_bytes() == b"this is not sqlite at all" * 100
    with pytest.raises(ScanplanError, match="is a directory"):
        SQLiteStore(tmp_path).history()
    with pytest.raises(ScanplanError, match="no plan ffffff"):
        store.resolve_plan_sha("ffffff")


def test_failure_in_the_middle_of_record_plan_rolls_everything_back(store):
    plan = make_plan(4)
    sha = plan.content_sha256
    # an unrelated event squatting on the key of the third planned event
    store.append("note", payload={"text": "x"}, idempotency_key=f"planned:{sha}:2")
    with pytest.raises(ScanplanError, match="different content"):
        store.record_plan(plan)  # plan row, points and events 0, 1 were inserted, then this
    assert _raw(store, "SELECT count(*) FROM plans")[0][0] == 0
    assert _raw(store, "SELECT count(*) FROM plan_points")[0][0] == 0
    assert _raw(store, "SELECT kind FROM events") == [("note",)]
