"""Access to PADME's online run database ``PadmeDAQ`` (MariaDB/MySQL) through pymysql.

Only rows are added (``config_para_name``, ``run_config_para``, ``log_entry``) and read;
this module never runs DDL on the database it talks to. Every public call is one
transaction: it commits completely or rolls back completely. Group several writes into one
transaction with :meth:`PadmeDB.transaction`.

Connection parameters come from the arguments or from the environment variables of the
PADME software: ``PADME_DB_HOST`` (default ``localhost``), ``PADME_DB_PORT`` (``5501``),
``PADME_DB_USER``, ``PADME_DB_PASSWD``, ``PADME_DB_NAME`` (``PadmeDAQ``). Every connection
has connect, read and write timeouts.

Errors (``hw_interfaces.db_errors``): server down, restarting, connection lost, lock wait
timeout or deadlock -> :class:`PadmeDBUnavailable` (retryable, exit 75); login refused, no
user, unknown database or no access to it (a wrong ``PADME_DB_NAME``) ->
:class:`PadmeDBAccessDenied`; no write permission or read-only server ->
:class:`PadmeDBReadOnly`; missing table -> :class:`PadmeDBSchemaError`; unknown run or a
constraint violation -> :class:`PadmeDBDataError`.

Concurrency: sessions run at READ COMMITTED (every read sees the latest committed rows, no
gap locks); :meth:`PadmeDBSession.lock_run` takes the InnoDB row lock of the ``run`` row
(``SELECT ... FOR UPDATE``), so writers of the same run are serialised. A deadlock or lock
wait timeout is :class:`PadmeDBLockConflict`; :meth:`PadmeDB.run_transaction` runs an
idempotent transaction again a bounded number of times after one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, TypeVar

from .db_errors import (
    PadmeDBAccessDenied,
    PadmeDBDataError,
    PadmeDBError,
    PadmeDBLockConflict,
    PadmeDBReadOnly,
    PadmeDBSchemaError,
    PadmeDBUnavailable,
)

T = TypeVar("T")

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5501
DEFAULT_DATABASE = "PadmeDAQ"
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 15.0
DEFAULT_WRITE_TIMEOUT_S = 15.0

#: Log entry types used by RunControl for the start / end-of-run comments.
LOG_TYPES = ("SOR", "EOR")
#: Column limits of the PadmeDAQ schema (facts 6).
MAX_PARA_NAME_LEN = 128
MAX_PARA_VALUE_LEN = 1024
MAX_LOG_TYPE_LEN = 128

# MySQL/MariaDB error numbers we classify.
# retryable: too many connections, shutdown in progress, aborted/lost connections, server
# gone, lock wait timeout (1205), deadlock (1213), connection refused/lost (client 2xxx)
_UNAVAILABLE = {1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 2002, 2003, 2005}
_LOCK_CONFLICT = {1205, 1213}
_UNAVAILABLE |= {2006, 2013, 2055, 1927}
# refusals of the login or of the database itself: 1045 access denied (password/user),
# 1044 access denied to the database (also what a non-existent database looks like to an
# account without global rights), 1049 unknown database
_ACCESS = {1044, 1045, 1049}
_READ_ONLY = {1036, 1142, 1143, 1227, 1290, 1792, 1836}
_SCHEMA = {1054, 1146}
_DATA = {1048, 1062, 1216, 1217, 1406, 1451, 1452}


def padmedaq_schema_sql() -> str:
    """The PadmeDAQ table definitions kept in the package (``schema/padmedaq.sql``).

    For tests and development databases only: production code never creates tables.
    """
    return (resources.files(__package__) / "schema" / "padmedaq.sql").read_text(encoding="utf-8")


def schema_statements(sql: str | None = None) -> list[str]:
    """The statements of :func:`padmedaq_schema_sql` (``--`` comments removed)."""
    text = padmedaq_schema_sql() if sql is None else sql
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


@dataclass(frozen=True)
class RunRow:
    """A row of ``run``; times are naive UTC datetimes as stored (``None`` when unset)."""

    number: int
    name: str | None
    user: str | None
    run_type_id: int
    status: int
    time_create: datetime | None
    time_init: datetime | None
    time_start: datetime | None
    time_stop: datetime | None
    total_events: int | None


@dataclass(frozen=True)
class LogEntry:
    """A row of ``log_entry``."""

    id: int
    run_number: int
    type: str | None
    level: int | None
    time: datetime | None
    text: str | None


@dataclass(frozen=True)
class ConfigPara:
    """A ``run_config_para`` row joined with its name."""

    id: int
    run_number: int
    name: str
    value: str


def _env(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


class PadmeDBSession:
    """Operations inside one open transaction (see :meth:`PadmeDB.transaction`)."""

    def __init__(self, db: PadmeDB, conn: Any) -> None:
        self._db = db
        self._conn = conn
        #: id of the row added by the last INSERT of this session
        self.lastrowid: int | None = None

    def _insert(self, what: str, sql: str, args: Sequence[object]) -> int:
        """Run an INSERT into table ``what``; returns the new row's id."""
        self._execute(what, sql, args)
        if self.lastrowid is None:  # pymysql sets it after every INSERT
            raise PadmeDBDataError(
                f"INSERT into {what} returned no row id", device=self._db.device, key=what
            )
        return int(self.lastrowid)

    def _execute(
        self, what: str, sql: str, args: Sequence[object] | None = None
    ) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, args)
                rows = list(cur.fetchall())
                self.lastrowid = cur.lastrowid
                return rows
        except Exception as exc:
            raise self._db._translate(exc, what) from None

    # ---- reads ---------------------------------------------------------------------------
    def read_run(self, number: int, *, for_update: bool = False) -> RunRow:
        """The ``run`` row of ``number``; :class:`PadmeDBDataError` if there is none.
        ``for_update`` row-locks it until the transaction ends (``SELECT ... FOR UPDATE``)."""
        rows = self._execute(
            "run",
            "SELECT number, name, user, run_type_id, status, time_create, time_init, "
            "time_start, time_stop, total_events FROM run WHERE number = %s"
            + (" FOR UPDATE" if for_update else ""),
            (int(number),),
        )
        if not rows:
            raise PadmeDBDataError(
                f"run {number} is not in the PadmeDAQ database at {self._db.address}",
                device=self._db.device,
                key="run",
            )
        return RunRow(*rows[0])

    def lock_run(self, number: int) -> RunRow:
        """The ``run`` row of ``number``, row-locked until the transaction ends: a second
        writer of the same run waits here."""
        return self.read_run(number, for_update=True)

    def next_run_number(self) -> int:
        """The number the next run would get: the highest run number plus one (1 if none)."""
        rows = self._execute("run", "SELECT COALESCE(MAX(number), 0) + 1 FROM run")
        return int(rows[0][0])

    def config_para_name_id(self, name: str) -> int | None:
        """Id of a ``config_para_name`` row, ``None`` if the name is not known."""
        rows = self._execute(
            "config_para_name",
            "SELECT id FROM config_para_name WHERE name = %s",
            (name,),
        )
        return int(rows[0][0]) if rows else None

    def read_config_paras(self, run_number: int, prefix: str = "") -> list[ConfigPara]:
        """``run_config_para`` rows of a run (names starting with ``prefix``), in insert order."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._execute(
            "run_config_para",
            "SELECT p.id, p.run_number, n.name, p.value FROM run_config_para p "
            "JOIN config_para_name n ON n.id = p.config_para_name_id "
            "WHERE p.run_number = %s AND n.name LIKE %s ORDER BY p.id",
            (int(run_number), like),
        )
        return [ConfigPara(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]

    def read_log_entries(self, run_number: int, type: str | None = None) -> list[LogEntry]:
        """``log_entry`` rows of a run (of one ``type`` if given), in insert order."""
        sql = "SELECT id, run_number, type, level, time, text FROM log_entry WHERE run_number = %s"
        args: tuple[object, ...] = (int(run_number),)
        if type is not None:
            sql += " AND type = %s"
            args += (type,)
        rows = self._execute("log_entry", sql + " ORDER BY id", args)
        return [LogEntry(*r) for r in rows]

    # ---- writes (rows only) --------------------------------------------------------------
    def ensure_config_para_name(self, name: str, description: str | None = None) -> int:
        """Id of ``name`` in ``config_para_name``; the name is added on first use."""
        if not name or len(name) > MAX_PARA_NAME_LEN:
            raise PadmeDBDataError(
                f"config parameter name must have 1..{MAX_PARA_NAME_LEN} characters, got {name!r}",
                device=self._db.device,
                key="config_para_name",
            )
        found = self.config_para_name_id(name)
        if found is not None:
            return found
        # INSERT IGNORE: a writer of another run may add the same new name at the same time;
        # the unique key makes one of them win and the other read that row.
        self._execute(
            "config_para_name",
            "INSERT IGNORE INTO config_para_name (name, description) VALUES (%s, %s)",
            (name, description),
        )
        found = self.config_para_name_id(name)
        if found is None:
            raise PadmeDBDataError(
                f"config parameter name {name!r} could not be added",
                device=self._db.device,
                key="config_para_name",
            )
        return found

    def add_run_config_para(self, run_number: int, name: str, value: object) -> int:
        """Add a ``run_config_para`` row (the name is added if unknown); returns its id."""
        text = str(value)
        if len(text) > MAX_PARA_VALUE_LEN:
            raise PadmeDBDataError(
                f"value of {name} has {len(text)} characters; PadmeDAQ allows {MAX_PARA_VALUE_LEN}",
                device=self._db.device,
                key="run_config_para",
            )
        name_id = self.ensure_config_para_name(name)
        return self._insert(
            "run_config_para",
            "INSERT INTO run_config_para (run_number, config_para_name_id, value) "
            "VALUES (%s, %s, %s)",
            (int(run_number), name_id, text),
        )

    def add_log_entry(
        self, run_number: int, type: str, level: int, time: datetime, text: str
    ) -> int:
        """Add a ``log_entry`` row (``type`` 'SOR' or 'EOR'; ``time`` naive UTC); returns its id."""
        if type not in LOG_TYPES:
            raise PadmeDBDataError(
                f"log entry type must be one of {', '.join(LOG_TYPES)}, got {type!r}",
                device=self._db.device,
                key="log_entry",
            )
        return self._insert(
            "log_entry",
            "INSERT INTO log_entry (run_number, type, level, time, text) "
            "VALUES (%s, %s, %s, %s, %s)",
            (int(run_number), type, int(level), time, text),
        )


class PadmeDB:
    """A PadmeDAQ database. Arguments left ``None`` come from ``PADME_DB_*`` or defaults."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        self.host = host or _env("PADME_DB_HOST", DEFAULT_HOST)
        port_text = port if port is not None else _env("PADME_DB_PORT", str(DEFAULT_PORT))
        try:
            self.port = int(port_text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise PadmeDBAccessDenied(
                f"PADME_DB_PORT must be an integer, got {port_text!r}", device="PadmeDAQ"
            ) from None
        self.user = user if user is not None else _env("PADME_DB_USER", None)
        self.password = password if password is not None else _env("PADME_DB_PASSWD", "")
        self.database = database or _env("PADME_DB_NAME", DEFAULT_DATABASE)
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"

    @property
    def device(self) -> str:
        return f"PadmeDAQ {self.address}"

    def _translate(self, exc: BaseException, what: str) -> PadmeDBError:
        """Turn a pymysql/socket error into one of ``hw_interfaces.db_errors``."""
        import pymysql

        if isinstance(exc, PadmeDBError):
            return exc
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        kw = {"device": self.device, "key": what}
        if code in _ACCESS:
            if code == 1045:
                cause = f"login refused for user {self.user!r} (wrong user or password?)"
            else:
                cause = (
                    f"database {self.database!r} does not exist or user {self.user!r} has no "
                    "access to it (check PADME_DB_NAME)"
                )
            return PadmeDBAccessDenied(
                f"PadmeDAQ at {self.host}:{self.port}: {cause} (MariaDB error {code})", **kw
            )
        if code in _LOCK_CONFLICT:
            return PadmeDBLockConflict(
                f"PadmeDAQ database at {self.address}: {what} met a concurrent writer "
                f"({detail}); rolled back",
                **kw,
            )
        if code in _READ_ONLY:
            return PadmeDBReadOnly(
                f"PadmeDAQ database at {self.address} is read-only for user {self.user!r}: "
                f"write to {what} refused (MariaDB error {code})",
                **kw,
            )
        if code in _SCHEMA:
            return PadmeDBSchemaError(
                f"{self.address} is not a PadmeDAQ database ({what}: {detail})", **kw
            )
        if code in _DATA or isinstance(exc, pymysql.err.IntegrityError):
            return PadmeDBDataError(f"PadmeDAQ {what}: {detail}", **kw)
        if code in _UNAVAILABLE or isinstance(
            exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)
        ):
            return PadmeDBUnavailable(
                f"PadmeDAQ database at {self.address} is unavailable ({what}): {detail}", **kw
            )
        return PadmeDBError(f"PadmeDAQ database at {self.address} ({what}): {exc}", **kw)

    def _connect(self) -> Any:
        import pymysql

        if not self.user:
            raise PadmeDBAccessDenied(
                f"no user for the PadmeDAQ database at {self.address}: set PADME_DB_USER "
                "or pass a user",
                device=self.device,
                key="connect",
            )
        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password or "",
                database=self.database,
                connect_timeout=self.connect_timeout_s,
                read_timeout=self.read_timeout_s,
                write_timeout=self.write_timeout_s,
                autocommit=False,
                charset="utf8mb4",
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            )
        except Exception as exc:
            raise self._translate(exc, "connect") from None

    @contextmanager
    def transaction(self) -> Iterator[PadmeDBSession]:
        """One connection, one transaction: commit on success, roll back on any error."""
        conn = self._connect()
        try:
            session = PadmeDBSession(self, conn)
            try:
                yield session
                conn.commit()
            except BaseException as exc:
                try:
                    conn.rollback()
                except Exception:
                    pass  # the connection is gone: the server rolls back on its own
                if isinstance(exc, Exception) and not isinstance(exc, PadmeDBError):
                    import pymysql

                    if isinstance(exc, pymysql.err.Error):
                        raise self._translate(exc, "commit") from None
                raise
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def run_transaction(self, fn: Callable[[PadmeDBSession], T], *, attempts: int = 3) -> T:
        """``fn(session)`` in one transaction, run again (at most ``attempts`` times in all,
        with a short growing pause) after a :class:`PadmeDBLockConflict`. Only for ``fn``
        that is idempotent (its rollback leaves nothing behind)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as s:
                    return fn(s)
            except PadmeDBLockConflict:
                if attempt == attempts:
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- one-transaction conveniences ----------------------------------------------------
    def ping(self) -> None:
        """Connect and run a trivial query; raises :class:`PadmeDBUnavailable` if down."""
        with self.transaction() as s:
            s._execute("ping", "SELECT 1")

    def read_run(self, number: int) -> RunRow:
        with self.transaction() as s:
            return s.read_run(number)

    def next_run_number(self) -> int:
        with self.transaction() as s:
            return s.next_run_number()

    def read_config_paras(self, run_number: int, prefix: str = "") -> list[ConfigPara]:
        with self.transaction() as s:
            return s.read_config_paras(run_number, prefix)

    def read_log_entries(self, run_number: int, type: str | None = None) -> list[LogEntry]:
        with self.transaction() as s:
            return s.read_log_entries(run_number, type)

    def ensure_config_para_name(self, name: str, description: str | None = None) -> int:
        with self.transaction() as s:
            return s.ensure_config_para_name(name, description)

    def add_run_config_para(self, run_number: int, name: str, value: object) -> int:
        with self.transaction() as s:
            return s.add_run_config_para(run_number, name, value)

    def add_run_config_paras(self, run_number: int, values: Mapping[str, object]) -> list[int]:
        """Several ``run_config_para`` rows in one transaction (all or none)."""
        with self.transaction() as s:
            s.read_run(run_number)
            return [s.add_run_config_para(run_number, k, v) for k, v in values.items()]

    def add_log_entry(
        self, run_number: int, type: str, level: int, time: datetime, text: str
    ) -> int:
        with self.transaction() as s:
            return s.add_log_entry(run_number, type, level, time, text)
