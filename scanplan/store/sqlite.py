"""The default run-conditions store: one embedded SQLite file, append-only.

Tables: ``plans`` (hash, canonical JSON), ``plan_points`` (hash, period), ``events``
(kind, plan hash, period, run number, time, JSON payload, unique idempotency key).
Triggers forbid UPDATE and DELETE on all three and on ``store_meta`` (whose only permitted
change is raising ``schema_version`` in a migration), so history can only grow; foreign keys
make an event name a recorded plan and one of its periods.

``store_meta.schema_version`` is checked on every open: a store written by a newer tool is
refused (read or write) with a clear error; an older one is read as it is and migrated
(:data:`MIGRATIONS`, inside the first write transaction) before anything is appended. Every write is one ``BEGIN
IMMEDIATE`` transaction; a locked, read-only or corrupted file gives a clear
:class:`ScanplanError` and leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hw_interfaces.clock import iso_utc

from ..errors import ScanplanError
from ..records import Plan
from .base import (
    KIND_PLANNED,
    Event,
    RunConditionsStore,
    canonical_payload,
    check_event_fields,
    check_time_utc,
    default_idempotency_key,
)
from .location import default_store_path

#: schema of the store files this tool writes (history: 1 = tables and triggers on
#: plans/plan_points/events; 2 = store_meta protected by append-only triggers too)
STORE_SCHEMA_VERSION = 2
DEFAULT_BUSY_TIMEOUT_S = 10.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO store_meta (key, value) VALUES ('schema_version', '{STORE_SCHEMA_VERSION}');
CREATE TABLE IF NOT EXISTS plans (
    plan_sha256 TEXT PRIMARY KEY CHECK (length(plan_sha256) = 64),
    name TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    plan_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_points (
    plan_sha256 TEXT NOT NULL REFERENCES plans (plan_sha256),
    period INTEGER NOT NULL,
    PRIMARY KEY (plan_sha256, period)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    plan_sha256 TEXT REFERENCES plans (plan_sha256),
    period INTEGER,
    run_number INTEGER,
    time_utc TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    recorded_utc TEXT NOT NULL,
    FOREIGN KEY (plan_sha256, period) REFERENCES plan_points (plan_sha256, period)
);
CREATE INDEX IF NOT EXISTS events_plan_period ON events (plan_sha256, period);
CREATE INDEX IF NOT EXISTS events_run ON events (run_number);
"""
_TRIGGERS = "\n".join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'scanplan store: {table} is append-only ({op} refused)'); END;"
    for table in ("plans", "plan_points", "events")
    for op in ("UPDATE", "DELETE")
)
#: store_meta is append-only too; the one UPDATE allowed raises schema_version (a migration)
_META_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS store_meta_no_delete BEFORE DELETE ON store_meta
BEGIN SELECT RAISE(ABORT, 'scanplan store: store_meta is append-only (DELETE refused)'); END;
CREATE TRIGGER IF NOT EXISTS store_meta_no_update BEFORE UPDATE ON store_meta
WHEN NOT (OLD.key = 'schema_version' AND NEW.key = 'schema_version'
          AND CAST(NEW.value AS INTEGER) > CAST(OLD.value AS INTEGER))
BEGIN SELECT RAISE(ABORT, 'scanplan store: store_meta is append-only (UPDATE refused)'); END;
"""


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 1 stores had no triggers on store_meta."""
    _run_script(conn, _META_TRIGGERS)


#: from-version -> step to the next version (run in the write transaction, in order)
MIGRATIONS = {1: _migrate_1_to_2}


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute ``;``-separated statements inside the open transaction (no implicit COMMIT,
    unlike ``executescript``). Trigger bodies end with ``END;`` on their own statement."""
    buf = ""
    for part in script.split(";"):
        if not buf and not part.strip():
            continue
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            conn.execute(buf)
            buf = ""


class SQLiteStore(RunConditionsStore):
    """Run-conditions store in an SQLite file (created on first write).

    ``read_only`` opens the file in SQLite's read-only mode (writes raise
    :class:`ScanplanError`); ``busy_timeout_s`` is how long a write waits for another
    writer before giving up.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self.busy_timeout_s = busy_timeout_s

    # ---- plumbing ------------------------------------------------------------------------
    def _error(self, exc: sqlite3.Error, what: str) -> ScanplanError:
        msg = str(exc)
        low = msg.lower()
        if "readonly" in low or "read-only" in low or "attempt to write" in low:
            return ScanplanError(f"store {self.path} is read-only: cannot {what}")
        if "locked" in low or "busy" in low:
            return ScanplanError(
                f"store {self.path} is locked by another writer (waited {self.busy_timeout_s:g} s): "
                f"cannot {what}; nothing was written"
            )
        if "not a database" in low or "malformed" in low or "file is encrypted" in low:
            return ScanplanError(f"store {self.path} is not a scanplan SQLite store ({msg})")
        if "unable to open" in low:
            return ScanplanError(f"store {self.path} cannot be opened ({msg})")
        if "append-only" in low:
            return ScanplanError(msg)
        return ScanplanError(f"store {self.path}: cannot {what}: {msg}")

    @contextmanager
    def _connect(self, what: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write and self.read_only:
            raise ScanplanError(f"store {self.path} is opened read-only: cannot {what}")
        if self.path.is_dir():
            raise ScanplanError(f"store {self.path} is a directory, not an SQLite file")
        exists = self.path.exists()
        if not exists and not write:
            raise ScanplanError(
                f"store {self.path} does not exist (record a plan first: scanplan store record-plan)"
            )
        try:
            if self.read_only:
                uri = f"file:{self.path.resolve()}?mode=ro"
                conn = sqlite3.connect(
                    uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc, what) from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if write:
                conn.execute("BEGIN IMMEDIATE")
                version = self._schema_version(conn, what, new_ok=True)
                _run_script(conn, _SCHEMA)
                if version is not None:
                    self._migrate(conn, version)
                _run_script(conn, _TRIGGERS + _META_TRIGGERS)
            else:
                self._schema_version(conn, what, new_ok=False)
            yield conn
            if write:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._error(exc, what) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _schema_version(self, conn: sqlite3.Connection, what: str, *, new_ok: bool) -> int | None:
        """The file's schema version (None: an empty file, a new store). A newer version than
        this tool's, or a file that is no scanplan store, is a clear error."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "events" not in tables:
            if new_ok and not tables:
                return None
            raise ScanplanError(f"store {self.path} is not a scanplan store (no events table)")
        if "store_meta" not in tables:
            raise ScanplanError(f"store {self.path} has no store_meta table: not a scanplan store")
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except ValueError:
            version = None
        if version is None or version < 1:
            raise ScanplanError(
                f"store {self.path} has no valid schema_version ({row[0] if row else 'missing'!r})"
            )
        if version > STORE_SCHEMA_VERSION:
            raise ScanplanError(
                f"store {self.path} has schema version {version}, newer than this tool's "
                f"{STORE_SCHEMA_VERSION}: upgrade btf-scanplan to {what}; nothing was changed"
            )
        return version

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        """Bring a store of an older schema version up to date (in the open transaction)."""
        while version < STORE_SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(
                "UPDATE store_meta SET value = ? WHERE key = 'schema_version'", (str(version),)
            )
            conn.execute(
                "INSERT OR IGNORE INTO store_meta (key, value) VALUES (?, ?)",
                (f"migrated_to_{version}_utc", iso_utc()),
            )

    def schema_version(self) -> int:
        """Schema version of the store file (it must exist)."""
        with self._connect("read the schema version", write=False) as conn:
            version = self._schema_version(conn, "read the schema version", new_ok=False)
        return int(version or STORE_SCHEMA_VERSION)

    @staticmethod
    def _event(row: tuple, created: bool = True) -> Event:
        return Event(
            id=row[0],
            kind=row[1],
            plan_sha256=row[2],
            period=row[3],
            run_number=row[4],
            time_utc=row[5],
            payload=json.loads(row[6]),
            idempotency_key=row[7],
            recorded_utc=row[8],
            created=created,
        )

    _COLS = (
        "id, kind, plan_sha256, period, run_number, time_utc, payload_json, idempotency_key, "
        "recorded_utc"
    )

    def _append(
        self,
        conn: sqlite3.Connection,
        kind: str,
        plan_sha256: str | None,
        period: int | None,
        run_number: int | None,
        payload: Mapping[str, Any],
        idempotency_key: str | None,
        time_utc: str | None,
    ) -> Event:
        check_event_fields(kind, plan_sha256, period, run_number)
        payload_json = canonical_payload(payload)
        explicit_time = time_utc is not None
        when = check_time_utc(time_utc) if time_utc is not None else iso_utc()
        key = idempotency_key or default_idempotency_key(
            kind, plan_sha256, period, run_number, when, payload_json
        )
        if not isinstance(key, str) or not key.strip() or len(key) > 512:
            raise ScanplanError(f"idempotency key must be a non-empty string (<= 512), got {key!r}")
        row = conn.execute(
            f"SELECT {self._COLS} FROM events WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if row is not None:
            same = (row[1], row[2], row[3], row[4], row[6]) == (
                kind,
                plan_sha256,
                period,
                run_number,
                payload_json,
            ) and (not explicit_time or row[5] == when)
            if not same:
                raise ScanplanError(
                    f"idempotency key {key!r} is already recorded (event {row[0]}, kind "
                    f"{row[1]}) with different content; history is append-only"
                )
            return self._event(row, created=False)
        if plan_sha256 is not None:
            known = conn.execute(
                "SELECT count(*) FROM plans WHERE plan_sha256 = ?", (plan_sha256,)
            ).fetchone()[0]
            if not known:
                raise ScanplanError(
                    f"plan {plan_sha256[:12]} is not in store {self.path}; record it first "
                    "(scanplan store record-plan)"
                )
            if period is not None:
                ok = conn.execute(
                    "SELECT count(*) FROM plan_points WHERE plan_sha256 = ? AND period = ?",
                    (plan_sha256, period),
                ).fetchone()[0]
                if not ok:
                    raise ScanplanError(f"plan {plan_sha256[:12]} has no period {period}")
        recorded = iso_utc()
        cur = conn.execute(
            "INSERT INTO events (kind, plan_sha256, period, run_number, time_utc, payload_json, "
            "idempotency_key, recorded_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, plan_sha256, period, run_number, when, payload_json, key, recorded),
        )
        return Event(
            id=int(cur.lastrowid or 0),
            kind=kind,
            plan_sha256=plan_sha256,
            period=period,
            run_number=run_number,
            time_utc=when,
            payload=json.loads(payload_json),
            idempotency_key=key,
            recorded_utc=recorded,
        )

    # ---- API -----------------------------------------------------------------------------
    def record_plan(self, plan: Plan) -> list[Event]:
        """Store a sealed plan and one ``planned`` event per point, in one transaction.

        Idempotent: recording the same plan again adds nothing (events ``created`` False).
        """
        sha = plan.compute_hash()
        if plan.content_sha256 and plan.content_sha256 != sha:
            raise ScanplanError(
                f"plan content hash mismatch (stored {plan.content_sha256[:12]}, actual "
                f"{sha[:12]}): the plan was modified after it was sealed"
            )
        with self._connect("record the plan", write=True) as conn:
            now = iso_utc()
            exists = conn.execute(
                "SELECT count(*) FROM plans WHERE plan_sha256 = ?", (sha,)
            ).fetchone()[0]
            if not exists:
                conn.execute(
                    "INSERT INTO plans (plan_sha256, name, created_utc, recorded_utc, plan_json) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (sha, plan.name, plan.created_utc, now, plan.sealed().model_dump_json()),
                )
                conn.executemany(
                    "INSERT INTO plan_points (plan_sha256, period) VALUES (?, ?)",
                    [(sha, p.period) for p in plan.points],
                )
            return [
                self._append(
                    conn,
                    KIND_PLANNED,
                    sha,
                    p.period,
                    None,
                    p.model_dump(mode="json"),
                    f"planned:{sha}:{p.period}",
                    None,
                )
                for p in sorted(plan.points, key=lambda q: q.period)
            ]

    def append(
        self,
        kind: str,
        *,
        plan_sha256: str | None = None,
        period: int | None = None,
        run_number: int | None = None,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        time_utc: str | None = None,
    ) -> Event:
        with self._connect(f"append a {kind!r} event", write=True) as conn:
            return self._append(
                conn,
                kind,
                plan_sha256,
                period,
                run_number,
                payload or {},
                idempotency_key,
                time_utc,
            )

    def history(
        self,
        *,
        plan_sha256: str | None = None,
        period: int | None = None,
        run_number: int | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Event]:
        where, args = [], []
        for col, value in (
            ("plan_sha256", plan_sha256),
            ("period", period),
            ("run_number", run_number),
        ):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        kind_list = list(kinds) if kinds is not None else None
        if kind_list is not None:
            where.append(f"kind IN ({', '.join('?' for _ in kind_list) or 'NULL'})")
            args.extend(kind_list)
        sql = f"SELECT {self._COLS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect("read the history", write=False) as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [self._event(r) for r in rows]

    def has_plan(self, plan_sha256: str) -> bool:
        """Whether the plan with this full hash is recorded (a missing store file: False)."""
        if not self.path.exists():
            return False
        with self._connect("look up a plan", write=False) as conn:
            n = conn.execute(
                "SELECT count(*) FROM plans WHERE plan_sha256 = ?", (plan_sha256,)
            ).fetchone()[0]
        return bool(n)

    def resolve_plan_sha(self, prefix: str) -> str:
        """Full hash of the one recorded plan whose hash starts with ``prefix`` (>= 6 hex)."""
        p = prefix.strip().lower()
        if len(p) < 6 or any(c not in "0123456789abcdef" for c in p):
            raise ScanplanError(f"plan hash prefix must be >= 6 hex digits, got {prefix!r}")
        with self._connect("look up a plan", write=False) as conn:
            rows = conn.execute(
                "SELECT plan_sha256 FROM plans WHERE plan_sha256 LIKE ? ORDER BY plan_sha256",
                (p + "%",),
            ).fetchall()
        if not rows:
            raise ScanplanError(f"no plan {p} in store {self.path}")
        if len(rows) > 1:
            raise ScanplanError(
                f"plan prefix {p} is ambiguous ({len(rows)} plans): give more digits"
            )
        return rows[0][0]

    def get_plan(self, sha_or_prefix: str) -> Plan:
        """The recorded plan (hash verified)."""
        sha = self.resolve_plan_sha(sha_or_prefix)
        with self._connect("read a plan", write=False) as conn:
            text = conn.execute(
                "SELECT plan_json FROM plans WHERE plan_sha256 = ?", (sha,)
            ).fetchone()[0]
        plan = Plan.model_validate_json(text)
        if plan.compute_hash() != sha:
            raise ScanplanError(f"plan {sha[:12]} in store {self.path} does not match its hash")
        return plan

    def plans(self) -> list[dict[str, Any]]:
        """Recorded plans: hash, name, created and recorded times, number of points."""
        with self._connect("list plans", write=False) as conn:
            rows = conn.execute(
                "SELECT p.plan_sha256, p.name, p.created_utc, p.recorded_utc, "
                "(SELECT count(*) FROM plan_points q WHERE q.plan_sha256 = p.plan_sha256) "
                "FROM plans p ORDER BY p.recorded_utc, p.plan_sha256"
            ).fetchall()
        return [
            dict(
                zip(
                    ("plan_sha256", "name", "created_utc", "recorded_utc", "points"), r, strict=True
                )
            )
            for r in rows
        ]
